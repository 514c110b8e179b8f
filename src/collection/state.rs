//! What readers see: the segments and the ids at the visible seq.
//!
//! The state only ever holds writes that are visible: a record is applied (published) once it
//! is durable under the flush policy, in seq order, so the state is always the result of
//! applying exactly the records `1..=visible_seq`. A reader holds the read lock for one call;
//! writers take the write lock only for in-memory work (applying a batch, swapping segments).

use std::sync::Arc;

use crate::doc::DocStatus;
use crate::error::{Error, Result};
use crate::query::plan::{Graph, Part};
use crate::segment::{Batch, Block, DeleteSet, IdTracker, Row, SealedSegment, Segment};
use crate::wal::Op;

/// A writing segment rotated out, waiting in memory for its background persist, with what the
/// manifest that commits it must say.
#[derive(Debug)]
pub(crate) struct Sealing {
    pub(crate) segment: Segment,
    /// Deletions as of the segment's last record.
    pub(crate) deleted: DeleteSet,
    /// The next doc id as of the segment's last record.
    pub(crate) next_doc_id: u64,
    /// The segment that took the writes after this one.
    pub(crate) successor: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    /// Persisted segments.
    pub(crate) sealed: Vec<Arc<SealedSegment>>,
    /// Rotated segments being persisted, oldest first.
    pub(crate) sealing: Vec<Arc<Sealing>>,
    /// The segment taking writes.
    pub(crate) writing: Segment,
    pub(crate) ids: IdTracker,
    /// The last record applied: every record up to it is visible, none after it.
    pub(crate) visible_seq: u64,
}

impl State {
    /// Every block, sealed ones first, the writing block last: insertion order.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.sealed
            .iter()
            .map(|s| &s.block)
            .chain(self.sealing.iter().map(|s| &s.segment.rows))
            .chain(std::iter::once(&self.writing.rows))
    }

    /// Every segment as vector field `v`'s search sees it, in [`State::blocks`] order.
    pub(crate) fn parts(&self, v: usize) -> Vec<Part<'_>> {
        fn live(s: &Segment, v: usize) -> Part<'_> {
            Part {
                block: &s.rows,
                graph: s.graphs.get(v).and_then(Option::as_deref).map(Graph::Live),
                sealed: None,
                inv_norms: s.inv_norms(v),
            }
        }
        self.sealed
            .iter()
            .map(|s| Part {
                block: &s.block,
                graph: s.graphs.get(v).and_then(Option::as_ref).map(Graph::Frozen),
                sealed: Some(&**s),
                inv_norms: None,
            })
            .chain(self.sealing.iter().map(|s| live(&s.segment, v)))
            .chain(std::iter::once(live(&self.writing, v)))
            .collect()
    }

    /// The block and position of a stored row.
    pub(crate) fn locate(&self, doc_id: u64) -> Option<(&Block, usize)> {
        locate(self.blocks(), doc_id)
    }

    /// The live row of `pk`.
    pub(crate) fn live_row(&self, pk: &str) -> Option<(&Block, usize)> {
        self.ids.live.get(pk).and_then(|&id| self.locate(id))
    }

    /// Applies the record `seq` to the writing segment and makes it visible.
    pub(crate) fn apply(&mut self, seq: u64, op: Op, batch: Batch) -> Result<Vec<DocStatus>> {
        let State {
            sealed,
            sealing,
            writing,
            ids,
            ..
        } = self;
        let elsewhere = |id: u64| {
            let blocks = sealed
                .iter()
                .map(|s| &s.block)
                .chain(sealing.iter().map(|s| &s.segment.rows));
            locate(blocks, id).map(|(b, i)| b.row(i))
        };
        let statuses = writing
            .apply(seq, op, batch, ids, &elsewhere)
            .map_err(|reason| Error::InvariantViolated { reason })?;
        self.visible_seq = seq;
        Ok(statuses)
    }

    /// Rows stored in the segments (live, deleted and superseded).
    pub(crate) fn stored_rows(&self) -> u64 {
        self.blocks().map(|b| b.len() as u64).sum()
    }
}

/// The stored row `doc_id` among the persisted segments and the segments replayed so far:
/// what a replayed update merges into (open and verify replay the same way).
pub(crate) fn replayed_row(
    sealed: &[Arc<SealedSegment>],
    recovered: &[Segment],
    doc_id: u64,
) -> Option<Row> {
    let blocks = sealed
        .iter()
        .map(|s| &s.block)
        .chain(recovered.iter().map(|s| &s.rows));
    locate(blocks, doc_id).map(|(b, i)| b.row(i))
}

/// The block among `blocks` holding `doc_id`, and the row's position in it.
pub(crate) fn locate<'a>(
    blocks: impl Iterator<Item = &'a Block>,
    doc_id: u64,
) -> Option<(&'a Block, usize)> {
    let mut blocks = blocks;
    blocks
        .by_ref()
        .filter(|b| {
            b.doc_ids.first().is_some_and(|&f| f <= doc_id)
                && b.doc_ids.last().is_some_and(|&l| l >= doc_id)
        })
        .find_map(|b| b.find(doc_id).map(|i| (b, i)))
}

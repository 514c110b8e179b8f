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
use crate::schema::{CollectionSchema, VectorSchema};
use crate::segment::{
    ApplyError, Batch, DeleteSet, Elsewhere, IdTracker, KeyFilter, LiveRow, Rows, SealedSegment,
    Segment,
};
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
    /// The schema every segment below has: it changes only with them (a schema change swaps
    /// both under the write lock), so a reader's snapshot pairs the rows with their schema.
    pub(crate) schema: Arc<CollectionSchema>,
    /// Persisted segments.
    pub(crate) sealed: Vec<Arc<SealedSegment>>,
    /// A filter over the keys of the sealed segments it covers (built in the background
    /// after open, kept up by persists and merges; none on a read-only handle).
    pub(crate) key_filter: Option<Arc<KeyFilter>>,
    /// Rotated segments being persisted, oldest first.
    pub(crate) sealing: Vec<Arc<Sealing>>,
    /// The segment taking writes.
    pub(crate) writing: Segment,
    pub(crate) ids: IdTracker,
    /// The last record applied: every record up to it is visible, none after it.
    pub(crate) visible_seq: u64,
}

impl State {
    /// Every segment's rows, sealed ones first, the writing segment last: insertion order.
    pub(crate) fn rows(&self) -> Result<Vec<Rows<'_>>> {
        let mut out = Vec::with_capacity(self.sealed.len() + self.sealing.len() + 1);
        for s in &self.sealed {
            out.push(s.rows()?);
        }
        out.extend(self.sealing.iter().map(|s| Rows::of_block(&s.segment.rows)));
        out.push(Rows::of_block(&self.writing.rows));
        Ok(out)
    }

    /// Every segment as vector field `v` (`vs`) is searched, in [`State::rows`] order.
    pub(crate) fn parts(&self, v: usize, vs: &VectorSchema) -> Result<Vec<Part<'_>>> {
        fn live(s: &Segment, v: usize) -> Part<'_> {
            let rows = Rows::of_block(&s.rows);
            Part {
                rows,
                vectors: s.rows.vectors.get(v).map_or(&[][..], |c| &c.data),
                graph: s.graphs.get(v).and_then(Option::as_deref).map(Graph::Live),
                sealed: None,
                inv_norms: s.inv_norms(v),
            }
        }
        let mut out = Vec::with_capacity(self.sealed.len() + self.sealing.len() + 1);
        for s in &self.sealed {
            let rows = s.rows()?;
            out.push(Part {
                rows,
                vectors: rows.vectors(v)?,
                graph: s.graph(v, vs)?.map(Graph::Frozen),
                sealed: Some(&**s),
                inv_norms: None,
            });
        }
        out.extend(self.sealing.iter().map(|s| live(&s.segment, v)));
        out.push(live(&self.writing, v));
        Ok(out)
    }

    /// The other segments, as a write to the writing segment sees them.
    pub(crate) fn elsewhere<'a>(&'a self, schema: &'a CollectionSchema) -> Elsewhere<'a> {
        Elsewhere {
            sealed: &self.sealed,
            memory: self.sealing.iter().map(|s| &s.segment).collect(),
            schema,
            filter: self.key_filter.as_deref(),
        }
    }

    /// `pk`'s live row.
    pub(crate) fn live_row<'a>(
        &'a self,
        pk: &str,
        schema: &'a CollectionSchema,
    ) -> Result<Option<LiveRow<'a>>> {
        let deleted = &self.ids.deleted;
        let Some(id) = self.writing.live_doc(pk, deleted) else {
            return Ok(self
                .elsewhere(schema)
                .live(pk, deleted)?
                .map(|(row, _)| row));
        };
        let elsewhere = self.elsewhere(schema).found(pk, deleted)?;
        if let Some((_, other)) = elsewhere {
            let path = self
                .sealed
                .last()
                .map_or_else(Default::default, |s| s.forward.path().to_path_buf());
            return Err(Error::corrupted(
                path,
                0,
                format!("pk {pk:?} is live in doc ids {id} and {other}"),
            ));
        }
        let rows = Rows::of_block(&self.writing.rows);
        Ok(rows.find(id).map(|i| LiveRow::Rows(rows, i)))
    }

    /// Applies the record `seq` to the writing segment and makes it visible.
    pub(crate) fn apply(&mut self, seq: u64, op: Op, batch: Batch) -> Result<Vec<DocStatus>> {
        let State {
            schema,
            sealed,
            sealing,
            writing,
            ids,
            key_filter,
            ..
        } = self;
        let elsewhere = Elsewhere {
            sealed,
            memory: sealing.iter().map(|s| &s.segment).collect(),
            schema,
            filter: key_filter.as_deref(),
        };
        let statuses = writing
            .apply(seq, op, batch, ids, &elsewhere)
            .map_err(|e| match e {
                ApplyError::Record(reason) => Error::InvariantViolated { reason },
                ApplyError::Stored(e) => e,
            })?;
        self.visible_seq = seq;
        Ok(statuses)
    }

    /// Rows stored in the segments (live, deleted and superseded).
    pub(crate) fn stored_rows(&self) -> u64 {
        self.sealed.iter().map(|s| s.len() as u64).sum::<u64>()
            + self
                .sealing
                .iter()
                .map(|s| s.segment.rows.len() as u64)
                .sum::<u64>()
            + self.writing.rows.len() as u64
    }

    /// Live documents (counted over every segment's doc ids the first time).
    pub(crate) fn live_docs(&self) -> Result<u64> {
        self.ids.live(|| {
            let mut n = 0u64;
            for rows in self.rows()? {
                n += rows
                    .doc_ids
                    .iter()
                    .filter(|&&d| !self.ids.deleted.contains(d))
                    .count() as u64;
            }
            Ok(n)
        })
    }
}

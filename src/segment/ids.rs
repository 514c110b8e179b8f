//! Which primary key names which stored row. Global doc ids are never reused, so a deletion
//! recorded by id stays right across merges that move rows between segments.
//!
//! No map of every key is held: each in-memory segment maps its own keys, each sealed segment
//! answers from its forward file's key index (a bloom filter, then a binary search) unless the
//! collection-wide [`KeyFilter`] rules it out, and a row is live when the delete set does not
//! hold its doc id. At most one row of a pk is live.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use super::{DeleteSet, KeyFilter, LiveRow, Row, Rows, SealedSegment, Segment};
use crate::schema::CollectionSchema;

const UNCOUNTED: u64 = u64::MAX;

/// The deleted doc ids, the next doc id and the number of live documents, collection-wide.
#[derive(Debug, Default)]
pub(crate) struct IdTracker {
    pub(crate) deleted: DeleteSet,
    pub(crate) next_doc_id: u64,
    /// Live documents; [`UNCOUNTED`] until first counted (counting reads every segment's doc
    /// ids, which open does not).
    live: AtomicU64,
}

impl Clone for IdTracker {
    fn clone(&self) -> Self {
        IdTracker {
            deleted: self.deleted.clone(),
            next_doc_id: self.next_doc_id,
            live: AtomicU64::new(self.live.load(Ordering::Relaxed)),
        }
    }
}

impl IdTracker {
    /// The tracker of persisted segments with these deletions.
    ///
    /// Fails with the segment and a description when the files contradict each other: a doc
    /// id at or above `next_doc_id` (a later write would reuse it, and a delete of one row
    /// would delete the other). That a pk is live in one row only is checked by `verify`.
    pub(crate) fn new(
        sealed: &[Arc<SealedSegment>],
        deleted: DeleteSet,
        next_doc_id: u64,
    ) -> Result<Self, (u64, String)> {
        if let Some(max) = deleted.max().filter(|&m| m >= next_doc_id) {
            return Err((
                u64::MAX,
                format!("deleted doc id {max} is not below next_doc_id {next_doc_id}"),
            ));
        }
        for seg in sealed {
            if let Some((_, max)) = seg
                .forward
                .doc_id_range()
                .filter(|&(_, m)| m >= next_doc_id)
            {
                return Err((
                    seg.id,
                    format!("doc id {max} is not below next_doc_id {next_doc_id}"),
                ));
            }
        }
        Ok(IdTracker {
            deleted,
            next_doc_id,
            live: AtomicU64::new(if sealed.is_empty() { 0 } else { UNCOUNTED }),
        })
    }

    /// A new doc id for a row that becomes live.
    pub(crate) fn assign(&mut self) -> u64 {
        let id = self.next_doc_id;
        self.next_doc_id += 1;
        let live = self.live.get_mut();
        if *live != UNCOUNTED {
            *live += 1;
        }
        id
    }

    /// Deletes the live row `doc_id`.
    pub(crate) fn delete(&mut self, doc_id: u64) {
        self.deleted.insert(doc_id);
        let live = self.live.get_mut();
        if *live != UNCOUNTED {
            *live = live.saturating_sub(1);
        }
    }

    /// Live documents, counting them with `count` the first time.
    pub(crate) fn live(&self, count: impl FnOnce() -> crate::Result<u64>) -> crate::Result<u64> {
        match self.live.load(Ordering::Acquire) {
            UNCOUNTED => {
                let n = count()?;
                // Counted under the state's read lock, which excludes every writer: no write
                // can land between the count and this store.
                self.live.store(n, Ordering::Release);
                Ok(n)
            }
            n => Ok(n),
        }
    }
}

/// The segments a write does not write to (sealed, and in memory waiting to be persisted):
/// where it looks for a pk's live row and for the row an update merges into.
pub(crate) struct Elsewhere<'a> {
    pub(crate) sealed: &'a [Arc<SealedSegment>],
    pub(crate) memory: Vec<&'a Segment>,
    pub(crate) schema: &'a CollectionSchema,
    /// A filter over the keys of (some of) `sealed`: the segments it covers are only asked
    /// about a pk it may hold.
    pub(crate) filter: Option<&'a KeyFilter>,
}

impl<'a> Elsewhere<'a> {
    /// The live doc id of `pk` in these segments.
    pub(crate) fn live_doc(&self, pk: &str, deleted: &DeleteSet) -> crate::Result<Option<u64>> {
        Ok(self.live(pk, deleted)?.map(|(_, id)| id))
    }

    /// Where `pk` is live in these segments, and its doc id. Every sealed segment is asked (a
    /// bloom filter probe each, mostly), so that a pk live in two of them — which writes never
    /// leave, only a damaged or crafted file — is an error rather than one of two answers. A
    /// row found is read in place; "nowhere" is only answered once every sealed segment's key
    /// index is proven complete (O(rows) once per segment, usually done by then in the
    /// background after open), so a fetch of a stored pk never waits for that proof.
    pub(crate) fn live(
        &self,
        pk: &str,
        deleted: &DeleteSet,
    ) -> crate::Result<Option<(LiveRow<'a>, u64)>> {
        let found = self.found(pk, deleted)?;
        if found.is_none() {
            // Once after open (unless the background check got there first), on both cores.
            let unproven: Vec<&Arc<SealedSegment>> = self
                .sealed
                .iter()
                .filter(|s| !s.forward.keys_proven())
                .collect();
            unproven
                .par_iter()
                .try_for_each(|s| s.forward.prove_keys())?;
        }
        Ok(found)
    }

    /// [`Elsewhere::live`] without proving a miss: what it finds is right, what it does not
    /// find is not proven absent. Enough when the pk was found live in the writing segment
    /// already (this only looks for a second live row, which a forged index could hide until
    /// its proof, in the background after open, reports it).
    pub(crate) fn found(
        &self,
        pk: &str,
        deleted: &DeleteSet,
    ) -> crate::Result<Option<(LiveRow<'a>, u64)>> {
        let hash = super::keys::hash(pk);
        // Segments whose every key is in the filter, when the filter says `pk` is none of them.
        let ruled_out = self.filter.filter(|f| !f.may_contain(hash));
        let asked = |s: &SealedSegment| !ruled_out.is_some_and(|f| f.covers(s.id));
        for s in self.sealed.iter().filter(|s| asked(s)) {
            s.forward.prefetch_key(hash);
        }
        let mut found = self.memory.iter().rev().find_map(|&s| {
            let id = s.live_doc(pk, deleted)?;
            let rows = Rows::of_block(&s.rows);
            rows.find(id).map(|i| (LiveRow::Rows(rows, i), id))
        });
        let sealed: &'a [Arc<SealedSegment>] = self.sealed;
        for s in sealed.iter().rev().filter(|s| asked(s)) {
            if let Some((row, id)) = s.live_row(pk, hash, deleted)? {
                if let Some((_, other)) = found {
                    return Err(crate::Error::corrupted(
                        s.forward.path(),
                        0,
                        format!("pk {pk:?} is live in doc ids {id} and {other}"),
                    ));
                }
                found = Some((LiveRow::File(&s.forward, row), id));
            }
        }
        Ok(found)
    }

    /// The stored row `doc_id` in these segments.
    pub(crate) fn row(&self, doc_id: u64) -> crate::Result<Option<Row>> {
        for s in self.memory.iter() {
            if let Some(i) = s.rows.find(doc_id) {
                return Ok(Some(s.rows.row(i)));
            }
        }
        for s in self.sealed {
            if !s
                .forward
                .doc_id_range()
                .is_some_and(|(lo, hi)| lo <= doc_id && doc_id <= hi)
            {
                continue;
            }
            let rows = s.rows()?;
            if let Some(i) = rows.find(doc_id) {
                return Ok(Some(rows.row(i, self.schema)?));
            }
        }
        Ok(None)
    }
}

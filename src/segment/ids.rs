//! Which primary key names which stored row: the live keys, the deleted doc ids and the next
//! doc id. Global doc ids are never reused, so a deletion recorded by id stays right across
//! merges that move rows between segments.

use std::sync::Arc;

use hashbrown::HashMap;

use super::{DeleteSet, SealedSegment};

/// Live primary keys and deleted doc ids, collection-wide.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdTracker {
    /// Live primary keys and the doc id of their current row.
    pub(crate) live: HashMap<String, u64>,
    pub(crate) deleted: DeleteSet,
    pub(crate) next_doc_id: u64,
}

impl IdTracker {
    /// The tracker of persisted segments with these deletions.
    ///
    /// Fails with the segment and a description when the files contradict each other: a pk live
    /// in two rows (a `fetch` would return either), or a doc id at or above `next_doc_id` (a
    /// later write would reuse it, and a delete of one row would delete the other).
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
        let rows: usize = sealed.iter().map(|s| s.block.len()).sum();
        let mut live = HashMap::with_capacity(rows);
        for seg in sealed {
            if let Some(&max) = seg.block.doc_ids.last().filter(|&&m| m >= next_doc_id) {
                return Err((
                    seg.id,
                    format!("doc id {max} is not below next_doc_id {next_doc_id}"),
                ));
            }
            for (i, &id) in seg.block.doc_ids.iter().enumerate() {
                if !deleted.contains(id) {
                    if let Some(other) = live.insert(seg.block.pks[i].clone(), id) {
                        return Err((
                            seg.id,
                            format!(
                                "pk {:?} is live in doc ids {other} and {id}",
                                seg.block.pks[i]
                            ),
                        ));
                    }
                }
            }
        }
        Ok(IdTracker {
            live,
            deleted,
            next_doc_id,
        })
    }

    /// Makes `pk` name a new doc id and returns it.
    pub(crate) fn assign(&mut self, pk: &str) -> u64 {
        let id = self.next_doc_id;
        self.next_doc_id += 1;
        self.live.insert(pk.to_string(), id);
        id
    }

    /// Deletes the live row of `pk`; false when there is none.
    pub(crate) fn remove(&mut self, pk: &str) -> bool {
        match self.live.remove(pk) {
            Some(id) => {
                self.deleted.insert(id);
                true
            }
            None => false,
        }
    }
}

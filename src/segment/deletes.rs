//! Which global doc ids are deleted, persisted as `del.<N>`.
//!
//! In memory a compressed bitmap (`roaring`): its size follows the deleted ids, not the
//! largest doc id, so a large (or crafted) doc id cannot make it allocate without bound. On
//! disk (envelope version 2) the sorted, disjoint, non-adjacent ranges of deleted ids, which is
//! compact for the common bulk deletes, trivially checked, and independent of any library's
//! serialization. Version 1 files (a plain bitset) are still read: their size bounds the bitset.

use std::path::Path;

use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::envelope;

const MAGIC: &[u8; 8] = b"SVDEL\r\n\x1a";
/// The bitset encoding of the first release.
const BITSET_VERSION: u32 = 1;
/// The range encoding written now.
const RANGES_VERSION: u32 = 2;

/// The most ids a delete file may hold (2^34, 17 billion): bounds the memory a crafted range
/// can claim (a dense range costs about one container per 65,536 ids).
const MAX_DELETED: u64 = 1 << 34;

/// A set of deleted doc ids.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DeleteSet {
    ids: RoaringTreemap,
}

/// Version 1 payload: bit `id % 64` of word `id / 64`.
#[derive(Deserialize)]
struct Bitset {
    #[serde(with = "serde_bytes")]
    words: Vec<u8>,
    count: u64,
}

/// Version 2 payload: `ranges` holds (first, last) pairs of u64 LE, inclusive, ascending.
#[derive(Serialize, Deserialize)]
struct Ranges {
    #[serde(with = "serde_bytes")]
    ranges: Vec<u8>,
    count: u64,
}

impl DeleteSet {
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.ids.contains(id)
    }

    pub(crate) fn insert(&mut self, id: u64) {
        self.ids.insert(id);
    }

    /// Whether any id in `first..=last` is deleted: O(log n), so a search can skip the
    /// per-candidate check for a segment no deletion touches.
    pub(crate) fn any_in(&self, first: u64, last: u64) -> bool {
        if first > last {
            return false;
        }
        let below = first.checked_sub(1).map_or(0, |b| self.ids.rank(b));
        self.ids.rank(last) > below
    }

    /// Number of deleted ids.
    pub(crate) fn len(&self) -> u64 {
        self.ids.len()
    }

    /// The largest deleted id.
    pub(crate) fn max(&self) -> Option<u64> {
        self.ids.max()
    }

    /// The deleted ids as inclusive ranges, ascending.
    fn ranges(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for id in &self.ids {
            match out.last_mut() {
                Some(last) if last.1.checked_add(1) == Some(id) => last.1 = id,
                _ => out.push((id, id)),
            }
        }
        out
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut ranges = Vec::new();
        for (first, last) in self.ranges() {
            ranges.extend_from_slice(&first.to_le_bytes());
            ranges.extend_from_slice(&last.to_le_bytes());
        }
        let payload = rmp_serde::to_vec_named(&Ranges {
            ranges,
            count: self.len(),
        })
        .map_err(|e| Error::Serialization(format!("encoding a delete set: {e}")))?;
        Ok(envelope::seal_version(MAGIC, RANGES_VERSION, &payload))
    }

    pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let (version, payload) =
            envelope::open_versions(path, MAGIC, bytes, BITSET_VERSION..=RANGES_VERSION)?;
        let bad = |reason: String| Error::corrupted(path, 24, reason);
        let mut ids = RoaringTreemap::new();
        let count = if version == BITSET_VERSION {
            let set: Bitset = envelope::decode_exact(payload)
                .map_err(|e| bad(format!("delete set does not decode: {e}")))?;
            if !set.words.len().is_multiple_of(8) {
                return Err(bad("bitset bytes not a multiple of 8".into()));
            }
            for (w, word) in set.words.chunks_exact(8).enumerate() {
                let mut bits = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
                if bits == u64::MAX {
                    // A full word at once: a dense old bitset converts in time linear in words.
                    ids.insert_range(w as u64 * 64..(w as u64 + 1) * 64);
                    continue;
                }
                while bits != 0 {
                    ids.insert(w as u64 * 64 + u64::from(bits.trailing_zeros()));
                    bits &= bits - 1;
                }
            }
            set.count
        } else {
            let set: Ranges = envelope::decode_exact(payload)
                .map_err(|e| bad(format!("delete set does not decode: {e}")))?;
            if !set.ranges.len().is_multiple_of(16) {
                return Err(bad("range bytes not a multiple of 16".into()));
            }
            if set.count > MAX_DELETED {
                return Err(bad(format!(
                    "delete count {} exceeds the limit of {MAX_DELETED}",
                    set.count
                )));
            }
            let mut prev: Option<u64> = None;
            let mut total = 0u64;
            for (i, r) in set.ranges.chunks_exact(16).enumerate() {
                let first = u64::from_le_bytes(r[..8].try_into().unwrap_or([0; 8]));
                let last = u64::from_le_bytes(r[8..].try_into().unwrap_or([0; 8]));
                // Disjoint, ascending and non-adjacent: the one encoding of a set, so that two
                // files of the same set are identical and a damaged range cannot overlap.
                let ordered = first <= last && prev.is_none_or(|p| p < u64::MAX && p + 1 < first);
                if !ordered {
                    return Err(bad(format!(
                        "range {i} ({first}..={last}) is not after the previous one"
                    )));
                }
                // Counted before inserting, so that a crafted range of 2^62 ids is refused
                // instead of building a bitmap of millions of containers.
                total = total.saturating_add(last - first).saturating_add(1);
                if total > set.count {
                    return Err(bad(format!(
                        "ranges hold more ids than the delete count {}",
                        set.count
                    )));
                }
                ids.insert_range(first..=last);
                prev = Some(last);
            }
            set.count
        };
        if ids.len() != count {
            return Err(bad(format!(
                "delete count {count} does not match the {} ids stored",
                ids.len()
            )));
        }
        Ok(DeleteSet { ids })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn roundtrip(ids: &[u64]) -> DeleteSet {
        let mut set = DeleteSet::default();
        for &id in ids {
            set.insert(id);
        }
        let back = DeleteSet::decode(Path::new("del.1"), &set.encode().unwrap()).unwrap();
        assert_eq!(back, set);
        back
    }

    #[test]
    fn ranges_round_trip_whatever_the_ids() {
        assert_eq!(roundtrip(&[]).len(), 0);
        let set = roundtrip(&[0, 1, 2, 5, 6, 100, 1 << 40, (1 << 62) + 3, u64::MAX]);
        assert_eq!(set.len(), 9);
        assert!(set.contains(1 << 40) && !set.contains(3) && set.contains(u64::MAX));
        assert_eq!(set.max(), Some(u64::MAX));
        // Memory follows the ids: one id near 2^62 is one small container, not 2^56 words.
        assert_eq!(set.ranges().len(), 6);
    }

    fn file(version: u32, payload: &[u8]) -> Vec<u8> {
        envelope::seal_version(MAGIC, version, payload)
    }

    fn ranges_payload(pairs: &[(u64, u64)], count: u64) -> Vec<u8> {
        let mut ranges = Vec::new();
        for (a, b) in pairs {
            ranges.extend_from_slice(&a.to_le_bytes());
            ranges.extend_from_slice(&b.to_le_bytes());
        }
        rmp_serde::to_vec_named(&Ranges { ranges, count }).unwrap()
    }

    #[test]
    fn overlapping_adjacent_or_oversized_ranges_are_refused() {
        let path = Path::new("del.1");
        for (pairs, count) in [
            (vec![(5, 3)], 3),
            (vec![(1, 3), (3, 4)], 5),
            (vec![(1, 3), (4, 4)], 4),
            (vec![(0, 1 << 62)], (1 << 62) + 1),
            (vec![(0, 1 << 40)], 10),
            (vec![(0, 9)], 11),
            (vec![(u64::MAX, u64::MAX), (5, 5)], 2),
        ] {
            let bytes = file(RANGES_VERSION, &ranges_payload(&pairs, count));
            assert!(
                DeleteSet::decode(path, &bytes).is_err(),
                "{pairs:?} {count}"
            );
        }
        let ok = file(RANGES_VERSION, &ranges_payload(&[(1, 3), (5, 5)], 4));
        assert_eq!(DeleteSet::decode(path, &ok).unwrap().len(), 4);
    }

    #[test]
    fn version_1_bitsets_are_read() {
        #[derive(Serialize)]
        struct Old {
            #[serde(with = "serde_bytes")]
            words: Vec<u8>,
            count: u64,
        }
        let mut words = Vec::new();
        words.extend_from_slice(&0b1011u64.to_le_bytes());
        words.extend_from_slice(&u64::MAX.to_le_bytes());
        let payload = rmp_serde::to_vec_named(&Old { words, count: 67 }).unwrap();
        let set = DeleteSet::decode(Path::new("del.1"), &file(BITSET_VERSION, &payload)).unwrap();
        assert_eq!(set.len(), 67);
        assert!(set.contains(0) && !set.contains(2) && set.contains(3) && set.contains(127));
    }
}

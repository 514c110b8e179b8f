//! One bloom filter over the keys of many sealed segments, held in memory, so that an insert's
//! existence check of a new pk costs one probe instead of one per segment.
//!
//! It *covers* a segment once every key of that segment's proven key index is in it (see
//! [`ForwardFile::prove_keys`](super::ForwardFile::prove_keys)): a "no" then proves the pk
//! absent from every covered segment, and only segments it does not cover are asked. Bits are
//! only ever added, so a merge of covered segments is covered (its keys are some of theirs),
//! and deletions leave it a superset, which costs nothing but a false positive.

use std::sync::Arc;

use super::keys::Bloom;
use super::SealedSegment;
use crate::error::Result;

/// Keys a new filter is sized for at least.
const MIN_CAPACITY: usize = 1 << 16;

/// A collection-wide bloom filter over the keys of the sealed segments it covers.
#[derive(Debug, Clone)]
pub(crate) struct KeyFilter {
    /// The filter (a whole number of 64-byte blocks), shared by the copies a merge makes.
    bits: Arc<Vec<u8>>,
    /// Keys added so far, and how many it was sized for (16 bits each).
    keys: usize,
    capacity: usize,
    /// Ids of the segments every key of which is in `bits`.
    covers: Vec<u64>,
}

impl KeyFilter {
    /// The filter of `segments`, sized for twice their keys. A segment whose key index does
    /// not prove complete is left uncovered (its reads report the damage).
    pub(crate) fn build(segments: &[Arc<SealedSegment>]) -> Self {
        let keys: usize = segments.iter().map(|s| s.len()).sum();
        let capacity = (2 * keys).max(MIN_CAPACITY);
        let mut filter = KeyFilter {
            bits: Arc::new(Bloom::empty(capacity)),
            keys: 0,
            capacity,
            covers: Vec::with_capacity(segments.len()),
        };
        for s in segments {
            // The error is the segment's own, reported by every read that needs the index.
            let _ = filter.add(s);
        }
        filter
    }

    /// Adds every key of `segment` and covers it. Fails when its key index does not prove
    /// complete (the filter is then unchanged for it).
    fn add(&mut self, segment: &SealedSegment) -> Result<()> {
        let hashes = segment.forward.proven_key_hashes()?;
        let bits = Arc::make_mut(&mut self.bits);
        for hash in hashes {
            Bloom::insert(bits, hash);
        }
        self.keys += segment.len();
        self.covers.push(segment.id);
        Ok(())
    }

    /// This filter also covering `segment` (a copy; the original stays valid for readers
    /// holding it), or a fresh one over `all` when the keys outgrow what it was sized for.
    pub(crate) fn with(&self, segment: &SealedSegment, all: &[Arc<SealedSegment>]) -> Self {
        if self.keys + segment.len() > self.capacity {
            return Self::build(all);
        }
        let mut next = self.clone();
        // Left uncovered on failure: its reads report the damage.
        let _ = next.add(segment);
        next
    }

    /// This filter after `inputs` were replaced by `output`: `output` is covered when every
    /// input was (its keys are some of theirs).
    pub(crate) fn replaced(&self, inputs: &[u64], output: Option<u64>) -> Self {
        let all_covered = inputs.iter().all(|id| self.covers(*id));
        let mut next = self.clone();
        next.covers.retain(|id| !inputs.contains(id));
        if let Some(out) = output.filter(|_| all_covered) {
            next.covers.push(out);
        }
        next
    }

    /// Whether some covered segment may hold the key hashed to `hash`.
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        Bloom::may_contain(&self.bits, hash)
    }

    /// Whether every key of segment `id` is in the filter.
    pub(crate) fn covers(&self, id: u64) -> bool {
        self.covers.contains(&id)
    }
}

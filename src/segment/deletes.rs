//! Which global doc ids are deleted: a bitset, persisted as `del.<N>`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::envelope;

const MAGIC: &[u8; 8] = b"SVDEL\r\n\x1a";

/// A growable bitset over doc ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeleteSet {
    words: Vec<u64>,
    count: u64,
}

impl DeleteSet {
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.words
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub(crate) fn insert(&mut self, id: u64) {
        let word = (id / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1 << (id % 64);
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.count += 1;
        }
    }

    /// Number of deleted ids.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let payload = rmp_serde::to_vec_named(self)
            .map_err(|e| Error::Serialization(format!("encoding a delete set: {e}")))?;
        Ok(envelope::seal(MAGIC, &payload))
    }

    pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let payload = envelope::open(path, MAGIC, bytes)?;
        let set: DeleteSet = rmp_serde::from_slice(payload)
            .map_err(|e| Error::corrupted(path, 24, format!("delete set does not decode: {e}")))?;
        let actual: u64 = set.words.iter().map(|w| u64::from(w.count_ones())).sum();
        if actual != set.count {
            return Err(Error::corrupted(
                path,
                24,
                "delete count does not match its bitset",
            ));
        }
        Ok(set)
    }
}

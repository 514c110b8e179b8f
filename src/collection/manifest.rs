//! `manifest.<N>`: the durable description of a collection. The newest one is the truth.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::options::StoredOptions;
use crate::error::{Error, Result};
use crate::schema::CollectionSchema;
use crate::segment::{FileMeta, SegmentMeta};
use crate::storage::{envelope, Storage};

const MAGIC: &[u8; 8] = b"SVMAN\r\n\x1a";
const PREFIX: &str = "manifest.";

/// Everything needed to open the collection, apart from the files it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// N of `manifest.<N>`.
    pub(crate) version: u64,
    pub(crate) schema: CollectionSchema,
    pub(crate) options: StoredOptions,
    pub(crate) segments: Vec<SegmentMeta>,
    /// The segment whose `0.wal` receives writes.
    pub(crate) writing_segment: u64,
    pub(crate) next_segment_id: u64,
    pub(crate) next_doc_id: u64,
    /// Every WAL record with a seq up to this one is reflected in the files above.
    pub(crate) applied_seq: u64,
    /// `del.<N>`, when anything was ever deleted.
    pub(crate) deletes: Option<FileMeta>,
}

impl Manifest {
    pub(crate) fn file_name(version: u64) -> String {
        format!("{PREFIX}{version}")
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let payload = rmp_serde::to_vec_named(self)
            .map_err(|e| Error::Serialization(format!("encoding a manifest: {e}")))?;
        Ok(envelope::seal(MAGIC, &payload))
    }

    /// The versions of the `manifest.<N>` files in `dir`, ascending.
    pub(crate) fn versions(storage: &dyn Storage, dir: &Path) -> Result<Vec<u64>> {
        let mut versions: Vec<u64> = storage
            .list(dir)?
            .iter()
            .filter_map(|n| n.strip_prefix(PREFIX)?.parse().ok())
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// Reads the newest manifest.
    ///
    /// A damaged newest manifest is an error, not a reason to fall back to an older one: the
    /// WAL that older one needs may already be gone, and falling back would silently lose or
    /// resurrect documents.
    pub(crate) fn load_newest(storage: &dyn Storage, dir: &Path) -> Result<Manifest> {
        let Some(&version) = Self::versions(storage, dir)?.last() else {
            return Err(Error::corrupted(
                dir.join("manifest.0"),
                0,
                "no manifest: not a stratavec collection, or its creation was interrupted \
                 (then `create` it again)",
            ));
        };
        let path = dir.join(Self::file_name(version));
        let bytes = storage.read(&path)?;
        let payload = envelope::open(&path, MAGIC, &bytes)?;
        let manifest: Manifest = rmp_serde::from_slice(payload)
            .map_err(|e| Error::corrupted(&path, 24, format!("manifest does not decode: {e}")))?;
        if manifest.version != version {
            return Err(Error::corrupted(
                &path,
                24,
                format!("manifest says it is version {}", manifest.version),
            ));
        }
        Ok(manifest)
    }
}

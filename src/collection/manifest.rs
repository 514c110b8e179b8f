//! `manifest.<N>`: the durable description of a collection. The newest one is the truth.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::options::StoredOptions;
use crate::error::{Error, Result};
use crate::schema::CollectionSchema;
use crate::storage::{envelope, Storage};

const MAGIC: &[u8; 8] = b"SVMAN\r\n\x1a";
const PREFIX: &str = "manifest.";

/// A persisted file, with what it must contain to be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileMeta {
    /// Path relative to the collection directory.
    pub(crate) name: String,
    pub(crate) len: u64,
    pub(crate) crc: u32,
}

impl FileMeta {
    pub(crate) fn of(name: String, bytes: &[u8]) -> Self {
        FileMeta {
            name,
            len: bytes.len() as u64,
            crc: crc32c::crc32c(bytes),
        }
    }

    /// Reads the file and checks it against this description.
    pub(crate) fn read(&self, storage: &dyn Storage, dir: &Path) -> Result<Vec<u8>> {
        let path = dir.join(&self.name);
        let bytes = storage.read(&path)?;
        if bytes.len() as u64 != self.len {
            return Err(Error::corrupted(
                &path,
                bytes.len().min(self.len as usize) as u64,
                format!(
                    "file is {} bytes, the manifest says {}",
                    bytes.len(),
                    self.len
                ),
            ));
        }
        let crc = crc32c::crc32c(&bytes);
        if crc != self.crc {
            return Err(Error::corrupted(
                &path,
                0,
                format!(
                    "file checksum {crc:#010x} differs from the manifest's {:#010x}",
                    self.crc
                ),
            ));
        }
        Ok(bytes)
    }
}

/// A sealed segment: one forward block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentMeta {
    pub(crate) id: u64,
    pub(crate) block: u64,
    pub(crate) rows: u64,
    pub(crate) file: FileMeta,
    /// Per vector field, the graph file (relative path) of an HNSW field. Graph files check
    /// themselves (a checksum per section) and are rebuilt from `file` when damaged.
    #[serde(default)]
    pub(crate) graphs: Vec<Option<String>>,
}

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

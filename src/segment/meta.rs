//! How the manifest describes a sealed segment's files, and every on-disk name a segment uses,
//! derived from ids in one place.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::wal::WalId;

/// The block id of every file a segment has today (one block per segment).
pub(crate) const BLOCK: u64 = 0;

/// The directory of segment `id`, relative to the collection.
pub(crate) fn segment_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(id.to_string())
}

/// `<seg>/<block>.wal`.
pub(crate) fn wal_path(dir: &Path, id: u64) -> PathBuf {
    segment_dir(dir, id).join(wal_file_name())
}

/// The WAL's file name inside its segment directory.
pub(crate) fn wal_file_name() -> String {
    format!("{BLOCK}.wal")
}

/// The id a segment's WAL header carries.
pub(crate) fn wal_id(id: u64) -> WalId {
    WalId {
        segment: id,
        block: BLOCK,
    }
}

/// `<seg>/<block>.fwd`, relative to the collection.
pub(crate) fn fwd_name(id: u64) -> String {
    format!("{id}/{BLOCK}.fwd")
}

/// `<seg>/<field>.<block>.graph`, relative to the collection.
pub(crate) fn graph_name(id: u64, field: &str) -> String {
    format!("{id}/{field}.{BLOCK}.graph")
}

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

    /// The description of a forward file: its checksum covers the header and section table,
    /// which hold the checksum of every section.
    pub(crate) fn of_forward(name: String, bytes: &[u8]) -> Self {
        let prefix = super::columns::prefix_len(bytes)
            .and_then(|n| bytes.get(..n))
            .unwrap_or(bytes);
        FileMeta {
            name,
            len: bytes.len() as u64,
            crc: crc32c::crc32c(prefix),
        }
    }

    /// Reads the file and checks it against this description.
    pub(crate) fn read(&self, storage: &dyn Storage, dir: &Path) -> Result<Vec<u8>> {
        let path = dir.join(&self.name);
        // The real size first: a file that cannot match is refused before it is read, so a
        // huge (or sparse) file in its place costs nothing.
        let size = storage.size(&path)?;
        if size != self.len {
            return Err(Error::corrupted(
                &path,
                size.min(self.len),
                format!("file is {size} bytes, the manifest says {}", self.len),
            ));
        }
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
    /// Per vector field, the graph file (relative path) of an HNSW field, or `None`: a flat
    /// field, or an HNSW field whose graph is deferred (its rows are scored exactly until the
    /// graph is built). Empty in manifests written before graphs could be deferred: every
    /// HNSW field then has its file under the default name. Graph files check themselves (a
    /// checksum per section) and are rebuilt from `file` when damaged.
    #[serde(default)]
    pub(crate) graphs: Vec<Option<String>>,
}

impl SegmentMeta {
    /// The graph file of vector field `v` (`vs`), if it has one.
    pub(crate) fn graph_file(&self, v: usize, vs: &crate::schema::VectorSchema) -> Option<String> {
        if matches!(vs.index, crate::schema::IndexKind::Flat) {
            return None;
        }
        if self.graphs.is_empty() {
            return Some(graph_name(self.id, &vs.name));
        }
        self.graphs.get(v).cloned().flatten()
    }
}

//! `manifest.<N>`: the durable description of a collection. The newest one is the truth.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::options::StoredOptions;
use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, IndexKind};
use crate::segment::{fwd_name, graph_name, FileMeta, SegmentMeta, BLOCK};
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
        // Sized before it is read: a manifest lists about 200 bytes per segment, so a million
        // segments fit well below the bound; a larger file is not one of ours.
        let size = storage.size(&path)?;
        if size > MAX_MANIFEST_BYTES {
            return Err(Error::corrupted(
                &path,
                0,
                format!("manifest is {size} bytes, more than the limit of {MAX_MANIFEST_BYTES}"),
            ));
        }
        let bytes = storage.read(&path)?;
        let payload = envelope::open(&path, MAGIC, &bytes)?;
        let manifest: Manifest = envelope::decode_exact(payload)
            .map_err(|e| Error::corrupted(&path, 24, format!("manifest does not decode: {e}")))?;
        if manifest.version != version {
            return Err(Error::corrupted(
                &path,
                24,
                format!("manifest says it is version {}", manifest.version),
            ));
        }
        manifest
            .check()
            .map_err(|reason| Error::corrupted(&path, 24, reason))?;
        Ok(manifest)
    }

    /// Checks a manifest read from disk as strictly as `create` checks its input, and checks
    /// that every file name it stores is the one derived from ids (so that no stored name can
    /// point outside the collection directory: a rebuild rewrites the file it names).
    ///
    /// Cross-checks against the files themselves (doc ids below `next_doc_id`, WAL records
    /// after `applied_seq`) happen as those files are loaded.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        self.schema
            .validate()
            .map_err(|e| format!("field `schema`: {e}"))?;
        self.options
            .validate()
            .map_err(|e| format!("field `options`: {e}"))?;
        if self.version == 0 || self.version > MAX_COUNTER {
            return Err(format!("field `version` is {}", self.version));
        }
        for (field, value) in [
            ("next_segment_id", self.next_segment_id),
            ("writing_segment", self.writing_segment),
            ("next_doc_id", self.next_doc_id),
            ("applied_seq", self.applied_seq),
        ] {
            if value > MAX_COUNTER {
                return Err(format!(
                    "field `{field}` is {value}, above the limit {MAX_COUNTER}"
                ));
            }
        }
        if self.writing_segment >= self.next_segment_id {
            return Err(format!(
                "field `writing_segment` ({}) is not below `next_segment_id` ({})",
                self.writing_segment, self.next_segment_id
            ));
        }
        let mut rows = 0u64;
        let mut ids = std::collections::HashSet::new();
        for (i, seg) in self.segments.iter().enumerate() {
            let at = |what: &str| format!("segments[{i}] (segment {}): {what}", seg.id);
            if seg.id >= self.next_segment_id || seg.id == self.writing_segment {
                return Err(at(
                    "id is the writing segment's or not below `next_segment_id`",
                ));
            }
            // Merged segments take the place of their inputs, so ids are unique, not sorted.
            if !ids.insert(seg.id) {
                return Err(at("segment listed twice"));
            }
            if seg.block != BLOCK {
                return Err(at(&format!("block {} (only {BLOCK} exists)", seg.block)));
            }
            if seg.rows > u64::from(u32::MAX) {
                return Err(at(&format!(
                    "{} rows (graphs address rows by u32)",
                    seg.rows
                )));
            }
            rows += seg.rows;
            if seg.file.name != fwd_name(seg.id) {
                return Err(at(&format!(
                    "forward file {:?} is not {:?}",
                    seg.file.name,
                    fwd_name(seg.id)
                )));
            }
            if !seg.graphs.is_empty() && seg.graphs.len() != self.schema.vectors.len() {
                return Err(at(&format!(
                    "{} graph entries for {} vector fields",
                    seg.graphs.len(),
                    self.schema.vectors.len()
                )));
            }
            for (g, vs) in seg.graphs.iter().zip(&self.schema.vectors) {
                let Some(name) = g else { continue };
                if matches!(vs.index, IndexKind::Flat) {
                    return Err(at(&format!(
                        "graph file {name:?} for flat field {}",
                        vs.name
                    )));
                }
                if *name != graph_name(seg.id, &vs.name) {
                    return Err(at(&format!(
                        "graph file {name:?} is not {:?}",
                        graph_name(seg.id, &vs.name)
                    )));
                }
            }
        }
        if rows > self.next_doc_id {
            return Err(format!(
                "segments hold {rows} rows but `next_doc_id` is {}: doc ids would be reused",
                self.next_doc_id
            ));
        }
        if let Some(del) = &self.deletes {
            let expected = format!("del.{}", self.version);
            if del.name != expected {
                return Err(format!(
                    "field `deletes`: file {:?} is not {expected:?}",
                    del.name
                ));
            }
        }
        Ok(())
    }
}

/// The largest manifest file read (1 GiB).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// Ids, seqs and versions read from disk are at most 2^63, so that no counter can overflow
/// however long the collection is used afterwards (2^63 increments of headroom).
pub(crate) const MAX_COUNTER: u64 = 1 << 63;

/// Decodes and validates a manifest payload as `load_newest` does (for the decoder fuzz tests).
pub(crate) fn fuzz_payload(payload: &[u8]) -> std::result::Result<(), String> {
    let manifest: Manifest = envelope::decode_exact(payload)?;
    manifest.check()
}

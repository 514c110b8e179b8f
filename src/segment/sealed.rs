//! A sealed segment: immutable files (forward store, frozen graphs) loaded once and shared by
//! `Arc`, so that a reader's snapshot keeps the segments it reads alive across a merge.

use std::path::Path;

use super::graphs::{self, GraphLoad};
use super::{decode_block, Block, InvertedIndexes, SegmentMeta};
use crate::error::Result;
use crate::index::frozen::FrozenGraph;
use crate::schema::{CollectionSchema, IndexKind};
use crate::storage::Storage;

/// A persisted, immutable segment.
#[derive(Debug)]
pub(crate) struct SealedSegment {
    pub(crate) id: u64,
    pub(crate) block: Block,
    /// One frozen graph per vector field with an HNSW index (`None` for flat fields).
    pub(crate) graphs: Vec<Option<FrozenGraph>>,
    /// Inverted indexes of the scalar fields that declare one, built on first use.
    pub(crate) inverted: InvertedIndexes,
}

impl SealedSegment {
    pub(crate) fn new(id: u64, block: Block, graphs: Vec<Option<FrozenGraph>>) -> Self {
        SealedSegment {
            inverted: InvertedIndexes::new(block.fields.len()),
            id,
            block,
            graphs,
        }
    }

    /// Loads the segment `meta` describes: its forward store (checked against the manifest's
    /// length and checksum) and its graphs (mapped, or rebuilt when missing or damaged).
    /// Returns how each HNSW field's graph was loaded.
    pub(crate) fn load(
        storage: &dyn Storage,
        dir: &Path,
        meta: &SegmentMeta,
        schema: &CollectionSchema,
        read_only: bool,
    ) -> Result<(Self, Vec<(String, GraphLoad)>)> {
        let bytes = meta.file.read(storage, dir)?;
        let path = dir.join(&meta.file.name);
        let block = decode_block(&path, &bytes, schema)?;
        if block.len() as u64 != meta.rows {
            return Err(crate::Error::corrupted(
                &path,
                24,
                format!("{} rows, the manifest says {}", block.len(), meta.rows),
            ));
        }
        let mut frozen = Vec::with_capacity(schema.vectors.len());
        let mut loads = Vec::new();
        for (v, vs) in schema.vectors.iter().enumerate() {
            if matches!(vs.index, IndexKind::Flat) {
                frozen.push(None);
                continue;
            }
            let name = meta
                .graphs
                .get(v)
                .cloned()
                .flatten()
                .unwrap_or_else(|| super::graph_name(meta.id, &vs.name));
            let (graph, load) = graphs::load(storage, dir, &name, vs, &block, v, read_only)?;
            loads.push((vs.name.clone(), load));
            frozen.push(Some(graph));
        }
        Ok((SealedSegment::new(meta.id, block, frozen), loads))
    }

    /// Rows of this segment whose doc id is in `deleted`.
    pub(crate) fn deleted_rows(&self, deleted: &super::DeleteSet) -> usize {
        self.block
            .doc_ids
            .iter()
            .filter(|&&id| deleted.contains(id))
            .count()
    }
}

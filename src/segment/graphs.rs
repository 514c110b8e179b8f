//! Graph files of sealed segments: freezing live graphs at persist, building graphs for merged
//! segments, and mapping (or, when a file is missing or damaged, rebuilding) them on open.

use std::path::Path;
use std::sync::Arc;

use super::Block;
use crate::error::Result;
use crate::index::frozen::FrozenGraph;
use crate::index::live::LiveGraph;
use crate::schema::{CollectionSchema, IndexKind, VectorSchema};
use crate::storage::{atomic_write, Mapped, Storage};

/// A fresh live graph for each HNSW vector field of the schema (`None` for flat fields).
pub(crate) fn new_live_graphs(schema: &CollectionSchema) -> Vec<Option<Arc<LiveGraph>>> {
    schema
        .vectors
        .iter()
        .map(|v| match v.index {
            IndexKind::Hnsw { m, ef_construction } => {
                Some(Arc::new(LiveGraph::new(v.metric, m, ef_construction, 0)))
            }
            IndexKind::Flat => None,
        })
        .collect()
}

/// Builds a graph over every row of `block` for field `v` with hnsw_rs (parallel insert).
pub(crate) fn build(vs: &VectorSchema, block: &Block, v: usize) -> Option<LiveGraph> {
    let IndexKind::Hnsw { m, ef_construction } = vs.index else {
        return None;
    };
    let live = LiveGraph::new(vs.metric, m, ef_construction, block.len());
    live.catch_up(&block.vectors[v].data, vs.dimension);
    Some(live)
}

/// Freezes `live` (complete over `block`) into the file `name` and maps it back.
pub(crate) fn freeze(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    live: &LiveGraph,
    vs: &VectorSchema,
    block: &Block,
    v: usize,
) -> Result<FrozenGraph> {
    let data = live.extract(&block.vectors[v].data, vs.dimension);
    let path = dir.join(name);
    atomic_write(storage, &path, &data.encode())?;
    let mapped = storage.map(&path)?;
    FrozenGraph::open(mapped, vs.metric, block.len())
        .map_err(|(offset, reason)| crate::Error::corrupted(&path, offset, reason))
}

/// How a sealed segment's graph came to be in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphLoad {
    /// Mapped from its file, checked, no rebuild.
    Mapped,
    /// The file was missing or damaged; rebuilt from the forward store.
    Rebuilt {
        /// Why the file could not be used.
        reason: String,
    },
}

/// Maps the graph file `name` of field `v`, or rebuilds it from the block when the file is
/// missing or fails its checks (rewriting the file unless `read_only`).
pub(crate) fn load(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    vs: &VectorSchema,
    block: &Block,
    v: usize,
    read_only: bool,
) -> Result<(FrozenGraph, GraphLoad)> {
    let path = dir.join(name);
    let problem = match storage.map(&path) {
        Ok(mapped) => match FrozenGraph::open(mapped, vs.metric, block.len()) {
            Ok(graph) => return Ok((graph, GraphLoad::Mapped)),
            Err((offset, reason)) => format!("{}: {reason} at offset {offset}", path.display()),
        },
        Err(e) => e.to_string(),
    };
    let Some(live) = build(vs, block, v) else {
        return Err(crate::Error::corrupted(
            &path,
            0,
            "graph file for a field without an HNSW index",
        ));
    };
    let graph = if read_only {
        let bytes = live.extract(&block.vectors[v].data, vs.dimension).encode();
        FrozenGraph::open(Mapped::from_bytes(&bytes), vs.metric, block.len())
            .map_err(|(offset, reason)| crate::Error::corrupted(&path, offset, reason))?
    } else {
        freeze(storage, dir, name, &live, vs, block, v)?
    };
    Ok((graph, GraphLoad::Rebuilt { reason: problem }))
}

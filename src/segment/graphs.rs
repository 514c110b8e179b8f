//! Graph files of sealed segments: at persist the live graph frozen (or, when a bulk load
//! outran it, a bulk build), a bulk build for merged segments, and on open the file mapped
//! (or, when it is missing or damaged, rebuilt).

use std::path::Path;
use std::sync::Arc;

use super::Block;
use crate::error::Result;
use crate::index::builder::{build_graph, build_graph_from, BuildParams, Seed};
use crate::index::frozen::{FrozenGraph, GraphData};
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

/// Builds a graph over every row of `block` for field `v` with our builder, in parallel on
/// the current rayon pool. `None` for a field without an HNSW index.
pub(crate) fn build(vs: &VectorSchema, block: &Block, v: usize) -> Option<GraphData> {
    let IndexKind::Hnsw { m, ef_construction } = vs.index else {
        return None;
    };
    let params = BuildParams {
        metric: vs.metric,
        m,
        ef_construction,
        parallel: true,
    };
    Some(build_graph(params, &block.vectors[v].data, vs.dimension))
}

/// Like [`build`], starting from `seed` (a graph over some of `block`'s rows).
pub(crate) fn build_from(
    vs: &VectorSchema,
    block: &Block,
    v: usize,
    seed: Option<Seed<'_>>,
) -> Option<GraphData> {
    let IndexKind::Hnsw { m, ef_construction } = vs.index else {
        return None;
    };
    let params = BuildParams {
        metric: vs.metric,
        m,
        ef_construction,
        parallel: true,
    };
    Some(build_graph_from(
        params,
        &block.vectors[v].data,
        vs.dimension,
        seed,
    ))
}

/// A live graph covering at least this share of its segment's rows is completed and frozen
/// at seal; one further behind (a bulk load outran the indexer) is replaced by a bulk build,
/// which is several times faster per row than hnsw_rs's insertion.
const FREEZE_LIVE_SHARE: f64 = 0.9;

/// The graph a sealing segment's field `v` gets: its live graph completed, or a fresh build.
pub(crate) fn seal(
    live: &LiveGraph,
    vs: &VectorSchema,
    block: &Block,
    v: usize,
) -> Option<GraphData> {
    let column = &block.vectors[v].data;
    if live.indexed() as f64 >= FREEZE_LIVE_SHARE * block.len() as f64 {
        live.catch_up(column, vs.dimension);
        return Some(live.extract(column, vs.dimension));
    }
    build(vs, block, v)
}

/// Writes `data` (complete over `block`) into the file `name` and maps it back.
pub(crate) fn freeze(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    data: &GraphData,
    vs: &VectorSchema,
    block: &Block,
) -> Result<FrozenGraph> {
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

/// A cosine graph's stored inverse norms must be those of the forward store's vectors: the file
/// checks only itself, and wrong norms (a crafted file with recomputed checksums) would skew
/// every walk without a word. Returns the offending row's offset in the norm section.
pub(crate) fn check_norms(
    graph: &FrozenGraph,
    block: &Block,
    v: usize,
) -> Result<(), (u64, String)> {
    let Some(norms) = graph.inv_norms() else {
        return Ok(());
    };
    let column = &block.vectors[v];
    for (r, &stored) in norms.iter().enumerate() {
        let x = column.get(r);
        let n = crate::index::distance::dot(x, x).sqrt();
        let expected = if n > 0.0 { 1.0 / n } else { 0.0 };
        if (stored - expected).abs() > 1e-3 * expected.abs().max(f32::MIN_POSITIVE) {
            return Err((
                0,
                format!("inverse norm of row {r} is {stored}, its vector's is {expected}"),
            ));
        }
    }
    Ok(())
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
        Ok(mapped) => match FrozenGraph::open(mapped, vs.metric, block.len())
            .and_then(|g| check_norms(&g, block, v).map(|()| g))
        {
            Ok(graph) => return Ok((graph, GraphLoad::Mapped)),
            Err((offset, reason)) => format!("{}: {reason} at offset {offset}", path.display()),
        },
        Err(e) => e.to_string(),
    };
    let Some(data) = build(vs, block, v) else {
        return Err(crate::Error::corrupted(
            &path,
            0,
            "graph file for a field without an HNSW index",
        ));
    };
    let graph = if read_only {
        FrozenGraph::open(Mapped::from_bytes(&data.encode()), vs.metric, block.len())
            .map_err(|(offset, reason)| crate::Error::corrupted(&path, offset, reason))?
    } else {
        freeze(storage, dir, name, &data, vs, block)?
    };
    Ok((graph, GraphLoad::Rebuilt { reason: problem }))
}

//! Graph files of sealed segments: at persist the live graph frozen (or, when a bulk load
//! outran it, a bulk build), a bulk build for merged segments, and on open the file mapped
//! (or, when it is missing or damaged, rebuilt).

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::index::builder::{build_graph, build_graph_from, BuildParams, Seed};
use crate::index::frozen::{FrozenGraph, GraphData};
use crate::index::live::LiveGraph;
use crate::index::throttle::Throttle;
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

/// Builds a graph over every row of `vectors` (field `vs`, contiguous) with our builder, in
/// parallel on the current rayon pool. `None` for a field without an HNSW index.
pub(crate) fn build(vs: &VectorSchema, vectors: &[f32]) -> Option<GraphData> {
    let IndexKind::Hnsw { m, ef_construction } = vs.index else {
        return None;
    };
    let params = BuildParams {
        metric: vs.metric,
        m,
        ef_construction,
        parallel: true,
    };
    Some(build_graph(params, vectors, vs.dimension))
}

/// Like [`build`], starting from `seed` (a graph over some of the rows), on as many threads as
/// `throttle` admits (every thread of the pool without one).
pub(crate) fn build_from(
    vs: &VectorSchema,
    vectors: &[f32],
    seed: Option<Seed<'_>>,
    throttle: Option<&Throttle>,
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
        vectors,
        vs.dimension,
        seed,
        throttle,
    ))
}

/// A live graph covering at least this share of its segment's rows is completed and frozen
/// at seal; one further behind (a bulk load outran the indexer) is replaced by a bulk build,
/// which is several times faster per row than hnsw_rs's insertion.
const FREEZE_LIVE_SHARE: f64 = 0.9;

/// A live graph at most this many rows behind is completed and frozen whatever its share: a
/// small segment then gets the same files however far the indexer had got (fault-injection
/// tests count a persist's operations), for at most a fraction of a second of hnsw_rs.
const FREEZE_LIVE_BEHIND: usize = 256;

/// The graph a sealing segment's field `v` gets: its live graph completed, or a fresh build,
/// or — when the live graph is far behind (a bulk load) and the segment has fewer than
/// `min_rows` rows — none yet (`None`). Such a segment is usually one import of a bulk load that `optimize` or
/// a merge will rewrite; its graph is built once writes pause (see [`super::persist::build_deferred`]).
pub(crate) fn seal(
    live: &LiveGraph,
    vs: &VectorSchema,
    vectors: &[f32],
    min_rows: u64,
) -> Option<GraphData> {
    let rows = vectors.len() / vs.dimension.max(1);
    let indexed = live.indexed();
    if indexed as f64 >= FREEZE_LIVE_SHARE * rows as f64
        || rows.saturating_sub(indexed) <= FREEZE_LIVE_BEHIND
    {
        live.catch_up(vectors, vs.dimension);
        return Some(live.extract(vectors, vs.dimension));
    }
    if (rows as u64) < min_rows {
        return None;
    }
    build(vs, vectors)
}

/// Writes `data` (complete over `rows` rows) into the file `name` and maps it back.
pub(crate) fn freeze(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    data: &GraphData,
    vs: &VectorSchema,
    rows: usize,
) -> Result<FrozenGraph> {
    let path = dir.join(name);
    atomic_write(storage, &path, &data.encode())?;
    let mapped = storage.map(&path)?;
    FrozenGraph::open(mapped, vs.metric, rows)
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
    vectors: &[f32],
    dim: usize,
) -> Result<(), (u64, String)> {
    let Some(norms) = graph.inv_norms() else {
        return Ok(());
    };
    for (r, (&stored, x)) in norms
        .iter()
        .zip(vectors.chunks_exact(dim.max(1)))
        .enumerate()
    {
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

/// Maps the graph file `name` of field `vs` over `rows` rows. The graph checks itself; its
/// agreement with the forward store's vectors ([`check_norms`]) is checked on first use.
pub(crate) fn map(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    vs: &VectorSchema,
    rows: usize,
) -> std::result::Result<FrozenGraph, String> {
    let path = dir.join(name);
    match storage.map(&path) {
        Ok(mapped) => FrozenGraph::open(mapped, vs.metric, rows)
            .map_err(|(offset, reason)| format!("{}: {reason} at offset {offset}", path.display())),
        Err(e) => Err(e.to_string()),
    }
}

/// Rebuilds the graph file `name` of field `vs` from `vectors` (rewriting the file unless
/// `read_only`), after `problem` made the file unusable.
pub(crate) fn rebuild(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    vs: &VectorSchema,
    vectors: &[f32],
    read_only: bool,
) -> Result<FrozenGraph> {
    let path = dir.join(name);
    let rows = vectors.len() / vs.dimension.max(1);
    let Some(data) = build(vs, vectors) else {
        return Err(crate::Error::corrupted(
            &path,
            0,
            "graph file for a field without an HNSW index",
        ));
    };
    if read_only {
        FrozenGraph::open(Mapped::from_bytes(&data.encode()), vs.metric, rows)
            .map_err(|(offset, reason)| crate::Error::corrupted(&path, offset, reason))
    } else {
        freeze(storage, dir, name, &data, vs, rows)
    }
}

//! Writing a segment's immutable files: a rotated writing segment at persist, or the live rows
//! of several sealed segments at merge. Files are written to temp names, fsynced and renamed
//! (with their directory fsynced); the caller's manifest commit is what makes them count.

use std::path::Path;
use std::sync::Arc;

use super::columns::{self, ForwardFile};
use super::graphs;
use super::{
    fwd_name, graph_name, segment_dir, Block, DeleteSet, FileMeta, SealedSegment, Segment,
    SegmentMeta, BLOCK,
};
use crate::error::Result;
use crate::index::builder::Seed;
use crate::index::frozen::GraphData;
use crate::index::throttle::Throttle;
use crate::schema::CollectionSchema;
use crate::storage::{atomic_write, Storage};

/// Writes the forward store of `block` as segment `id`, then one frozen graph per HNSW field,
/// built by `graph(v)` (which must cover every row).
fn write_files(
    storage: &dyn Storage,
    dir: &Path,
    schema: &CollectionSchema,
    id: u64,
    block: &Block,
    mut graph: impl FnMut(usize) -> Option<GraphData>,
) -> Result<(SegmentMeta, SealedSegment)> {
    let bytes = columns::encode(block)?;
    let name = fwd_name(id);
    let path = dir.join(&name);
    atomic_write(storage, &path, &bytes)?;
    // Served from the file just written (the page cache), not from the rows in memory.
    let forward = ForwardFile::open(&path, storage.map(&path)?, schema)?.trusted();
    let mut frozen = Vec::with_capacity(schema.vectors.len());
    let mut names = Vec::with_capacity(schema.vectors.len());
    for (v, vs) in schema.vectors.iter().enumerate() {
        let Some(data) = graph(v) else {
            frozen.push(None);
            names.push(None);
            continue;
        };
        let gname = graph_name(id, &vs.name);
        let g = graphs::freeze(storage, dir, &gname, &data, vs, block.len())?;
        frozen.push(Some(g));
        names.push(Some(gname));
    }
    let meta = SegmentMeta {
        id,
        block: BLOCK,
        rows: block.len() as u64,
        file: FileMeta::of_forward(name, &bytes),
        graphs: names,
    };
    let segment = SealedSegment::new(id, forward, frozen);
    // Off the query path already (persist and merge run in the background): the segment's
    // first searches then walk the packed layout.
    segment.pack_graphs(schema);
    Ok((meta, segment))
}

/// Writes `block` — the rows of a sealed segment, all of them (deleted ones too, so that graph
/// row ids keep their meaning), rewritten for a changed schema — as the new segment `id`, with
/// the graphs `graph(v)` gives. The caller's manifest commit makes the new segment count and
/// only then removes the old one: until then both exist, each complete.
pub(crate) fn rewrite(
    storage: &dyn Storage,
    dir: &Path,
    schema: &CollectionSchema,
    id: u64,
    block: &Block,
    graph: impl FnMut(usize) -> Option<GraphData>,
) -> Result<(SegmentMeta, SealedSegment)> {
    storage.create_dir_all(&segment_dir(dir, id))?;
    storage.sync_dir(dir)?;
    write_files(storage, dir, schema, id, block, graph)
}

impl Segment {
    /// Writes this (rotated, no longer written) segment's files, with graphs covering every
    /// row or, below `min_graph_rows`, deferred (see [`graphs::seal`]). `None` when the
    /// segment has no rows.
    pub(crate) fn seal(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        schema: &CollectionSchema,
        min_graph_rows: u64,
    ) -> Result<Option<(SegmentMeta, SealedSegment)>> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        // Deleted rows stay in the persisted block (the graph's row ids are block positions);
        // a merge drops them.
        write_files(storage, dir, schema, self.id, &self.rows, |v| {
            let live = self.graphs.get(v)?.as_ref()?;
            graphs::seal(
                live,
                &schema.vectors[v],
                &self.rows.vectors[v].data,
                min_graph_rows,
            )
        })
        .map(Some)
    }
}

/// Builds the deferred graphs of the sealed segment `meta` describes (`segment`), in place:
/// the graph files are written (temp file, fsync, rename) under the segment's own id, and the
/// returned description names them. Only the caller's manifest commit makes them count: until
/// then the manifest says "deferred" and an open ignores the new files. `None` when no graph
/// was deferred.
pub(crate) fn build_deferred(
    storage: &dyn Storage,
    dir: &Path,
    schema: &CollectionSchema,
    meta: &SegmentMeta,
    segment: &SealedSegment,
    throttle: Option<&Throttle>,
) -> Result<Option<(SegmentMeta, SealedSegment)>> {
    let deferred: Vec<usize> = (0..schema.vectors.len())
        .filter(|&v| segment.defers_graph(v, &schema.vectors[v]))
        .collect();
    if deferred.is_empty() {
        return Ok(None);
    }
    let rows = segment.len();
    let mut names = Vec::with_capacity(schema.vectors.len());
    let mut frozen = Vec::with_capacity(schema.vectors.len());
    for (v, vs) in schema.vectors.iter().enumerate() {
        if !deferred.contains(&v) {
            let name = meta.graph_file(v, vs);
            frozen.push(match &name {
                Some(n) => Some(
                    graphs::map(storage, dir, n, vs, rows)
                        .map_err(|reason| crate::Error::corrupted(dir.join(n), 0, reason))?,
                ),
                None => None,
            });
            names.push(name);
            continue;
        }
        let vectors = segment.forward.vectors(v)?;
        let Some(data) = graphs::build_from(vs, vectors, None, throttle) else {
            frozen.push(None);
            names.push(None);
            continue;
        };
        let name = graph_name(meta.id, &vs.name);
        frozen.push(Some(graphs::freeze(storage, dir, &name, &data, vs, rows)?));
        names.push(Some(name));
    }
    let forward = super::sealed::open_forward(storage, &dir.join(&meta.file.name), meta, schema)?;
    let built = SealedSegment::new(meta.id, forward, frozen);
    built.pack_graphs(schema);
    let meta = SegmentMeta {
        graphs: names,
        ..meta.clone()
    };
    Ok(Some((meta, built)))
}

/// How a merge builds its graphs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MergeGraphs<'a> {
    /// A result with fewer rows, none of whose inputs had a graph, keeps its graphs deferred.
    pub(crate) min_rows: u64,
    /// The threads the build may use (every thread of the pool without one).
    pub(crate) throttle: Option<&'a Throttle>,
}

/// Rewrites the rows of `inputs` that are not in `dropped` as the new segment `id`, with
/// graphs built from its largest intact input's — unless the result is small and no input
/// had a graph (see [`MergeGraphs`]): its graphs stay deferred. `None` when no row survives.
pub(crate) fn merge(
    storage: &dyn Storage,
    dir: &Path,
    schema: &CollectionSchema,
    id: u64,
    inputs: &[Arc<SealedSegment>],
    dropped: &DeleteSet,
    graph_build: MergeGraphs<'_>,
) -> Result<Option<(SegmentMeta, SealedSegment)>> {
    let MergeGraphs {
        min_rows: min_graph_rows,
        throttle,
    } = graph_build;
    let views = inputs
        .iter()
        .map(|s| s.rows())
        .collect::<Result<Vec<_>>>()?;
    let mut rows: Vec<(u64, usize, usize)> = views
        .iter()
        .enumerate()
        .flat_map(|(s, view)| {
            view.doc_ids
                .iter()
                .enumerate()
                .filter(|(_, &d)| !dropped.contains(d))
                .map(move |(i, &d)| (d, s, i))
        })
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    rows.sort_unstable_by_key(|(d, _, _)| *d);
    let intact: Vec<bool> = views
        .iter()
        .map(|view| view.len() > 1 && !view.doc_ids.iter().any(|&d| dropped.contains(d)))
        .collect();
    let origins: Vec<usize> = rows.iter().map(|&(_, s, _)| s).collect();
    let mut merged = Block::new(schema);
    merged.reserve(rows.len());
    for (d, s, i) in rows {
        merged.push(d, views[s].row(i, schema)?);
    }
    storage.create_dir_all(&segment_dir(dir, id))?;
    storage.sync_dir(dir)?;
    let mut built: Vec<Option<GraphData>> = Vec::with_capacity(schema.vectors.len());
    for (v, vs) in schema.vectors.iter().enumerate() {
        // A merge of deferred graphs stays deferred while it is small; one that had a graph
        // keeps one (rebuilding it later would cost more than carrying it now).
        let had_graph = inputs.iter().any(|s| s.stored_graph(v).is_some());
        if (merged.len() as u64) < min_graph_rows && !had_graph {
            built.push(None);
            continue;
        }
        // The build starts from the graph of the largest input none of whose rows is
        // dropped: its rows keep their links and only the others are inserted (a bulk load
        // merged by `optimize` after ten imports: 60 % of the rows, when the policy merged
        // six already).
        let base = (0..inputs.len())
            .filter(|&s| intact[s] && inputs[s].stored_graph(v).is_some())
            .max_by_key(|&s| views[s].len());
        let seed_graph = base.and_then(|b| inputs[b].stored_graph(v).map(|g| g.to_data()));
        let positions: Vec<u32> = match base {
            Some(b) => (0..origins.len() as u32)
                .filter(|&at| origins[at as usize] == b)
                .collect(),
            None => Vec::new(),
        };
        let seed = seed_graph.as_ref().map(|graph| Seed {
            graph,
            positions: &positions,
        });
        built.push(graphs::build_from(
            vs,
            &merged.vectors[v].data,
            seed,
            throttle,
        ));
    }
    write_files(storage, dir, schema, id, &merged, |v| built[v].take()).map(Some)
}

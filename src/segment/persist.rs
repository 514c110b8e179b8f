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
    /// row (see [`graphs::seal`]). `None` when the segment has no rows.
    pub(crate) fn seal(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        schema: &CollectionSchema,
    ) -> Result<Option<(SegmentMeta, SealedSegment)>> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        // Deleted rows stay in the persisted block (the graph's row ids are block positions);
        // a merge drops them.
        write_files(storage, dir, schema, self.id, &self.rows, |v| {
            let live = self.graphs.get(v)?.as_ref()?;
            graphs::seal(live, &schema.vectors[v], &self.rows.vectors[v].data)
        })
        .map(Some)
    }
}

/// Rewrites the rows of `inputs` that are not in `dropped` as the new segment `id`, with
/// graphs built from its largest intact input's (on the threads `throttle` admits). `None`
/// when no row survives.
pub(crate) fn merge(
    storage: &dyn Storage,
    dir: &Path,
    schema: &CollectionSchema,
    id: u64,
    inputs: &[Arc<SealedSegment>],
    dropped: &DeleteSet,
    throttle: Option<&Throttle>,
) -> Result<Option<(SegmentMeta, SealedSegment)>> {
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
    // The build starts from the graphs of the largest input none of whose rows is dropped:
    // its rows keep their links and only the others are inserted (a bulk load merged by
    // `optimize` after ten imports: 60 % of the rows, when the policy merged six already).
    let mut base: Option<usize> = None;
    for (s, view) in views.iter().enumerate() {
        let intact = view.len() > 1 && !view.doc_ids.iter().any(|&d| dropped.contains(d));
        if intact && base.is_none_or(|b| views[b].len() < view.len()) {
            base = Some(s);
        }
    }
    let mut positions: Vec<u32> = Vec::new();
    let mut merged = Block::new(schema);
    merged.reserve(rows.len());
    for (at, (d, s, i)) in rows.into_iter().enumerate() {
        if base == Some(s) {
            positions.push(at as u32);
        }
        merged.push(d, views[s].row(i, schema)?);
    }
    storage.create_dir_all(&segment_dir(dir, id))?;
    storage.sync_dir(dir)?;
    let mut built: Vec<Option<GraphData>> = (0..schema.vectors.len())
        .map(|v| {
            let seed_graph = base.and_then(|b| inputs[b].stored_graph(v).map(|g| g.to_data()));
            let seed = seed_graph.as_ref().map(|graph| Seed {
                graph,
                positions: &positions,
            });
            graphs::build_from(&schema.vectors[v], &merged.vectors[v].data, seed, throttle)
        })
        .collect();
    write_files(storage, dir, schema, id, &merged, |v| built[v].take()).map(Some)
}

//! `Collection::stats`: counts that describe a collection now, read under the state's read lock.

use std::sync::atomic::Ordering;

use super::Collection;
use crate::segment::GraphLoad;

/// Counts that describe a collection now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionStats {
    /// Live documents.
    pub doc_count: u64,
    /// Sealed (persisted) segments.
    pub segments: usize,
    /// Rows in the writing segment, in memory and in its WAL.
    pub writing_rows: usize,
    /// Rotated segments waiting in memory for their background persist.
    pub sealing_segments: usize,
    /// Rows of the writing segment not yet in its live graphs (scored exactly meanwhile).
    pub unindexed: u64,
    /// The last write visible to readers: every write up to it, none after it.
    pub visible_seq: u64,
    /// Stored rows that are deleted or superseded (dropped by `optimize`).
    pub deleted: u64,
    /// Size of the writing segment's WAL.
    pub wal_bytes: u64,
    /// N of the current `manifest.<N>`.
    pub manifest_version: u64,
    /// Per vector field with an HNSW index, how its graphs stand.
    pub graphs: Vec<GraphStats>,
    /// Per sealed segment, its rows and memory.
    pub sealed: Vec<SegmentStats>,
}

/// One sealed segment's rows and memory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentStats {
    /// The segment id (its directory name).
    pub id: u64,
    /// Rows stored (live, deleted and superseded).
    pub rows: u64,
    /// Bytes of its files served from memory maps (the page cache holds what is used).
    pub mapped_bytes: u64,
    /// Bytes it holds in process memory: decoded scalar columns, inverted indexes, graphs'
    /// layer 0 packed for search (one byte per dimension plus the neighbour list, per row),
    /// and files of an older layout or a read-only rebuild that are not mapped.
    pub resident_bytes: u64,
}

/// How the graphs of one vector field stand.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphStats {
    /// The vector field.
    pub field: String,
    /// Rows reachable through a graph (the rest are scored exactly).
    pub rows_covered: u64,
    /// Rows of sealed segments whose graph is deferred (see
    /// [`crate::CollectionOptions::min_graph_rows`]), scored exactly until it is built.
    pub rows_deferred: u64,
    /// Sealed-segment graphs memory-mapped from their files.
    pub mapped: usize,
    /// Sealed-segment graphs held in memory (rebuilt by a read-only open).
    pub in_memory: usize,
    /// Graphs rebuilt at open because their file was missing or damaged.
    pub rebuilt_at_open: usize,
    /// Bytes of frozen graph data (adjacency and norms; vectors are not duplicated).
    pub frozen_bytes: u64,
}

impl Collection {
    /// Counts that describe the collection now.
    pub fn stats(&self) -> CollectionStats {
        let inner = &*self.inner;
        let st = inner.state.read();
        let schema = st.schema.clone();
        let graphs = schema
            .vectors
            .iter()
            .enumerate()
            .filter(|(_, vs)| !matches!(vs.index, crate::schema::IndexKind::Flat))
            .map(|(v, vs)| {
                let frozen: Vec<_> = st
                    .sealed
                    .iter()
                    .filter_map(|s| s.stored_graph(v).map(|g| (s, g)))
                    .collect();
                let live_covered: u64 = st
                    .sealing
                    .iter()
                    .map(|s| &s.segment)
                    .chain(std::iter::once(&st.writing))
                    .filter_map(|s| s.graphs.get(v)?.as_ref())
                    .map(|g| g.indexed() as u64)
                    .sum();
                GraphStats {
                    field: vs.name.clone(),
                    rows_covered: frozen.iter().map(|(s, _)| s.len() as u64).sum::<u64>()
                        + live_covered,
                    rows_deferred: st
                        .sealed
                        .iter()
                        .filter(|s| s.defers_graph(v, vs))
                        .map(|s| s.len() as u64)
                        .sum(),
                    mapped: frozen.iter().filter(|(_, g)| g.is_mapped()).count(),
                    in_memory: frozen.iter().filter(|(_, g)| !g.is_mapped()).count()
                        + st.sealed.iter().map(|s| s.repaired_graphs()).sum::<usize>(),
                    rebuilt_at_open: inner
                        .report
                        .graphs
                        .iter()
                        .filter(|(_, f, load)| {
                            *f == vs.name && matches!(load, GraphLoad::Rebuilt { .. })
                        })
                        .count(),
                    frozen_bytes: frozen.iter().map(|(_, g)| g.byte_len() as u64).sum(),
                }
            })
            .collect();
        // A damaged segment file (which every read of it reports) leaves an estimate here.
        let doc_count = st
            .live_docs()
            .unwrap_or_else(|_| st.stored_rows().saturating_sub(st.ids.deleted.len()));
        let sealed = st
            .sealed
            .iter()
            .map(|s| {
                let (mapped_bytes, resident_bytes) = s.memory();
                SegmentStats {
                    id: s.id,
                    rows: s.len() as u64,
                    mapped_bytes,
                    resident_bytes,
                }
            })
            .collect();
        CollectionStats {
            graphs,
            sealed,
            doc_count,
            segments: st.sealed.len(),
            writing_rows: st.writing.rows.len(),
            sealing_segments: st.sealing.len(),
            unindexed: st.writing.unindexed() as u64,
            visible_seq: st.visible_seq,
            deleted: st.stored_rows().saturating_sub(doc_count),
            // A read-only handle replays the WAL without opening it for writes.
            wal_bytes: st.writing.wal().map_or_else(
                || inner.report.wal.as_ref().map_or(0, |r| r.bytes),
                |wal| wal.len(),
            ),
            manifest_version: inner.manifest_version.load(Ordering::Acquire),
        }
    }
}

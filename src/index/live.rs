//! The live graph of the writing segment: an hnsw_rs index fed as rows arrive, searchable
//! while it grows, and extracted into a [`GraphData`] when the segment is persisted.

use std::sync::atomic::{AtomicUsize, Ordering};

use hnsw_rs::prelude::Hnsw;
use parking_lot::Mutex;

use super::distance::{normalized, GraphDistance};
use super::frozen::{GraphData, Layer};
use super::reach::connect_orphans;
use crate::schema::Metric;

/// hnsw_rs clamps the layer count to 16.
const MAX_LAYERS: usize = 16;

pub(crate) struct LiveGraph {
    hnsw: Hnsw<'static, f32, GraphDistance>,
    metric: Metric,
    /// Rows `0..indexed` of the block are in the graph.
    indexed: AtomicUsize,
    /// Held while rows are added, so that two threads catching up never add a row twice.
    adding: Mutex<()>,
}

impl std::fmt::Debug for LiveGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveGraph")
            .field("metric", &self.metric)
            .field("indexed", &self.indexed())
            .finish()
    }
}

impl LiveGraph {
    pub(crate) fn new(metric: Metric, m: usize, ef_construction: usize, capacity: usize) -> Self {
        LiveGraph {
            hnsw: Hnsw::new(
                m,
                capacity.max(1024),
                MAX_LAYERS,
                ef_construction,
                GraphDistance(metric),
            ),
            metric,
            indexed: AtomicUsize::new(0),
            adding: Mutex::new(()),
        }
    }

    /// Rows `0..indexed()` are searchable through the graph.
    pub(crate) fn indexed(&self) -> usize {
        self.indexed.load(Ordering::Acquire)
    }

    /// What the graph stores for a vector: cosine graphs hold unit vectors.
    fn prepare<'a>(&self, v: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        if self.metric == Metric::Cosine {
            std::borrow::Cow::Owned(normalized(v))
        } else {
            std::borrow::Cow::Borrowed(v)
        }
    }

    /// Adds rows `indexed()..column.len()/dim` of `column` (the block's whole column), in
    /// parallel: for bulk work whose graph is frozen afterwards (the freeze links back any row
    /// hnsw_rs's parallel insertion left unreachable).
    pub(crate) fn catch_up(&self, column: &[f32], dim: usize) {
        let from = self.indexed();
        self.add_rows(from, column.get(from * dim..).unwrap_or(&[]), dim, true);
    }

    /// Adds rows `first..first + vectors.len() / dim`, whose vectors are given contiguously
    /// (with `parallel`, on the current rayon pool). Rows already in the graph are skipped, and
    /// rows must be added in order: a gap (`first > indexed()`) adds nothing. A graph that is
    /// searched as it is (the writing segment's) is fed one row at a time: hnsw_rs's parallel
    /// insertion can leave rows no search reaches.
    pub(crate) fn add_rows(&self, first: usize, vectors: &[f32], dim: usize, parallel: bool) {
        if dim == 0 {
            return;
        }
        let _adding = self.adding.lock();
        let from = self.indexed();
        let to = first + vectors.len() / dim;
        if first > from || from >= to {
            return;
        }
        let prepared: Vec<std::borrow::Cow<'_, [f32]>> = (from..to)
            .map(|r| self.prepare(&vectors[(r - first) * dim..(r - first + 1) * dim]))
            .collect();
        if !parallel || to - from == 1 {
            for (i, v) in prepared.iter().enumerate() {
                self.hnsw.insert_slice((v, from + i));
            }
        } else {
            let items: Vec<(&[f32], usize)> = prepared
                .iter()
                .enumerate()
                .map(|(i, v)| (&v[..], from + i))
                .collect();
            self.hnsw.parallel_insert_slice(&items);
        }
        self.indexed.store(to, Ordering::Release);
    }

    /// The `k` best accepted rows among the indexed ones: `(graph distance, row)`.
    ///
    /// hnsw_rs never stops a filtered walk early, so the walk first runs unfiltered, asking
    /// for a few extra rows to make up for rejected ones, and only falls back to the filtered
    /// walk when that does not yield `k` accepted rows.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<(f32, u32)> {
        if self.indexed() == 0 {
            return Vec::new();
        }
        let q = self.prepare(query);
        let ask = k + k.div_ceil(2);
        let found: Vec<(f32, u32)> = self
            .hnsw
            .search(&q, ask, ef.max(ask))
            .into_iter()
            .map(|n| (n.distance, n.d_id as u32))
            .filter(|&(_, r)| accept(r))
            .take(k)
            .collect();
        if found.len() >= k.min(self.indexed()) {
            return found;
        }
        let filter = |id: &usize| accept(*id as u32);
        self.hnsw
            .search_filter(&q, k, ef.max(k), Some(&filter))
            .into_iter()
            .map(|n| (n.distance, n.d_id as u32))
            .collect()
    }

    /// The graph in our own compact form. `column` supplies the norms for cosine.
    pub(crate) fn extract(&self, column: &[f32], dim: usize) -> GraphData {
        let rows = self.indexed();
        let indexation = self.hnsw.get_point_indexation();
        let mut levels = vec![0u8; rows];
        let mut neighborhoods: Vec<Vec<Vec<u32>>> = vec![Vec::new(); rows];
        let mut entry = u32::MAX;
        let mut top = 0u8;
        for point in indexation {
            let row = point.get_origin_id();
            if row >= rows {
                continue;
            }
            let level = point.get_point_id().0;
            levels[row] = level;
            // The entry point: the smallest row on the top layer, so extraction is deterministic.
            if level > top || (level == top && (row as u32) < entry) {
                top = level;
                entry = row as u32;
            }
            neighborhoods[row] = point
                .get_neighborhood_id()
                .into_iter()
                .map(|layer| {
                    layer
                        .into_iter()
                        .map(|n| n.d_id as u32)
                        .filter(|&r| (r as usize) < rows)
                        .collect()
                })
                .collect();
        }
        if (entry as usize) < rows {
            let mut layer0: Vec<Vec<u32>> = neighborhoods
                .iter_mut()
                .map(|h| h.first_mut().map(std::mem::take).unwrap_or_default())
                .collect();
            connect_orphans(
                &mut layer0,
                entry as usize,
                2 * usize::from(self.hnsw.get_max_nb_connection()),
            );
            for (hood, links) in neighborhoods.iter_mut().zip(layer0) {
                match hood.first_mut() {
                    Some(first) => *first = links,
                    None if !links.is_empty() => hood.push(links),
                    None => {}
                }
            }
        }
        let mut layers = Vec::with_capacity(top as usize + 1);
        for l in 0..=top as usize {
            let mut layer = Layer {
                offsets: vec![0],
                ..Layer::default()
            };
            for (row, hood) in neighborhoods.iter().enumerate() {
                if l > 0 {
                    if (levels[row] as usize) < l {
                        continue;
                    }
                    layer.members.push(row as u32);
                }
                if let Some(nbs) = hood.get(l) {
                    layer.neighbors.extend_from_slice(nbs);
                }
                layer.offsets.push(layer.neighbors.len() as u32);
            }
            layers.push(layer);
        }
        let inv_norms = if self.metric == Metric::Cosine {
            (0..rows)
                .map(|r| {
                    let v = &column[r * dim..(r + 1) * dim];
                    let n = super::distance::dot(v, v).sqrt();
                    if n > 0.0 {
                        1.0 / n
                    } else {
                        0.0
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        GraphData {
            metric: self.metric,
            rows: rows as u32,
            entry: if rows == 0 { 0 } else { entry },
            layers,
            inv_norms,
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::index::frozen::FrozenGraph;
    use crate::storage::Mapped;

    /// Deterministic pseudo-random vectors in clusters, like embeddings.
    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let centers: Vec<f32> = (0..16 * dim).map(|_| next() * 4.0).collect();
        (0..n)
            .flat_map(|i| {
                let c = (i % 16) * dim;
                (0..dim)
                    .map(|d| centers[c + d] + next())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn exact(data: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<u32> {
        let mut all: Vec<(f32, u32)> = data
            .chunks(dim)
            .enumerate()
            .map(|(r, v)| {
                (
                    v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(),
                    r as u32,
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.into_iter().take(k).map(|(_, r)| r).collect()
    }

    fn recall(found: &[(f32, u32)], truth: &[u32]) -> f64 {
        found.iter().filter(|(_, r)| truth.contains(r)).count() as f64 / truth.len() as f64
    }

    /// The frozen copy of a live graph (what a sealed segment serves) finds what the live graph
    /// finds, and every row of it is reachable (it finds itself first).
    #[test]
    fn frozen_graph_matches_the_live_graph_it_was_extracted_from() {
        let (n, dim, k) = (3000, 16, 10);
        let data = vectors(n, dim, 7);
        let live = LiveGraph::new(Metric::L2, 8, 100, n);
        live.add_rows(0, &data[..1000 * dim], dim, false);
        live.catch_up(&data, dim);
        assert_eq!(live.indexed(), n);
        let bytes = live.extract(&data, dim).encode();
        let frozen = match FrozenGraph::open(Mapped::from_bytes(&bytes), Metric::L2, n) {
            Ok(g) => g,
            Err((offset, reason)) => panic!("extracted graph does not open: {reason} at {offset}"),
        };
        let all = |_: u32| true;
        let (mut live_recall, mut frozen_recall) = (0.0, 0.0);
        let queries = vectors(100, dim, 99);
        for q in queries.chunks(dim) {
            let truth = exact(&data, dim, q, k);
            live_recall += recall(&live.search(q, k, 128, &all), &truth);
            frozen_recall += recall(&frozen.search(&data, dim, q, k, 128, None), &truth);
        }
        let (live_recall, frozen_recall) = (live_recall / 100.0, frozen_recall / 100.0);
        // hnsw_rs's parallel insertion is not deterministic: the bounds leave room for that,
        // and the frozen copy (with its unreachable rows linked back) is never worse.
        assert!(live_recall >= 0.85, "live recall {live_recall}");
        assert!(
            frozen_recall >= live_recall - 0.03,
            "live {live_recall} vs frozen {frozen_recall}"
        );
        for r in (0..n).step_by(7) {
            let v = &data[r * dim..(r + 1) * dim];
            let hits = frozen.search(&data, dim, v, 1, 2 * n, None);
            assert_eq!(
                hits.first().map(|h| h.1),
                Some(r as u32),
                "row {r} unreachable"
            );
        }
    }
}

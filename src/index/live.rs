//! The live graph of the writing segment: an hnsw_rs index fed as rows arrive, searchable
//! while it grows, and extracted into a [`GraphData`] when the segment is persisted.

use std::sync::atomic::{AtomicUsize, Ordering};

use hnsw_rs::prelude::Hnsw;

use super::distance::{normalized, GraphDistance};
use super::frozen::{GraphData, Layer};
use crate::schema::Metric;

/// hnsw_rs clamps the layer count to 16.
const MAX_LAYERS: usize = 16;

pub(crate) struct LiveGraph {
    hnsw: Hnsw<'static, f32, GraphDistance>,
    metric: Metric,
    /// Rows `0..indexed` of the block are in the graph.
    indexed: AtomicUsize,
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

    /// Adds rows `indexed()..column.len()/dim` of `column` (in parallel for many rows).
    /// Only the writer calls this, so the rows are added once each.
    pub(crate) fn catch_up(&self, column: &[f32], dim: usize) {
        let from = self.indexed();
        let to = column.len() / dim;
        if from >= to {
            return;
        }
        let prepared: Vec<std::borrow::Cow<'_, [f32]>> = (from..to)
            .map(|r| self.prepare(&column[r * dim..(r + 1) * dim]))
            .collect();
        if to - from == 1 {
            self.hnsw.insert_slice((&prepared[0], from));
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

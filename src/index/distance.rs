//! Distance kernels. Written as eight independent accumulators so the compiler vectorises them
//! on any target without CPU-specific code (no SIGILL on machines without AVX-512).

use crate::schema::Metric;

const LANES: usize = 8;

/// Inner product.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Squared Euclidean distance.
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A query prepared for scoring under a metric (its norm computed once).
#[derive(Debug, Clone)]
pub(crate) struct Scorer<'q> {
    metric: Metric,
    query: &'q [f32],
    query_norm: f32,
}

impl<'q> Scorer<'q> {
    pub(crate) fn new(metric: Metric, query: &'q [f32]) -> Self {
        Scorer {
            metric,
            query,
            query_norm: dot(query, query).sqrt(),
        }
    }

    /// zvec's score: L2 squared distance, IP dot product, Cosine `1 − cos` (a zero vector has
    /// cosine distance 1).
    pub(crate) fn score(&self, v: &[f32]) -> f32 {
        match self.metric {
            Metric::L2 => l2_squared(self.query, v),
            Metric::Ip => dot(self.query, v),
            Metric::Cosine => {
                let denom = self.query_norm * dot(v, v).sqrt();
                if denom > 0.0 {
                    1.0 - dot(self.query, v) / denom
                } else {
                    1.0
                }
            }
        }
    }

    /// Orders scores so that smaller is always better.
    pub(crate) fn rank_key(&self, score: f32) -> f32 {
        if self.metric.higher_is_better() {
            -score
        } else {
            score
        }
    }
}

//! Merging the hits of several vector routes into one ranking (zvec's rerankers).

use std::collections::HashMap;

use crate::doc::Doc;
use crate::schema::Metric;

/// How a multi-vector query merges its routes.
#[derive(Debug, Clone, PartialEq)]
pub enum ReRanker {
    /// Reciprocal rank fusion: `score = Σ 1 / (rank_constant + rank + 1)`, rank 0-based.
    Rrf {
        /// zvec's default is 60.
        rank_constant: f32,
    },
    /// Weighted sum of per-route normalised scores: L2 `1 − 2·atan(d)/π`, cosine `1 − d/2`,
    /// IP `0.5 + atan(s)/π`. One weight per route.
    Weighted {
        /// One weight per route, in route order.
        weights: Vec<f32>,
    },
}

impl ReRanker {
    /// RRF with zvec's default rank constant 60.
    pub fn rrf() -> Self {
        ReRanker::Rrf {
            rank_constant: 60.0,
        }
    }
}

/// zvec's per-metric normalisation of a score into [0, 1], higher is better.
pub(crate) fn normalise(metric: Metric, score: f32) -> f32 {
    use std::f32::consts::PI;
    match metric {
        Metric::L2 => 1.0 - 2.0 * score.atan() / PI,
        Metric::Cosine => 1.0 - score / 2.0,
        Metric::Ip => 0.5 + score.atan() / PI,
    }
}

/// Fuses routes (each best first, with its metric) into the best `topk`, highest fused score
/// first, ties by primary key. The fused score replaces each document's score.
pub(crate) fn fuse(routes: Vec<(Metric, Vec<Doc>)>, reranker: &ReRanker, topk: usize) -> Vec<Doc> {
    let mut fused: HashMap<String, (f32, Doc)> = HashMap::new();
    for (r, (metric, hits)) in routes.into_iter().enumerate() {
        for (rank, doc) in hits.into_iter().enumerate() {
            let contribution = match reranker {
                ReRanker::Rrf { rank_constant } => 1.0 / (rank_constant + rank as f32 + 1.0),
                ReRanker::Weighted { weights } => {
                    weights.get(r).copied().unwrap_or(0.0) * normalise(metric, doc.score)
                }
            };
            let entry = fused.entry(doc.pk.clone()).or_insert_with(|| (0.0, doc));
            entry.0 += contribution;
        }
    }
    let mut out: Vec<Doc> = fused
        .into_values()
        .map(|(score, mut doc)| {
            doc.score = score;
            doc
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.pk.cmp(&b.pk)));
    out.truncate(topk);
    out
}

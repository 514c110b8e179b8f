//! Exact search: score every live row of every block, keep the best `k`.

use rayon::prelude::*;

use crate::collection::state::State;
use crate::index::distance::Scorer;
use crate::query::Filter;
use crate::schema::Metric;
use crate::segment::Block;

/// A scored row: `(rank key, score, block number, row)`; smaller keys are better.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub(crate) key: f32,
    pub(crate) score: f32,
    pub(crate) block: usize,
    pub(crate) row: usize,
}

/// Orders hits best first, ties broken by primary key so results are deterministic.
pub(crate) fn sort_hits(hits: &mut [Hit], blocks: &[&Block]) {
    hits.sort_unstable_by(|a, b| {
        a.key
            .total_cmp(&b.key)
            .then_with(|| blocks[a.block].pks[a.row].cmp(&blocks[b.block].pks[b.row]))
    });
}

/// The best `k` live rows for `query` in vector field `field`, best first.
pub(crate) fn search<'s>(
    state: &'s State,
    field: usize,
    metric: Metric,
    query: &[f32],
    k: usize,
    filter: Option<&Filter>,
) -> (Vec<Hit>, Vec<&'s Block>) {
    let blocks: Vec<&Block> = state.blocks().collect();
    let scorer = Scorer::new(metric, query);
    let per_block: Vec<Vec<Hit>> = blocks
        .par_iter()
        .enumerate()
        .map(|(b, block)| {
            let column = &block.vectors[field];
            let mut hits: Vec<Hit> = (0..block.len())
                .filter(|&i| !state.deleted.contains(block.doc_ids[i]) && matches(filter, block, i))
                .map(|i| {
                    let score = scorer.score(column.get(i));
                    Hit {
                        key: scorer.rank_key(score),
                        score,
                        block: b,
                        row: i,
                    }
                })
                .filter(|h| !h.key.is_nan())
                .collect();
            if hits.len() > k {
                // Keep everything that ties with the k-th key so pk tie-breaking stays exact.
                hits.select_nth_unstable_by(k - 1, |a, b| a.key.total_cmp(&b.key));
                let kth = hits[k - 1].key;
                hits.retain(|h| h.key <= kth);
            }
            hits
        })
        .collect();
    let mut all: Vec<Hit> = per_block.into_iter().flatten().collect();
    sort_hits(&mut all, &blocks);
    all.truncate(k);
    (all, blocks)
}

/// Whether row `i` of `block` passes the filter (always, without one).
pub(crate) fn matches(filter: Option<&Filter>, block: &Block, i: usize) -> bool {
    filter.is_none_or(|f| f.matches(|field| &block.fields[field][i]))
}

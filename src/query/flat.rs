//! Scored hits and their ordering, shared by exact and graph search.

use crate::query::Filter;
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

/// Whether row `i` of `block` passes the filter (always, without one).
pub(crate) fn matches(filter: Option<&Filter>, block: &Block, i: usize) -> bool {
    filter.is_none_or(|f| f.matches(|field| &block.fields[field][i]))
}

/// The hits that can be among the best `k`: the `k` smallest keys, plus every hit tying with
/// the `k`-th, so that tie-breaking by primary key after merging stays exact.
pub(crate) fn top_k(mut hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    if hits.len() > k && k > 0 {
        hits.select_nth_unstable_by(k - 1, |a, b| a.key.total_cmp(&b.key));
        let kth = hits[k - 1].key;
        hits.retain(|h| h.key <= kth);
    }
    hits
}

//! Scored hits and their ordering, shared by exact and graph search.

use crate::query::Filter;
use crate::segment::{Columns, Rows};

/// A scored row: `(rank key, score, block number, row)`; smaller keys are better.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub(crate) key: f32,
    pub(crate) score: f32,
    pub(crate) block: usize,
    pub(crate) row: usize,
}

/// Orders hits best first, ties broken by primary key so results are deterministic.
pub(crate) fn sort_hits(hits: &mut [Hit], rows: &[Rows<'_>]) {
    hits.sort_unstable_by(|a, b| {
        a.key
            .total_cmp(&b.key)
            .then_with(|| rows[a.block].pk(a.row).cmp(rows[b.block].pk(b.row)))
    });
}

/// Whether row `i` passes the filter (always, without one); `columns` hold the filter's fields.
pub(crate) fn matches(filter: Option<&Filter>, columns: &Columns<'_>, i: usize) -> bool {
    filter.is_none_or(|f| f.matches(|field| columns.get(field, i)))
}

/// The columns `filter` reads from `rows` (none without a filter).
pub(crate) fn filter_columns<'a>(
    filter: Option<&Filter>,
    rows: &Rows<'a>,
) -> crate::Result<Columns<'a>> {
    rows.columns(filter.map_or(&[][..], |f| f.fields()))
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

//! The per-segment planner: graph search when it pays, exact scoring when few rows can match,
//! and a guarantee of `min(k, live matching rows)` hits either way.

use rayon::prelude::*;

use super::flat::{matches, sort_hits, top_k, Hit};
use super::Filter;
use crate::collection::state::State;
use crate::index::distance::Scorer;
use crate::index::frozen::FrozenGraph;
use crate::index::live::LiveGraph;
use crate::schema::VectorSchema;
use crate::segment::{Block, Segment};

/// The default beam width of graph search.
pub const DEFAULT_EF: usize = 64;

/// Rows sampled to estimate a filter's selectivity before deciding whether to scan.
const SAMPLE: usize = 1024;

/// Whether scoring `matching` rows exactly is cheaper than a filtered graph walk over `rows`.
///
/// Exact search computes one distance per matching row. A filtered walk computes about
/// `ef × links` distances per accepted row it needs, and meets one accepted row in every
/// `rows / matching` it visits: `ef × links × rows / matching`. Exact wins while
/// `matching² ≤ ef × links × rows` (at 100k rows, ef 64, m 16: up to ~14k matching rows).
fn exact_is_cheaper(matching: usize, rows: usize, ef: usize, links: usize) -> bool {
    let m = matching as u128;
    m <= ef as u128 * 16 || m * m <= (ef * links) as u128 * rows as u128
}

enum Graph<'a> {
    Frozen(&'a FrozenGraph),
    Live(&'a LiveGraph),
}

/// The best `k` live rows passing `filter` in vector field `v`, over every segment in parallel.
pub(crate) fn search<'s>(
    state: &'s State,
    v: usize,
    vs: &VectorSchema,
    query: &[f32],
    k: usize,
    ef: Option<usize>,
    filter: Option<&Filter>,
) -> (Vec<Hit>, Vec<&'s Block>) {
    let mut parts: Vec<(&Block, Option<Graph<'_>>, Option<&Segment>)> = state
        .sealed
        .iter()
        .map(|s| {
            let graph = s.graphs.get(v).and_then(Option::as_ref).map(Graph::Frozen);
            (&s.block, graph, Some(&**s))
        })
        .collect();
    let live = state.live_graphs.get(v).and_then(Option::as_ref);
    parts.push((&state.writing, live.map(Graph::Live), None));
    // An equality or IN conjunct on a field with an inverted index narrows sealed segments to
    // its posting lists; every candidate is still checked against the whole filter.
    let indexed_terms = filter.and_then(|f| {
        f.equality_conjuncts()
            .iter()
            .find(|(i, _)| {
                state
                    .schema
                    .fields
                    .get(*i)
                    .is_some_and(|fs| fs.index.is_some())
            })
            .cloned()
    });
    let ef = ef.unwrap_or(DEFAULT_EF).max(k);
    let links = match vs.index {
        crate::schema::IndexKind::Hnsw { m, .. } => 2 * m,
        crate::schema::IndexKind::Flat => 0,
    };
    let scorer = Scorer::new(vs.metric, query);
    let search_part = |b: usize,
                       part: &(&Block, Option<Graph<'_>>, Option<&Segment>)|
     -> Vec<Hit> {
        let (block, graph, segment) = part;
        let accept = |row: u32| {
            let i = row as usize;
            !state.deleted.contains(block.doc_ids[i]) && matches(filter, block, i)
        };
        let column = &block.vectors[v];
        // Cosine over a frozen graph: its stored inverse norms save a dot product per row. The
        // few best by that key are then re-scored exactly, so scores and order equal exact
        // search (the margin absorbs rounding differences between the two forms).
        let inv_norms = match graph {
            Some(Graph::Frozen(f)) => f.inv_norms(),
            _ => None,
        };
        let q_inv = 1.0
            / crate::index::distance::dot(query, query)
                .sqrt()
                .max(f32::MIN_POSITIVE);
        let exact = |rows: &mut dyn Iterator<Item = u32>| {
            let exact_hit = |r: u32| {
                let score = scorer.score(column.get(r as usize));
                Hit {
                    key: scorer.rank_key(score),
                    score,
                    block: b,
                    row: r as usize,
                }
            };
            match inv_norms {
                Some(inv) => {
                    let approx = rows.map(|r| {
                        let d = crate::index::distance::dot(query, column.get(r as usize));
                        let key = 1.0 - d * q_inv * inv[r as usize];
                        Hit {
                            key,
                            score: key,
                            block: b,
                            row: r as usize,
                        }
                    });
                    let shortlist = top_k(approx.collect(), k + 8);
                    top_k(
                        shortlist
                            .into_iter()
                            .map(|h| exact_hit(h.row as u32))
                            .collect(),
                        k,
                    )
                }
                None => top_k(rows.map(exact_hit).collect(), k),
            }
        };
        let (indexed, found) = match graph {
            None => {
                return match candidates(*segment, block, indexed_terms.as_ref()) {
                    Some(rows) => exact(&mut rows.into_iter().filter(|&r| accept(r))),
                    None => exact(&mut (0..block.len() as u32).filter(|&r| accept(r))),
                }
            }
            Some(g) => {
                let indexed = match g {
                    Graph::Frozen(_) => block.len(),
                    Graph::Live(l) => l.indexed().min(block.len()),
                };
                let tail = indexed as u32..block.len() as u32;
                let mut matching: Option<Vec<u32>> = None;
                if filter.is_some() {
                    let posted = candidates(*segment, block, indexed_terms.as_ref());
                    // Without posting lists, a sample tells whether a full scan can pay off:
                    // a filter matching most rows goes straight to the graph.
                    let worth_scanning = posted.is_some() || {
                        let step = (indexed / SAMPLE).max(1);
                        let hits = (0..indexed)
                            .step_by(step)
                            .filter(|&r| accept(r as u32))
                            .count();
                        let estimate = hits * step;
                        exact_is_cheaper(estimate / 2, indexed, ef, links)
                    };
                    if worth_scanning {
                        let m: Vec<u32> = match posted {
                            Some(rows) => rows.into_iter().filter(|&r| accept(r)).collect(),
                            None => (0..indexed as u32).filter(|&r| accept(r)).collect(),
                        };
                        if exact_is_cheaper(m.len(), indexed, ef, links) {
                            return exact(&mut m.into_iter().chain(tail.filter(|&r| accept(r))));
                        }
                        matching = Some(m);
                    }
                }
                let found = match g {
                    Graph::Frozen(f) => f.search(&column.data, column.dim, query, k, ef, &accept),
                    Graph::Live(l) => l.search(query, k, ef, &accept),
                };
                if found.len() < k {
                    // The walk may miss rows (a sparse filter, many deletions): if fewer were
                    // found than exist, score what exists.
                    let m = matching
                        .unwrap_or_else(|| (0..indexed as u32).filter(|&r| accept(r)).collect());
                    if found.len() < m.len().min(k) {
                        return exact(&mut m.into_iter().chain(tail.filter(|&r| accept(r))));
                    }
                }
                (tail, found)
            }
        };
        // Graph hits are re-scored exactly, so scores equal those of exact search.
        let rows = found
            .into_iter()
            .map(|(_, r)| r)
            .chain(indexed.filter(|&r| accept(r)));
        exact(&mut rows.collect::<Vec<u32>>().into_iter())
    };
    // Fanning out costs more than it saves when only one segment holds rows.
    let busy = parts
        .iter()
        .filter(|(block, _, _)| !block.is_empty())
        .count();
    let per_block: Vec<Vec<Hit>> = if busy <= 1 {
        parts
            .iter()
            .enumerate()
            .map(|(b, p)| search_part(b, p))
            .collect()
    } else {
        parts
            .par_iter()
            .enumerate()
            .map(|(b, p)| search_part(b, p))
            .collect()
    };
    let blocks: Vec<&Block> = parts.iter().map(|(b, _, _)| *b).collect();
    let mut all: Vec<Hit> = per_block.into_iter().flatten().collect();
    sort_hits(&mut all, &blocks);
    all.truncate(k);
    (all, blocks)
}

/// Candidate rows of a sealed segment from its inverted index, when the filter has an indexed
/// equality term.
fn candidates(
    segment: Option<&Segment>,
    block: &Block,
    terms: Option<&(usize, Vec<crate::Value>)>,
) -> Option<Vec<u32>> {
    let (field, values) = terms?;
    segment?.inverted.get(block, *field)?.rows(values)
}

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

/// Below `EXACT_FACTOR × max(ef, k)` matching rows, scoring them all beats a filtered graph
/// walk, which must step over every rejected row it meets.
const EXACT_FACTOR: usize = 16;

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
        let exact = |rows: &mut dyn Iterator<Item = u32>| {
            let hits = rows.map(|r| {
                let score = scorer.score(column.get(r as usize));
                Hit {
                    key: scorer.rank_key(score),
                    score,
                    block: b,
                    row: r as usize,
                }
            });
            top_k(hits.collect(), k)
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
                    let m: Vec<u32> = match candidates(*segment, block, indexed_terms.as_ref()) {
                        Some(rows) => rows.into_iter().filter(|&r| accept(r)).collect(),
                        None => (0..indexed as u32).filter(|&r| accept(r)).collect(),
                    };
                    if m.len() <= EXACT_FACTOR * ef {
                        return exact(&mut m.into_iter().chain(tail.filter(|&r| accept(r))));
                    }
                    matching = Some(m);
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

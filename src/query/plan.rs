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
use crate::segment::Block;

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
    let mut parts: Vec<(&Block, Option<Graph<'_>>)> = state
        .sealed
        .iter()
        .map(|s| {
            (
                &s.block,
                s.graphs.get(v).and_then(Option::as_ref).map(Graph::Frozen),
            )
        })
        .collect();
    parts.push((
        &state.writing,
        state
            .live_graphs
            .get(v)
            .and_then(Option::as_ref)
            .map(Graph::Live),
    ));
    let ef = ef.unwrap_or(DEFAULT_EF).max(k);
    let scorer = Scorer::new(vs.metric, query);
    let per_block: Vec<Vec<Hit>> = parts
        .par_iter()
        .enumerate()
        .map(|(b, (block, graph))| {
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
                None => return exact(&mut (0..block.len() as u32).filter(|&r| accept(r))),
                Some(g) => {
                    let indexed = match g {
                        Graph::Frozen(_) => block.len(),
                        Graph::Live(l) => l.indexed().min(block.len()),
                    };
                    let tail = indexed as u32..block.len() as u32;
                    let mut matching: Option<Vec<u32>> = None;
                    if filter.is_some() {
                        let m: Vec<u32> = (0..indexed as u32).filter(|&r| accept(r)).collect();
                        if m.len() <= EXACT_FACTOR * ef {
                            return exact(&mut m.into_iter().chain(tail.filter(|&r| accept(r))));
                        }
                        matching = Some(m);
                    }
                    let found = match g {
                        Graph::Frozen(f) => {
                            f.search(&column.data, column.dim, query, k, ef, &accept)
                        }
                        Graph::Live(l) => l.search(query, k, ef, &accept),
                    };
                    if found.len() < k {
                        // The walk may miss rows (a sparse filter, many deletions): if fewer were
                        // found than exist, score what exists.
                        let m = matching.unwrap_or_else(|| {
                            (0..indexed as u32).filter(|&r| accept(r)).collect()
                        });
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
        })
        .collect();
    let blocks: Vec<&Block> = parts.iter().map(|(b, _)| *b).collect();
    let mut all: Vec<Hit> = per_block.into_iter().flatten().collect();
    sort_hits(&mut all, &blocks);
    all.truncate(k);
    (all, blocks)
}

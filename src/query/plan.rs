//! The per-segment planner: graph search when it pays, exact scoring when few rows can match,
//! and a guarantee of `min(k, live matching rows)` hits either way.

use rayon::prelude::*;

use super::flat::{filter_columns, matches, sort_hits, top_k, Hit};
use super::Filter;
use crate::error::Result;
use crate::index::distance::Scorer;
use crate::index::frozen::FrozenGraph;
use crate::index::live::LiveGraph;
use crate::schema::{CollectionSchema, VectorSchema};
use crate::segment::{DeleteSet, Rows, SealedSegment};

/// The default beam width of graph search.
pub const DEFAULT_EF: usize = 64;

/// Rows sampled to estimate a filter's selectivity before deciding whether to scan.
const SAMPLE: usize = 1024;

/// A writing segment whose vectors hold at most this many floats (8 MiB: 40k rows of 50-d,
/// 5k of 384-d) is scored exactly instead of through its live hnsw_rs graph. Measured with a
/// writer and the background indexer running, a walk of hnsw_rs's graph (hash-set visited
/// list, a lock per node, racing the indexer's inserts) cost more than the scan, and the scan
/// is exact.
const LIVE_EXACT_FLOATS: usize = 1 << 21;

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

/// The graph of one segment's vector field.
#[derive(Clone, Copy)]
pub(crate) enum Graph<'a> {
    /// A sealed segment's graph: covers every row.
    Frozen(&'a FrozenGraph),
    /// A writing segment's graph: covers rows `0..indexed()`; later rows are scored exactly.
    Live(&'a LiveGraph),
}

/// One segment as a search sees it.
pub(crate) struct Part<'a> {
    pub(crate) rows: Rows<'a>,
    /// The vectors of the searched field, contiguous.
    pub(crate) vectors: &'a [f32],
    pub(crate) graph: Option<Graph<'a>>,
    /// The sealed segment, whose inverted indexes can narrow a filter.
    pub(crate) sealed: Option<&'a SealedSegment>,
    /// For cosine, `1 / |row|` of every row, when the part keeps them (a frozen graph keeps its
    /// own): exact scoring then takes one dot product per row instead of two.
    pub(crate) inv_norms: Option<&'a [f32]>,
}

/// The best `k` live rows passing `filter` in vector field `vs`, over every part in parallel.
/// A hit's `block` is its part's position in `parts`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn search(
    parts: &[Part<'_>],
    deleted: &DeleteSet,
    schema: &CollectionSchema,
    vs: &VectorSchema,
    query: &[f32],
    k: usize,
    ef: Option<usize>,
    filter: Option<&Filter>,
) -> Result<Vec<Hit>> {
    // An equality or IN conjunct on a field with an inverted index narrows sealed segments to
    // its posting lists; every candidate is still checked against the whole filter.
    let indexed_terms = filter.and_then(|f| {
        f.equality_conjuncts()
            .iter()
            .find(|(i, _)| schema.fields.get(*i).is_some_and(|fs| fs.index.is_some()))
            .cloned()
    });
    let ef = ef.unwrap_or(DEFAULT_EF).max(k);
    let links = match vs.index {
        crate::schema::IndexKind::Hnsw { m, .. } => 2 * m,
        crate::schema::IndexKind::Flat => 0,
    };
    let scorer = Scorer::new(vs.metric, query);
    let dim = vs.dimension.max(1);
    let search_part = |b: usize, part: &Part<'_>| -> Result<Vec<Hit>> {
        let Part {
            rows,
            vectors,
            graph,
            sealed,
            inv_norms,
        } = part;
        let columns = filter_columns(filter, rows)?;
        let accept = |row: u32| {
            let i = row as usize;
            !deleted.contains(rows.doc_ids[i]) && matches(filter, &columns, i)
        };
        // With no filter and no deletion in this part every row is accepted: the graph walk
        // then skips a call, a doc-id load and a bitmap probe per candidate.
        let accept_all = filter.is_none()
            && match (rows.doc_ids.first(), rows.doc_ids.last()) {
                (Some(&first), Some(&last)) => !deleted.any_in(first, last),
                _ => true,
            };
        let vector = |r: usize| &vectors[r * dim..(r + 1) * dim];
        // Cosine over a frozen graph: its stored inverse norms save a dot product per row. The
        // few best by that key are then re-scored exactly, so scores and order equal exact
        // search (the margin absorbs rounding differences between the two forms).
        let inv_norms = inv_norms.or(match graph {
            Some(Graph::Frozen(f)) => f.inv_norms(),
            _ => None,
        });
        let q_inv = 1.0
            / crate::index::distance::dot(query, query)
                .sqrt()
                .max(f32::MIN_POSITIVE);
        let exact = |rows: &mut dyn Iterator<Item = u32>| {
            let exact_hit = |r: u32| {
                let score = scorer.score(vector(r as usize));
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
                        let d = crate::index::distance::dot(query, vector(r as usize));
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
        let graph = match graph {
            Some(Graph::Live(_)) if vectors.len() <= LIVE_EXACT_FLOATS => &None,
            g => g,
        };
        let (indexed, found) = match graph {
            None => {
                return Ok(match candidates(*sealed, rows, indexed_terms.as_ref())? {
                    Some(posted) => exact(&mut posted.into_iter().filter(|&r| accept(r))),
                    None => exact(&mut (0..rows.len() as u32).filter(|&r| accept(r))),
                });
            }
            Some(g) => {
                let indexed = match g {
                    Graph::Frozen(_) => rows.len(),
                    Graph::Live(l) => l.indexed().min(rows.len()),
                };
                let tail = indexed as u32..rows.len() as u32;
                let mut matching: Option<Vec<u32>> = None;
                if filter.is_some() {
                    let posted = candidates(*sealed, rows, indexed_terms.as_ref())?;
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
                            return Ok(exact(
                                &mut m.into_iter().chain(tail.filter(|&r| accept(r))),
                            ));
                        }
                        matching = Some(m);
                    }
                }
                let found = match g {
                    Graph::Frozen(f) => {
                        let check: &dyn Fn(u32) -> bool = &accept;
                        f.search(vectors, dim, query, k, ef, (!accept_all).then_some(check))
                    }
                    // The indexer may add rows while the walk runs: rows past `indexed` are
                    // in the exactly scored tail already.
                    Graph::Live(l) => {
                        l.search(query, k, ef, &|r| (r as usize) < indexed && accept(r))
                    }
                };
                if found.len() < k {
                    // The walk may miss rows (a sparse filter, many deletions): if fewer were
                    // found than exist, score what exists.
                    let m = matching
                        .unwrap_or_else(|| (0..indexed as u32).filter(|&r| accept(r)).collect());
                    if found.len() < m.len().min(k) {
                        return Ok(exact(&mut m.into_iter().chain(tail.filter(|&r| accept(r)))));
                    }
                }
                (tail, found)
            }
        };
        // Graph hits are re-scored exactly, so scores equal those of exact search.
        let hits = found
            .into_iter()
            .map(|(_, r)| r)
            .chain(indexed.filter(|&r| accept(r)));
        Ok(exact(&mut hits.collect::<Vec<u32>>().into_iter()))
    };
    // Fanning out costs more than it saves for one or two segments with rows: it wakes pool
    // threads that compete for the cores with the caller's own (measured with a writer and a
    // background indexer running: lower p99 and more writes per second without it).
    let busy = parts.iter().filter(|p| !p.rows.is_empty()).count();
    let per_part: Vec<Vec<Hit>> = if busy <= 2 {
        parts
            .iter()
            .enumerate()
            .map(|(b, p)| search_part(b, p))
            .collect::<Result<_>>()?
    } else {
        parts
            .par_iter()
            .enumerate()
            .map(|(b, p)| search_part(b, p))
            .collect::<Result<_>>()?
    };
    let rows: Vec<Rows<'_>> = parts.iter().map(|p| p.rows).collect();
    let mut all: Vec<Hit> = per_part.into_iter().flatten().collect();
    sort_hits(&mut all, &rows);
    all.truncate(k);
    Ok(all)
}

/// Candidate rows of a sealed segment from its inverted index, when the filter has an indexed
/// equality term.
fn candidates(
    segment: Option<&SealedSegment>,
    rows: &Rows<'_>,
    terms: Option<&(usize, Vec<crate::Value>)>,
) -> Result<Option<Vec<u32>>> {
    let (Some((field, values)), Some(segment)) = (terms, segment) else {
        return Ok(None);
    };
    Ok(segment
        .inverted
        .get(rows, *field)?
        .and_then(|p| p.rows(values)))
}

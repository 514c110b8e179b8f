//! Deferred graphs: a small segment sealed while a bulk load outran the indexer is persisted
//! without a graph, scored exactly, and gets its graph from `optimize` or once writes pause
//! (in place: same segment, same rows, a graph file that the next open maps).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stratavec::dataset::{read_fvecs, read_ivecs, recall_at_k};
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, Doc, GraphLoad, IndexKind, Metric,
    OpenOptions, Query, VectorSchema,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data-fixtures")
        .join(name)
}

struct Glove {
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    truth: Vec<Vec<i32>>,
}

fn glove() -> Glove {
    Glove {
        base: read_fvecs(fixture("glove50-10000.base.fvecs")).unwrap(),
        queries: read_fvecs(fixture("glove50.query.fvecs")).unwrap(),
        truth: read_ivecs(fixture("glove50-10000.gt.ivecs")).unwrap(),
    }
}

fn schema() -> CollectionSchema {
    CollectionSchema::new("glove").vector(VectorSchema::new("v", 50).metric(Metric::Cosine).index(
        IndexKind::Hnsw {
            m: 16,
            ef_construction: 200,
        },
    ))
}

/// Inserts the 10k base in one call each 1,000 rows and seals it at once: far faster than the
/// live graph takes rows, so the sealed segment (below the default 50,000 rows) defers its
/// graph.
fn bulk_load(path: &Path, g: &Glove) -> Collection {
    let c = Collection::create(path, schema(), CollectionOptions::default()).unwrap();
    for (b, chunk) in g.base.chunks(1000).enumerate() {
        let docs: Vec<Doc> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| Doc::new((b * 1000 + i).to_string()).vector("v", v.clone()))
            .collect();
        c.insert(&docs).unwrap();
    }
    c.flush().unwrap();
    c
}

fn recall(c: &Collection, g: &Glove, ef: usize) -> f64 {
    let total: f64 = g
        .queries
        .iter()
        .zip(&g.truth)
        .map(|(q, t)| {
            let hits = c
                .query(&Query::vector("v", q.clone()).topk(10).ef(ef))
                .unwrap();
            let pks: Vec<String> = hits.into_iter().map(|d| d.pk).collect();
            assert_eq!(pks.len(), 10);
            recall_at_k(&pks, t, 10)
        })
        .sum();
    total / g.queries.len() as f64
}

/// How the open of `c` loaded each sealed segment's graphs.
fn graph_loads(c: &Collection) -> Vec<&GraphLoad> {
    c.open_report().graphs.iter().map(|(_, _, l)| l).collect()
}

/// `verify` finds nothing wrong (the collection must be closed).
fn assert_verifies(path: &Path) {
    let report = Collection::verify(path, &OpenOptions::default()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

fn graph_files(segment_dir: &Path) -> Vec<String> {
    std::fs::read_dir(segment_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".graph"))
        .collect()
}

#[test]
fn a_small_bulk_loaded_segment_is_sealed_without_a_graph_and_scored_exactly() {
    let g = glove();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = bulk_load(&path, &g);
    // Closing right after the flush leaves no pause for the idle worker to build the graph.
    c.close().unwrap();
    drop(c);

    // A read-only handle runs no background work: the segment stays as it was persisted.
    let c = Collection::open(&path, OpenOptions::default().read_only(true)).unwrap();
    let st = c.stats();
    assert_eq!(st.segments, 1);
    assert_eq!(st.graphs[0].rows_deferred, 10_000);
    assert_eq!(st.graphs[0].rows_covered, 0);
    let seg = path.join(st.sealed[0].id.to_string());
    assert!(graph_files(&seg).is_empty(), "no graph file: {seg:?}");
    // Deferred is not damaged: nothing is rebuilt at open.
    assert!(c.open_report().graphs.is_empty());
    // Exact scoring: every query finds its true neighbours (ties aside), whatever the ef.
    let exact = recall(&c, &g, 16);
    assert!(exact >= 0.999, "recall@10 of exact scoring: {exact}");
    drop(c);
    assert_verifies(&path);
}

#[test]
fn optimize_builds_the_graph_a_single_segment_deferred() {
    let g = glove();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = bulk_load(&path, &g);
    // One segment and nothing deleted: nothing to merge, but optimize still builds the graph.
    c.optimize().unwrap();
    let st = c.stats();
    assert_eq!(st.segments, 1);
    assert_eq!(st.graphs[0].rows_deferred, 0);
    assert_eq!(st.graphs[0].rows_covered, 10_000);
    let r = recall(&c, &g, 64);
    assert!(r >= 0.95, "recall@10 at ef 64 through the built graph: {r}");
    c.close().unwrap();
    drop(c);

    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(graph_loads(&c), [&GraphLoad::Mapped]);
    // Packed for search, as it was when built.
    c.wait_idle().unwrap();
    assert_eq!(recall(&c, &g, 64), r, "the same graph after a reopen");
}

#[test]
fn the_idle_worker_builds_a_deferred_graph_in_place_once_writes_pause() {
    let g = glove();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = bulk_load(&path, &g);
    let id = c.stats().sealed[0].id;
    // No write follows: after a half-second pause the worker builds the graph. The bound only
    // keeps a broken build from hanging the suite; it is not a timing assertion.
    let started = Instant::now();
    while c.stats().graphs[0].rows_deferred > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the deferred graph was never built"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = c.stats();
    assert_eq!(st.sealed.len(), 1);
    assert_eq!(st.sealed[0].id, id, "built in place, not merged");
    assert_eq!(st.graphs[0].rows_covered, 10_000);
    assert_eq!(st.doc_count, 10_000);
    assert_eq!(graph_files(&path.join(id.to_string())).len(), 1);
    let r = recall(&c, &g, 64);
    assert!(r >= 0.95, "recall@10 at ef 64: {r}");
    c.close().unwrap();
    drop(c);

    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(graph_loads(&c), [&GraphLoad::Mapped]);
    c.close().unwrap();
    drop(c);
    assert_verifies(&path);
}

#[test]
fn a_damaged_deferred_segment_is_reported_without_stopping_writes() {
    let g = glove();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = bulk_load(&path, &g);
    let id = c.stats().sealed[0].id;
    c.close().unwrap();
    drop(c);
    // A bit flip in the middle of the forward file: inside its vectors (2 MB of its 2.3 MB),
    // which only the graph build reads whole.
    let fwd = path.join(id.to_string()).join("0.fwd");
    let mut bytes = std::fs::read(&fwd).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&fwd, &bytes).unwrap();

    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    match c.wait_idle() {
        Err(stratavec::Error::Corrupted { path: p, .. }) => assert_eq!(p, fwd),
        other => panic!("building the deferred graph of a damaged file: {other:?}"),
    }
    // Not poisoned: writes go on, and the damage is reported again, not hidden.
    let doc = Doc::new("new").vector("v", g.base[0].clone());
    assert_eq!(c.insert(&[doc]).unwrap(), [stratavec::DocStatus::Ok]);
    assert_eq!(c.fetch(&["new"]).unwrap()[0].pk, "new");
    assert!(c.wait_idle().is_err());
}

#[test]
fn min_graph_rows_zero_builds_every_graph_at_persist() {
    let g = glove();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let options = CollectionOptions::default().min_graph_rows(0);
    let c = Collection::create(&path, schema(), options).unwrap();
    let docs: Vec<Doc> = g.base[..1000]
        .iter()
        .enumerate()
        .map(|(i, v)| Doc::new(i.to_string()).vector("v", v.clone()))
        .collect();
    c.insert(&docs).unwrap();
    c.flush().unwrap();
    let st = c.stats();
    assert_eq!(st.graphs[0].rows_deferred, 0);
    assert_eq!(st.graphs[0].rows_covered, 1000);
}

/// Power cut at every mutation of the in-place build of a deferred graph (graph file, then the
/// manifest naming it), then a restart that drops whatever was not fsynced (whole, or torn):
/// the collection opens, holds every row, finds each by its own vector, and its graph is
/// either still deferred (the file, if any, removed as a leftover) or complete and mapped.
#[test]
fn a_power_cut_while_a_deferred_graph_is_built_loses_nothing() {
    use std::sync::Arc;
    use stratavec::storage::{Fault, FaultKind, FaultOp, SimStorage};

    const ROWS: usize = 1000;
    // Distinct pseudo-random vectors (splitmix64 of row and dimension).
    let vector = |i: usize| -> Vec<f32> {
        (0..16u64)
            .map(|d| {
                let mut x = (i as u64) << 8 | d;
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (x ^ (x >> 31)) as f32 / u64::MAX as f32 - 0.5
            })
            .collect()
    };
    let schema = || {
        CollectionSchema::new("cut").vector(VectorSchema::new("v", 16).metric(Metric::L2).index(
            IndexKind::Hnsw {
                m: 8,
                ef_construction: 64,
            },
        ))
    };
    let path = Path::new("/cut/c");
    // The collection as the cut finds it: one persisted segment whose graph is deferred.
    let prepare = || {
        let sim = SimStorage::new();
        let options = CollectionOptions::default().storage(Arc::new(sim.clone()));
        let c = Collection::create(path, schema(), options).unwrap();
        let docs = |range: std::ops::Range<usize>| -> Vec<Doc> {
            range
                .map(|i| Doc::new(i.to_string()).vector("v", vector(i)))
                .collect()
        };
        c.insert(&docs(0..ROWS / 2)).unwrap();
        c.insert(&docs(ROWS / 2..ROWS)).unwrap();
        c.flush().unwrap();
        assert_eq!(c.stats().graphs[0].rows_deferred, ROWS as u64);
        (sim, c)
    };
    let (sim, c) = prepare();
    let before = sim.counts().mutations;
    c.optimize().unwrap();
    let mutations = sim.counts().mutations - before;
    assert!(
        mutations >= 3,
        "graph file, manifest: {mutations} mutations"
    );
    drop(c);

    for j in 1..=mutations {
        for torn in [None, Some(j)] {
            let (sim, c) = prepare();
            sim.inject(Fault {
                op: FaultOp::Mutation,
                nth: j,
                kind: FaultKind::PowerCut,
            });
            assert!(c.optimize().is_err(), "cut {j}: the power went off");
            drop(c);
            match torn {
                Some(seed) => sim.crash_torn(seed),
                None => sim.crash(),
            }
            let options = OpenOptions::default().storage(Arc::new(sim.clone()));
            let c = Collection::open(path, options.clone()).unwrap();
            let st = c.stats();
            assert_eq!(st.doc_count, ROWS as u64, "cut {j} torn {torn:?}");
            let g = &st.graphs[0];
            assert!(
                (g.rows_deferred, g.rows_covered) == (ROWS as u64, 0)
                    || (g.rows_deferred, g.rows_covered) == (0, ROWS as u64),
                "cut {j} torn {torn:?}: {g:?}"
            );
            for i in (0..ROWS).step_by(97) {
                let hits = c
                    .query(&Query::vector("v", vector(i)).topk(1).ef(64))
                    .unwrap();
                assert_eq!(hits[0].pk, i.to_string(), "cut {j} torn {torn:?}");
            }
            c.close().unwrap();
            drop(c);
            let report = Collection::verify(path, &options).unwrap();
            assert!(report.problems.is_empty(), "cut {j}: {:?}", report.problems);
        }
    }
}

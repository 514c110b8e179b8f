//! HNSW search on real vectors: recall of live and frozen graphs, self-recall after churn,
//! equivalence with exact search, mapped reopen, and rebuild of damaged graph files.

use std::path::{Path, PathBuf};

use stratavec::dataset::{read_fvecs, read_ivecs, recall_at_k};
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, GraphLoad,
    IndexKind, Metric, OpenOptions, Query,
};

const HNSW: IndexKind = IndexKind::Hnsw {
    m: 16,
    ef_construction: 200,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data-fixtures")
        .join(name)
}

fn glove_schema(index: IndexKind) -> CollectionSchema {
    CollectionSchema::new("glove")
        .field(FieldSchema::new("cat", DataType::Int32))
        .vector(
            stratavec::VectorSchema::new("v", 50)
                .metric(Metric::Cosine)
                .index(index),
        )
}

fn load_glove(c: &Collection, base: &[Vec<f32>]) {
    for (b, chunk) in base.chunks(1000).enumerate() {
        let docs: Vec<Doc> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let id = b * 1000 + i;
                Doc::new(id.to_string())
                    .set("cat", (id % 10) as i32)
                    .vector("v", v.clone())
            })
            .collect();
        c.insert(&docs).unwrap();
    }
}

fn recall(c: &Collection, queries: &[Vec<f32>], truth: &[Vec<i32>], ef: Option<usize>) -> f64 {
    let total: f64 = queries
        .iter()
        .zip(truth)
        .map(|(q, t)| {
            let mut query = Query::vector("v", q.clone()).topk(10);
            query.ef = ef;
            let pks: Vec<String> = c.query(&query).unwrap().into_iter().map(|d| d.pk).collect();
            assert_eq!(pks.len(), 10);
            recall_at_k(&pks, t, 10)
        })
        .sum();
    total / queries.len() as f64
}

#[test]
fn glove_recall_of_live_and_frozen_graphs_and_mapped_reopen() {
    let base = read_fvecs(fixture("glove50-10000.base.fvecs")).unwrap();
    let queries = read_fvecs(fixture("glove50.query.fvecs")).unwrap();
    let truth = read_ivecs(fixture("glove50-10000.gt.ivecs")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("glove");
    let c = Collection::create(&path, glove_schema(HNSW), CollectionOptions::default()).unwrap();
    load_glove(&c, &base);
    // Rows reach the live graph in the background (and are scored exactly until then).
    c.wait_idle().unwrap();
    assert_eq!(
        c.stats().graphs[0].rows_covered,
        10_000,
        "searchable through the graph once the indexer caught up"
    );

    let live = recall(&c, &queries, &truth, None);
    c.flush().unwrap();
    let frozen = recall(&c, &queries, &truth, None);
    eprintln!("recall@10 at the default ef: live {live:.4}, frozen {frozen:.4}");
    for ef in [16, 32, 128, 256] {
        eprintln!(
            "frozen ef {ef}: {:.4}",
            recall(&c, &queries, &truth, Some(ef))
        );
    }
    // Before the flush the rows are either still in the writing segment, which is scored
    // exactly at this size, or, when the load paused long enough (a slow debug build), sealed
    // as a bulk load's backlog into a graph of the bulk builder: graph recall either way.
    assert!(live >= 0.95, "live recall {live}");
    assert!(frozen >= 0.95, "frozen recall {frozen}");
    drop(c);

    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    let g = &c.stats().graphs[0];
    assert_eq!(
        (g.mapped, g.in_memory, g.rebuilt_at_open),
        (1, 0, 0),
        "{g:?}"
    );
    assert_eq!(
        c.open_report().graphs,
        vec![(0, "v".to_string(), GraphLoad::Mapped)]
    );
    // Until the open's background thread has packed the graph, searches walk the mapped file
    // (same graph, slightly different scoring path): compare once it is packed, as the graph
    // searched before the reopen was.
    c.wait_idle().unwrap();
    assert_eq!(
        recall(&c, &queries, &truth, None),
        frozen,
        "reopen searches the same graph"
    );
}

/// Small random-ish vectors with a fixed seed (no rand dependency needed here).
fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % 20_000) as f32 / 10_000.0 - 1.0
                })
                .collect()
        })
        .collect()
}

fn small_schema(metric: Metric) -> CollectionSchema {
    CollectionSchema::new("s")
        .field(FieldSchema::new("n", DataType::Int64))
        .vector(
            stratavec::VectorSchema::new("v", 16)
                .metric(metric)
                .index(IndexKind::Hnsw {
                    m: 8,
                    ef_construction: 100,
                }),
        )
}

fn put(c: &Collection, upsert: bool, rows: &[(usize, &Vec<f32>)]) {
    let docs: Vec<Doc> = rows
        .iter()
        .map(|(i, v)| {
            Doc::new(format!("k{i}"))
                .set("n", *i as i64)
                .vector("v", (*v).clone())
        })
        .collect();
    if upsert {
        c.upsert(&docs).unwrap();
    } else {
        c.insert(&docs).unwrap();
    }
}

/// Every live vector finds itself at rank 1 and no deleted key is ever returned.
fn assert_self_recall(
    c: &Collection,
    live: &std::collections::BTreeMap<usize, Vec<f32>>,
    deleted: &[usize],
    stage: &str,
) {
    for (i, v) in live {
        let hits = c.query(&Query::vector("v", v.clone()).topk(5)).unwrap();
        assert_eq!(
            hits[0].pk,
            format!("k{i}"),
            "{stage}: k{i} does not find itself first"
        );
        for d in deleted {
            assert!(
                hits.iter()
                    .all(|h| h.pk != format!("k{d}") || live.contains_key(d)),
                "{stage}: deleted k{d} returned"
            );
        }
    }
}

#[test]
fn every_live_vector_finds_itself_after_upserts_deletes_flush_and_reopen() {
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let c =
            Collection::create(&path, small_schema(metric), CollectionOptions::default()).unwrap();
        let first = vectors(600, 16, 1);
        let mut live: std::collections::BTreeMap<usize, Vec<f32>> =
            first.iter().cloned().enumerate().collect();
        for chunk in first.iter().enumerate().collect::<Vec<_>>().chunks(100) {
            put(&c, false, chunk);
        }
        // IP has no self-similarity guarantee (a longer vector can out-score a row's own), so
        // it checks exact agreement below instead of rank 1.
        if metric != Metric::Ip {
            assert_self_recall(&c, &live, &[], &format!("{metric:?} live"));
        }
        c.flush().unwrap();
        // Churn: replace 200 vectors, delete 100, across the sealed and the writing segment.
        let replaced = vectors(200, 16, 2);
        put(
            &c,
            true,
            &replaced
                .iter()
                .enumerate()
                .map(|(j, v)| (j * 3, v))
                .collect::<Vec<_>>(),
        );
        for (j, v) in replaced.iter().enumerate() {
            live.insert(j * 3, v.clone());
        }
        let deleted: Vec<usize> = (0..100).map(|j| j * 5 + 1).collect();
        let keys: Vec<String> = deleted.iter().map(|d| format!("k{d}")).collect();
        c.delete(&keys).unwrap();
        for d in &deleted {
            live.remove(d);
        }
        let check = |c: &Collection, stage: &str| {
            if metric != Metric::Ip {
                assert_self_recall(c, &live, &deleted, &format!("{metric:?} {stage}"));
            }
            // With ef ≥ the collection size the graph walk sees everything: it equals exact.
            let probe = vectors(20, 16, 3);
            for q in &probe {
                let graph = c
                    .query(&Query::vector("v", q.clone()).topk(10).ef(2000))
                    .unwrap();
                let exact = exact_top(metric, &live, q, 10);
                let got: Vec<&str> = graph.iter().map(|d| d.pk.as_str()).collect();
                assert_eq!(
                    got,
                    exact.iter().map(String::as_str).collect::<Vec<_>>(),
                    "{metric:?} {stage}"
                );
            }
        };
        check(&c, "after churn");
        c.flush().unwrap();
        check(&c, "after flush");
        drop(c);
        let c = Collection::open(&path, OpenOptions::default()).unwrap();
        check(&c, "after reopen");
        c.optimize().unwrap();
        assert_eq!(c.stats().segments, 1);
        check(&c, "after optimize");
    }
}

fn exact_top(
    metric: Metric,
    live: &std::collections::BTreeMap<usize, Vec<f32>>,
    q: &[f32],
    k: usize,
) -> Vec<String> {
    let mut scored: Vec<(f32, String)> = live
        .iter()
        .map(|(i, v)| {
            let dot: f32 = q.iter().zip(v).map(|(a, b)| a * b).sum();
            let key = match metric {
                Metric::L2 => q.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum(),
                Metric::Ip => -dot,
                Metric::Cosine => {
                    let n = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
                    1.0 - dot / (n(q) * n(v))
                }
            };
            (key, format!("k{i}"))
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|s| s.1).collect()
}

#[test]
fn a_damaged_graph_file_is_reported_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    // Its graph file at once, not deferred until writes pause.
    let c = Collection::create(
        &path,
        small_schema(Metric::L2),
        CollectionOptions::default().min_graph_rows(0),
    )
    .unwrap();
    let vs = vectors(500, 16, 9);
    put(&c, false, &vs.iter().enumerate().collect::<Vec<_>>());
    c.flush().unwrap();
    let expected: Vec<Vec<String>> = vs[..20]
        .iter()
        .map(|q| {
            c.query(&Query::vector("v", q.clone()).topk(5).ef(1000))
                .unwrap()
                .into_iter()
                .map(|d| d.pk)
                .collect()
        })
        .collect();
    drop(c);
    let graph = path.join("0").join("v.0.graph");
    let clean = std::fs::read(&graph).unwrap();
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", clean[..clean.len() / 2].to_vec()),
        ("bit flip in the adjacency", {
            let mut b = clean.clone();
            let at = b.len() - 100;
            b[at] ^= 0x08;
            b
        }),
        ("bit flip in the header", {
            let mut b = clean.clone();
            b[17] ^= 0x01;
            b
        }),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in damages {
        std::fs::write(&graph, &bytes).unwrap();
        let c = Collection::open(&path, OpenOptions::default()).unwrap();
        match &c.open_report().graphs[..] {
            [(0, field, GraphLoad::Rebuilt { reason })] if field == "v" => {
                assert!(
                    reason.contains("v.0.graph"),
                    "{what}: the report names the file: {reason}"
                )
            }
            other => panic!("{what}: expected a rebuild, got {other:?}"),
        }
        assert_eq!(c.stats().graphs[0].rebuilt_at_open, 1);
        // The open's background thread packs the mapped graph and outlives the handle: let it
        // finish before the file is rewritten in place below (else SIGBUS in that thread).
        c.wait_idle().unwrap();
        for (q, want) in vs[..20].iter().zip(&expected) {
            let got: Vec<String> = c
                .query(&Query::vector("v", q.clone()).topk(5).ef(1000))
                .unwrap()
                .into_iter()
                .map(|d| d.pk)
                .collect();
            assert_eq!(&got, want, "{what}");
        }
        drop(c);
        // The rebuilt file was written back: the next open maps it.
        let c = Collection::open(&path, OpenOptions::default()).unwrap();
        assert_eq!(c.open_report().graphs[0].2, GraphLoad::Mapped, "{what}");
        c.wait_idle().unwrap();
    }
    // A missing file is rebuilt too.
    std::fs::remove_file(&graph).unwrap();
    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    assert!(matches!(
        c.open_report().graphs[0].2,
        GraphLoad::Rebuilt { .. }
    ));
}

/// A bulk load that outruns the indexer is not fed to hnsw_rs row by row: once it pauses, its
/// writing segment is sealed with a bulk-built graph, without a flush, and every row is
/// searchable through a graph.
#[test]
fn a_paused_bulk_load_gets_a_graph_without_a_flush() {
    let (n, dim) = (30_000, 16);
    let data = vectors(n, dim, 11);
    let dir = tempfile::tempdir().unwrap();
    let c = Collection::create(
        dir.path().join("bulk"),
        small_schema(Metric::L2),
        CollectionOptions::default().flush_policy(stratavec::wal::FlushPolicy::Never),
    )
    .unwrap();
    for (b, chunk) in data.chunks(1000).enumerate() {
        let docs: Vec<Doc> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Doc::new((b * 1000 + i).to_string())
                    .set("n", (b * 1000 + i) as i64)
                    .vector("v", v.clone())
            })
            .collect();
        c.insert(&docs).unwrap();
    }
    // The indexer seals the backlog after the load pauses (below `min_graph_rows`, with its
    // graph deferred), and the worker builds the graph once nothing more arrives; bounded
    // wait, no timing assertion.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let waiting =
        |st: &stratavec::CollectionStats| st.segments == 0 || st.graphs[0].rows_covered < n as u64;
    while waiting(&c.stats()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let st = c.stats();
    assert_eq!(
        (st.segments, st.writing_rows, st.unindexed),
        (1, 0, 0),
        "{st:?}"
    );
    assert_eq!(st.graphs[0].rows_covered, n as u64, "{st:?}");
    let found = (0..n)
        .step_by(97)
        .filter(|&r| {
            let q = Query::vector("v", data[r].clone()).topk(1);
            c.query(&q).unwrap().first().map(|d| d.pk.clone()) == Some(r.to_string())
        })
        .count();
    let sampled = n.div_ceil(97);
    assert!(
        found * 100 >= sampled * 99,
        "{found} of {sampled} rows found themselves"
    );
}

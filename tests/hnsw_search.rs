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
    assert_eq!(
        c.stats().graphs[0].rows_covered,
        10_000,
        "searchable through the graph on return"
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
    assert!(live >= 0.95, "live recall {live}");
    assert!(frozen >= 0.95, "frozen recall {frozen}");
    assert!(
        (live - frozen).abs() <= 0.01,
        "live {live} vs frozen {frozen}"
    );
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
    assert_eq!(
        recall(&c, &queries, &truth, None),
        frozen,
        "reopen searches the same graph"
    );
}

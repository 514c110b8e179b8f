//! Filtered vector search on the GloVe fixture: recall at 10 % and 1 % selectivity, exactly k
//! hits, and identical results whether or not an inverted index narrows the candidates.

use std::path::{Path, PathBuf};

use stratavec::dataset::{read_fvecs, read_ivecs, recall_at_k};
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, IndexKind, Metric,
    Query, ScalarIndex, VectorSchema,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data-fixtures")
        .join(name)
}

fn build(dir: &Path, base: &[Vec<f32>], flush_at: usize) -> Collection {
    let schema = CollectionSchema::new("glove")
        .field(FieldSchema::new("cat", DataType::Int32).index(ScalarIndex::Inverted))
        .field(FieldSchema::new("c100", DataType::Int32))
        .vector(
            VectorSchema::new("v", 50)
                .metric(Metric::Cosine)
                .index(IndexKind::Hnsw {
                    m: 16,
                    ef_construction: 200,
                }),
        );
    let c = Collection::create(dir.join("glove"), schema, CollectionOptions::default()).unwrap();
    for (b, chunk) in base.chunks(1000).enumerate() {
        let docs: Vec<Doc> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let id = b * 1000 + i;
                Doc::new(id.to_string())
                    .set("cat", (id % 10) as i32)
                    .set("c100", (id % 100) as i32)
                    .vector("v", v.clone())
            })
            .collect();
        c.insert(&docs).unwrap();
        if (b + 1) * 1000 == flush_at {
            c.flush().unwrap();
        }
    }
    c
}

fn filtered_recall(c: &Collection, queries: &[Vec<f32>], truth: &[Vec<i32>], filter: &str) -> f64 {
    let mut total = 0.0;
    for (q, t) in queries.iter().zip(truth) {
        let hits = c
            .query(&Query::vector("v", q.clone()).topk(10).filter(filter))
            .unwrap();
        assert_eq!(hits.len(), 10, "{filter}: exactly k hits");
        let pks: Vec<String> = hits.into_iter().map(|h| h.pk).collect();
        total += recall_at_k(&pks, t, 10);
    }
    total / queries.len() as f64
}

#[test]
fn filtered_recall_at_ten_and_one_percent() {
    let base = read_fvecs(fixture("glove50-10000.base.fvecs")).unwrap();
    let queries = read_fvecs(fixture("glove50.query.fvecs")).unwrap();
    let cat3 = read_ivecs(fixture("glove50-10000.gt-cat3.ivecs")).unwrap();
    let one = read_ivecs(fixture("glove50-10000.gt-cat-lt1.ivecs")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 8,000 rows in a sealed segment, 2,000 in the writing one: both paths are exercised.
    let c = build(dir.path(), &base, 8_000);
    let r10 = filtered_recall(&c, &queries, &cat3, "cat = 3");
    let r1 = filtered_recall(&c, &queries, &one, "c100 = 0");
    eprintln!("filtered recall@10: cat = 3 (10 %) {r10:.4}, c100 = 0 (1 %) {r1:.4}");
    assert!(r10 >= 0.95, "cat = 3: {r10}");
    assert!(r1 >= 0.95, "c100 = 0: {r1}");

    // With and without the inverted index (a range that means the same thing cannot use it).
    for q in &queries[..100] {
        for (indexed, scanned) in [
            ("cat = 3", "cat >= 3 AND cat <= 3"),
            (
                "cat IN (1, 7) AND c100 < 50",
                "(cat = 1 OR cat = 7) AND c100 < 50",
            ),
        ] {
            let a = c
                .query(&Query::vector("v", q.clone()).topk(10).filter(indexed))
                .unwrap();
            let b = c
                .query(&Query::vector("v", q.clone()).topk(10).filter(scanned))
                .unwrap();
            assert_eq!(a, b, "{indexed} vs {scanned}");
        }
    }
    // Fewer matching rows than k: all of them, no more.
    let few = c.query(
        &Query::vector("v", queries[0].clone())
            .topk(10)
            .filter("c100 = 7 AND cat = 7 AND n_missing_is_an_error = 1"),
    );
    assert!(few.is_err(), "unknown fields are errors");
    let few = c
        .query(
            &Query::vector("v", queries[0].clone())
                .topk(200)
                .filter("c100 = 7"),
        )
        .unwrap();
    assert_eq!(few.len(), 100);
}

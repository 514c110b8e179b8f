//! The main job: build a collection from the GloVe fixture, query it, check recall against the
//! exact ground truth, close, reopen, and show the same results.
//!
//! `cargo run --release --example quickstart`

use std::path::Path;
use std::time::Instant;

use stratavec::dataset::{read_fvecs, read_ivecs, recall_at_k};
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, IndexKind, Metric,
    OpenOptions, Query, VectorSchema,
};

const FIXTURES: &str = "data-fixtures";

fn run_queries(c: &Collection, queries: &[Vec<f32>]) -> stratavec::Result<Vec<Vec<String>>> {
    queries
        .iter()
        .map(|q| {
            let hits = c.query(&Query::vector("embedding", q.clone()).topk(10))?;
            Ok(hits.into_iter().map(|h| h.pk).collect())
        })
        .collect()
}

fn main() -> stratavec::Result<()> {
    let base = read_fvecs(Path::new(FIXTURES).join("glove50-10000.base.fvecs"))?;
    let queries = read_fvecs(Path::new(FIXTURES).join("glove50.query.fvecs"))?;
    let truth = read_ivecs(Path::new(FIXTURES).join("glove50-10000.gt.ivecs"))?;
    let dir = Path::new("target/quickstart");
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| stratavec::Error::io("remove", dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| stratavec::Error::io("create", dir, e))?;
    let path = dir.join("glove");

    let schema = CollectionSchema::new("glove")
        .field(FieldSchema::new("cat", DataType::Int32))
        .vector(
            VectorSchema::new("embedding", base[0].len())
                .metric(Metric::Cosine)
                .index(IndexKind::Hnsw {
                    m: 16,
                    ef_construction: 200,
                }),
        );
    let started = Instant::now();
    let coll = Collection::create(&path, schema, CollectionOptions::default())?;
    for (b, chunk) in base.chunks(1000).enumerate() {
        let docs: Vec<Doc> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let id = b * 1000 + i;
                Doc::new(id.to_string())
                    .set("cat", (id % 10) as i32)
                    .vector("embedding", v.clone())
            })
            .collect();
        coll.insert(&docs)?;
    }
    println!(
        "inserted {} docs in {:.2} s (10 batches, flush policy always)",
        base.len(),
        started.elapsed().as_secs_f64()
    );

    let report = |label: &str, coll: &Collection| -> stratavec::Result<Vec<Vec<String>>> {
        let started = Instant::now();
        let results = run_queries(coll, &queries)?;
        let secs = started.elapsed().as_secs_f64();
        let recall: f64 = results
            .iter()
            .zip(&truth)
            .map(|(r, t)| recall_at_k(r, t, 10))
            .sum::<f64>()
            / queries.len() as f64;
        println!(
            "{label}: {} queries in {secs:.3} s ({:.0} queries/s), recall@10 = {recall:.4}",
            queries.len(),
            queries.len() as f64 / secs
        );
        Ok(results)
    };
    report("live graph (writing segment)", &coll)?;
    let started = Instant::now();
    coll.flush()?;
    println!(
        "flushed: graph frozen and mapped in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let results = report("frozen graph (sealed segment)", &coll)?;

    let started = Instant::now();
    coll.close()?;
    println!(
        "closed (persisted) in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let started = Instant::now();
    let coll = Collection::open(&path, OpenOptions::default())?;
    let reopened = run_queries(&coll, &queries[..1])?;
    println!(
        "reopened {} docs in {} segment(s); open + first query {:.1} ms",
        coll.stats().doc_count,
        coll.stats().segments,
        started.elapsed().as_secs_f64() * 1e3
    );
    let again = run_queries(&coll, &queries)?;
    let same = again == results && reopened[0] == results[0];
    println!("results after reopen identical: {same}");
    println!("query 0 top-3: {:?}", &again[0][..3]);
    if !same {
        return Err(stratavec::Error::InvalidArgument(
            "results changed across reopen".into(),
        ));
    }
    Ok(())
}

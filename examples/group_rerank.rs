//! Queries over several vector fields merged by a reranker (reciprocal rank fusion or a
//! weighted sum of normalised scores), a query by the vector of a stored document, and a query
//! whose hits are grouped by a scalar field.
//!
//! `cargo run --example group_rerank`

use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, Error, FieldSchema, GroupBy,
    Metric, Query, ReRanker, VectorSchema,
};

const BRANDS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];

/// A deterministic pseudo-random number in [0, 1) (splitmix64): no rand crate needed.
fn noise(seed: u64) -> f32 {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 40) as f32 / (1u64 << 24) as f32
}

fn vector(seed: u64, dim: usize) -> Vec<f32> {
    (0..dim as u64)
        .map(|j| noise(seed * 31 + j) - 0.5)
        .collect()
}

fn pks(docs: &[Doc]) -> Vec<(&str, f32)> {
    docs.iter().map(|d| (d.pk.as_str(), d.score)).collect()
}

fn main() -> stratavec::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", std::env::temp_dir(), e))?;
    // Each product has a text embedding and an image embedding, with different metrics.
    let schema = CollectionSchema::new("products")
        .field(FieldSchema::new("brand", DataType::String))
        .vector(VectorSchema::new("text", 8).metric(Metric::Cosine))
        .vector(VectorSchema::new("image", 6).metric(Metric::L2));
    let coll = Collection::create(dir.path().join("p"), schema, CollectionOptions::default())?;
    let docs: Vec<Doc> = (0..400u64)
        .map(|i| {
            Doc::new(format!("p{i:03}"))
                .set("brand", BRANDS[i as usize % BRANDS.len()])
                .vector("text", vector(i, 8))
                .vector("image", vector(i + 10_000, 6))
        })
        .collect();
    for batch in docs.chunks(100) {
        coll.insert(batch)?;
    }

    let text = vector(7, 8);
    let image = vector(10_007, 6);
    println!(
        "text only:  {:?}",
        pks(&coll.query(&Query::vector("text", text.clone()).topk(3))?)
    );
    println!(
        "image only: {:?}",
        pks(&coll.query(&Query::vector("image", image.clone()).topk(3))?)
    );

    // Two routes need a reranker. RRF looks at ranks only, so the metrics need not agree.
    let both = Query::vector("text", text.clone()).and_vector("image", image.clone());
    let rrf = coll.query(&both.clone().topk(3).reranker(ReRanker::rrf()))?;
    println!("rrf:        {:?}", pks(&rrf));
    // Weighted: each route's score is normalised to [0, 1] first; one weight per route.
    let weighted = ReRanker::Weighted {
        weights: vec![0.2, 0.8],
    };
    let w = coll.query(&both.clone().topk(3).reranker(weighted))?;
    println!("weighted:   {:?}", pks(&w));
    assert_eq!(w[0].pk, "p007", "the product both vectors came from wins");

    // "More like this": the stored text vector of a product, with a filter.
    let like = Query::by_id("text", "p042")
        .topk(4)
        .filter("brand = 'initech'");
    println!("like p042 among initech: {:?}", pks(&coll.query(&like)?));

    // Grouped: the best two hits of each of the three best brands.
    let group = GroupBy {
        field: "brand".into(),
        group_count: 3,
        topk_per_group: 2,
    };
    for g in coll.group_by_query(&Query::vector("text", text), &group)? {
        println!("group {:<9} {:?}", g.value, pks(&g.docs));
    }

    // Without a reranker the routes cannot be merged: a typed error says so.
    match coll.query(&both) {
        Err(Error::RerankerRequired { routes }) => println!("{routes} routes need a reranker"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}

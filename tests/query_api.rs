//! The query API beyond a single vector: rerankers over several routes (zvec cases 43, 44) and
//! grouped queries, which keep working after a reopen (zvec's return nothing then).

use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, Error, FieldSchema, FieldUsage,
    GroupBy, Metric, OpenOptions, Query, ReRanker, VectorSchema,
};

fn schema() -> CollectionSchema {
    CollectionSchema::new("q")
        .field(FieldSchema::new("color", DataType::String).nullable())
        .vector(VectorSchema::new("a", 2).metric(Metric::Cosine))
        .vector(VectorSchema::new("b", 2).metric(Metric::L2))
}

fn doc(pk: &str, color: Option<&str>, a: [f32; 2], b: [f32; 2]) -> Doc {
    Doc::new(pk)
        .set("color", color)
        .vector("a", a.to_vec())
        .vector("b", b.to_vec())
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, Collection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q");
    let c = Collection::create(&path, schema(), CollectionOptions::default()).unwrap();
    c.insert(&[
        doc("p1", Some("red"), [1.0, 0.0], [0.0, 0.0]),
        doc("p2", Some("red"), [0.8, 0.6], [1.0, 0.0]),
        doc("p3", Some("blue"), [0.0, 1.0], [0.5, 0.5]),
        doc("p4", None, [0.6, 0.8], [3.0, 3.0]),
        doc("p5", Some("blue"), [-1.0, 0.0], [0.1, 0.0]),
    ])
    .unwrap();
    (dir, path, c)
}

/// The per-route ranks and scores, computed with the public single-route API.
fn route(c: &Collection, field: &str, q: [f32; 2]) -> Vec<(String, f32)> {
    c.query(&Query::vector(field, q.to_vec()).topk(10))
        .unwrap()
        .into_iter()
        .map(|d| (d.pk, d.score))
        .collect()
}

#[test]
fn case_43_rrf_sums_reciprocal_ranks() {
    let (_d, _p, c) = setup();
    let (qa, qb) = ([1.0, 0.1], [0.0, 0.0]);
    let ra = route(&c, "a", qa);
    let rb = route(&c, "b", qb);
    let fused = c
        .query(
            &Query::vector("a", qa.to_vec())
                .and_vector("b", qb.to_vec())
                .topk(5)
                .reranker(ReRanker::rrf()),
        )
        .unwrap();
    assert_eq!(fused.len(), 5);
    for d in &fused {
        let rank = |r: &[(String, f32)]| r.iter().position(|(pk, _)| *pk == d.pk);
        let expect: f32 = [rank(&ra), rank(&rb)]
            .into_iter()
            .flatten()
            .map(|r| 1.0 / (60.0 + r as f32 + 1.0))
            .sum();
        assert!(
            (d.score - expect).abs() < 1e-6,
            "{}: {} vs {expect}",
            d.pk,
            d.score
        );
    }
    assert!(fused.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn case_44_weighted_normalises_per_metric() {
    let (_d, _p, c) = setup();
    let (qa, qb) = ([0.0, 1.0], [1.0, 1.0]);
    let ra = route(&c, "a", qa);
    let rb = route(&c, "b", qb);
    let fused = c
        .query(
            &Query::vector("a", qa.to_vec())
                .and_vector("b", qb.to_vec())
                .topk(5)
                .reranker(ReRanker::Weighted {
                    weights: vec![0.5, 0.5],
                }),
        )
        .unwrap();
    let pi = std::f32::consts::PI;
    for d in &fused {
        let cos = ra
            .iter()
            .find(|(pk, _)| *pk == d.pk)
            .map_or(0.0, |(_, s)| 1.0 - s / 2.0);
        let l2 = rb
            .iter()
            .find(|(pk, _)| *pk == d.pk)
            .map_or(0.0, |(_, s)| 1.0 - 2.0 * s.atan() / pi);
        assert!((d.score - (0.5 * cos + 0.5 * l2)).abs() < 1e-6, "{}", d.pk);
    }
}

#[test]
fn several_routes_need_a_reranker_with_matching_weights() {
    let (_d, _p, c) = setup();
    let q = Query::vector("a", vec![1.0, 0.0]).and_vector("a", vec![0.0, 1.0]);
    let err = c.query(&q).unwrap_err();
    assert!(err.to_string().contains("A reranker is required"), "{err}");
    let err = c
        .query(&q.reranker(ReRanker::Weighted { weights: vec![1.0] }))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RerankerWeightsMismatch {
                weights: 1,
                routes: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn group_by_orders_groups_by_best_hit_and_survives_reopen() {
    let (_d, path, c) = setup();
    let q = Query::vector("b", vec![0.0, 0.0]);
    let g = GroupBy {
        field: "color".into(),
        group_count: 3,
        topk_per_group: 2,
    };
    let groups = c.group_by_query(&q, &g).unwrap();
    let shape: Vec<(String, Vec<String>)> = groups
        .iter()
        .map(|g| {
            (
                g.value.clone(),
                g.docs.iter().map(|d| d.pk.clone()).collect(),
            )
        })
        .collect();
    // b-distances from the origin: p1 0, p5 0.01, p3 0.5, p2 1, p4 18.
    assert_eq!(
        shape,
        vec![
            ("red".to_string(), vec!["p1".to_string(), "p2".to_string()]),
            ("blue".to_string(), vec!["p5".to_string(), "p3".to_string()]),
            (String::new(), vec!["p4".to_string()]),
        ]
    );
    c.flush().unwrap();
    drop(c);
    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    let again = c.group_by_query(&q, &g).unwrap();
    assert_eq!(again, groups, "grouping is the same after reopen");
    let err = c.group_by_query(&q, &GroupBy::new("nope")).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownField { field, usage: FieldUsage::GroupBy } if field == "nope"),
        "{err}"
    );
}

#[test]
fn search_keys_returns_the_keys_and_scores_of_search() {
    let (_dir, _path, c) = setup();
    // Sealed and writing segments both answer, deleted rows never.
    c.flush().unwrap();
    c.insert(&[doc("p6", None, [0.7, 0.7], [2.0, 2.0])])
        .unwrap();
    c.delete(&["p2"]).unwrap();
    for (field, q) in [("a", [0.9, 0.3]), ("b", [0.2, 0.1]), ("a", [-0.5, 0.5])] {
        for topk in [1, 3, 10] {
            let options = stratavec::SearchOptions::new().topk(topk);
            let want: Vec<(String, f32)> = c
                .search(field, &q, &options)
                .unwrap()
                .into_iter()
                .map(|d| (d.pk, d.score))
                .collect();
            let mut got = Vec::new();
            let n = c
                .search_keys(field, &q, &options, |pk, score| {
                    got.push((pk.to_string(), score))
                })
                .unwrap();
            assert_eq!(n, got.len());
            assert_eq!(got, want, "{field} {q:?} top {topk}");
        }
    }
    let e = c
        .search_keys("zz", &[0.0, 1.0], &Default::default(), |_, _| {})
        .unwrap_err();
    assert!(matches!(e, Error::UnknownField { .. }), "{e}");
    let e = c
        .search_keys("a", &[0.0], &Default::default(), |_, _| {})
        .unwrap_err();
    assert!(matches!(e, Error::DimensionMismatch { .. }), "{e}");
}

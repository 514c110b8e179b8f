//! Schema and index changes (DDL): every operation's effect before and after a reopen, queries
//! after index changes equal to a fresh collection with that schema, zvec's refusals, and
//! readers that keep getting correct answers while a change runs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use stratavec::{
    Collection, CollectionOptions, CollectionSchema, ColumnFill, DataType, Doc, Error, FieldSchema,
    IndexKind, IndexParam, Metric, OpenOptions, Query, ScalarIndex, ScanOptions, SearchOptions,
    Value, VectorSchema,
};

const DIM: usize = 8;
const HNSW: IndexKind = IndexKind::Hnsw {
    m: 8,
    ef_construction: 64,
};

fn schema(metric: Metric, index: IndexKind) -> CollectionSchema {
    CollectionSchema::new("ddl")
        .field(FieldSchema::new("n", DataType::Int64))
        .field(FieldSchema::new("cat", DataType::String).nullable())
        .field(FieldSchema::new("small", DataType::Int32).nullable())
        .vector(VectorSchema::new("v", DIM).metric(metric).index(index))
}

/// A pseudo-random vector per document: no two documents share one, so exact answers have
/// no ties.
fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| {
            let mut x = (i as u64) << 8 | d as u64;
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 31;
            (x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

fn doc(i: usize) -> Doc {
    let mut d = Doc::new(format!("k{i:03}"))
        .set("n", i as i64)
        .vector("v", vector(i));
    if !i.is_multiple_of(3) {
        d = d.set("cat", if i.is_multiple_of(2) { "even" } else { "odd" });
    }
    if !i.is_multiple_of(4) {
        d = d.set("small", (i as i32) * -3);
    }
    d
}

/// A collection with `n` documents: the first 60 % in sealed segments (two of them), the rest
/// in the writing segment's WAL, and a few deleted.
fn filled(path: &Path, s: CollectionSchema, n: usize) -> Collection {
    let c = Collection::create(path, s, CollectionOptions::default()).unwrap();
    let docs: Vec<Doc> = (0..n).map(doc).collect();
    let a = n * 3 / 10;
    let b = n * 6 / 10;
    c.insert(&docs[..a]).unwrap();
    c.flush().unwrap();
    c.insert(&docs[a..b]).unwrap();
    c.flush().unwrap();
    c.insert(&docs[b..]).unwrap();
    c.delete(&["k001", "k050", &format!("k{:03}", n - 1)])
        .unwrap();
    c
}

fn open(path: &Path) -> Collection {
    Collection::open(path, OpenOptions::default()).unwrap()
}

fn verify_clean(path: &Path) {
    let report = Collection::verify(path, &OpenOptions::default()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

fn count(c: &Collection, filter: &str) -> u64 {
    c.count(Some(filter)).unwrap()
}

fn pks(docs: &[Doc]) -> Vec<String> {
    docs.iter().map(|d| d.pk.clone()).collect()
}

fn field(c: &Collection, pk: &str, name: &str) -> Option<Value> {
    c.fetch(&[pk]).unwrap()[0].fields.get(name).cloned()
}

#[test]
fn add_column_fills_null_or_default_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = filled(&path, schema(Metric::L2, IndexKind::Flat), 100);
    c.add_column(
        FieldSchema::new("score", DataType::Double).nullable(),
        ColumnFill::Null,
    )
    .unwrap();
    c.add_column(
        FieldSchema::new("rank", DataType::Int32).index(ScalarIndex::Inverted),
        ColumnFill::Value(Value::Int64(5)),
    )
    .unwrap();
    let check = |c: &Collection| {
        let s = c.schema();
        assert_eq!(s.fields.len(), 5);
        assert_eq!(s.fields[3].name, "score");
        assert_eq!(s.fields[4].name, "rank");
        assert_eq!(s.fields[4].index, Some(ScalarIndex::Inverted));
        assert_eq!(field(c, "k010", "score"), None);
        assert_eq!(field(c, "k010", "rank"), Some(Value::Int32(5)));
        assert!(c.fetch(&["k099"]).unwrap().is_empty(), "k099 was deleted");
        assert_eq!(count(c, "rank = 5"), 97);
        assert_eq!(count(c, "score IS NULL"), 97);
        assert_eq!(count(c, "rank = 9"), 1);
        assert_eq!(field(c, "new", "score"), Some(Value::Double(0.5)));
        // The old columns are intact.
        assert_eq!(field(c, "k010", "n"), Some(Value::Int64(10)));
        assert_eq!(
            count(c, "cat = 'even'"),
            doc_count(|i| i % 3 != 0 && i % 2 == 0)
        );
    };
    c.insert(&[Doc::new("new")
        .set("n", -1i64)
        .set("rank", 9)
        .set("score", 0.5)
        .vector("v", vector(7))])
        .unwrap();
    check(&c);
    // A document without the non-nullable new column is refused now.
    let err = c
        .insert(&[Doc::new("x").set("n", 1i64).vector("v", vector(1))])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidDoc { .. }), "{err}");
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    check(&c);
    // Scans and JSON see the new columns.
    let page = c
        .scan(&ScanOptions::default().limit(1000).filter("rank = 9"), None)
        .unwrap();
    assert_eq!(pks(&page.docs), ["new"]);
    let json = page.docs[0].to_json();
    assert_eq!(json["fields"]["rank"], 9);
    assert_eq!(json["fields"]["score"], 0.5);
    // JSON documents are read with the new schema.
    let text = r#"{"pk": "j", "fields": {"n": 3, "rank": 4}, "vectors": {"v": [0,0,0,0,0,0,0,1]}}"#;
    let d = Doc::from_json_str(text, &c.schema()).unwrap();
    c.insert(&[d]).unwrap();
    assert_eq!(field(&c, "j", "rank"), Some(Value::Int32(4)));
}

/// Live documents among `k000..k099` of [`filled`] with 100 (k001, k050, k099 deleted).
fn doc_count(pred: impl Fn(usize) -> bool) -> u64 {
    (0..100)
        .filter(|&i| ![1, 50, 99].contains(&i) && pred(i))
        .count() as u64
}

#[test]
fn drop_column_removes_values_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let mut s = schema(Metric::L2, IndexKind::Flat);
    s.fields[1].index = Some(ScalarIndex::Inverted);
    let c = filled(&path, s, 100);
    c.drop_column("cat").unwrap();
    let check = |c: &Collection| {
        let s = c.schema();
        assert_eq!(
            s.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["n", "small"]
        );
        let err = c.count(Some("cat = 'even'")).unwrap_err();
        assert!(matches!(err, Error::InvalidFilter { .. }), "{err}");
        let d = &c.fetch(&["k002"]).unwrap()[0];
        assert!(!d.fields.contains_key("cat"));
        assert_eq!(d.fields["n"], Value::Int64(2));
        assert_eq!(d.fields["small"], Value::Int32(-6));
        assert_eq!(count(c, "small IS NULL"), doc_count(|i| i % 4 == 0));
        assert_eq!(c.stats().doc_count, 97);
    };
    check(&c);
    let err = c
        .insert(&[Doc::new("x")
            .set("n", 1i64)
            .set("cat", "a")
            .vector("v", vector(1))])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidDoc { .. }), "{err}");
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    check(&c);
    // The name is free again, with another type.
    c.add_column(
        FieldSchema::new("cat", DataType::UInt32).nullable(),
        ColumnFill::Null,
    )
    .unwrap();
    assert_eq!(count(&c, "cat IS NULL"), 97);
}

#[test]
fn alter_column_renames_and_widens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = filled(&path, schema(Metric::L2, IndexKind::Flat), 100);
    // A rename only changes the manifest.
    c.alter_column("n", Some("num"), None).unwrap();
    assert_eq!(count(&c, "num < 10"), 9);
    assert!(c.count(Some("n < 10")).is_err());
    // Widening rewrites the column: int32 → int64, NULLs stay NULL.
    c.alter_column("small", Some("wide"), Some(DataType::Int64))
        .unwrap();
    let check = |c: &Collection| {
        let s = c.schema();
        assert_eq!(s.fields[0].name, "num");
        assert_eq!(s.fields[2].name, "wide");
        assert_eq!(s.fields[2].data_type, DataType::Int64);
        assert!(s.fields[2].nullable);
        assert_eq!(field(c, "k002", "wide"), Some(Value::Int64(-6)));
        assert_eq!(field(c, "k004", "wide"), None);
        assert_eq!(field(c, "k098", "wide"), Some(Value::Int64(-294)));
        assert_eq!(
            count(c, "wide <= -150"),
            doc_count(|i| i % 4 != 0 && i >= 50)
        );
        assert_eq!(count(c, "num >= 90"), 9);
    };
    check(&c);
    // New writes take the new type (an int64 beyond int32's range).
    c.upsert(&[Doc::new("k002")
        .set("num", 2i64)
        .set("wide", 1i64 << 40)
        .vector("v", vector(2))])
        .unwrap();
    assert_eq!(field(&c, "k002", "wide"), Some(Value::Int64(1 << 40)));
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    assert_eq!(field(&c, "k002", "wide"), Some(Value::Int64(1 << 40)));
    assert_eq!(field(&c, "k006", "wide"), Some(Value::Int64(-18)));
    assert_eq!(count(&c, "num >= 90"), 9);
    // Renaming back and float → double.
    c.alter_column("num", Some("n"), None).unwrap();
    c.add_column(
        FieldSchema::new("f", DataType::Float),
        ColumnFill::Value(Value::Float(1.25)),
    )
    .unwrap();
    c.alter_column("f", None, Some(DataType::Double)).unwrap();
    assert_eq!(field(&c, "k003", "f"), Some(Value::Double(1.25)));
    assert_eq!(count(&c, "n < 10"), 9);
}

#[test]
fn scalar_index_changes_keep_filter_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = filled(&path, schema(Metric::L2, IndexKind::Flat), 100);
    let filters = [
        "cat = 'even'",
        "cat IN ('odd')",
        "n = 7 AND cat = 'odd'",
        "cat IS NULL",
    ];
    let before: Vec<Vec<String>> = filters
        .iter()
        .map(|f| pks(&c.query(&Query::new().topk(1000).filter(*f)).unwrap()))
        .collect();
    c.create_index("cat", ScalarIndex::Inverted).unwrap();
    assert_eq!(c.schema().fields[1].index, Some(ScalarIndex::Inverted));
    // The same index again is a no-op.
    c.create_index("cat", IndexParam::Inverted).unwrap();
    let now = |c: &Collection| -> Vec<Vec<String>> {
        filters
            .iter()
            .map(|f| pks(&c.query(&Query::new().topk(1000).filter(*f)).unwrap()))
            .collect()
    };
    assert_eq!(now(&c), before);
    c.close().unwrap();
    let c = open(&path);
    assert_eq!(c.schema().fields[1].index, Some(ScalarIndex::Inverted));
    assert_eq!(now(&c), before);
    c.drop_index("cat").unwrap();
    c.drop_index("cat").unwrap();
    assert_eq!(c.schema().fields[1].index, None);
    assert_eq!(now(&c), before);
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    assert_eq!(c.schema().fields[1].index, None);
    assert_eq!(now(&c), before);
}

/// Search results of every query vector, pks and scores.
fn answers(c: &Collection) -> Vec<Vec<(String, f32)>> {
    (0..20)
        .map(|q| {
            let mut x = vector(q * 7 + 3);
            x[0] += 0.3;
            c.search("v", &x, &SearchOptions::new().topk(10).ef(400))
                .unwrap()
                .into_iter()
                .map(|d| (d.pk, d.score))
                .collect()
        })
        .collect()
}

fn assert_same_answers(got: &[Vec<(String, f32)>], want: &[Vec<(String, f32)>]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        let gp: Vec<&String> = g.iter().map(|(p, _)| p).collect();
        let wp: Vec<&String> = w.iter().map(|(p, _)| p).collect();
        assert_eq!(gp, wp);
        for ((_, a), (_, b)) in g.iter().zip(w) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}

#[test]
fn vector_index_changes_answer_like_a_fresh_collection() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = |name: &str, index: IndexKind| {
        let c = filled(&dir.path().join(name), schema(Metric::Cosine, index), 300);
        c.wait_idle().unwrap();
        answers(&c)
    };
    let want_flat = fresh("flat", IndexKind::Flat);
    let want_hnsw = fresh("hnsw", HNSW);
    let path = dir.path().join("c");
    let c = filled(&path, schema(Metric::Cosine, IndexKind::Flat), 300);
    assert_same_answers(&answers(&c), &want_flat);

    c.create_index("v", HNSW).unwrap();
    assert_eq!(c.schema().vectors[0].index, HNSW);
    assert_eq!(c.schema().vectors[0].metric, Metric::Cosine);
    assert_same_answers(&answers(&c), &want_hnsw);
    let graphs = &c.stats().graphs;
    assert_eq!(graphs.len(), 1);
    assert_eq!(graphs[0].rows_covered, 300, "{graphs:?}");
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    assert_same_answers(&answers(&c), &want_hnsw);

    // New HNSW parameters: graphs rebuilt.
    let wider = IndexKind::Hnsw {
        m: 12,
        ef_construction: 100,
    };
    c.create_index("v", wider).unwrap();
    assert_same_answers(&answers(&c), &want_hnsw);
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    assert_eq!(c.schema().vectors[0].index, wider);
    // Writes go on with the new index.
    c.insert(&[doc(1000)]).unwrap();
    c.delete(&["k1000"]).unwrap();

    // Back to flat: the metric stays cosine (zvec 0.8.0 would switch to IP).
    c.drop_index("v").unwrap();
    assert_eq!(c.schema().vectors[0].index, IndexKind::Flat);
    assert_eq!(c.schema().vectors[0].metric, Metric::Cosine);
    assert_same_answers(&answers(&c), &want_flat);
    assert!(c.stats().graphs.is_empty());
    c.drop_index("v").unwrap();
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    assert_same_answers(&answers(&c), &want_flat);
    // No graph file is left behind.
    let graph_files = walk(&path)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "graph"))
        .count();
    assert_eq!(graph_files, 0);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn refusals_use_zvecs_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = filled(&path, schema(Metric::L2, IndexKind::Flat), 30);
    let msg = |r: stratavec::Result<()>| r.unwrap_err().to_string();
    assert_eq!(
        msg(c.add_column(
            FieldSchema::new("z", DataType::String).nullable(),
            ColumnFill::Null
        )),
        "this operation requires a numeric field; field[z] has type STRING"
    );
    assert_eq!(
        msg(c.add_column(FieldSchema::new("x", DataType::Int32), ColumnFill::Null)),
        "non-nullable field[x] requires an expression when added"
    );
    assert_eq!(
        msg(c.add_column(
            FieldSchema::new("x", DataType::Int32),
            ColumnFill::Value(Value::Null)
        )),
        "non-nullable field[x] requires an expression when added"
    );
    assert!(matches!(
        c.add_column(FieldSchema::new("x", DataType::Int32), ColumnFill::Null),
        Err(Error::DefaultRequired { .. })
    ));
    assert!(msg(c.add_column(
        FieldSchema::new("x", DataType::Int32),
        ColumnFill::Value("a".into())
    ))
    .starts_with("Invalid schema: default of field[x]"));
    assert_eq!(
        msg(c.add_column(
            FieldSchema::new("n", DataType::Int32).nullable(),
            ColumnFill::Null
        )),
        "Invalid schema: field[n] already exists in collection schema"
    );
    assert_eq!(
        msg(c.add_column(
            FieldSchema::new("v", DataType::Int32).nullable(),
            ColumnFill::Null
        )),
        "Invalid schema: field[v] already exists in collection schema"
    );
    assert!(msg(c.add_column(
        FieldSchema::new("bad name", DataType::Int32).nullable(),
        ColumnFill::Null
    ))
    .starts_with("Invalid schema: field name"));
    assert_eq!(
        msg(c.create_index("n", HNSW)),
        "Invalid schema: scalar field[n] does not support vector index params"
    );
    assert_eq!(
        msg(c.create_index("v", ScalarIndex::Inverted)),
        "Invalid schema: vector field[v] does not support scalar index params"
    );
    assert_eq!(
        msg(c.drop_column("v")),
        "this operation requires a numeric field; field[v] has type VECTOR_FP32"
    );
    assert_eq!(
        msg(c.alter_column("v", Some("w"), None)),
        "this operation requires a numeric field; field[v] has type VECTOR_FP32"
    );
    assert_eq!(
        msg(c.alter_column("cat", None, Some(DataType::Int64))),
        "this operation requires a numeric field; field[cat] has type STRING"
    );
    assert_eq!(
        msg(c.alter_column("n", None, Some(DataType::Int32))),
        "Invalid schema: field[n] cannot change type from int64 to int32 without loss"
    );
    assert!(matches!(
        c.alter_column("small", None, Some(DataType::Float)),
        Err(Error::LossyTypeChange { .. })
    ));
    assert_eq!(
        msg(c.alter_column("n", Some("cat"), None)),
        "Invalid schema: field[cat] already exists in collection schema"
    );
    for r in [
        c.drop_column("zzz"),
        c.alter_column("zzz", Some("y"), None),
        c.create_index("zzz", ScalarIndex::Inverted),
        c.drop_index("zzz"),
    ] {
        assert_eq!(
            msg(r),
            "Invalid schema: 'zzz' not found in collection schema"
        );
    }
    // An inverted index on a float column is refused by the schema rules.
    c.add_column(
        FieldSchema::new("f", DataType::Float).nullable(),
        ColumnFill::Null,
    )
    .unwrap();
    assert!(c.create_index("f", ScalarIndex::Inverted).is_err());
    // HNSW parameters out of range.
    assert!(c
        .create_index(
            "v",
            IndexKind::Hnsw {
                m: 1,
                ef_construction: 10
            }
        )
        .is_err());
    // Every refusal is an invalid argument and changed nothing.
    assert!(c.drop_column("v").unwrap_err().is_invalid_argument());
    assert_eq!(c.schema().fields.len(), 4);
    assert_eq!(c.stats().doc_count, 28);
    c.insert(&[Doc::new("after").set("n", 1i64).vector("v", vector(0))])
        .unwrap();
    c.close().unwrap();

    // A read-only handle refuses every change with the read-only error.
    let ro = Collection::open(&path, OpenOptions::default().read_only(true)).unwrap();
    let ro_msg = "Collection is opened in read-only mode";
    for r in [
        ro.add_column(
            FieldSchema::new("q", DataType::Int32).nullable(),
            ColumnFill::Null,
        ),
        ro.drop_column("n"),
        ro.alter_column("n", Some("m"), None),
        ro.create_index("n", ScalarIndex::Inverted),
        ro.drop_index("v"),
    ] {
        let e = r.unwrap_err();
        assert!(matches!(e, Error::ReadOnly), "{e}");
        assert_eq!(e.to_string(), ro_msg);
    }
}

#[test]
fn changes_compose_and_writes_continue_between_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = filled(&path, schema(Metric::L2, HNSW), 120);
    c.add_column(
        FieldSchema::new("a", DataType::UInt32).nullable(),
        ColumnFill::Null,
    )
    .unwrap();
    c.upsert(&[doc(5).set("a", 7u32)]).unwrap();
    c.alter_column("a", Some("b"), Some(DataType::UInt64))
        .unwrap();
    c.update(&[Doc::new("k006").set("b", 9u64)]).unwrap();
    c.drop_column("small").unwrap();
    c.optimize().unwrap();
    c.create_index("b", ScalarIndex::Inverted).unwrap();
    c.delete(&["k007"]).unwrap();
    let check = |c: &Collection| {
        assert_eq!(
            pks(&c.query(&Query::new().topk(100).filter("b >= 7")).unwrap()),
            ["k005", "k006"]
        );
        assert_eq!(field(c, "k005", "b"), Some(Value::UInt64(7)));
        assert_eq!(field(c, "k005", "small"), None);
        assert_eq!(c.stats().doc_count, 120 - 3 - 1);
        assert!(c.fetch(&["k007"]).unwrap().is_empty());
    };
    check(&c);
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    check(&c);
}

#[test]
fn readers_keep_correct_answers_while_changes_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Arc::new(filled(&path, schema(Metric::L2, IndexKind::Flat), 400));
    let want_filtered = count(&c, "n >= 100 AND n < 200");
    fn exact(c: &Collection) -> Vec<String> {
        pks(&c
            .search("v", &vector(123), &SearchOptions::new().topk(5).ef(1000))
            .unwrap())
    }
    let want_hits = exact(&c);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let c = c.clone();
            let stop = stop.clone();
            let want_hits = want_hits.clone();
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) || rounds < 5 {
                    match t {
                        0 => assert_eq!(count(&c, "n >= 100 AND n < 200"), want_filtered),
                        1 => assert_eq!(exact(&c), want_hits),
                        _ => {
                            let d = &c.fetch(&["k123"]).unwrap()[0];
                            assert_eq!(d.fields["n"], Value::Int64(123));
                            assert_eq!(d.vectors.len(), 1);
                            // Whatever the schema of the snapshot, its values fit it.
                            let page = c
                                .scan(&ScanOptions::default().limit(50).filter("n < 50"), None)
                                .unwrap();
                            assert_eq!(page.docs.len(), 49);
                        }
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    for _ in 0..2 {
        c.add_column(
            FieldSchema::new("extra", DataType::Int32),
            ColumnFill::Value(Value::Int32(1)),
        )
        .unwrap();
        c.alter_column("extra", Some("extra2"), Some(DataType::Int64))
            .unwrap();
        c.create_index("v", HNSW).unwrap();
        c.create_index("cat", ScalarIndex::Inverted).unwrap();
        c.drop_column("small").unwrap();
        c.drop_index("v").unwrap();
        c.drop_index("cat").unwrap();
        c.drop_column("extra2").unwrap();
        c.add_column(
            FieldSchema::new("small", DataType::Int32).nullable(),
            ColumnFill::Null,
        )
        .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("a reader failed") >= 5);
    }
    assert_eq!(count(&c, "n >= 100 AND n < 200"), want_filtered);
}

#[test]
fn a_reader_snapshot_taken_before_a_change_stays_consistent() {
    // A scan started before a drop keeps paging with its cursor afterwards: each page is
    // read with the schema of its own snapshot.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = filled(&path, schema(Metric::L2, IndexKind::Flat), 60);
    let first = c.scan(&ScanOptions::default().limit(10), None).unwrap();
    assert!(first.docs[2].fields.contains_key("small"));
    c.drop_column("small").unwrap();
    let second = c
        .scan(&ScanOptions::default().limit(10), first.next)
        .unwrap();
    assert_eq!(second.docs.len(), 10);
    assert!(second.docs.iter().all(|d| !d.fields.contains_key("small")));
}

fn expr(text: &str) -> ColumnFill {
    ColumnFill::Expression(text.into())
}

#[test]
fn add_column_computes_an_expression_per_document() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    // k000..k059 sealed, k060..k099 in the writing segment when the first change seals it.
    let c = filled(&path, schema(Metric::L2, IndexKind::Flat), 100);
    c.add_column(FieldSchema::new("twice", DataType::Int64), expr("n * 2"))
        .unwrap();
    c.add_column(
        FieldSchema::new("half", DataType::Double),
        expr("n / 2.0 + 0.25"),
    )
    .unwrap();
    // Integer division truncates toward zero; NULL where `small` is NULL.
    c.add_column(
        FieldSchema::new("q", DataType::Int32).nullable(),
        expr("(n + small) / 2"),
    )
    .unwrap();
    c.add_column(FieldSchema::new("five", DataType::UInt32), expr("5"))
        .unwrap();
    c.add_column(
        FieldSchema::new("rest", DataType::UInt64).index(ScalarIndex::Inverted),
        expr("n % 7"),
    )
    .unwrap();
    // Over a float column added by an expression and a nullable int column.
    c.add_column(
        FieldSchema::new("mix", DataType::Float).nullable(),
        expr("-half * `small`"),
    )
    .unwrap();
    let check = |c: &Collection| {
        for i in (0..100usize).filter(|i| ![1, 50, 99].contains(i)) {
            let pk = format!("k{i:03}");
            let n = i as i64;
            let small = (!i.is_multiple_of(4)).then_some(n * -3);
            assert_eq!(field(c, &pk, "twice"), Some(Value::Int64(2 * n)), "{pk}");
            let half = n as f64 / 2.0 + 0.25;
            assert_eq!(field(c, &pk, "half"), Some(Value::Double(half)), "{pk}");
            let q = small.map(|s| Value::Int32(((n + s) / 2) as i32));
            assert_eq!(field(c, &pk, "q"), q, "{pk}");
            assert_eq!(field(c, &pk, "five"), Some(Value::UInt32(5)), "{pk}");
            assert_eq!(field(c, &pk, "rest"), Some(Value::UInt64(n as u64 % 7)));
            let mix = small.map(|s| Value::Float((-half * s as f64) as f32));
            assert_eq!(field(c, &pk, "mix"), mix, "{pk}");
        }
        assert_eq!(field(c, "k002", "q"), Some(Value::Int32(-2)));
        assert_eq!(field(c, "k003", "q"), Some(Value::Int32(-3)));
        // Usable in filters, and through the inverted index.
        assert_eq!(count(c, "twice >= 100"), doc_count(|i| i >= 50));
        assert_eq!(count(c, "q IS NULL"), doc_count(|i| i % 4 == 0));
        assert_eq!(count(c, "rest = 3"), doc_count(|i| i % 7 == 3));
        assert_eq!(count(c, "five = 5 AND half < 5"), doc_count(|i| i < 10));
        assert_eq!(
            pks(&c.query(&Query::new().topk(10).filter("mix > 100")).unwrap()),
            (0..100)
                .filter(|&i| ![1, 50, 99].contains(&i) && i % 4 != 0)
                .filter(|&i| (i as f64 / 2.0 + 0.25) * 3.0 * i as f64 > 100.0)
                .take(10)
                .map(|i| format!("k{i:03}"))
                .collect::<Vec<_>>()
        );
    };
    check(&c);
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    check(&c);
    let s = c.schema();
    assert_eq!(s.fields.len(), 9);
    assert!(!s.fields[3].nullable);
    assert_eq!(s.fields[7].index, Some(ScalarIndex::Inverted));
}

#[test]
fn an_expression_reaches_unflushed_rows_and_skips_deleted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Collection::create(
        &path,
        schema(Metric::L2, IndexKind::Flat),
        CollectionOptions::default(),
    )
    .unwrap();
    // Everything in the writing segment: inserted, replaced, deleted, never flushed.
    c.insert(&(0..20).map(doc).collect::<Vec<_>>()).unwrap();
    c.upsert(&[doc(5).set("n", 500i64)]).unwrap();
    c.update(&[Doc::new("k006").set("n", 600i64)]).unwrap();
    // The deleted row and the replaced rows would divide by zero: they are not computed.
    c.update(&[Doc::new("k007").set("n", 0i64)]).unwrap();
    c.update(&[Doc::new("k007").set("n", 7i64)]).unwrap();
    c.insert(&[doc(20).set("n", 0i64)]).unwrap();
    c.delete(&["k020"]).unwrap();
    assert_eq!(c.stats().segments, 0);
    let refused = c
        .add_column(
            FieldSchema::new("inv", DataType::Double).nullable(),
            expr("1000 / n"),
        )
        .unwrap_err();
    assert!(
        matches!(&refused, Error::ExpressionFailed { pk, .. } if pk == "k000"),
        "{refused:?}"
    );
    // `k000` has n = 0: refused, nothing changed.
    c.delete(&["k000"]).unwrap();
    c.add_column(FieldSchema::new("inv", DataType::Int64), expr("1000 / n"))
        .unwrap();
    let check = |c: &Collection| {
        assert_eq!(field(c, "k005", "inv"), Some(Value::Int64(2)));
        assert_eq!(field(c, "k006", "inv"), Some(Value::Int64(1)));
        assert_eq!(field(c, "k007", "inv"), Some(Value::Int64(142)));
        assert_eq!(field(c, "k019", "inv"), Some(Value::Int64(52)));
        // n = 1, 2, 3, 4, 7, 8, 9, 10 (k005 and k006 were given large n).
        assert_eq!(count(c, "inv >= 100"), 8);
    };
    check(&c);
    assert_eq!(c.stats().doc_count, 19);
    // Sealed rows and new writing-segment rows together.
    c.insert(&[doc(30)]).unwrap_err(); // `inv` is required now
    c.insert(&[doc(30).set("inv", -1i64)]).unwrap();
    c.add_column(FieldSchema::new("again", DataType::Int64), expr("inv + 1"))
        .unwrap();
    assert_eq!(field(&c, "k030", "again"), Some(Value::Int64(0)));
    assert_eq!(field(&c, "k019", "again"), Some(Value::Int64(53)));
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    check(&c);
    assert_eq!(field(&c, "k030", "again"), Some(Value::Int64(0)));
    assert_eq!(c.stats().doc_count, 20);
}

#[test]
fn refused_expressions_leave_the_collection_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = filled(&path, schema(Metric::L2, IndexKind::Flat), 60);
    let before = |c: &Collection| {
        assert_eq!(c.schema().fields.len(), 3);
        assert_eq!(c.stats().doc_count, 57);
        assert_eq!(field(c, "k010", "n"), Some(Value::Int64(10)));
        assert_eq!(field(c, "k058", "small"), Some(Value::Int32(-174)));
    };
    let add = |name: &str, t: DataType, e: &str| {
        c.add_column(FieldSchema::new(name, t).nullable(), expr(e))
            .unwrap_err()
    };
    // Per document: the first live document without a value is named.
    let e = add("x", DataType::Int64, "100 / (n - 10)");
    match &e {
        Error::ExpressionFailed { field, pk, reason } => {
            assert_eq!((field.as_str(), pk.as_str()), ("x", "k010"));
            assert_eq!(reason, "divide by zero");
        }
        e => panic!("{e}"),
    }
    assert_eq!(
        e.to_string(),
        "evaluate expression failed:divide by zero for field[x] of doc[k010]"
    );
    let e = add("x", DataType::Double, "n % (n - 20.0)");
    assert!(
        matches!(&e, Error::ExpressionFailed { pk, .. } if pk == "k020"),
        "{e}"
    );
    // Out of the field's range (k001 is deleted), and beyond any integer.
    let e = add("x", DataType::Int64, "n * 9223372036854775807");
    assert!(
        matches!(&e, Error::ExpressionFailed { pk, reason, .. }
            if pk == "k002" && reason.contains("out of range for int64")),
        "{e}"
    );
    let e = add("x", DataType::Int32, "small * 1000000000");
    assert!(
        matches!(&e, Error::ExpressionFailed { pk, .. } if pk == "k002"),
        "{e}"
    );
    let e = add(
        "x",
        DataType::Int64,
        "(n + 2) * 9223372036854775807 * 9223372036854775807 * 4",
    );
    assert!(
        matches!(&e, Error::ExpressionFailed { pk, reason, .. }
            if pk == "k000" && reason == "arithmetic overflow"),
        "{e}"
    );
    let e = add("x", DataType::Float, "n * 1e38 * 10");
    assert!(
        matches!(&e, Error::ExpressionFailed { pk, .. } if pk == "k002"),
        "{e}"
    );
    // NULL into a non-nullable field.
    let e = c
        .add_column(FieldSchema::new("x", DataType::Int32), expr("small * 2"))
        .unwrap_err();
    assert!(
        matches!(&e, Error::ExpressionFailed { pk, reason, .. }
            if pk == "k000" && reason.contains("NULL")),
        "{e}"
    );
    // Refused before the rows are read.
    assert!(matches!(
        add("x", DataType::Int32, "zz + 1"),
        Error::UnknownField { ref field, usage: stratavec::FieldUsage::Expression } if field == "zz"
    ));
    assert_eq!(
        add("x", DataType::Int32, "zz + 1").to_string(),
        "parse expression failed:Column not found in schema: zz"
    );
    assert_eq!(
        add("x", DataType::Int32, "cat * 2").to_string(),
        "this operation requires a numeric field; field[cat] has type STRING"
    );
    assert!(matches!(
        add("x", DataType::Int32, "v + 1"),
        Error::NotNumericField { .. }
    ));
    for bad in [
        "",
        "n +",
        "n > 1",
        "'a'",
        "abs(n)",
        "n--1",
        "(n",
        "n / 2.0",
        "1 / 0",
        "5000000000",
    ] {
        let e = add("x", DataType::Int32, bad);
        assert!(matches!(e, Error::InvalidExpression { .. }), "{bad}: {e}");
        assert!(e.is_invalid_argument());
    }
    assert_eq!(
        add("x", DataType::Int32, "n > 1").to_string(),
        "parse expression failed:unexpected `>` in [n > 1] (at character 2)"
    );
    before(&c);
    // Not poisoned: writes and changes go on.
    c.insert(&[doc(70)]).unwrap();
    c.add_column(FieldSchema::new("ok", DataType::Int64), expr("n - 1"))
        .unwrap();
    assert_eq!(field(&c, "k070", "ok"), Some(Value::Int64(69)));
    c.drop_column("ok").unwrap();
    c.delete(&["k070"]).unwrap();
    c.close().unwrap();
    verify_clean(&path);
    let c = open(&path);
    before(&c);
}

/// An automatic rotation queues the full writing segment's persist and returns; an
/// `add_column` right after it (nothing written since) must check those rows too, and refuse
/// the change without poisoning the collection.
#[test]
fn an_expression_is_checked_on_rows_whose_persist_is_still_queued() {
    let dir = tempfile::tempdir().unwrap();
    let options = CollectionOptions::default()
        .max_docs_per_segment(50)
        .merge_policy(None);
    let c = Collection::create(
        dir.path().join("c"),
        schema(Metric::L2, IndexKind::Flat),
        options,
    )
    .unwrap();
    // The 50th document fills the segment: its rotation is queued with k000 (n = 0) in it.
    c.insert(&(0..50).map(doc).collect::<Vec<_>>()).unwrap();
    let refused = c
        .add_column(
            FieldSchema::new("inv", DataType::Int64).nullable(),
            expr("1000 / n"),
        )
        .unwrap_err();
    assert!(
        matches!(&refused, Error::ExpressionFailed { pk, .. } if pk == "k000"),
        "{refused:?}"
    );
    assert!(c.schema().field_index("inv").is_none());
    // Not poisoned: writes and the next change go on.
    c.insert(&[doc(50)]).unwrap();
    c.delete(&["k000"]).unwrap();
    c.add_column(
        FieldSchema::new("inv", DataType::Int64).nullable(),
        expr("1000 / n"),
    )
    .unwrap();
    assert_eq!(field(&c, "k004", "inv"), Some(Value::Int64(250)));
}

/// An integer result beyond every 64-bit integer still fits a double column (as `n * 1.0`
/// would), and is refused by an integer one.
#[test]
fn a_large_integer_result_fills_a_double_column() {
    let dir = tempfile::tempdir().unwrap();
    let c = filled(
        &dir.path().join("c"),
        schema(Metric::L2, IndexKind::Flat),
        10,
    );
    let big = "n * 9223372036854775807 * 4";
    let refused = c
        .add_column(FieldSchema::new("i", DataType::Int64).nullable(), expr(big))
        .unwrap_err();
    assert!(
        matches!(&refused, Error::ExpressionFailed { .. }),
        "{refused:?}"
    );
    c.add_column(FieldSchema::new("d", DataType::Double), expr(big))
        .unwrap();
    let want = 3.0 * 9_223_372_036_854_775_807f64 * 4.0;
    assert_eq!(field(&c, "k003", "d"), Some(Value::Double(want)));
    assert_eq!(field(&c, "k000", "d"), Some(Value::Double(0.0)));
}

//! Simulated power loss during schema and index changes: for each change, the power is cut at
//! every storage mutation it makes (sealing the writing segment, writing rewritten segments and
//! graphs, the manifest commit, removing the old files). After the crash the collection opens
//! with the old schema or the new one — the new one whenever the change returned Ok — with
//! every acknowledged document, its values matching that schema, and `verify` finds nothing.

use std::path::Path;
use std::sync::Arc;

use stratavec::storage::{Fault, FaultKind, FaultOp, SimStorage, Storage};
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, IndexKind, Metric,
    OpenOptions, Result, ScalarIndex, Value, VectorSchema,
};

fn path() -> &'static Path {
    Path::new("/db/c")
}

fn fresh_sim() -> SimStorage {
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new("/db")).unwrap();
    sim
}

fn schema() -> CollectionSchema {
    CollectionSchema::new("p")
        .field(FieldSchema::new("n", DataType::Int64))
        .field(FieldSchema::new("s", DataType::String).nullable())
        .field(FieldSchema::new("small", DataType::Int32).nullable())
        .vector(
            VectorSchema::new("v", 4)
                .metric(Metric::Cosine)
                .index(IndexKind::Hnsw {
                    m: 4,
                    ef_construction: 16,
                }),
        )
}

fn doc(i: i64) -> Doc {
    let x = i as f32;
    let mut d = Doc::new(format!("k{i:02}"))
        .set("n", i)
        .vector("v", vec![x, 1.0, -x / 3.0, 0.5]);
    if i % 2 == 0 {
        d = d.set("small", i as i32);
        d = d.set("s", "even");
    }
    d
}

/// Live pks after [`setup`]: k00..k29 without k03.
fn live() -> Vec<i64> {
    (0..30).filter(|&i| i != 3).collect()
}

/// Sealed rows, rows only in the WAL, and a delete: acknowledged under `Always`.
fn setup(sim: &SimStorage) -> Collection {
    let c = Collection::create(
        path(),
        schema(),
        CollectionOptions::default()
            .flush_policy(FlushPolicy::Always)
            .storage(Arc::new(sim.clone())),
    )
    .unwrap();
    c.insert(&(0..20).map(doc).collect::<Vec<_>>()).unwrap();
    c.flush().unwrap();
    c.insert(&(20..30).map(doc).collect::<Vec<_>>()).unwrap();
    c.delete(&["k03"]).unwrap();
    c
}

fn open(sim: &SimStorage) -> Result<Collection> {
    Collection::open(
        path(),
        OpenOptions::default().storage(Arc::new(sim.clone())),
    )
}

type Op = fn(&Collection) -> Result<()>;

fn ops() -> Vec<(&'static str, Op)> {
    vec![
        ("add nullable column", |c| {
            c.add_column(
                FieldSchema::new("z", DataType::Double).nullable(),
                stratavec::ColumnFill::Null,
            )
        }),
        ("add column with default", |c| {
            c.add_column(
                FieldSchema::new("z", DataType::UInt32),
                stratavec::ColumnFill::Value(Value::UInt32(7)),
            )
        }),
        ("drop column", |c| c.drop_column("small")),
        ("rename column", |c| {
            c.alter_column("small", Some("tiny"), None)
        }),
        ("widen column", |c| {
            c.alter_column("small", Some("tiny"), Some(DataType::Int64))
        }),
        ("create inverted index", |c| {
            c.create_index("small", ScalarIndex::Inverted)
        }),
        ("rebuild graphs with new parameters", |c| {
            c.create_index(
                "v",
                IndexKind::Hnsw {
                    m: 6,
                    ef_construction: 24,
                },
            )
        }),
        ("drop vector index", |c| c.drop_index("v")),
    ]
}

/// The collection holds exactly the live documents, with values as `schema` has them.
fn check_contents(c: &Collection, schema: &CollectionSchema, what: &str) {
    let pks: Vec<String> = (0..32).map(|i| format!("k{i:02}")).collect();
    let docs = c.fetch(&pks).unwrap();
    let got: Vec<i64> = docs
        .iter()
        .map(|d| match d.fields.get("n") {
            Some(Value::Int64(n)) => *n,
            other => panic!("{what}: {} has n = {other:?}", d.pk),
        })
        .collect();
    assert_eq!(got, live(), "{what}: documents");
    for d in &docs {
        let Value::Int64(i) = d.fields["n"] else {
            unreachable!()
        };
        assert_eq!(d.vectors.len(), 1, "{what}");
        for f in &schema.fields {
            let v = d.fields.get(&f.name);
            match f.name.as_str() {
                "small" | "tiny" if i % 2 == 0 => {
                    let want = match f.data_type {
                        DataType::Int32 => Value::Int32(i as i32),
                        _ => Value::Int64(i),
                    };
                    assert_eq!(v, Some(&want), "{what}: {} field {}", d.pk, f.name);
                }
                "z" if !f.nullable => {
                    assert_eq!(v, Some(&Value::UInt32(7)), "{what}: {}", d.pk)
                }
                "s" if i % 2 == 0 => assert_eq!(v, Some(&Value::from("even")), "{what}"),
                "n" => {}
                _ => assert_eq!(v, None, "{what}: {} field {}", d.pk, f.name),
            }
        }
    }
    // Filters and searches work with the recovered schema.
    assert_eq!(c.count(Some("n >= 10")).unwrap(), 20, "{what}");
    let hits = c
        .search(
            "v",
            &[5.0, 1.0, -5.0 / 3.0, 0.5],
            &stratavec::SearchOptions::new().topk(1).ef(100),
        )
        .unwrap();
    assert_eq!(hits[0].pk, "k05", "{what}");
}

#[test]
fn power_cut_at_every_step_of_every_change() {
    for (name, op) in ops() {
        // The mutations the change makes, and the schema it leads to.
        let sim = fresh_sim();
        let c = setup(&sim);
        let old = c.schema();
        let before = sim.counts().mutations;
        op(&c).unwrap_or_else(|e| panic!("{name}: {e}"));
        let steps = sim.counts().mutations - before;
        let new = c.schema();
        assert_ne!(*old, *new, "{name}");
        drop(c);
        assert!(steps > 0, "{name}");
        for k in 0..=steps {
            let what = format!("{name}, power cut at mutation {k} of {steps}");
            let sim = fresh_sim();
            let c = setup(&sim);
            sim.inject(Fault {
                op: FaultOp::Mutation,
                nth: k,
                kind: FaultKind::PowerCut,
            });
            let result = op(&c);
            drop(c);
            if k % 2 == 1 {
                sim.crash_torn(k);
            } else {
                sim.crash();
            }
            let c = open(&sim).unwrap_or_else(|e| panic!("{what}: open: {e}"));
            let s = c.schema();
            assert!(
                *s == *old || *s == *new,
                "{what}: the schema is neither the old nor the new one: {s:?}"
            );
            if result.is_ok() {
                assert_eq!(*s, *new, "{what}: an acknowledged change was lost");
            }
            check_contents(&c, &s, &what);
            // The recovered collection takes writes and changes, and reopens.
            let mut d = doc(31);
            if s.fields.iter().any(|f| f.name == "z" && !f.nullable) {
                d = d.set("z", 7u32);
            }
            c.insert(&[d]).unwrap();
            c.delete(&["k31"]).unwrap();
            if *s == *old {
                op(&c).unwrap_or_else(|e| panic!("{what}: the change after recovery: {e}"));
            }
            c.close().unwrap();
            let report = Collection::verify(
                path(),
                &OpenOptions::default().storage(Arc::new(sim.clone())),
            )
            .unwrap();
            assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
            let c = open(&sim).unwrap();
            assert_eq!(*c.schema(), *new, "{what}");
            check_contents(&c, &new, &what);
        }
    }
}

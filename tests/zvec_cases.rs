//! zvec 0.8.0's behavioural cases (reference §5, the numbered rows), as stratavec meets them.
//! Crashes are simulated with `SimStorage` under `Always`: the handle is forgotten (no close,
//! as after a kill) and the power is cut.

use std::path::Path;
use std::sync::Arc;

use stratavec::storage::{SimStorage, Storage};
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, DocStatus, Error, FetchOptions,
    FieldSchema, Metric, OpenOptions, Query, SearchOptions, Value, VectorSchema,
};

const PATH: &str = "/db/c";

fn schema() -> CollectionSchema {
    CollectionSchema::new("c")
        .field(FieldSchema::new("n", DataType::Int64))
        .field(FieldSchema::new("s", DataType::String).nullable())
        .vector(VectorSchema::new("v", 4))
}

fn sim() -> SimStorage {
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new("/db")).unwrap();
    sim
}

fn create(sim: &SimStorage, schema: CollectionSchema) -> Collection {
    Collection::create(
        PATH,
        schema,
        CollectionOptions::default().storage(Arc::new(sim.clone())),
    )
    .unwrap()
}

fn reopen(sim: &SimStorage) -> Collection {
    Collection::open(PATH, OpenOptions::default().storage(Arc::new(sim.clone()))).unwrap()
}

/// A SIGKILL followed by a power loss: nothing closes, nothing unsynced survives.
fn kill(c: Collection, sim: &SimStorage) {
    std::mem::forget(c);
    sim.crash();
}

fn doc(pk: &str, n: i64) -> Doc {
    Doc::new(pk)
        .set("n", n)
        .vector("v", vec![n as f32, 1.0, 0.0, 0.0])
}

fn n_of(c: &Collection, pk: &str) -> Option<i128> {
    c.fetch(&[pk])
        .unwrap()
        .first()
        .and_then(|d| d.get("n")?.as_i128())
}

fn wal_files(sim: &SimStorage) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in sim.list(Path::new(PATH)).unwrap() {
        let dir = Path::new(PATH).join(&entry);
        if entry.parse::<u64>().is_ok() {
            for f in sim.list(&dir).unwrap() {
                if f.ends_with(".wal") {
                    out.push(sim.read(&dir.join(f)).unwrap());
                }
            }
        }
    }
    out
}

#[test]
fn case_10_torn_last_record_then_more_writes_then_kill() {
    let sim = sim();
    let c = create(&sim, schema());
    c.insert(&[doc("prefix", 1)]).unwrap();
    c.insert(&[doc("torn", 2)]).unwrap();
    kill(c, &sim);
    // Tear the last record: cut the WAL 3 bytes short.
    let wal = Path::new(PATH).join("0/0.wal");
    let bytes = sim.read(&wal).unwrap();
    let f = sim.create(&wal).unwrap();
    f.append(&bytes[..bytes.len() - 3]).unwrap();
    f.sync().unwrap();

    let c = reopen(&sim);
    let report = c.open_report().wal.clone().unwrap();
    assert!(report.truncated_bytes > 0, "the torn record was cut");
    assert_eq!(
        report.bytes + report.truncated_bytes,
        bytes.len() as u64 - 3
    );
    assert_eq!(report.records, 1);
    c.insert(&[doc("suffix", 3)]).unwrap();
    kill(c, &sim);
    let c = reopen(&sim);
    assert_eq!(n_of(&c, "prefix"), Some(1));
    assert_eq!(n_of(&c, "suffix"), Some(3));
    assert_eq!(n_of(&c, "torn"), None);
    assert_eq!(c.stats().doc_count, 2);
}

#[test]
fn case_12_upsert_an_existing_pk_twice_then_kill() {
    let sim = sim();
    let c = create(&sim, schema());
    c.insert(&[doc("a", 1)]).unwrap();
    c.upsert(&[doc("a", 2)]).unwrap();
    c.upsert(&[doc("a", 3)]).unwrap();
    kill(c, &sim);
    let c = reopen(&sim);
    assert_eq!(n_of(&c, "a"), Some(3));
    assert_eq!(c.stats().doc_count, 1);
    let hits = c.query(&Query::new().topk(100)).unwrap();
    assert_eq!(hits.len(), 1, "old versions never reappear");
}

#[test]
fn case_16_17_duplicate_pks_on_insert() {
    let sim = sim();
    let c = create(&sim, schema());
    assert_eq!(c.insert(&[doc("a", 1)]).unwrap(), vec![DocStatus::Ok]);
    assert_eq!(
        c.insert(&[doc("a", 2)]).unwrap(),
        vec![DocStatus::AlreadyExists]
    );
    assert_eq!(n_of(&c, "a"), Some(1));
    assert_eq!(
        c.insert(&[doc("b", 1), doc("b", 2)]).unwrap(),
        vec![DocStatus::Ok, DocStatus::AlreadyExists]
    );
    assert_eq!(n_of(&c, "b"), Some(1));
    assert_eq!(c.stats().doc_count, 2);
}

#[test]
fn case_18_one_invalid_doc_rejects_the_whole_batch_and_logs_nothing() {
    let sim = sim();
    let c = create(&sim, schema());
    c.insert(&[doc("a", 1)]).unwrap();
    let before = wal_files(&sim);
    let bad = Doc::new("bad").set("n", 1).vector("v", vec![1.0, 2.0, 3.0]);
    let err = c.insert(&[doc("x", 1), bad, doc("y", 2)]).unwrap_err();
    assert!(
        matches!(err, Error::InvalidDoc { ref pk, .. } if pk == "bad"),
        "{err}"
    );
    assert_eq!(c.stats().doc_count, 1);
    assert!(c.fetch(&["x", "y"]).unwrap().is_empty());
    assert_eq!(wal_files(&sim), before, "nothing was logged");
}

#[test]
fn case_19_batches_of_1024_pass_and_1025_fail() {
    let sim = sim();
    let c = create(&sim, schema());
    let docs: Vec<Doc> = (0..1025).map(|i| doc(&format!("k{i}"), i)).collect();
    let err = c.insert(&docs).unwrap_err();
    assert!(
        err.to_string()
            .contains("Too many docs: 1025 exceeds max write batch size of 1024"),
        "{err}"
    );
    assert_eq!(c.insert(&docs[..1024]).unwrap().len(), 1024);
    assert_eq!(c.stats().doc_count, 1024);
}

#[test]
fn case_20_21_update_merges_and_reports_missing_keys() {
    let sim = sim();
    let c = create(&sim, schema());
    c.insert(&[doc("a", 1).set("s", "keep")]).unwrap();
    assert_eq!(
        c.update(&[Doc::new("a").set("n", 5)]).unwrap(),
        vec![DocStatus::Ok]
    );
    let a = &c.fetch(&["a"]).unwrap()[0];
    assert_eq!(a.get("n"), Some(&Value::Int64(5)));
    assert_eq!(a.get("s").and_then(Value::as_str), Some("keep"));
    assert_eq!(a.vectors["v"], vec![1.0, 1.0, 0.0, 0.0], "vector kept");
    // Null clears a nullable field.
    c.update(&[Doc::new("a").set("s", Value::Null)]).unwrap();
    assert_eq!(c.fetch(&["a"]).unwrap()[0].get("s"), None);
    assert_eq!(
        c.update(&[Doc::new("zz").set("n", 1)]).unwrap(),
        vec![DocStatus::NotFound]
    );
    c.delete(&["a"]).unwrap();
    assert_eq!(
        c.update(&[Doc::new("a").set("n", 1)]).unwrap(),
        vec![DocStatus::NotFound]
    );
    // A non-nullable field cannot be cleared.
    c.insert(&[doc("b", 1)]).unwrap();
    assert!(matches!(
        c.update(&[Doc::new("b").set("n", Value::Null)]),
        Err(Error::InvalidDoc { .. })
    ));
}

#[test]
fn case_22_upsert_requires_every_field() {
    let sim = sim();
    let c = create(&sim, schema());
    let err = c
        .upsert(&[Doc::new("a").vector("v", vec![0.0; 4])])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("field[n] is required but not provided"),
        "{err}"
    );
    let err = c.upsert(&[Doc::new("a").set("n", 1)]).unwrap_err();
    assert!(
        err.to_string()
            .contains("field[v] is required but not provided"),
        "{err}"
    );
    // A nullable field may be omitted.
    assert_eq!(c.upsert(&[doc("a", 1)]).unwrap(), vec![DocStatus::Ok]);
}

#[test]
fn case_23_24_delete_twice_then_reinsert() {
    let sim = sim();
    let c = create(&sim, schema());
    c.insert(&[doc("a", 1)]).unwrap();
    assert_eq!(c.delete(&["a"]).unwrap(), vec![DocStatus::Ok]);
    assert_eq!(c.delete(&["a"]).unwrap(), vec![DocStatus::NotFound]);
    assert_eq!(c.insert(&[doc("a", 2)]).unwrap(), vec![DocStatus::Ok]);
    assert_eq!(n_of(&c, "a"), Some(2));
    c.flush().unwrap();
    kill(c, &sim);
    let c = reopen(&sim);
    assert_eq!(n_of(&c, "a"), Some(2));
}

#[test]
fn case_25_26_fetch_edge_cases_and_zero_score() {
    let sim = sim();
    let c = create(&sim, schema());
    c.insert(&[doc("a", 1)]).unwrap();
    assert!(c.fetch::<&str>(&[]).unwrap().is_empty());
    assert!(c.fetch(&["missing"]).unwrap().is_empty());
    let got = c.fetch(&["a", "a", "missing"]).unwrap();
    assert_eq!(got.len(), 1, "duplicates collapsed");
    assert_eq!(got[0].score, 0.0);
    let opts = FetchOptions {
        output_fields: Some(vec!["s".into()]),
        include_vector: false,
    };
    let got = c.fetch_with(&["a"], &opts).unwrap();
    assert!(got[0].fields.is_empty() && got[0].vectors.is_empty());
}

#[test]
fn case_27_primary_key_rules() {
    let sim = sim();
    let c = create(&sim, schema());
    let long = "p".repeat(1025);
    for (pk, msg) in [
        ("", "id must not be empty"),
        (long.as_str(), "exceeds 1024 bytes"),
        ("doc\0id", "null character"),
        ("doc\nid", "newline"),
    ] {
        let err = c.insert(&[doc(pk, 1)]).unwrap_err();
        assert!(err.to_string().contains(msg), "{pk:?}: {err}");
    }
    let ok_1024 = "a".repeat(1024);
    for pk in [" ", "订单:2026", ok_1024.as_str(), "a/b!@#$%+=.-_"] {
        assert_eq!(
            c.insert(&[doc(pk, 1)]).unwrap(),
            vec![DocStatus::Ok],
            "{pk:?}"
        );
        assert_eq!(c.fetch(&[pk]).unwrap().len(), 1);
    }
}

#[test]
fn case_28_out_of_range_integers_are_rejected() {
    let sim = sim();
    let s = CollectionSchema::new("c")
        .field(FieldSchema::new("i32", DataType::Int32).nullable())
        .field(FieldSchema::new("u32", DataType::UInt32).nullable())
        .field(FieldSchema::new("u64", DataType::UInt64).nullable())
        .vector(VectorSchema::new("v", 1));
    let c = create(&sim, s);
    let base = || Doc::new("d").vector("v", vec![0.0]);
    for (field, value) in [
        ("i32", Value::Int64(2_147_483_648)),
        ("u32", Value::Int64(-1)),
        ("u64", Value::Double(18_446_744_073_709_551_616.0)),
        ("u64", Value::Int64(-1)),
        ("i32", Value::String("1".into())),
    ] {
        let err = c.insert(&[base().set(field, value.clone())]).unwrap_err();
        assert!(
            matches!(err, Error::InvalidDoc { .. }),
            "{field} = {value:?}: {err}"
        );
        assert!(err.to_string().contains(field), "names the field: {err}");
    }
    c.insert(&[base()
        .set("i32", 2_147_483_647i64)
        .set("u32", 4_294_967_295i64)
        .set("u64", u64::MAX)])
        .unwrap();
    let d = &c.fetch(&["d"]).unwrap()[0];
    assert_eq!(d.get("i32"), Some(&Value::Int32(i32::MAX)));
    assert_eq!(d.get("u64"), Some(&Value::UInt64(u64::MAX)));
}

#[test]
fn case_29_dimension_mismatch_on_insert_and_query() {
    let sim = sim();
    let c = create(&sim, schema());
    let err = c
        .insert(&[Doc::new("w3").set("n", 1).vector("v", vec![0.0; 3])])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid doc[w3]: field[v] dimension mismatch, expected 4 but got 3"
    );
    let err = c.search("v", &[0.0; 5], &SearchOptions::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("dimension mismatch, expected 4 but got 5"),
        "{err}"
    );
    let err = c
        .insert(&[Doc::new("nan")
            .set("n", 1)
            .vector("v", vec![0.0, f32::NAN, 0.0, 0.0])])
        .unwrap_err();
    assert!(err.to_string().contains("finite"), "{err}");
}

#[test]
fn case_39_query_without_a_vector_lists_documents_in_insertion_order() {
    let sim = sim();
    let c = create(&sim, schema());
    for i in 0..5 {
        c.insert(&[doc(&format!("k{}", 4 - i), i)]).unwrap();
    }
    let docs = c.query(&Query::new()).unwrap();
    let pks: Vec<&str> = docs.iter().map(|d| d.pk.as_str()).collect();
    assert_eq!(pks, ["k4", "k3", "k2", "k1", "k0"]);
    assert!(docs.iter().all(|d| d.score == 0.0));
    assert_eq!(c.query(&Query::new().topk(2)).unwrap().len(), 2);
}

#[test]
fn case_41_scores_follow_zvecs_conventions() {
    let sim = sim();
    let s = CollectionSchema::new("c")
        .vector(VectorSchema::new("l2", 2).metric(Metric::L2))
        .vector(VectorSchema::new("ip", 2).metric(Metric::Ip))
        .vector(VectorSchema::new("cos", 2).metric(Metric::Cosine));
    let c = create(&sim, s);
    let d = |pk: &str, v: [f32; 2]| {
        Doc::new(pk)
            .vector("l2", v.to_vec())
            .vector("ip", v.to_vec())
            .vector("cos", v.to_vec())
    };
    c.insert(&[d("a", [1.0, 0.0]), d("b", [0.0, 2.0]), d("c", [3.0, 4.0])])
        .unwrap();
    let q = [1.0f32, 1.0];
    let get = |field: &str| -> Vec<(String, f32)> {
        c.search(field, &q, &SearchOptions::new())
            .unwrap()
            .into_iter()
            .map(|h| (h.pk, h.score))
            .collect()
    };
    assert_eq!(
        get("l2"),
        vec![("a".into(), 1.0), ("b".into(), 2.0), ("c".into(), 13.0)]
    );
    assert_eq!(
        get("ip"),
        vec![("c".into(), 7.0), ("b".into(), 2.0), ("a".into(), 1.0)]
    );
    let cos = get("cos");
    let expect =
        |v: [f32; 2]| 1.0 - (v[0] + v[1]) / (2f32.sqrt() * (v[0] * v[0] + v[1] * v[1]).sqrt());
    assert_eq!(cos[0].0, "c");
    assert!((cos[0].1 - expect([3.0, 4.0])).abs() < 1e-6);
    assert!((cos[1].1 - expect([1.0, 0.0])).abs() < 1e-6);
    // Ties break by primary key, whatever the insertion order.
    c.insert(&[d("z", [1.0, 0.0]), d("m", [1.0, 0.0])]).unwrap();
    let l2: Vec<String> = get("l2").into_iter().map(|h| h.0).collect();
    assert_eq!(&l2[..3], ["a", "m", "z"]);
}

#[test]
fn case_42_topk_bounds() {
    let sim = sim();
    let c = create(&sim, schema());
    c.insert(&[doc("a", 1)]).unwrap();
    for k in [0, 100_001] {
        let err = c
            .search("v", &[0.0; 4], &SearchOptions::new().topk(k))
            .unwrap_err();
        assert!(err.to_string().contains("topk"), "{err}");
    }
    assert_eq!(
        c.search("v", &[0.0; 4], &SearchOptions::new().topk(100_000))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn case_46_a_second_read_write_open_is_refused() {
    let sim = sim();
    let c = create(&sim, schema());
    let err =
        Collection::open(PATH, OpenOptions::default().storage(Arc::new(sim.clone()))).unwrap_err();
    // zvec's words first; then who holds the lock.
    let message = err.to_string();
    assert!(
        message.starts_with("Can't lock read-write collection: /db/c/LOCK"),
        "{message}"
    );
    assert!(message.contains("another process"), "{message}");
    drop(c);
}

#[test]
fn read_only_open_of_a_crashed_writer_sees_pending_documents_and_changes_nothing() {
    let sim = sim();
    let c = create(&sim, schema());
    c.insert(&[doc("a", 1)]).unwrap();
    c.flush().unwrap();
    c.insert(&[doc("b", 2), doc("c", 3)]).unwrap();
    c.delete(&["a"]).unwrap();
    kill(c, &sim);
    let before = wal_files(&sim);
    let listing = sim.list(Path::new(PATH)).unwrap();
    let ro = Collection::open(
        PATH,
        OpenOptions::default()
            .read_only(true)
            .storage(Arc::new(sim.clone())),
    )
    .unwrap();
    assert_eq!(ro.stats().doc_count, 2);
    assert_eq!(n_of(&ro, "b"), Some(2));
    assert_eq!(n_of(&ro, "a"), None);
    drop(ro);
    assert_eq!(wal_files(&sim), before);
    assert_eq!(sim.list(Path::new(PATH)).unwrap(), listing);
}

#[test]
fn query_by_id_uses_the_stored_vector() {
    let sim = sim();
    let c = create(&sim, schema());
    c.insert(&[doc("a", 1), doc("b", 5), doc("c", 2)]).unwrap();
    let hits = c.query(&Query::by_id("v", "a").topk(2)).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.pk.as_str()).collect::<Vec<_>>(),
        ["a", "c"]
    );
    let err = c.query(&Query::by_id("v", "nope")).unwrap_err();
    assert!(
        err.to_string()
            .contains("Document with id 'nope' not found"),
        "{err}"
    );
}

//! The existence check of writes against sealed segments, through the collection-wide key
//! filter: after a reopen (the filter built over the loaded segments), after persists (it is
//! extended), after a merge and after a schema change (segments replaced under new ids),
//! every stored pk is found and every new one is not — zvec's `AlreadyExists` / `NotFound`.

use stratavec::{
    Collection, CollectionOptions, CollectionSchema, ColumnFill, DataType, Doc, DocStatus,
    FieldSchema, OpenOptions, VectorSchema,
};

fn doc(i: usize) -> Doc {
    Doc::new(format!("k{i}"))
        .set("n", i as i64)
        .vector("v", vec![i as f32, 1.0, 0.5, -(i as f32)])
}

/// Inserting every stored pk again reports it exists; a fresh pk goes in; an update of a
/// missing pk is `NotFound`; of a stored one, `Ok`.
fn check(c: &Collection, stored: &[usize], fresh: usize, what: &str) {
    for chunk in stored.chunks(100) {
        let docs: Vec<Doc> = chunk.iter().map(|&i| doc(i)).collect();
        let got = c.insert(&docs).unwrap();
        assert!(
            got.iter().all(|s| *s == DocStatus::AlreadyExists),
            "{what}: a stored pk inserted again: {got:?}"
        );
    }
    assert_eq!(c.insert(&[doc(fresh)]).unwrap(), [DocStatus::Ok], "{what}");
    let missing = Doc::new(format!("missing-{fresh}")).set("n", 1i64);
    assert_eq!(
        c.update(&[missing]).unwrap(),
        [DocStatus::NotFound],
        "{what}"
    );
    let present = Doc::new(format!("k{}", stored[stored.len() / 2])).set("n", -1i64);
    assert_eq!(c.update(&[present]).unwrap(), [DocStatus::Ok], "{what}");
}

#[test]
fn stored_pks_are_found_through_the_key_filter_after_reopen_persist_merge_and_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let schema = CollectionSchema::new("keys")
        .field(FieldSchema::new("n", DataType::Int64))
        .vector(VectorSchema::new("v", 4));
    let options = CollectionOptions::default().merge_policy(None);
    let c = Collection::create(&path, schema, options).unwrap();
    // Three sealed segments of 500 pks each.
    for seg in 0..3 {
        let docs: Vec<Doc> = (seg * 500..(seg + 1) * 500).map(doc).collect();
        for chunk in docs.chunks(250) {
            c.insert(chunk).unwrap();
        }
        c.flush().unwrap();
    }
    c.close().unwrap();
    drop(c);

    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    // Jobs run in order: the filter's build, queued at open, is done.
    c.wait_idle().unwrap();
    let mut stored: Vec<usize> = (0..1500).collect();
    check(&c, &stored, 10_000, "after reopen");
    stored.push(10_000);

    // A persisted fourth segment extends the filter.
    c.flush().unwrap();
    c.wait_idle().unwrap();
    check(&c, &stored, 10_001, "after a persist");
    stored.push(10_001);

    // Deleted pks are absent again, though their bits stay in the filter.
    let gone: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    assert!(c.delete(&gone).unwrap().iter().all(|s| *s == DocStatus::Ok));
    assert_eq!(c.insert(&[doc(3)]).unwrap(), [DocStatus::Ok]);
    assert_eq!(c.delete(&["k3"]).unwrap(), [DocStatus::Ok]);
    stored.retain(|&i| i >= 10);

    // A merge replaces every segment under a new id.
    c.optimize().unwrap();
    check(&c, &stored, 10_002, "after optimize");
    stored.push(10_002);

    // So does a schema change that rewrites the rows.
    c.flush().unwrap();
    c.add_column(
        FieldSchema::new("extra", DataType::Int32).nullable(),
        ColumnFill::Null,
    )
    .unwrap();
    check(&c, &stored, 10_003, "after add_column");
    c.close().unwrap();
}

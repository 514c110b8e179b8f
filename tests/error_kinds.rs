//! Every error a caller can provoke, provoked through the public API and recognised by matching
//! on its variant and fields: a program must be able to tell a dimension mismatch from an
//! unknown field without reading the message. The messages themselves are zvec's and are
//! checked where zvec compatibility is tested (zvec_cases, python/tests).
//!
//! Not provoked here: `RecordTooLarge` (needs a write of more than 1 GiB),
//! `Serialization` and `InvariantViolated` (no input reaches them), and `InvalidArgument`
//! (the library no longer returns it; it is for code built on the crate).

use std::sync::Arc;

use stratavec::storage::{Fault, FaultKind, FaultOp, SimStorage};
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, Error, FetchOptions,
    FieldSchema, FieldUsage, GroupBy, MergePolicy, OpenOptions, Query, ReRanker, ScanCursor,
    ScanOptions, VectorSchema,
};

fn schema() -> CollectionSchema {
    CollectionSchema::new("errors")
        .field(FieldSchema::new("n", DataType::Int64))
        .field(FieldSchema::new("tag", DataType::String).nullable())
        .vector(VectorSchema::new("v", 3))
}

fn doc(i: usize) -> Doc {
    Doc::new(format!("d{i}"))
        .set("n", i as i64)
        .set("tag", if i.is_multiple_of(2) { "even" } else { "odd" })
        .vector("v", vec![i as f32, 1.0, 0.5])
}

fn collection() -> (tempfile::TempDir, Collection) {
    let dir = tempfile::tempdir().unwrap();
    let c =
        Collection::create(dir.path().join("c"), schema(), CollectionOptions::default()).unwrap();
    c.insert(&(0..10).map(doc).collect::<Vec<_>>()).unwrap();
    (dir, c)
}

/// The one place that names every variant: if a variant is added to the crate, this still
/// compiles (the enum is `#[non_exhaustive]`), and the wildcard says so.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::Io { .. } => "io",
        Error::Corrupted { .. } => "corrupted",
        Error::Poisoned { .. } => "poisoned",
        Error::Serialization(_) => "serialization",
        Error::InvalidArgument(_) => "invalid argument",
        Error::InvalidJson { .. } => "invalid json",
        Error::InvalidSchema { .. } => "invalid schema",
        Error::InvalidOptions { .. } => "invalid options",
        Error::InvalidFlushPolicy { .. } => "invalid flush policy",
        Error::BatchTooLarge { .. } => "batch too large",
        Error::RecordTooLarge { .. } => "record too large",
        Error::TopkOutOfRange { .. } => "topk out of range",
        Error::ScanLimitOutOfRange { .. } => "scan limit out of range",
        Error::GroupSizeOutOfRange { .. } => "group size out of range",
        Error::UnknownField { .. } => "unknown field",
        Error::DimensionMismatch { .. } => "dimension mismatch",
        Error::NonFiniteVector { .. } => "non-finite vector",
        Error::DocNotFound { .. } => "doc not found",
        Error::RerankerRequired { .. } => "reranker required",
        Error::RerankerWeightsMismatch { .. } => "reranker weights mismatch",
        Error::EmptyFilter => "empty filter",
        Error::InvalidCursor { .. } => "invalid cursor",
        Error::InvariantViolated { .. } => "invariant violated",
        Error::Locked(_) => "locked",
        Error::InvalidDoc { .. } => "invalid doc",
        Error::CollectionNotFound(_) => "collection not found",
        Error::PathExists(_) => "path exists",
        Error::ReadOnly => "read only",
        Error::InvalidFilter { .. } => "invalid filter",
        Error::Closed => "closed",
        _ => "unknown",
    }
}

/// The error of `r`, which must have failed with an argument error: nothing done, the handle
/// usable.
fn refused<T: std::fmt::Debug>(r: stratavec::Result<T>) -> Error {
    let e = r.unwrap_err();
    assert!(
        e.is_invalid_argument(),
        "{} is not an argument error: {e}",
        kind(&e)
    );
    e
}

#[test]
fn schema_options_and_flush_policy_text() {
    let dir = tempfile::tempdir().unwrap();
    let bad = CollectionSchema::new("s").vector(VectorSchema::new("v", 0));
    let e = refused(Collection::create(
        dir.path().join("a"),
        bad,
        CollectionOptions::default(),
    ));
    match &e {
        Error::InvalidSchema { reason } => assert!(reason.contains("dimension"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().starts_with("Invalid schema: "), "{e}");

    let options = CollectionOptions::default().merge_policy(Some(MergePolicy {
        max_segments: 1,
        max_deleted_fraction: 0.5,
    }));
    match refused(Collection::create(dir.path().join("b"), schema(), options)) {
        Error::InvalidOptions { reason } => assert!(reason.contains("max_segments"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let options = CollectionOptions::default().flush_policy(FlushPolicy::EveryDocs(0));
    assert!(matches!(
        refused(Collection::create(dir.path().join("b"), schema(), options)),
        Error::InvalidOptions { .. }
    ));

    match refused("every:0".parse::<FlushPolicy>()) {
        Error::InvalidFlushPolicy { text } => assert_eq!(text, "every:0"),
        other => panic!("{other:?}"),
    }
    // Nothing of a refused create is left behind.
    assert!(!dir.path().join("a").exists() && !dir.path().join("b").exists());
}

#[test]
fn write_batches_and_documents() {
    let (_d, c) = collection();
    let many: Vec<Doc> = (0..1025).map(doc).collect();
    for e in [
        refused(c.insert(&many)),
        refused(c.upsert(&many)),
        refused(c.update(&many)),
        refused(c.delete(&vec!["x"; 1025])),
    ] {
        assert!(
            matches!(
                e,
                Error::BatchTooLarge {
                    len: 1025,
                    max: 1024
                }
            ),
            "{e}"
        );
    }

    let short = Doc::new("bad").set("n", 1i64).vector("v", vec![1.0]);
    match refused(c.insert(&[doc(100), short])) {
        Error::InvalidDoc { pk, reason } => {
            assert_eq!(pk, "bad");
            assert!(reason.contains("dimension mismatch"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The whole batch was refused, the valid document too.
    assert!(c.fetch(&["d100"]).unwrap().is_empty());
    let unknown = doc(101).set("colour", "red");
    assert!(matches!(
        refused(c.upsert(&[unknown])),
        Error::InvalidDoc { pk, .. } if pk == "d101"
    ));
    // Argument errors do not poison: the next write goes through.
    assert_eq!(c.insert(&[doc(102)]).unwrap().len(), 1);
}

#[test]
fn query_arguments() {
    let (_d, c) = collection();
    for topk in [0, 100_001] {
        match refused(c.query(&Query::vector("v", vec![1.0, 0.0, 0.0]).topk(topk))) {
            Error::TopkOutOfRange { topk: got, max } => {
                assert_eq!((got, max), (topk, stratavec::query::MAX_TOPK))
            }
            other => panic!("{other:?}"),
        }
    }
    match refused(c.query(&Query::vector("w", vec![1.0, 0.0, 0.0]))) {
        Error::UnknownField { field, usage } => {
            assert_eq!((field.as_str(), usage), ("w", FieldUsage::QueryVector))
        }
        other => panic!("{other:?}"),
    }
    match refused(c.query(&Query::vector("v", vec![1.0, 0.0]))) {
        Error::DimensionMismatch {
            field,
            expected,
            got,
        } => assert_eq!((field.as_str(), expected, got), ("v", 3, 2)),
        other => panic!("{other:?}"),
    }
    match refused(c.query(&Query::vector("v", vec![f32::NAN, 0.0, 0.0]))) {
        Error::NonFiniteVector { field } => assert_eq!(field, "v"),
        other => panic!("{other:?}"),
    }
    match refused(c.query(&Query::by_id("v", "nope"))) {
        Error::DocNotFound { pk } => assert_eq!(pk, "nope"),
        other => panic!("{other:?}"),
    }
    let two = Query::vector("v", vec![1.0, 0.0, 0.0]).and_vector("v", vec![0.0, 1.0, 0.0]);
    assert!(matches!(
        refused(c.query(&two)),
        Error::RerankerRequired { routes: 2 }
    ));
    let weighted = two.clone().reranker(ReRanker::Weighted {
        weights: vec![1.0, 2.0, 3.0],
    });
    assert!(matches!(
        refused(c.query(&weighted)),
        Error::RerankerWeightsMismatch {
            weights: 3,
            routes: 2
        }
    ));
    match refused(c.query(&Query::new().filter("n >"))) {
        Error::InvalidFilter { expr, .. } => assert_eq!(expr, "n >"),
        other => panic!("{other:?}"),
    }
    // The same query with its arguments fixed works.
    assert_eq!(c.query(&two.reranker(ReRanker::rrf())).unwrap().len(), 10);
}

#[test]
fn output_fields_and_grouping() {
    let (_d, c) = collection();
    let output = |e: Error| match e {
        Error::UnknownField { field, usage } => {
            assert_eq!((field.as_str(), usage), ("zz", FieldUsage::Output))
        }
        other => panic!("{other:?}"),
    };
    output(refused(c.fetch_with(
        &["d1"],
        &FetchOptions {
            output_fields: Some(vec!["zz".into()]),
            include_vector: false,
        },
    )));
    output(refused(c.query(
        &Query::vector("v", vec![1.0, 0.0, 0.0]).output_fields(["n", "zz"]),
    )));
    output(refused(
        c.scan(&ScanOptions::default().output_fields(["zz"]), None),
    ));

    let q = Query::vector("v", vec![1.0, 0.0, 0.0]);
    match refused(c.group_by_query(&q, &GroupBy::new("colour"))) {
        Error::UnknownField { field, usage } => {
            assert_eq!((field.as_str(), usage), ("colour", FieldUsage::GroupBy))
        }
        other => panic!("{other:?}"),
    }
    let empty = GroupBy {
        field: "tag".into(),
        group_count: 2,
        topk_per_group: 0,
    };
    assert!(matches!(
        refused(c.group_by_query(&q, &empty)),
        Error::GroupSizeOutOfRange {
            group_count: 2,
            topk_per_group: 0
        }
    ));
}

#[test]
fn scans_cursors_and_filters() {
    let (_d, c) = collection();
    match refused(c.scan(&ScanOptions::default().limit(0), None)) {
        Error::ScanLimitOutOfRange { limit, max } => {
            assert_eq!((limit, max), (0, stratavec::query::MAX_TOPK))
        }
        other => panic!("{other:?}"),
    }
    match refused(ScanCursor::from_token("not-a-cursor")) {
        Error::InvalidCursor { token } => assert_eq!(token, "not-a-cursor"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        refused(c.delete_by_filter("  ")),
        Error::EmptyFilter
    ));
    assert!(matches!(
        refused(c.count(Some("nope = 1"))),
        Error::InvalidFilter { .. }
    ));
    assert_eq!(c.count(None).unwrap(), 10, "nothing was deleted");
}

#[test]
fn paths_locks_and_handle_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    match Collection::open(&path, OpenOptions::default()) {
        Err(Error::CollectionNotFound(p)) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    let c = Collection::create(&path, schema(), CollectionOptions::default()).unwrap();
    match Collection::create(&path, schema(), CollectionOptions::default()) {
        Err(Error::PathExists(p)) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    match Collection::open(&path, OpenOptions::default()) {
        Err(Error::Locked(message)) => assert!(message.contains("Can't lock"), "{message}"),
        other => panic!("{other:?}"),
    }
    c.insert(&[doc(1)]).unwrap();
    c.close().unwrap();
    assert!(matches!(c.insert(&[doc(2)]), Err(Error::Closed)));
    drop(c);

    let ro = Collection::open(&path, OpenOptions::default().read_only(true)).unwrap();
    assert!(matches!(ro.insert(&[doc(2)]), Err(Error::ReadOnly)));
    assert_eq!(ro.fetch(&["d1"]).unwrap().len(), 1);
}

#[test]
fn damaged_files_are_corruption_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Collection::create(&path, schema(), CollectionOptions::default()).unwrap();
    c.insert(&[doc(1)]).unwrap();
    c.close().unwrap();
    drop(c);
    let manifest = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("manifest."))
        })
        .unwrap();
    let mut bytes = std::fs::read(&manifest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&manifest, bytes).unwrap();
    match Collection::open(&path, OpenOptions::default()) {
        Err(Error::Corrupted { path: p, .. }) => assert_eq!(p, manifest),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_fsync_is_io_then_poisoned() {
    let sim = SimStorage::new();
    let c = Collection::create(
        "/c",
        schema(),
        CollectionOptions::default().storage(Arc::new(sim.clone())),
    )
    .unwrap();
    c.insert(&[doc(1)]).unwrap();
    sim.inject(Fault {
        op: FaultOp::Sync,
        nth: 1,
        kind: FaultKind::Eio,
    });
    match c.insert(&[doc(2)]) {
        Err(Error::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::EIO)),
        other => panic!("{other:?}"),
    }
    match c.insert(&[doc(3)]) {
        Err(e @ Error::Poisoned { .. }) => assert!(!e.is_invalid_argument()),
        other => panic!("{other:?}"),
    }
    // Reads go on with the last good state.
    assert_eq!(c.fetch(&["d1"]).unwrap().len(), 1);
}

#[test]
fn json_that_is_not_a_document() {
    let e = refused(Doc::from_json_str("[1, 2]", &schema()));
    assert!(
        matches!(&e, Error::InvalidJson { reason } if reason.contains("not a JSON document")),
        "{e}"
    );
    let e = refused(Doc::from_json_str("{", &schema()));
    assert!(matches!(e, Error::InvalidJson { .. }), "{e}");
}

//! Create, write, persist, reopen, optimize, lock, read-only: the life of a collection.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, DocStatus, Error, FieldSchema,
    MergePolicy, Metric, OpenOptions, SearchOptions, VectorSchema,
};

fn schema() -> CollectionSchema {
    CollectionSchema::new("docs")
        .field(FieldSchema::new("n", DataType::Int64))
        .field(FieldSchema::new("tag", DataType::String).nullable())
        .vector(VectorSchema::new("v", 4).metric(Metric::L2))
}

fn doc(pk: &str, n: i64) -> Doc {
    let x = n as f32;
    Doc::new(pk)
        .set("n", n)
        .vector("v", vec![x, x + 1.0, 0.5, -x])
}

/// Every file under `dir` with its bytes (LOCK excluded: its contents never matter).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "LOCK" {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn all_docs(c: &Collection) -> Vec<Doc> {
    c.search(
        "v",
        &[0.0; 4],
        &SearchOptions::new().topk(100_000).include_vector(true),
    )
    .unwrap()
}

#[test]
fn writes_survive_flush_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Collection::create(&path, schema(), CollectionOptions::default()).unwrap();
    assert_eq!(
        c.insert(&[doc("a", 1), doc("b", 2), doc("c", 3)]).unwrap(),
        vec![DocStatus::Ok; 3]
    );
    c.flush().unwrap();
    assert_eq!(c.stats().segments, 1);
    c.upsert(&[doc("a", 10)]).unwrap();
    c.delete(&["b"]).unwrap();
    c.update(&[Doc::new("c").set("tag", "x")]).unwrap();
    drop(c);

    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    let got = c.fetch(&["a", "b", "c"]).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].get("n").unwrap().as_i128(), Some(10));
    assert_eq!(got[1].get("tag").unwrap().as_str(), Some("x"));
    assert_eq!(
        got[1].vectors["v"],
        vec![3.0, 4.0, 0.5, -3.0],
        "update keeps the vector"
    );
    let stats = c.stats();
    assert_eq!(stats.doc_count, 2);
    c.optimize().unwrap();
    assert_eq!(c.stats().deleted, 0);
    assert_eq!(c.stats().segments, 1);
    drop(c);
    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(all_docs(&c).len(), 2);
}

#[test]
fn open_close_five_times_without_writes_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Collection::create(&path, schema(), CollectionOptions::default()).unwrap();
    c.insert(
        &(0..50)
            .map(|i| doc(&format!("k{i}"), i))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    c.flush().unwrap();
    c.delete(&["k3", "k4"]).unwrap(); // a pending WAL too
    drop(c);
    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    let docs = all_docs(&c);
    drop(c);
    let files = snapshot(&path);
    for round in 0..5 {
        let c = Collection::open(&path, OpenOptions::default()).unwrap();
        assert_eq!(all_docs(&c), docs, "round {round}");
        c.close().unwrap();
        assert_eq!(snapshot(&path), files, "round {round}: files changed");
    }
}

#[test]
fn one_writer_or_many_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Collection::create(&path, schema(), CollectionOptions::default()).unwrap();
    let err = Collection::open(&path, OpenOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("Can't lock read-write collection"),
        "{err}"
    );
    let err = Collection::open(&path, OpenOptions::default().read_only(true)).unwrap_err();
    assert!(
        err.to_string().contains("Can't lock read-only collection"),
        "{err}"
    );
    c.close().unwrap();
    let r1 = Collection::open(&path, OpenOptions::default().read_only(true)).unwrap();
    let r2 = Collection::open(&path, OpenOptions::default().read_only(true)).unwrap();
    assert!(matches!(r1.insert(&[doc("z", 1)]), Err(Error::ReadOnly)));
    assert!(Collection::open(&path, OpenOptions::default()).is_err());
    drop((r1, r2));
    Collection::open(&path, OpenOptions::default()).unwrap();
}

#[test]
fn create_refuses_an_existing_path_and_open_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), b"not a collection").unwrap();
    let err = Collection::create(dir.path(), schema(), CollectionOptions::default()).unwrap_err();
    assert!(matches!(err, Error::PathExists(_)), "{err}");
    let err = Collection::open(dir.path().join("nope"), OpenOptions::default()).unwrap_err();
    assert!(matches!(err, Error::CollectionNotFound(_)), "{err}");
    // An empty directory (or what an interrupted create left) may be created into.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    Collection::create(&empty, schema(), CollectionOptions::default()).unwrap();
}

#[test]
fn automatic_persist_at_max_docs_per_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let opts = CollectionOptions::default()
        .max_docs_per_segment(10)
        .flush_policy(FlushPolicy::Never);
    let c = Collection::create(&path, schema(), opts).unwrap();
    for i in 0..35 {
        c.insert(&[doc(&format!("k{i}"), i)]).unwrap();
    }
    // Full segments are persisted in the background: wait for it.
    c.wait_idle().unwrap();
    let s = c.stats();
    assert_eq!(s.segments, 3);
    assert_eq!(s.writing_rows, 5);
    drop(c);
    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(c.stats().doc_count, 35);
    let hits = c
        .search("v", &[7.0, 8.0, 0.5, -7.0], &SearchOptions::new().topk(1))
        .unwrap();
    assert_eq!(hits[0].pk, "k7");
    assert_eq!(hits[0].score, 0.0);
}

#[test]
fn destroy_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Collection::create(&path, schema(), CollectionOptions::default()).unwrap();
    c.insert(&[doc("a", 1)]).unwrap();
    c.destroy().unwrap();
    assert!(!path.exists());
}

/// What many short sessions (one CLI import each) leave: every close persists a segment, and
/// the automatic merge policy keeps their number bounded, without losing or reviving a row.
#[test]
fn short_sessions_do_not_pile_up_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let policy = MergePolicy {
        max_segments: 4,
        ..MergePolicy::default()
    };
    let opts = CollectionOptions::default().merge_policy(Some(policy));
    Collection::create(&path, schema(), opts)
        .unwrap()
        .close()
        .unwrap();
    for session in 0..12 {
        let c = Collection::open(&path, OpenOptions::default()).unwrap();
        let docs: Vec<Doc> = (0..5)
            .map(|i| doc(&format!("s{session}-{i}"), session * 10 + i))
            .collect();
        c.insert(&docs).unwrap();
        if session > 0 {
            c.delete(&[format!("s{}-0", session - 1)]).unwrap();
        }
        c.close().unwrap();
        let c = Collection::open(&path, OpenOptions::default()).unwrap();
        c.wait_idle().unwrap();
        let s = c.stats();
        assert!(
            s.segments <= 4,
            "session {session}: {} segments",
            s.segments
        );
        assert_eq!(s.doc_count, 5 * (session as u64 + 1) - session as u64);
    }
    // Merged away or not, a deleted row never comes back and a live one never goes.
    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    assert!(c.fetch(&["s3-0"]).unwrap().is_empty());
    assert_eq!(c.fetch(&["s11-0", "s3-1"]).unwrap().len(), 2);
}

/// Automatic merges can be turned off: then only `optimize` merges.
#[test]
fn automatic_merges_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Collection::create(
        &path,
        schema(),
        CollectionOptions::default().merge_policy(None),
    )
    .unwrap();
    for i in 0..10 {
        c.insert(&[doc(&format!("k{i}"), i)]).unwrap();
        c.flush().unwrap();
    }
    c.wait_idle().unwrap();
    assert_eq!(c.stats().segments, 10);
    c.optimize().unwrap();
    assert_eq!(c.stats().segments, 1);
    assert_eq!(c.stats().doc_count, 10);
}

//! Collections written by earlier forward-store layouts stay readable: `tests/fixtures/fwd_v1`
//! (`.fwd` version 1, one MessagePack payload decoded on open) and `tests/fixtures/fwd_v2`
//! (version 2, columns with one checksum per section) were written by that code and are opened
//! here, read, written to and merged into the current layout.

use std::path::{Path, PathBuf};

use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, IndexKind, Metric,
    OpenOptions, SearchOptions, Value, VectorSchema,
};

const ROWS: usize = 300;

fn schema() -> CollectionSchema {
    CollectionSchema::new("v1")
        .field(FieldSchema::new("n", DataType::Int64))
        .field(FieldSchema::new("name", DataType::String).nullable())
        .field(FieldSchema::new("tags", DataType::ArrayString).nullable())
        .field(FieldSchema::new("w", DataType::Float).nullable())
        .vector(
            VectorSchema::new("v", 4)
                .metric(Metric::L2)
                .index(IndexKind::Hnsw {
                    m: 8,
                    ef_construction: 32,
                }),
        )
        .vector(VectorSchema::new("flat", 2).metric(Metric::Cosine))
}

fn vector(i: usize) -> Vec<f32> {
    let x = i as f32;
    vec![x.sin(), x.cos(), (x * 0.37).sin(), (x * 0.11).cos()]
}

fn doc(i: usize) -> Doc {
    let mut d = Doc::new(format!("pk-{i:04}"))
        .set("n", i as i64)
        .vector("v", vector(i))
        .vector("flat", vec![1.0, i as f32]);
    if !i.is_multiple_of(3) {
        d = d.set("name", format!("name {i}"));
    }
    if i.is_multiple_of(5) {
        d = d.set("tags", vec!["a".to_string(), format!("t{}", i % 7)]);
    }
    if i.is_multiple_of(2) {
        d = d.set("w", i as f32 * 0.5);
    }
    d
}

fn fixture(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/fwd_v{version}"))
}

/// Writes the fixture of the layout this build writes: two persisted segments, deletions and
/// an upsert among them (`STRATAVEC_FIXTURE_VERSION` names it; run once per layout).
#[test]
#[ignore = "writes tests/fixtures/fwd_v<N> (run once, with the code of that layout)"]
fn write_fixture() {
    let version: u32 = std::env::var("STRATAVEC_FIXTURE_VERSION")
        .unwrap()
        .parse()
        .unwrap();
    let path = fixture(version);
    let _ = std::fs::remove_dir_all(&path);
    let c = Collection::create(&path, schema(), CollectionOptions::default()).unwrap();
    let docs: Vec<Doc> = (0..ROWS / 2).map(doc).collect();
    c.insert(&docs).unwrap();
    c.flush().unwrap();
    let docs: Vec<Doc> = (ROWS / 2..ROWS).map(doc).collect();
    c.insert(&docs).unwrap();
    c.delete(&["pk-0007", "pk-0200"]).unwrap();
    c.upsert(&[doc(11).set("n", 1011i64)]).unwrap();
    c.flush().unwrap();
    c.close().unwrap();
    std::fs::remove_file(path.join("LOCK")).ok();
}

/// A copy of the fixture to open (opening takes a lock and may write files).
fn copy(version: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("c");
    copy_dir(&fixture(version), &to);
    (dir, to)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn expected(i: usize) -> Option<Doc> {
    match i {
        7 | 200 => None,
        11 => Some(doc(11).set("n", 1011i64)),
        _ => Some(doc(i)),
    }
}

fn check_all(c: &Collection) {
    let pks: Vec<String> = (0..ROWS).map(|i| format!("pk-{i:04}")).collect();
    let got = c.fetch(&pks).unwrap();
    let want: Vec<Doc> = (0..ROWS).filter_map(expected).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.pk, w.pk);
        assert_eq!(g.fields, w.fields, "{}", g.pk);
        assert_eq!(g.vectors, w.vectors, "{}", g.pk);
    }
    assert_eq!(c.count(None).unwrap(), want.len() as u64);
    assert_eq!(c.count(Some("n >= 150")).unwrap(), 149 + 1);
    // Exact and graph search agree with the stored vectors.
    let hits = c
        .search("v", &vector(42), &SearchOptions::new().topk(3))
        .unwrap();
    assert_eq!(hits[0].pk, "pk-0042");
    let tagged = c
        .query(
            &stratavec::Query::new()
                .filter("tags CONTAIN_ANY ('t3')")
                .topk(100),
        )
        .unwrap();
    let want_tagged: Vec<String> = (0..ROWS)
        .filter(|&i| i.is_multiple_of(5) && i % 7 == 3 && expected(i).is_some())
        .map(|i| format!("pk-{i:04}"))
        .collect();
    let mut got_tagged: Vec<String> = tagged.into_iter().map(|d| d.pk).collect();
    got_tagged.sort();
    assert_eq!(got_tagged, want_tagged);
}

fn opens_and_reads(version: u32) {
    let (_dir, path) = copy(version);
    let c = Collection::open(&path, OpenOptions::default().read_only(true)).unwrap();
    check_all(&c);
    assert_eq!(
        c.fetch(&["pk-0012"]).unwrap()[0].fields.get("name"),
        None,
        "a NULL stays NULL"
    );
    assert_eq!(
        c.fetch(&["pk-0010"]).unwrap()[0].fields.get("tags"),
        Some(&Value::StringArray(vec!["a".into(), "t3".into()]))
    );
    assert!(c.fetch(&["pk-9999"]).unwrap().is_empty());
}

fn takes_writes_and_merges(version: u32) {
    let (_dir, path) = copy(version);
    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    // Keys of the old segments are known: a duplicate insert is refused, an update lands.
    let st = c.insert(&[doc(5)]).unwrap();
    assert!(
        matches!(st[0], stratavec::DocStatus::AlreadyExists),
        "{st:?}"
    );
    let st = c.update(&[Doc::new("pk-0005").set("n", 5i64)]).unwrap();
    assert!(matches!(st[0], stratavec::DocStatus::Ok), "{st:?}");
    c.optimize().unwrap();
    check_all(&c);
    c.close().unwrap();
    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    check_all(&c);
}

#[test]
fn a_collection_of_the_first_layout_opens_and_reads() {
    opens_and_reads(1);
}

#[test]
fn a_collection_of_the_first_layout_takes_writes_and_merges_into_the_current_one() {
    takes_writes_and_merges(1);
}

#[test]
fn a_collection_of_the_second_layout_opens_and_reads() {
    opens_and_reads(2);
}

#[test]
fn a_collection_of_the_second_layout_takes_writes_and_merges_into_the_current_one() {
    takes_writes_and_merges(2);
}

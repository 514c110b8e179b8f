//! Reading a whole collection page by page, and counting documents: across sealed, merged and
//! writing segments, with deletes, upserts and writes during the scan, and after a reopen.

use std::collections::BTreeMap;

use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, Error, FieldSchema,
    MergePolicy, OpenOptions, Query, ScanCursor, ScanOptions, Value, VectorSchema,
};

fn schema() -> CollectionSchema {
    CollectionSchema::new("s")
        .field(FieldSchema::new("n", DataType::Int64))
        .vector(VectorSchema::new("v", 2))
}

fn doc(pk: &str, n: i64) -> Doc {
    Doc::new(pk).set("n", n).vector("v", vec![n as f32, 1.0])
}

/// Every page until the cursor runs out: (pk, n) in the order returned.
fn scan_all(c: &Collection, options: &ScanOptions) -> Vec<(String, i64)> {
    let mut cursor = None;
    let mut out = Vec::new();
    loop {
        let page = c.scan(options, cursor).unwrap();
        assert!(page.docs.len() <= options.limit);
        for d in page.docs {
            let n = match d.fields.get("n") {
                Some(Value::Int64(n)) => *n,
                other => panic!("field n of {}: {other:?}", d.pk),
            };
            out.push((d.pk, n));
        }
        match page.next {
            // Resuming from the text form is the same as from the cursor.
            Some(next) => cursor = Some(ScanCursor::from_token(&next.to_token()).unwrap()),
            None => return out,
        }
    }
}

#[test]
fn a_scan_returns_every_live_document_once_in_insertion_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    // Segments are merged two at a time, so merged segments sit among unmerged ones.
    let options = CollectionOptions::default().merge_policy(Some(MergePolicy {
        max_segments: 2,
        ..MergePolicy::default()
    }));
    let c = Collection::create(&path, schema(), options).unwrap();
    // The expected state: pk -> n, and the insertion order of the current versions.
    let mut live: BTreeMap<String, i64> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut write = |c: &Collection, pk: String, n: i64, upsert: bool| {
        let d = doc(&pk, n);
        if upsert {
            c.upsert(&[d]).unwrap();
        } else {
            c.insert(&[d]).unwrap();
        }
        order.retain(|p| *p != pk);
        order.push(pk.clone());
        live.insert(pk, n);
    };
    for round in 0..5i64 {
        for i in 0..40 {
            write(&c, format!("k{round}-{i}"), round * 100 + i, false);
        }
        c.flush().unwrap();
    }
    // Upserts move documents to the end; deletes remove them.
    for i in (0..40).step_by(7) {
        write(&c, format!("k1-{i}"), 1000 + i, true);
    }
    let gone: Vec<String> = (0..40).step_by(5).map(|i| format!("k3-{i}")).collect();
    c.delete(&gone).unwrap();
    for g in &gone {
        live.remove(g);
        order.retain(|p| p != g);
    }
    c.wait_idle().unwrap();

    let expect: Vec<(String, i64)> = order.iter().map(|p| (p.clone(), live[p])).collect();
    for limit in [1, 7, 1000] {
        let all = scan_all(&c, &ScanOptions::default().limit(limit));
        assert_eq!(all, expect, "limit {limit}");
    }
    assert_eq!(c.count(None).unwrap(), expect.len() as u64);

    let filtered = scan_all(&c, &ScanOptions::default().filter("n >= 300").limit(9));
    let want: Vec<_> = expect.iter().filter(|(_, n)| *n >= 300).cloned().collect();
    assert_eq!(filtered, want);
    assert_eq!(c.count(Some("n >= 300")).unwrap(), want.len() as u64);

    // Projection: no vectors, only the asked fields.
    let page = c
        .scan(
            &ScanOptions::default()
                .output_fields(["n"])
                .include_vector(false)
                .limit(3),
            None,
        )
        .unwrap();
    assert!(page.docs.iter().all(|d| d.vectors.is_empty()));

    // A cursor kept as text resumes after a reopen.
    let first = c.scan(&ScanOptions::default().limit(50), None).unwrap();
    let token = first.next.unwrap().to_token();
    drop(c);
    let c = Collection::open(&path, OpenOptions::default()).unwrap();
    let rest = c
        .scan(
            &ScanOptions::default().limit(100_000),
            Some(ScanCursor::from_token(&token).unwrap()),
        )
        .unwrap();
    let resumed: Vec<String> = first
        .docs
        .iter()
        .chain(&rest.docs)
        .map(|d| d.pk.clone())
        .collect();
    assert_eq!(resumed, order);
    assert_eq!(rest.next, None);
}

#[test]
fn writes_during_a_scan_are_not_returned_twice_or_from_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let c =
        Collection::create(dir.path().join("c"), schema(), CollectionOptions::default()).unwrap();
    let docs: Vec<Doc> = (0..100).map(|i| doc(&format!("k{i}"), i)).collect();
    c.insert(&docs).unwrap();
    let options = ScanOptions::default().limit(10);
    let first = c.scan(&options, None).unwrap();
    // After the first page: a new document, a replaced one not yet read, a deleted one not yet
    // read, and a replaced one already read.
    c.insert(&[doc("new", 1)]).unwrap();
    c.upsert(&[doc("k50", 5000), doc("k5", 500)]).unwrap();
    c.delete(&["k60"]).unwrap();
    let mut seen: Vec<String> = first.docs.into_iter().map(|d| d.pk).collect();
    let mut cursor = first.next;
    while let Some(at) = cursor {
        let page = c.scan(&options, Some(at)).unwrap();
        seen.extend(page.docs.into_iter().map(|d| d.pk));
        cursor = page.next;
    }
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no document twice");
    for absent in ["new", "k50", "k60"] {
        assert!(!seen.iter().any(|p| p == absent), "{absent} returned");
    }
    assert_eq!(seen.len(), 100 - 2);
    assert_eq!(c.count(None).unwrap(), 100);
}

#[test]
fn scan_and_count_refuse_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let c =
        Collection::create(dir.path().join("c"), schema(), CollectionOptions::default()).unwrap();
    let empty = c.scan(&ScanOptions::default(), None).unwrap();
    assert!(empty.docs.is_empty() && empty.next.is_none());
    for bad in [0, 100_001] {
        assert!(matches!(
            c.scan(&ScanOptions::default().limit(bad), None),
            Err(Error::ScanLimitOutOfRange { limit, max: 100_000 }) if limit == bad
        ));
    }
    for token in ["", "zz-1", "5-3", "1-2-3"] {
        assert!(
            matches!(
                ScanCursor::from_token(token),
                Err(Error::InvalidCursor { token: t }) if t == token
            ),
            "{token}"
        );
    }
    assert!(c
        .scan(&ScanOptions::default().filter("nope > 1"), None)
        .is_err());
    assert!(c.count(Some("n >")).is_err());
}

/// A scan that spans a flush and an `optimize` (rows move from the writing segment into a
/// sealed one, and sealed segments merge into one) still returns every live document exactly
/// once; `count(filter)` equals the length of a filter-only query.
#[test]
fn a_scan_spanning_flush_and_optimize_returns_each_document_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = CollectionOptions::default().merge_policy(None);
    let c = Collection::create(dir.path().join("c"), schema(), options).unwrap();
    for batch in 0..3 {
        let docs: Vec<Doc> = (0..40)
            .map(|i| doc(&format!("k{batch}-{i}"), batch * 100 + i))
            .collect();
        c.insert(&docs).unwrap();
        c.flush().unwrap();
    }
    // Still in the writing segment when the scan starts.
    let tail: Vec<Doc> = (0..40).map(|i| doc(&format!("w{i}"), 1000 + i)).collect();
    c.insert(&tail).unwrap();
    let expect = scan_all(&c, &ScanOptions::default().limit(1000));
    assert_eq!(expect.len(), 160);

    let page_options = ScanOptions::default().limit(15);
    let mut seen = Vec::new();
    let mut cursor = None;
    for step in 0.. {
        let page = c.scan(&page_options, cursor).unwrap();
        seen.extend(page.docs.into_iter().map(|d| d.pk));
        match step {
            2 => c.flush().unwrap(),
            5 => c.optimize().unwrap(),
            _ => {}
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let want: Vec<String> = expect.iter().map(|(pk, _)| pk.clone()).collect();
    assert_eq!(seen, want, "every live document once, in the same order");
    assert_eq!(c.stats().sealed.len(), 1, "optimize merged the segments");

    for filter in ["n >= 1000", "n < 50", "n < 120 or n > 1030"] {
        let hits = c
            .query(&Query::new().filter(filter).topk(1000))
            .unwrap()
            .len();
        assert_eq!(c.count(Some(filter)).unwrap(), hits as u64, "{filter}");
    }
}

//! Handling errors by kind: every error is a variant of `stratavec::Error` with structured
//! fields, so a program decides what to do by matching, not by reading messages. The messages
//! themselves are zvec's, for people.
//!
//! `cargo run --example errors`

use std::sync::Arc;

use stratavec::storage::{Fault, FaultKind, FaultOp, SimStorage};
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, Error, FieldSchema, FieldUsage,
    GroupBy, OpenOptions, Query, ScanCursor, ScanOptions, VectorSchema,
};

/// What a program might do about each kind of error.
fn advice(e: &Error) -> String {
    match e {
        // The caller's input: fix it and call again. Nothing was written.
        Error::DimensionMismatch {
            field,
            expected,
            got,
        } => format!("query vector for {field} has {got} components, the field has {expected}"),
        Error::UnknownField { field, usage } => match usage {
            FieldUsage::QueryVector => format!("no vector field {field}"),
            FieldUsage::GroupBy => format!("cannot group by {field}: no such field"),
            FieldUsage::Output => format!("drop {field} from the output fields"),
            _ => format!("no field {field}"),
        },
        Error::TopkOutOfRange { topk, max } => format!("clamp topk {topk} to 1..={max}"),
        Error::ScanLimitOutOfRange { limit, max } => format!("clamp limit {limit} to 1..={max}"),
        Error::BatchTooLarge { len, max } => {
            format!("split the {len} documents into batches of {max}")
        }
        Error::RecordTooLarge { len, max } => {
            format!("the batch encodes to {len} bytes, over {max}: split it")
        }
        Error::DocNotFound { pk } => format!("no live document {pk} to take the vector of"),
        Error::NonFiniteVector { field } => format!("the query vector for {field} has a NaN"),
        Error::RerankerRequired { routes } => format!("add a reranker to merge {routes} routes"),
        Error::RerankerWeightsMismatch { weights, routes } => {
            format!("give {routes} weights, not {weights}")
        }
        Error::GroupSizeOutOfRange { .. } => "ask for at least one group of one hit".into(),
        Error::EmptyFilter => "use delete_all to delete everything".into(),
        Error::InvalidCursor { token } => format!("restart the scan: {token:?} is no cursor"),
        Error::InvalidDoc { pk, reason } => format!("fix document {pk}: {reason}"),
        Error::InvalidFilter {
            position, reason, ..
        } => format!("fix the filter at {position:?}: {reason}"),
        Error::InvalidSchema { reason } => format!("fix the schema: {reason}"),
        Error::InvalidOptions { reason } => format!("fix the options: {reason}"),
        Error::InvalidFlushPolicy { text } => format!("{text:?} is no flush policy"),
        // The collection or the handle: the input was fine.
        Error::CollectionNotFound(path) => format!("create {} first", path.display()),
        Error::PathExists(path) => format!("open {} instead", path.display()),
        Error::Locked(_) => "another handle has it: wait, or open read-only".into(),
        Error::ReadOnly => "reopen read-write to write".into(),
        Error::Closed => "the handle was closed: open a new one".into(),
        // The environment or the files.
        Error::Io { op, source, .. } => {
            format!("{op} failed ({source}): a failed write also stops later ones; check the disk")
        }
        Error::Poisoned { .. } => "a write failed earlier: reopen to recover".into(),
        Error::Corrupted { path, offset, .. } => {
            format!(
                "{} is damaged at {offset}: open with salvage",
                path.display()
            )
        }
        // The enum is non-exhaustive: new kinds may come; treat them as failures.
        other => format!("unexpected: {other}"),
    }
}

fn report<T>(what: &str, r: stratavec::Result<T>) {
    match r {
        Ok(_) => println!("{what:<28} ok"),
        Err(e) => {
            let class = if e.is_invalid_argument() {
                "input"
            } else {
                "other"
            };
            println!("{what:<28} [{class}] {}\n{:<31}{e}", advice(&e), "");
        }
    }
}

fn main() -> stratavec::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", std::env::temp_dir(), e))?;
    let path = dir.path().join("c");
    let schema = CollectionSchema::new("c")
        .field(FieldSchema::new("n", DataType::Int32))
        .vector(VectorSchema::new("v", 3));

    report(
        "open before create",
        Collection::open(&path, OpenOptions::default()),
    );
    let bad_schema = CollectionSchema::new("c").vector(VectorSchema::new("v", 0));
    report(
        "zero dimensions",
        Collection::create(&path, bad_schema, CollectionOptions::default()),
    );
    report("flush policy text", "sometimes".parse::<FlushPolicy>());
    let coll = Collection::create(&path, schema.clone(), CollectionOptions::default())?;
    let docs: Vec<Doc> = (0..5)
        .map(|i| {
            Doc::new(format!("d{i}"))
                .set("n", i)
                .vector("v", vec![i as f32, 1.0, 0.0])
        })
        .collect();
    coll.insert(&docs)?;

    report(
        "create again",
        Collection::create(&path, schema, CollectionOptions::default()),
    );
    report(
        "second writer",
        Collection::open(&path, OpenOptions::default()),
    );
    report(
        "insert a short vector",
        coll.insert(&[Doc::new("x").set("n", 1).vector("v", vec![1.0])]),
    );
    report(
        "insert 2000 documents",
        coll.insert(&vec![Doc::new("y"); 2000]),
    );
    report(
        "query a short vector",
        coll.query(&Query::vector("v", vec![1.0, 0.0])),
    );
    report(
        "query a missing field",
        coll.query(&Query::vector("w", vec![1.0, 0.0, 0.0])),
    );
    report("topk 0", coll.query(&Query::new().topk(0)));
    report(
        "query by a missing id",
        coll.query(&Query::by_id("v", "zz")),
    );
    report(
        "two routes, no reranker",
        coll.query(&Query::vector("v", vec![1.0, 0.0, 0.0]).and_vector("v", vec![0.0, 1.0, 0.0])),
    );
    report(
        "group by a missing field",
        coll.group_by_query(&Query::vector("v", vec![1.0, 0.0, 0.0]), &GroupBy::new("m")),
    );
    report("filter syntax", coll.count(Some("n == 1")));
    report("empty delete filter", coll.delete_by_filter(""));
    report(
        "scan output field",
        coll.scan(&ScanOptions::default().output_fields(["m"]), None),
    );
    report("scan cursor", ScanCursor::from_token("page-2"));
    coll.close()?;
    report("insert after close", coll.insert(&docs));
    drop(coll);

    let ro = Collection::open(&path, OpenOptions::default().read_only(true))?;
    report("insert read-only", ro.insert(&docs));
    drop(ro);

    // A failing disk, simulated: the write that hits it reports the I/O error, and from then
    // on the handle refuses writes instead of retrying an fsync whose pages may be gone.
    let sim = SimStorage::new();
    let schema = CollectionSchema::new("c").vector(VectorSchema::new("v", 3));
    let coll = Collection::create(
        "/sim",
        schema,
        CollectionOptions::default().storage(Arc::new(sim.clone())),
    )?;
    let doc = |pk: &str| Doc::new(pk).vector("v", vec![1.0, 0.0, 0.0]);
    coll.insert(&[doc("a")])?;
    sim.inject(Fault {
        op: FaultOp::Sync,
        nth: 1,
        kind: FaultKind::Eio,
    });
    report("insert, fsync fails", coll.insert(&[doc("b")]));
    report("insert after failure", coll.insert(&[doc("c")]));
    report("read after failure", coll.fetch(&["a"]));
    Ok(())
}

//! What each write does to a document that exists and to one that does not, with the
//! per-document statuses zvec returns:
//!
//! | call   | key is live                        | key is not live      |
//! |--------|------------------------------------|----------------------|
//! | insert | `AlreadyExists`, nothing changes   | `Ok`, written        |
//! | upsert | `Ok`, the whole document replaced  | `Ok`, written        |
//! | update | `Ok`, only the given fields change | `NotFound`           |
//! | delete | `Ok`, gone                         | `NotFound`           |
//!
//! `cargo run --example upsert_update`

use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, DocStatus, Error, FieldSchema,
    OpenOptions, VectorSchema,
};

fn show(coll: &Collection, pk: &str) -> stratavec::Result<()> {
    match coll.fetch(&[pk])?.pop() {
        Some(d) => println!(
            "    {pk}: price={:?} note={:?} v={:?}",
            d.get("price"),
            d.get("note"),
            d.vectors["v"]
        ),
        None => println!("    {pk}: (none)"),
    }
    Ok(())
}

fn main() -> stratavec::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", std::env::temp_dir(), e))?;
    let path = dir.path().join("shop");
    let schema = CollectionSchema::new("shop")
        .field(FieldSchema::new("price", DataType::Int64))
        .field(FieldSchema::new("note", DataType::String).nullable())
        .vector(VectorSchema::new("v", 2));
    let coll = Collection::create(&path, schema, CollectionOptions::default())?;

    let apple = Doc::new("apple")
        .set("price", 3i64)
        .set("note", "crisp")
        .vector("v", vec![1.0, 0.0]);
    println!(
        "insert apple: {:?}",
        coll.insert(std::slice::from_ref(&apple))?
    );
    // A second insert of a live key changes nothing; the status says so, it is not an error.
    let again = apple.clone().set("price", 99i64);
    println!(
        "insert apple again: {:?}",
        coll.insert(&[
            again,
            Doc::new("pear")
                .set("price", 4i64)
                .vector("v", vec![0.0, 1.0])
        ])?
    );
    show(&coll, "apple")?;

    // Upsert writes a complete document: a nullable field it leaves out becomes NULL.
    let replaced = Doc::new("apple")
        .set("price", 5i64)
        .vector("v", vec![0.8, 0.6]);
    println!("upsert apple: {:?}", coll.upsert(&[replaced])?);
    show(&coll, "apple")?;

    // Update merges: only the fields and vectors given change; the document must be live.
    let patch = Doc::new("apple").set("note", "on sale");
    let missing = Doc::new("plum").set("price", 1i64);
    let statuses = coll.update(&[patch, missing])?;
    println!("update apple, plum: {statuses:?}");
    assert_eq!(statuses, [DocStatus::Ok, DocStatus::NotFound]);
    show(&coll, "apple")?;

    // An update must still fit the schema, and then nothing of its batch is written.
    let bad = Doc::new("pear").set("price", "four");
    match coll.update(&[Doc::new("apple").set("price", 6i64), bad]) {
        Err(Error::InvalidDoc { pk, reason }) => println!("update refused for {pk}: {reason}"),
        other => println!("unexpected: {other:?}"),
    }
    show(&coll, "apple")?;

    println!("delete pear, plum: {:?}", coll.delete(&["pear", "plum"])?);
    // A deleted key can be inserted again.
    let pear = Doc::new("pear")
        .set("price", 2i64)
        .vector("v", vec![0.0, 1.0]);
    println!("insert pear again: {:?}", coll.insert(&[pear])?);

    // Every one of these writes was logged before it was applied: a reopen replays them.
    coll.close()?;
    drop(coll);
    let coll = Collection::open(&path, OpenOptions::default())?;
    println!("after reopen:");
    show(&coll, "apple")?;
    show(&coll, "pear")?;
    Ok(())
}

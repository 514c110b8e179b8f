//! zvec's filter language on a small catalogue of books: comparisons, `IN`, `LIKE`,
//! `BETWEEN`, `IS NULL`, array operators, a filtered vector search, `count`, a filtered scan
//! and `delete_by_filter`. A bad filter is an error naming the field and the position.
//!
//! `cargo run --example filters`

use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, Error, FieldSchema, Query,
    ScalarIndex, ScanOptions, VectorSchema,
};

/// Primary key, title, year, rating (unknown for one), tags (none for one).
type Book = (
    &'static str,
    &'static str,
    i32,
    Option<f64>,
    &'static [&'static str],
);

const BOOKS: [Book; 8] = [
    ("b1", "Dune", 1965, Some(4.3), &["scifi", "classic"]),
    (
        "b2",
        "Neuromancer",
        1984,
        Some(3.9),
        &["scifi", "cyberpunk"],
    ),
    (
        "b3",
        "Snow Crash",
        1992,
        Some(4.0),
        &["scifi", "cyberpunk", "satire"],
    ),
    ("b4", "Emma", 1815, Some(4.0), &["classic", "romance"]),
    ("b5", "Dracula", 1897, None, &["classic", "horror"]),
    ("b6", "The Road", 2006, Some(3.9), &[]),
    ("b7", "Anathem", 2008, Some(4.2), &["scifi"]),
    ("b8", "Middlemarch", 1871, Some(4.1), &["classic"]),
];

fn main() -> stratavec::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", std::env::temp_dir(), e))?;
    let schema = CollectionSchema::new("books")
        .field(FieldSchema::new("title", DataType::String))
        // An inverted index lets the planner pick matching rows without reading every one.
        .field(FieldSchema::new("year", DataType::Int32).index(ScalarIndex::Inverted))
        .field(FieldSchema::new("rating", DataType::Double).nullable())
        .field(FieldSchema::new("tags", DataType::ArrayString).nullable())
        .vector(VectorSchema::new("embedding", 4));
    let coll = Collection::create(
        dir.path().join("books"),
        schema,
        CollectionOptions::default(),
    )?;

    let docs: Vec<Doc> = BOOKS
        .iter()
        .enumerate()
        .map(|(i, (pk, title, year, rating, tags))| {
            // A synthetic embedding: books close in the list are close in space.
            let x = i as f32 / BOOKS.len() as f32;
            Doc::new(*pk)
                .set("title", *title)
                .set("year", *year)
                .set("rating", *rating)
                .set("tags", tags.to_vec())
                .vector("embedding", vec![x, 1.0 - x, 0.5, x * x])
        })
        .collect();
    coll.insert(&docs)?;

    let titles = |expr: &str| -> stratavec::Result<Vec<String>> {
        let hits = coll.query(&Query::new().filter(expr).topk(100))?;
        Ok(hits
            .iter()
            .filter_map(|d| d.get("title").and_then(|v| v.as_str()).map(str::to_string))
            .collect())
    };
    for expr in [
        "year >= 1980 AND year < 2000",
        "year < 1900 OR rating > 4.1",
        "title IN ('Dune', 'Emma', 'Solaris')",
        "title LIKE 'D%'",
        "year BETWEEN 1850 AND 1900",
        // NULL never satisfies a comparison, not even `!=`: Dracula has no rating.
        "rating != 4.0",
        "rating IS NULL",
        "tags CONTAIN_ANY ('horror', 'satire')",
        "tags CONTAIN_ALL ('scifi', 'cyberpunk')",
        "array_length(tags) = 0",
        "NOT (year > 1900)",
    ] {
        println!("{expr:<42} {:?}", titles(expr)?);
    }

    // The same language filters a vector search: the best hits among the matching rows only.
    let near = coll.query(
        &Query::vector("embedding", vec![0.0, 1.0, 0.5, 0.0])
            .topk(3)
            .filter("tags CONTAIN_ANY ('classic')"),
    )?;
    let near: Vec<_> = near.iter().map(|d| (d.pk.as_str(), d.score)).collect();
    println!("nearest classics: {near:?}");

    println!("books before 1900: {}", coll.count(Some("year < 1900"))?);
    let page = coll.scan(
        &ScanOptions::default()
            .filter("rating >= 4.0")
            .output_fields(["title"])
            .limit(2),
        None,
    )?;
    println!(
        "first page of rating >= 4.0: {:?}, more: {}",
        page.docs.iter().map(|d| &d.pk).collect::<Vec<_>>(),
        page.next.is_some()
    );

    let deleted = coll.delete_by_filter("year < 1900")?;
    println!(
        "deleted {deleted} nineteenth-century books, {} left",
        coll.count(None)?
    );

    // A mistake in a filter names the field and where it is.
    match coll.count(Some("year >= 2000 AND genre = 'scifi'")) {
        Err(Error::InvalidFilter {
            position, reason, ..
        }) => println!("refused at character {position:?}: {reason}"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}

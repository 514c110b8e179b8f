//! One collection shared by several threads through an `Arc<Collection>`: writers insert,
//! update and delete while readers search and count. A `Collection` is `Send + Sync`; every
//! method takes `&self`. Concurrent writers share fsyncs (group commit), and readers never wait
//! for a write's fsync: a reader sees a write once it is durable, and always once its call
//! returned.
//!
//! `cargo run --example threads`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, Error, FieldSchema, Query,
    VectorSchema,
};

const WRITERS: u64 = 4;
const BATCHES: u64 = 25;
const BATCH: u64 = 20;
const DIM: usize = 16;

fn vector(seed: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|j| ((seed * 131 + j * 17) % 97) as f32 / 97.0)
        .collect()
}

fn main() -> stratavec::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", std::env::temp_dir(), e))?;
    let schema = CollectionSchema::new("events")
        .field(FieldSchema::new("writer", DataType::UInt64))
        .field(FieldSchema::new("version", DataType::Int32))
        .vector(VectorSchema::new("v", DIM));
    let coll = Arc::new(Collection::create(
        dir.path().join("events"),
        schema,
        CollectionOptions::default(),
    )?);
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let coll = Arc::clone(&coll);
            thread::spawn(move || -> stratavec::Result<()> {
                for b in 0..BATCHES {
                    let docs: Vec<Doc> = (0..BATCH)
                        .map(|i| {
                            let n = (w * BATCHES + b) * BATCH + i;
                            Doc::new(format!("w{w}-{n}"))
                                .set("writer", w)
                                .set("version", 1)
                                .vector("v", vector(n))
                        })
                        .collect();
                    coll.insert(&docs)?;
                    // Each writer also revises and retracts some of its own documents.
                    let first = (w * BATCHES + b) * BATCH;
                    coll.update(&[Doc::new(format!("w{w}-{first}")).set("version", 2)])?;
                    coll.delete(&[format!("w{w}-{}", first + 1)])?;
                }
                Ok(())
            })
        })
        .collect();

    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (coll, done, reads) = (Arc::clone(&coll), Arc::clone(&done), Arc::clone(&reads));
            thread::spawn(move || -> stratavec::Result<()> {
                let mut last = 0;
                while !done.load(Ordering::Acquire) {
                    let live = coll.count(None)?;
                    let hits = coll.query(
                        &Query::vector("v", vector(r))
                            .topk(5)
                            .filter(format!("writer = {r}")),
                    )?;
                    assert!(hits.iter().all(|d| d.pk.starts_with(&format!("w{r}-"))));
                    last = live;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                println!("reader {r}: last count seen {last}");
                Ok(())
            })
        })
        .collect();

    // A panicked thread has nothing to report but its panic: pass it on.
    for w in writers {
        w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
    }

    let expected = WRITERS * BATCHES * (BATCH - 1);
    let live = coll.count(None)?;
    println!(
        "{} writers × {BATCHES} batches in {:.2} s, {} reads meanwhile; {live} live documents \
         ({} revised)",
        WRITERS,
        started.elapsed().as_secs_f64(),
        reads.load(Ordering::Relaxed),
        coll.count(Some("version = 2"))?
    );
    assert_eq!(live, expected);
    // Waits for background work and releases the lock; any clone left would see `Closed`.
    coll.close()
}

//! Writes documents to a WAL under each flush policy, reopens it as crash recovery would, and
//! prints what came back and how long each step took.
//!
//! `cargo run --release --example wal_demo`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stratavec::storage::StdStorage;
use stratavec::wal::{FlushPolicy, Op, Wal, WalId, WalOpenOptions, WalPayload};

/// A batch of documents, as a collection would log one write call.
#[derive(Debug, Serialize, Deserialize)]
struct Batch {
    pks: Vec<String>,
    #[serde(with = "serde_bytes")]
    vectors: Vec<u8>,
}

impl WalPayload for Batch {
    fn doc_count(&self) -> usize {
        self.pks.len()
    }
}

fn main() -> stratavec::Result<()> {
    let dir = PathBuf::from("target/wal-demo");
    std::fs::create_dir_all(&dir).map_err(|e| stratavec::Error::io("create", &dir, e))?;
    let id = WalId {
        segment: 0,
        block: 0,
    };
    let policies = [
        FlushPolicy::Always,
        FlushPolicy::EveryDocs(1000),
        FlushPolicy::Interval(Duration::from_millis(10)),
        FlushPolicy::Never,
    ];
    println!("| policy | batches | docs | append time | docs/s | reopen | records | bytes |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for policy in policies {
        let path = dir.join(format!("{}.wal", policy.to_string().replace(':', "-")));
        let wal = Wal::<Batch>::create(Arc::new(StdStorage), &path, id, 1, policy)?;
        let (batches, per_batch, dim) = (200usize, 100usize, 128usize);
        let started = Instant::now();
        for b in 0..batches {
            let batch = Batch {
                pks: (0..per_batch)
                    .map(|i| format!("doc-{}", b * per_batch + i))
                    .collect(),
                vectors: vec![(b % 251) as u8; per_batch * dim * 4],
            };
            wal.append(Op::Insert, &batch)?;
        }
        let append_time = started.elapsed();
        drop(wal);

        let started = Instant::now();
        let (_wal, recovered) =
            Wal::<Batch>::open(Arc::new(StdStorage), &path, id, &WalOpenOptions::default())?;
        let reopen = started.elapsed();
        let docs = batches * per_batch;
        assert_eq!(
            recovered.report.docs, docs as u64,
            "every acknowledged doc comes back"
        );
        println!(
            "| {policy} | {batches} | {docs} | {:.1} ms | {:.0} | {:.1} ms | {} | {} |",
            append_time.as_secs_f64() * 1e3,
            docs as f64 / append_time.as_secs_f64(),
            reopen.as_secs_f64() * 1e3,
            recovered.report.records,
            recovered.report.bytes
        );
    }
    Ok(())
}

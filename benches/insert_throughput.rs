//! Insert throughput per flush policy × batch size × writer threads (documents with a 128-d
//! vector and two scalar fields), next to the disk's raw fsync rate measured in the same run;
//! also the time until the documents are searchable and the time to flush them. The same
//! measurement as `stratavec bench insert` (the code is shared).
//!
//! ```text
//! cargo bench --bench insert_throughput                       # 3 runs per cell, medians
//! STRATAVEC_BENCH_DOCS=2000 STRATAVEC_BENCH_RUNS=5 cargo bench --bench insert_throughput
//! STRATAVEC_BENCH_INDEX=hnsw cargo bench --bench insert_throughput   # insert-to-ANN-searchable
//! STRATAVEC_BENCH_DIR=/mnt/disk cargo bench --bench insert_throughput  # another disk
//! ```
//! `cargo test --benches` runs it as a quick smoke pass with tiny sizes.

#[path = "../src/bin/stratavec/bench_insert.rs"]
mod bench_insert;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use bench_insert::{IndexChoice, InsertConfig};
use stratavec::wal::FlushPolicy;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: a smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let policies = vec![
        FlushPolicy::Always,
        FlushPolicy::EveryDocs(1),
        FlushPolicy::EveryDocs(100),
        FlushPolicy::EveryDocs(1000),
        FlushPolicy::Interval(Duration::from_millis(10)),
        FlushPolicy::Interval(Duration::from_millis(100)),
        FlushPolicy::Never,
    ];
    let cfg = InsertConfig {
        policies,
        batches: vec![1, 100, 1000],
        threads: vec![1, 8],
        docs: if smoke {
            50
        } else {
            env_or("STRATAVEC_BENCH_DOCS", 10_000)
        },
        dim: 128,
        index: env_or("STRATAVEC_BENCH_INDEX", IndexChoice::Flat),
        runs: if smoke {
            1
        } else {
            env_or("STRATAVEC_BENCH_RUNS", 3)
        },
        raw_fsync_secs: if smoke { 0.05 } else { 1.0 },
        dir: std::env::var_os("STRATAVEC_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/bench-insert")),
        progress: std::io::stderr().is_terminal(),
    };
    let mut header = false;
    let result = bench_insert::run(&cfg, |r| {
        if !header {
            header = true;
            println!(
                "raw 4 KiB write+fdatasync: {:.0}/s; {} docs per cell ({}-d vector + 2 scalar fields, {} index); medians of {} runs, in {}",
                r.raw_fsync_per_s,
                r.docs,
                cfg.dim,
                cfg.index.name(),
                cfg.runs,
                cfg.dir.display()
            );
            println!();
            println!("| policy | batch | writers | docs/s | calls/s | WAL MB/s | p50 ms | p99 ms | × raw fsync | searchable s | flush s |");
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        }
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.3} | {:.3} | {:.2} | {:.3} | {:.3} |",
            r.policy,
            r.batch,
            r.threads,
            r.docs_per_s,
            r.calls_per_s,
            r.wal_mb_per_s,
            r.p50_ms,
            r.p99_ms,
            r.ratio_to_raw_fsync,
            r.searchable_s,
            r.flush_s
        );
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

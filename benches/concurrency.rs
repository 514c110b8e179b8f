//! Search latency on the GloVe-50 fixture while writers insert (1 and 8 threads, `Always`) and
//! while `optimize` merges 3 sealed segments, plus writer-only throughput (HNSW vs flat, 1 vs 8
//! writers at batch 1). The same measurement and output as `stratavec bench concurrency` (the
//! code is shared; see `src/bin/stratavec/bench_concurrency.rs` for the phases).
//!
//! ```text
//! cargo bench --bench concurrency                      # 3 runs of 3 s phases, medians
//! cargo bench --bench concurrency -- --json            # one JSON object per phase
//! STRATAVEC_BENCH_RUNS=5 STRATAVEC_BENCH_SECS=5 STRATAVEC_BENCH_PRELOAD=5000 cargo bench --bench concurrency
//! STRATAVEC_BENCH_DIR=/mnt/disk cargo bench --bench concurrency   # another disk
//! ```
//! `cargo test --benches` runs it as a quick smoke pass with tiny sizes.

#[path = "../src/bin/stratavec/bench_concurrency.rs"]
mod bench_concurrency;

use std::io::IsTerminal;
use std::path::PathBuf;

use bench_concurrency::ConcurrencyConfig;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: a smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let json = std::env::args().any(|a| a == "--json");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data-fixtures");
    let cfg = ConcurrencyConfig {
        base: fixtures.join("glove50-10000.base.fvecs"),
        query: fixtures.join("glove50.query.fvecs"),
        preload: if smoke {
            300
        } else {
            env_or("STRATAVEC_BENCH_PRELOAD", 10_000)
        },
        secs: if smoke {
            0.1
        } else {
            env_or("STRATAVEC_BENCH_SECS", 3.0)
        },
        runs: if smoke {
            1
        } else {
            env_or("STRATAVEC_BENCH_RUNS", 3)
        },
        dir: std::env::var_os("STRATAVEC_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/bench-concurrency")),
        progress: std::io::stderr().is_terminal(),
    };
    let result = bench_concurrency::run(&cfg, json, |line| {
        println!("{line}");
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

//! WAL append throughput per flush policy, record size and writer count, next to the disk's raw
//! fsync rate and sequential bandwidth measured in the same run.
//!
//! ```text
//! cargo bench --bench wal_append                 # 5 runs per cell, medians
//! STRATAVEC_BENCH_RUNS=3 STRATAVEC_BENCH_SECS=0.3 cargo bench --bench wal_append
//! STRATAVEC_BENCH_DIR=/mnt/disk cargo bench --bench wal_append   # another disk
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use stratavec::storage::StdStorage;
use stratavec::wal::{FlushPolicy, Op, Wal, WalId};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// 4 KiB write + fdatasync in a loop: the rate a durable, one-at-a-time log can reach.
fn raw_fsync_per_s(dir: &Path, secs: f64) -> f64 {
    let path = dir.join("raw-fsync");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    let buf = vec![0xA5u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        f.write_all(&buf).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    fs::remove_file(&path).unwrap();
    rate
}

/// Sequential 1 MiB writes then one fsync: the disk's durable streaming bandwidth (MB/s).
fn raw_seq_mb_per_s(dir: &Path, megabytes: usize) -> f64 {
    let path = dir.join("raw-seq");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    let buf = vec![0x5Au8; 1 << 20];
    let start = Instant::now();
    for _ in 0..megabytes {
        f.write_all(&buf).unwrap();
    }
    f.sync_data().unwrap();
    let mbps = megabytes as f64 * 1.048_576 / start.elapsed().as_secs_f64();
    fs::remove_file(&path).unwrap();
    mbps
}

/// Appends `size`-byte records from `threads` writers for about `secs`; returns records/s.
fn run_cell(dir: &Path, policy: FlushPolicy, size: usize, threads: usize, secs: f64) -> f64 {
    let path = dir.join("0.wal");
    let id = WalId {
        segment: 0,
        block: 0,
    };
    let wal = Arc::new(Wal::<ByteBuf>::create(Arc::new(StdStorage), &path, id, 1, policy).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (wal, stop, count) = (wal.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let payload = ByteBuf::from(vec![t as u8; size]);
                while !stop.load(Ordering::Relaxed) {
                    wal.append(Op::Insert, &payload).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    // What `Never` and `Interval` leave unsynced counts too: a fair run ends durable.
    wal.sync().unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    drop(wal);
    fs::remove_file(&path).unwrap();
    count.load(Ordering::Relaxed) as f64 / elapsed
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let runs: usize = if smoke {
        1
    } else {
        env_or("STRATAVEC_BENCH_RUNS", 5)
    };
    let secs: f64 = if smoke {
        0.05
    } else {
        env_or("STRATAVEC_BENCH_SECS", 0.5)
    };
    let dir: PathBuf = std::env::var_os("STRATAVEC_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-wal"));
    fs::create_dir_all(&dir).unwrap();

    let fsync_rate = median(
        (0..runs)
            .map(|_| raw_fsync_per_s(&dir, secs * 2.0))
            .collect(),
    );
    let seq_mbps = median(
        (0..runs)
            .map(|_| raw_seq_mb_per_s(&dir, if smoke { 8 } else { 256 }))
            .collect(),
    );
    println!("disk: raw 4 KiB write+fdatasync {fsync_rate:.0}/s; sequential write+fsync {seq_mbps:.0} MB/s");
    println!(
        "medians of {runs} runs of {secs} s each, in {}",
        dir.display()
    );
    println!();
    println!(
        "| policy | record | writers | records/s | MB/s | × raw fsync rate | × seq bandwidth |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let policies = [
        FlushPolicy::Always,
        FlushPolicy::EveryDocs(100),
        FlushPolicy::Interval(Duration::from_millis(10)),
        FlushPolicy::Never,
    ];
    for policy in policies {
        for size in [256usize, 4096, 65536] {
            for threads in [1usize, 8] {
                let rate = median(
                    (0..runs)
                        .map(|_| run_cell(&dir, policy, size, threads, secs))
                        .collect(),
                );
                let mbps = rate * size as f64 / 1e6;
                println!(
                    "| {policy} | {size} B | {threads} | {rate:.0} | {mbps:.1} | {:.2} | {:.2} |",
                    rate / fsync_rate,
                    mbps / seq_mbps
                );
            }
        }
    }
}

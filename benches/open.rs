//! Open cost and memory as a collection grows: open + first fetch and open + first search of
//! synthetic 64-d collections of 10k, 100k and 1M documents (ten sealed segments each, flat
//! index), each measured in a fresh process, with its RSS (anonymous and file-backed) right
//! after; and insert throughput into the 1M collection against an empty one, in the same run.
//!
//! ```text
//! cargo bench --bench open                                  # 10k, 100k, 1M; 5 runs each
//! STRATAVEC_OPEN_SIZES=10000,100000 STRATAVEC_RUNS=3 cargo bench --bench open
//! ```
//! The collections are written under `target/bench-open` (about 300 MB for 1M rows) and kept
//! between runs of the same sizes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FetchOptions, FieldSchema,
    Metric, OpenOptions, SearchOptions, VectorSchema,
};

const DIM: usize = 64;
const SEGMENTS: usize = 10;
const BATCH: usize = 1000;
const CHILD: &str = "STRATAVEC_OPEN_CHILD";

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

fn schema() -> CollectionSchema {
    CollectionSchema::new("open")
        .field(FieldSchema::new("n", DataType::Int64))
        .vector(VectorSchema::new("v", DIM).metric(Metric::L2))
}

/// A deterministic pseudo-random vector per row (xorshift), so the data need no file.
fn vector(i: u64) -> Vec<f32> {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn doc(i: u64) -> Doc {
    Doc::new(format!("doc-{i:09}"))
        .set("n", i as i64)
        .vector("v", vector(i))
}

fn options() -> CollectionOptions {
    CollectionOptions::default()
        .flush_policy(FlushPolicy::EveryDocs(BATCH as u32))
        .merge_policy(None)
}

/// Inserts rows `from..to` in batches; returns docs/s.
fn insert(c: &Collection, from: u64, to: u64) -> f64 {
    let t = Instant::now();
    let mut i = from;
    while i < to {
        let end = (i + BATCH as u64).min(to);
        let docs: Vec<Doc> = (i..end).map(doc).collect();
        c.insert(&docs).expect("insert");
        i = end;
    }
    (to - from) as f64 / t.elapsed().as_secs_f64()
}

/// The collection of `rows` documents in ten sealed segments, built once.
fn collection(root: &Path, rows: u64) -> PathBuf {
    let path = root.join(format!("synthetic-{rows}"));
    if path.join("done").exists() {
        return path;
    }
    let _ = std::fs::remove_dir_all(&path);
    let c = Collection::create(&path, schema(), options()).expect("create");
    let per = rows / SEGMENTS as u64;
    for s in 0..SEGMENTS as u64 {
        insert(&c, s * per, (s + 1) * per);
        c.flush().expect("flush");
    }
    c.close().expect("close");
    std::fs::write(path.join("done"), b"").expect("mark");
    path
}

fn dir_bytes(path: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let Ok(meta) = e.metadata() else { continue };
        total += if meta.is_dir() {
            dir_bytes(&e.path())
        } else {
            meta.len()
        };
    }
    total
}

/// `(VmRSS, RssAnon, RssFile)` of this process, in bytes.
fn rss() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

/// In the child: opens `path`, runs one fetch or one search, prints ms and RSS as JSON.
fn child(path: &str, what: &str) {
    let rows: u64 = env_or("STRATAVEC_OPEN_ROWS", 0);
    let t = Instant::now();
    let c = Collection::open(path, OpenOptions::default().read_only(true)).expect("open");
    let opened = t.elapsed().as_secs_f64() * 1e3;
    let found = match what {
        "fetch" => {
            let pk = format!("doc-{:09}", rows / 2);
            c.fetch_with(&[pk], &FetchOptions::default())
                .expect("fetch")
                .len()
        }
        _ => c
            .search("v", &vector(rows + 7), &SearchOptions::new().topk(10))
            .expect("search")
            .len(),
    };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let (vm, anon, file) = rss();
    println!(
        "{{\"ms\": {ms:.3}, \"open_ms\": {opened:.3}, \"found\": {found}, \"rss\": {vm}, \"rss_anon\": {anon}, \"rss_file\": {file}}}"
    );
}

struct Sample {
    ms: f64,
    open_ms: f64,
    rss: f64,
    anon: f64,
    file: f64,
}

fn number(line: &str, key: &str) -> f64 {
    let at = line
        .find(&format!("\"{key}\": "))
        .map(|i| i + key.len() + 4);
    at.and_then(|i| {
        line[i..]
            .split([',', '}'])
            .next()
            .and_then(|x| x.trim().parse().ok())
    })
    .unwrap_or(f64::NAN)
}

fn measure(path: &Path, rows: u64, what: &str) -> Sample {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .env(CHILD, format!("{}\n{what}", path.display()))
        .env("STRATAVEC_OPEN_ROWS", rows.to_string())
        .output()
        .expect("child");
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "child failed: {line} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Sample {
        ms: number(&line, "ms"),
        open_ms: number(&line, "open_ms"),
        rss: number(&line, "rss"),
        anon: number(&line, "rss_anon"),
        file: number(&line, "rss_file"),
    }
}

fn main() {
    if let Ok(job) = std::env::var(CHILD) {
        let (path, what) = job.split_once('\n').unwrap_or((&job, "search"));
        child(path, what);
        return;
    }
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let sizes: Vec<u64> = std::env::var("STRATAVEC_OPEN_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runs: usize = env_or("STRATAVEC_RUNS", 5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-open");
    std::fs::create_dir_all(&root).expect("dir");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load before: {}", load.trim());
    println!("| rows | on disk | open (ms) | open + first fetch (ms) | open + first search (ms) | RSS after fetch: total / anon / file (MB) | RSS after search: total / anon / file (MB) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mb = |x: f64| x / (1 << 20) as f64;
    for &rows in &sizes {
        let path = collection(&root, rows);
        let mut fetch = Vec::new();
        let mut search = Vec::new();
        for _ in 0..runs {
            fetch.push(measure(&path, rows, "fetch"));
            search.push(measure(&path, rows, "search"));
        }
        let med = |xs: &[Sample], f: fn(&Sample) -> f64| median(xs.iter().map(f).collect());
        println!(
            "| {rows} | {:.0} MB | {:.2} | {:.2} | {:.2} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} / {:.1} |",
            mb(dir_bytes(&path) as f64),
            med(&fetch, |s| s.open_ms),
            med(&fetch, |s| s.ms),
            med(&search, |s| s.ms),
            mb(med(&fetch, |s| s.rss)),
            mb(med(&fetch, |s| s.anon)),
            mb(med(&fetch, |s| s.file)),
            mb(med(&search, |s| s.rss)),
            mb(med(&search, |s| s.anon)),
            mb(med(&search, |s| s.file)),
        );
    }
    // Insert throughput into the largest collection against an empty one, interleaved.
    let Some(&largest) = sizes.iter().max() else {
        return;
    };
    let full = collection(&root, largest);
    // Per run: the first 20k inserts after the open (they pay the first-use checks of every
    // segment's key index, shared with the background check), then 60k more: the steady state,
    // over a window long enough (≈ 0.15 s, 60 fsyncs) that one slow fsync does not decide it,
    // and short enough that the writing segment does not rotate inside it.
    let (mut full_first, mut full_next, mut empty_first, mut empty_next) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (n, next) = (20_000u64, 60_000u64);
    for run in 0..runs as u64 {
        let copy = root.join("insert-copy");
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(&full, &copy);
        let from = 10_000_000 + run * (n + next);
        let c = Collection::open(&copy, OpenOptions::default()).expect("open copy");
        full_first.push(insert(&c, from, from + n));
        full_next.push(insert(&c, from + n, from + n + next));
        drop(c);
        let _ = std::fs::remove_dir_all(&copy);
        let empty = root.join("insert-empty");
        let _ = std::fs::remove_dir_all(&empty);
        let c = Collection::create(&empty, schema(), options()).expect("create");
        empty_first.push(insert(&c, from, from + n));
        empty_next.push(insert(&c, from + n, from + n + next));
        drop(c);
        let _ = std::fs::remove_dir_all(&empty);
    }
    let (a, b, c, d) = (
        median(full_first),
        median(full_next),
        median(empty_first),
        median(empty_next),
    );
    println!(
        "\ninserts (batch {BATCH}, EveryDocs({BATCH})), docs/s, median of {runs}:\n\
         | into | first {n} after open | next {next} |\n|---|---:|---:|\n\
         | {largest} docs in {SEGMENTS} sealed segments | {a:.0} | {b:.0} |\n\
         | an empty collection | {c:.0} | {d:.0} |\n\
         | ratio | {:.2} | {:.2} |",
        a / c,
        b / d
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load after: {}", load.trim());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), &target).expect("copy");
            // Written back now: otherwise the kernel writes the copy back while the inserts
            // run, and their WAL fsyncs wait behind hundreds of MB that are not theirs.
            std::fs::File::open(&target)
                .and_then(|f| f.sync_all())
                .expect("sync copy");
        }
    }
}

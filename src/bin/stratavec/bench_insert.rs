//! Insert throughput per flush policy × batch size × writer threads, next to the disk's raw
//! fsync rate measured in the same run. Shared by `stratavec bench insert` and
//! `benches/insert_throughput.rs` (included there with `#[path]`), so it depends on nothing
//! else of the binary.
//!
//! Each combination writes `docs` documents (a `dim`-d vector and two scalar fields, `num`
//! int64 and `tag` string) into a fresh collection with that policy, `threads` writers each
//! calling `insert` with `batch` documents at a time; one untimed warm-up write first creates
//! the WAL. Measured: documents/s and write calls/s over the wall time of all writes plus one
//! final `sync` (so every policy ends durable), WAL bytes/s, p50/p99 latency of one write call,
//! the time from the first write until the last document is found by a search (`searchable_s`),
//! and the time of the `flush` that persists them (`flush_s`). `ratio_to_raw_fsync` is write
//! calls/s divided by the rate of a 4 KiB write + fdatasync loop on the same disk.

use std::fs::{self, OpenOptions as FsOpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Barrier;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, IndexKind, Query,
    VectorSchema,
};

/// The vector index of the benchmark collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexChoice {
    /// Exact search: measures the write path alone.
    Flat,
    /// HNSW (m 16, ef_construction 200), built as documents arrive: insert-to-ANN-searchable.
    Hnsw,
}

impl FromStr for IndexChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "flat" => Ok(IndexChoice::Flat),
            "hnsw" => Ok(IndexChoice::Hnsw),
            _ => Err(format!("index {s:?}: expected flat or hnsw")),
        }
    }
}

impl IndexChoice {
    /// The spelling `FromStr` accepts.
    pub fn name(self) -> &'static str {
        match self {
            IndexChoice::Flat => "flat",
            IndexChoice::Hnsw => "hnsw",
        }
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct InsertConfig {
    /// Flush policies.
    pub policies: Vec<FlushPolicy>,
    /// Documents per write call.
    pub batches: Vec<usize>,
    /// Writer threads.
    pub threads: Vec<usize>,
    /// Documents per combination.
    pub docs: usize,
    /// Vector dimension.
    pub dim: usize,
    /// The vector index.
    pub index: IndexChoice,
    /// Runs per combination (medians are reported).
    pub runs: usize,
    /// Seconds of each raw fsync measurement.
    pub raw_fsync_secs: f64,
    /// Where temporary collections are created.
    pub dir: PathBuf,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// The result of one combination (medians over the runs).
#[derive(Debug, Clone)]
pub struct InsertResult {
    /// The flush policy.
    pub policy: FlushPolicy,
    /// Documents per write call.
    pub batch: usize,
    /// Writer threads.
    pub threads: usize,
    /// Documents written.
    pub docs: usize,
    /// Documents per second.
    pub docs_per_s: f64,
    /// Write calls per second.
    pub calls_per_s: f64,
    /// WAL megabytes (10^6 B) per second.
    pub wal_mb_per_s: f64,
    /// Median latency of one write call.
    pub p50_ms: f64,
    /// 99th-percentile latency of one write call.
    pub p99_ms: f64,
    /// The raw 4 KiB write + fdatasync rate of the disk, measured in this run.
    pub raw_fsync_per_s: f64,
    /// `calls_per_s / raw_fsync_per_s`.
    pub ratio_to_raw_fsync: f64,
    /// From the first write call until a search finds the last document written.
    pub searchable_s: f64,
    /// Time of the `flush` that persisted the documents.
    pub flush_s: f64,
}

/// The median of some numbers (0 when there are none).
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// The `p`-quantile (0..=1) of some numbers, nearest rank (0 when there are none).
pub fn percentile(xs: &mut [f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

/// 4 KiB write + fdatasync in a loop for about `secs`: the rate a durable, one-at-a-time log
/// can reach on this disk.
pub fn raw_fsync_per_s(dir: &Path, secs: f64) -> Result<f64, String> {
    let path = dir.join(format!(".stratavec-raw-fsync-{}", std::process::id()));
    let io = |op: &str, e: std::io::Error| format!("{op} {}: {e}", path.display());
    let mut f = FsOpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| io("create", e))?;
    let buf = vec![0xA5u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while n < 3 || start.elapsed().as_secs_f64() < secs {
        f.write_all(&buf).map_err(|e| io("write", e))?;
        f.sync_data().map_err(|e| io("fdatasync", e))?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(f);
    fs::remove_file(&path).map_err(|e| io("remove", e))?;
    Ok(rate)
}

/// A deterministic pseudo-random vector for document `i` (splitmix64), components in [-1, 1).
fn vector(i: u64, dim: usize) -> Vec<f32> {
    let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5151_5151;
    (0..dim)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The benchmark schema: `num` int64, `tag` string, `embedding` of `dim` dimensions.
pub fn schema(dim: usize, index: IndexChoice) -> CollectionSchema {
    let index = match index {
        IndexChoice::Flat => IndexKind::Flat,
        IndexChoice::Hnsw => IndexKind::Hnsw {
            m: 16,
            ef_construction: 200,
        },
    };
    CollectionSchema::new("bench")
        .field(FieldSchema::new("num", DataType::Int64))
        .field(FieldSchema::new("tag", DataType::String))
        .vector(VectorSchema::new("embedding", dim).index(index))
}

struct Run {
    docs_per_s: f64,
    calls_per_s: f64,
    wal_mb_per_s: f64,
    latencies_ms: Vec<f64>,
    searchable_s: f64,
    flush_s: f64,
}

/// One run of one combination in a fresh collection under `dir`.
fn run_once(
    cfg: &InsertConfig,
    policy: FlushPolicy,
    batch: usize,
    threads: usize,
) -> Result<Run, String> {
    let tmp = tempfile::Builder::new()
        .prefix(".stratavec-bench-")
        .tempdir_in(&cfg.dir)
        .map_err(|e| format!("create a temporary directory in {}: {e}", cfg.dir.display()))?;
    let path = tmp.path().join("bench");
    // No automatic persist in the middle of a run: the WAL takes every write.
    let options = CollectionOptions::default()
        .flush_policy(policy)
        .max_buffer_bytes(u64::MAX)
        .max_docs_per_segment(u64::MAX);
    let coll = Collection::create(&path, schema(cfg.dim, cfg.index), options)
        .map_err(|e| e.to_string())?;

    // Documents are built before the clock starts: thread t writes ids t, t+T, t+2T, ...
    let per_thread: Vec<Vec<Vec<Doc>>> = (0..threads)
        .map(|t| {
            let ids: Vec<u64> = (t..cfg.docs).step_by(threads).map(|i| i as u64).collect();
            ids.chunks(batch)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|&i| {
                            Doc::new(format!("d{i}"))
                                .set("num", i as i64)
                                .set("tag", format!("t{}", i % 16))
                                .vector("embedding", vector(i, cfg.dim))
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    // One warm-up write creates the WAL (a file and two fsyncs), which no timed call should pay.
    let warmup = Doc::new("warmup")
        .set("num", -1i64)
        .set("tag", "warmup")
        .vector("embedding", vector(u64::MAX, cfg.dim));
    coll.insert(&[warmup]).map_err(|e| e.to_string())?;
    coll.sync().map_err(|e| e.to_string())?;
    let wal_before = coll.stats().wal_bytes;
    let last_id = cfg.docs.saturating_sub(1) as u64;
    let barrier = Barrier::new(threads + 1);
    let (started, outcomes) = std::thread::scope(|s| {
        let handles: Vec<_> = per_thread
            .iter()
            .map(|batches| {
                let (coll, barrier) = (&coll, &barrier);
                s.spawn(move || -> Result<Vec<f64>, String> {
                    barrier.wait();
                    let mut lat = Vec::with_capacity(batches.len());
                    for docs in batches {
                        let t0 = Instant::now();
                        coll.insert(docs).map_err(|e| e.to_string())?;
                        lat.push(t0.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(lat)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let outcomes: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a writer thread panicked".into()))
            })
            .collect();
        (started, outcomes)
    });
    let mut latencies_ms = Vec::new();
    for o in outcomes {
        latencies_ms.extend(o?);
    }
    coll.sync().map_err(|e| e.to_string())?;
    let write_s = started.elapsed().as_secs_f64();
    let wal_bytes = coll.stats().wal_bytes.saturating_sub(wal_before);
    // Searchable: the last document written is its own nearest neighbour.
    if cfg.docs > 0 {
        let q = Query::vector("embedding", vector(last_id, cfg.dim))
            .topk(1)
            .output_fields(Vec::<String>::new());
        let hits = coll.query(&q).map_err(|e| e.to_string())?;
        if hits.first().map(|h| h.pk.as_str()) != Some(format!("d{last_id}").as_str()) {
            return Err(format!(
                "the last document written (d{last_id}) is not found by a search"
            ));
        }
    }
    let searchable_s = started.elapsed().as_secs_f64();
    let t0 = Instant::now();
    coll.flush().map_err(|e| e.to_string())?;
    let flush_s = t0.elapsed().as_secs_f64();
    coll.close().map_err(|e| e.to_string())?;
    drop(coll);
    let calls = latencies_ms.len();
    Ok(Run {
        docs_per_s: cfg.docs as f64 / write_s,
        calls_per_s: calls as f64 / write_s,
        wal_mb_per_s: wal_bytes as f64 / 1e6 / write_s,
        latencies_ms,
        searchable_s,
        flush_s,
    })
}

/// Checks a configuration before anything runs.
pub fn validate(cfg: &InsertConfig) -> Result<(), String> {
    if cfg.policies.is_empty() || cfg.batches.is_empty() || cfg.threads.is_empty() {
        return Err("policies, batch sizes and thread counts must not be empty".into());
    }
    if let Some(b) = cfg
        .batches
        .iter()
        .find(|&&b| b == 0 || b > stratavec::collection::MAX_BATCH)
    {
        return Err(format!(
            "batch size {b} is not in 1..={}",
            stratavec::collection::MAX_BATCH
        ));
    }
    if cfg.threads.contains(&0) {
        return Err("thread counts must be at least 1".into());
    }
    if cfg.docs == 0 {
        return Err("--docs must be at least 1".into());
    }
    if cfg.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if cfg.raw_fsync_secs.is_nan() || cfg.raw_fsync_secs <= 0.0 {
        return Err("the raw fsync measurement needs a positive duration".into());
    }
    if cfg.dim == 0 {
        return Err("--dim must be at least 1".into());
    }
    Ok(())
}

/// Runs every combination in order, handing each result to `emit` as soon as it is known.
/// The raw fsync rate is measured first (median of `runs` measurements).
pub fn run(
    cfg: &InsertConfig,
    mut emit: impl FnMut(&InsertResult) -> Result<(), String>,
) -> Result<(), String> {
    validate(cfg)?;
    fs::create_dir_all(&cfg.dir).map_err(|e| format!("create {}: {e}", cfg.dir.display()))?;
    let cells: Vec<(FlushPolicy, usize, usize)> = cfg
        .policies
        .iter()
        .flat_map(|&p| {
            cfg.batches
                .iter()
                .flat_map(move |&b| cfg.threads.iter().map(move |&t| (p, b, t)))
        })
        .collect();
    let pb = if cfg.progress {
        let pb = ProgressBar::new((cells.len() * cfg.runs) as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {elapsed}  {msg}")
        {
            pb.set_style(style);
        }
        pb
    } else {
        ProgressBar::hidden()
    };
    pb.set_message("raw fsync rate");
    let raw = median(
        (0..cfg.runs)
            .map(|_| raw_fsync_per_s(&cfg.dir, cfg.raw_fsync_secs))
            .collect::<Result<Vec<_>, _>>()?,
    );
    for (policy, batch, threads) in cells {
        pb.set_message(format!("{policy} batch {batch} threads {threads}"));
        let mut runs = Vec::with_capacity(cfg.runs);
        for _ in 0..cfg.runs {
            runs.push(run_once(cfg, policy, batch, threads)?);
            pb.inc(1);
        }
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        for r in &mut runs {
            p50.push(percentile(&mut r.latencies_ms, 0.5));
            p99.push(percentile(&mut r.latencies_ms, 0.99));
        }
        let pick = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let calls_per_s = pick(|r| r.calls_per_s);
        let result = InsertResult {
            policy,
            batch,
            threads,
            docs: cfg.docs,
            docs_per_s: pick(|r| r.docs_per_s),
            calls_per_s,
            wal_mb_per_s: pick(|r| r.wal_mb_per_s),
            p50_ms: median(p50),
            p99_ms: median(p99),
            raw_fsync_per_s: raw,
            ratio_to_raw_fsync: calls_per_s / raw,
            searchable_s: pick(|r| r.searchable_s),
            flush_s: pick(|r| r.flush_s),
        };
        pb.suspend(|| emit(&result))?;
    }
    pb.finish_and_clear();
    Ok(())
}

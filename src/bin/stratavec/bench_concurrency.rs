//! Search latency while writers insert and while `optimize` runs, and write throughput of a
//! few writer setups. Shared by `stratavec bench concurrency` and `benches/concurrency.rs`
//! (included there with `#[path]`), so it depends on nothing else of the binary; it also
//! formats the output, so the two print the same lines.
//!
//! One run: an `Arc<Collection>` with an HNSW vector field `embedding` (the dimension of the
//! base file, 50 for the GloVe fixture; cosine, m 16, ef_construction 200) and one with a flat
//! field are created in a temporary directory, each preloaded with the first `preload` base
//! rows (pks `0`, `1`, ...) in writes of 1000 and flushed, so the reader searches a sealed,
//! memory-mapped segment. Automatic persists are off (the writing segment only grows during a
//! run); every write is under `FlushPolicy::Always`. One untimed pass over the queries warms
//! the caches. Then the phases, in this order:
//!
//! - `idle`: the reader alone for `secs`;
//! - `writer1`: the reader while one writer inserts batches of 10 new documents (vectors are
//!   base rows, cycling) into the HNSW collection, for `secs`;
//! - `writers8`: the same with 8 writer threads;
//! - `optimize`: untimed, the writing segment is flushed and 1000-row insert + flush rounds
//!   follow until the collection has at least 3 sealed segments; then `optimize()` runs while
//!   the reader queries, and the phase lasts as long as `optimize`;
//! - `writer1_flat`: `writer1` into the flat collection (the reader searches it meanwhile), for
//!   the HNSW-vs-flat ratio of write throughput;
//! - `writers1_batch1`, `writers8_batch1`: 1 and 8 writers, batches of 1, into the HNSW
//!   collection, no reader;
//! - `wal1_batch1`, `wal8_batch1`: the WAL alone, 1 and 8 threads appending 256-byte records
//!   under `Always`: how far group commit can take the collection on this disk.
//!
//! The reader is one thread running top-10 queries at ef 64 back to back, cycling through the
//! query file, and timing each; a query that starts before its phase ends is counted even
//! when it returns later (so a reader blocked by `optimize` shows its whole wait), and every
//! reader phase has at least one query. A writer phase also ends early when a writer fails
//! (the error is reported). `writer_docs_per_s` is documents acknowledged / the time from the
//! start of the phase until the last writer's call returned.
//!
//! Output: per phase the median over the runs of each number. With JSON, one object per
//! phase with the keys `phase`, `queries`, `p50_ms`, `p99_ms`, `max_ms`, `writer_docs_per_s`
//! in that order, then `writers`, `batch`, `index`, `reader`, `docs`, `secs`, `rows`,
//! `segments`, `runs`. Writer-only phases have `queries` 0 and `null` latencies (nothing was
//! measured, which 0 would hide); phases without writers have `writer_docs_per_s` 0.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, Doc, DocStatus, IndexKind, Metric, Query,
    VectorSchema,
};

/// Hits per reader query.
pub const TOPK: usize = 10;
/// Beam width of reader queries.
pub const EF: usize = 64;
/// HNSW links per node.
pub const M: usize = 16;
/// HNSW beam width while building.
pub const EF_CONSTRUCTION: usize = 200;
/// Sealed segments the collection has when `optimize` starts.
pub const SEALED_SEGMENTS: usize = 3;
/// Documents per write call of the preload and of the segment rounds before `optimize`.
const LOAD_BATCH: usize = 1000;

/// What to measure.
#[derive(Debug, Clone)]
pub struct ConcurrencyConfig {
    /// Base vectors (.fvecs): the preload and the writers' vectors.
    pub base: PathBuf,
    /// Query vectors (.fvecs) of the reader.
    pub query: PathBuf,
    /// Base rows loaded (and flushed) before the phases.
    pub preload: usize,
    /// Seconds per phase (`optimize` lasts as long as it takes).
    pub secs: f64,
    /// Whole measurements; medians per phase are reported.
    pub runs: usize,
    /// Where the temporary collections are created.
    pub dir: PathBuf,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// The phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The reader alone.
    Idle,
    /// The reader and one writer, batches of 10.
    Writer1,
    /// The reader and 8 writers, batches of 10.
    Writers8,
    /// The reader while `optimize` merges 3 sealed segments.
    Optimize,
    /// One writer, batches of 10, flat index, no reader.
    Writer1Flat,
    /// One writer, batches of 1, no reader.
    Writers1Batch1,
    /// 8 writers, batches of 1, no reader.
    Writers8Batch1,
    /// The WAL alone (no collection): one thread appending records the size of a one-document
    /// batch under `Always`, what `writers1_batch1` is compared with.
    Wal1Batch1,
    /// The WAL alone: 8 threads appending under `Always` (group commit).
    Wal8Batch1,
}

impl Phase {
    /// Every phase, in running order.
    pub const ALL: [Phase; 9] = [
        Phase::Idle,
        Phase::Writer1,
        Phase::Writers8,
        Phase::Optimize,
        Phase::Writer1Flat,
        Phase::Writers1Batch1,
        Phase::Writers8Batch1,
        Phase::Wal1Batch1,
        Phase::Wal8Batch1,
    ];

    /// The name printed as `phase`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Writer1 => "writer1",
            Phase::Writers8 => "writers8",
            Phase::Optimize => "optimize",
            Phase::Writer1Flat => "writer1_flat",
            Phase::Writers1Batch1 => "writers1_batch1",
            Phase::Writers8Batch1 => "writers8_batch1",
            Phase::Wal1Batch1 => "wal1_batch1",
            Phase::Wal8Batch1 => "wal8_batch1",
        }
    }

    /// Writer threads.
    pub fn writers(self) -> usize {
        match self {
            Phase::Idle | Phase::Optimize => 0,
            Phase::Writer1 | Phase::Writer1Flat | Phase::Writers1Batch1 | Phase::Wal1Batch1 => 1,
            Phase::Writers8 | Phase::Writers8Batch1 | Phase::Wal8Batch1 => 8,
        }
    }

    /// Documents per write call (0 without writers).
    pub fn batch(self) -> usize {
        match self {
            Phase::Idle | Phase::Optimize => 0,
            Phase::Writer1 | Phase::Writers8 | Phase::Writer1Flat => 10,
            Phase::Writers1Batch1
            | Phase::Writers8Batch1
            | Phase::Wal1Batch1
            | Phase::Wal8Batch1 => 1,
        }
    }

    /// Whether the reader runs.
    pub fn reader(self) -> bool {
        // The flat phase runs the reader too: the HNSW-vs-flat ratio compares like with like.
        matches!(
            self,
            Phase::Idle | Phase::Writer1 | Phase::Writers8 | Phase::Optimize | Phase::Writer1Flat
        )
    }

    /// The index of the collection the phase works on.
    pub fn index(self) -> &'static str {
        match self {
            Phase::Writer1Flat => "flat",
            Phase::Wal1Batch1 | Phase::Wal8Batch1 => "wal",
            _ => "hnsw",
        }
    }
}

/// One phase, medians over the runs.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// The phase.
    pub phase: Phase,
    /// Reader queries (0 for writer-only phases).
    pub queries: u64,
    /// Reader latency percentiles; `None` for writer-only phases.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// The slowest query.
    pub max_ms: Option<f64>,
    /// Documents acknowledged per second by all writers together (0 without writers).
    pub writer_docs_per_s: f64,
    /// Documents written.
    pub docs: u64,
    /// How long the phase lasted.
    pub secs: f64,
    /// Live documents in the phase's collection when it started.
    pub rows: u64,
    /// Sealed segments of the phase's collection when it started.
    pub segments: u64,
}

impl PhaseResult {
    /// The `--json` line: the six contract keys first, extras after.
    pub fn to_json(&self, runs: usize) -> serde_json::Value {
        json!({
            "phase": self.phase.name(),
            "queries": self.queries,
            "p50_ms": self.p50_ms.map(|x| round(x, 4)),
            "p99_ms": self.p99_ms.map(|x| round(x, 4)),
            "max_ms": self.max_ms.map(|x| round(x, 4)),
            "writer_docs_per_s": round(self.writer_docs_per_s, 1),
            "writers": self.phase.writers(),
            "batch": self.phase.batch(),
            "index": self.phase.index(),
            "reader": self.phase.reader(),
            "docs": self.docs,
            "secs": round(self.secs, 4),
            "rows": self.rows,
            "segments": self.segments,
            "runs": runs,
        })
    }

    /// A row of the table.
    pub fn table_row(&self) -> String {
        let ms = |x: Option<f64>| x.map_or_else(|| "—".to_string(), |x| format!("{x:.3}"));
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {:.2} | {} | {} |",
            self.phase.name(),
            if self.phase.reader() { "yes" } else { "no" },
            self.phase.writers(),
            self.phase.batch(),
            self.phase.index(),
            self.queries,
            ms(self.p50_ms),
            ms(self.p99_ms),
            ms(self.max_ms),
            self.writer_docs_per_s,
            self.docs,
            self.secs,
            self.rows,
            self.segments,
        )
    }
}

/// `x` rounded to `digits` decimals, so JSON shows 0.0308 rather than 0.030756999999999996.
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// The median of some numbers (0 when there are none).
fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// The `p`-quantile (0..=1) of sorted numbers, nearest rank (0 when there are none).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One phase of one run.
struct PhaseRun {
    /// Sorted reader latencies in ms.
    latencies_ms: Vec<f64>,
    docs: u64,
    secs: f64,
    rows: u64,
    segments: u64,
}

fn err(e: stratavec::Error) -> String {
    e.to_string()
}

/// Checks a configuration before anything runs.
pub fn validate(cfg: &ConcurrencyConfig) -> Result<(), String> {
    if cfg.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if !(cfg.secs.is_finite() && cfg.secs > 0.0) {
        return Err(format!(
            "--secs {}: expected a positive number of seconds",
            cfg.secs
        ));
    }
    Ok(())
}

/// Rows of an .fvecs file.
type Vectors = Vec<Vec<f32>>;

/// Reads the base and query files and checks that they fit together and the preload.
fn read_inputs(cfg: &ConcurrencyConfig) -> Result<(Vectors, Vectors), String> {
    let read = |flag: &str, path: &Path| -> Result<Vectors, String> {
        if !path.exists() {
            return Err(format!(
                "{flag} {}: no such file (the defaults are relative to the repository root; \
                 pass {flag} <FVECS>)",
                path.display()
            ));
        }
        let rows = stratavec::dataset::read_fvecs(path).map_err(|e| format!("{flag}: {e}"))?;
        let Some(dim) = rows.first().map(Vec::len) else {
            return Err(format!("{flag} {} has no rows", path.display()));
        };
        if let Some(i) = rows.iter().position(|r| r.len() != dim) {
            return Err(format!(
                "{flag} {}: row {i} has {} dimensions, row 0 has {dim}",
                path.display(),
                rows[i].len()
            ));
        }
        Ok(rows)
    };
    let base = read("--base", &cfg.base)?;
    let queries = read("--query", &cfg.query)?;
    let (dim, qdim) = (base[0].len(), queries[0].len());
    if dim != qdim {
        return Err(format!(
            "--query {} has {qdim} dimensions, --base {} has {dim}",
            cfg.query.display(),
            cfg.base.display()
        ));
    }
    if cfg.preload > base.len() {
        return Err(format!(
            "--preload {} exceeds the {} rows of {}",
            cfg.preload,
            base.len(),
            cfg.base.display()
        ));
    }
    Ok((base, queries))
}

/// Creates a collection for the benchmark: `embedding` with `index`, cosine, `Always`, no
/// automatic persist.
fn create(path: &Path, dim: usize, index: IndexKind) -> Result<Arc<Collection>, String> {
    let schema = CollectionSchema::new("bench_concurrency").vector(
        VectorSchema::new("embedding", dim)
            .metric(Metric::Cosine)
            .index(index),
    );
    let options = CollectionOptions::default()
        .flush_policy(FlushPolicy::Always)
        .max_buffer_bytes(u64::MAX)
        .max_docs_per_segment(u64::MAX);
    Ok(Arc::new(
        Collection::create(path, schema, options).map_err(err)?,
    ))
}

/// Inserts `docs`, failing unless every one is new.
fn insert_all(coll: &Collection, docs: &[Doc]) -> Result<(), String> {
    let statuses = coll.insert(docs).map_err(err)?;
    if let Some(i) = statuses.iter().position(|s| *s != DocStatus::Ok) {
        return Err(format!(
            "insert of {:?} returned {:?}",
            docs[i].pk, statuses[i]
        ));
    }
    Ok(())
}

/// Inserts `count` base rows (cycling from `first`) with pks `<prefix><n>`, then flushes.
fn load(
    coll: &Collection,
    base: &[Vec<f32>],
    prefix: &str,
    first: usize,
    count: usize,
) -> Result<(), String> {
    let ids: Vec<usize> = (0..count).collect();
    for chunk in ids.chunks(LOAD_BATCH) {
        let docs: Vec<Doc> = chunk
            .iter()
            .map(|&n| {
                Doc::new(format!("{prefix}{n}"))
                    .vector("embedding", base[(first + n) % base.len()].clone())
            })
            .collect();
        insert_all(coll, &docs)?;
    }
    coll.flush().map_err(err)
}

fn query(coll: &Collection, vector: &[f32]) -> Result<(), String> {
    let q = Query::vector("embedding", vector.to_vec())
        .topk(TOPK)
        .ef(EF)
        .output_fields(Vec::<String>::new());
    coll.query(&q).map(|_| ()).map_err(err)
}

/// The reader: queries back to back (at least one) until `stop`, timing each.
fn spawn_reader(
    coll: Arc<Collection>,
    queries: Arc<Vec<Vec<f32>>>,
    start: Arc<Barrier>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<Vec<f64>, String>> {
    spawn_named("bench-reader", move || {
        start.wait();
        let mut lat = Vec::new();
        for i in 0.. {
            let q = Query::vector("embedding", queries[i % queries.len()].clone())
                .topk(TOPK)
                .ef(EF)
                .output_fields(Vec::<String>::new());
            let t0 = Instant::now();
            coll.query(&q).map_err(err)?;
            lat.push(t0.elapsed().as_secs_f64() * 1e3);
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        Ok(lat)
    })
}

/// A writer: batches of new documents with pks `<prefix>-<t>-<n>` until `stop`; returns the
/// documents acknowledged.
#[allow(clippy::too_many_arguments)]
fn spawn_writer(
    coll: Arc<Collection>,
    base: Arc<Vec<Vec<f32>>>,
    prefix: &'static str,
    t: usize,
    writers: usize,
    batch: usize,
    start: Arc<Barrier>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<u64, String>> {
    spawn_named("bench-writer", move || {
        start.wait();
        let mut n = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let docs: Vec<Doc> = (n..n + batch)
                .map(|k| {
                    let row = (t + k * writers) % base.len();
                    Doc::new(format!("{prefix}-{t}-{k}")).vector("embedding", base[row].clone())
                })
                .collect();
            insert_all(&coll, &docs)?;
            n += batch;
        }
        Ok(n as u64)
    })
}

/// A named thread, so that profiles tell the reader from the writers.
fn spawn_named<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> JoinHandle<Result<T, String>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .unwrap_or_else(|e| {
            let msg = format!("cannot start a thread: {e}");
            std::thread::spawn(move || Err(msg))
        })
}

fn join<T>(h: JoinHandle<Result<T, String>>, what: &str) -> Result<T, String> {
    h.join()
        .unwrap_or_else(|_| Err(format!("the {what} thread panicked")))
}

/// A WAL-only phase: `writers` threads append records of `record` bytes under `Always` to one
/// WAL in `dir` for `secs`.
fn run_wal_phase(phase: Phase, dir: &Path, record: usize, secs: f64) -> Result<PhaseRun, String> {
    use stratavec::storage::StdStorage;
    use stratavec::wal::{FlushPolicy, Op, Wal, WalId};
    let path = dir.join(format!("{}.wal", phase.name()));
    let id = WalId {
        segment: 0,
        block: 0,
    };
    let wal: Arc<Wal<serde_bytes::ByteBuf>> = Arc::new(
        Wal::create(Arc::new(StdStorage), &path, id, 1, FlushPolicy::Always).map_err(err)?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let payload = serde_bytes::ByteBuf::from(vec![7u8; record]);
    let started = Instant::now();
    let handles: Vec<_> = (0..phase.writers())
        .map(|_| {
            let (wal, stop, payload) = (wal.clone(), stop.clone(), payload.clone());
            spawn_named("bench-wal", move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    wal.append(Op::Insert, &payload).map_err(err)?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    while started.elapsed().as_secs_f64() < secs && !handles.iter().any(JoinHandle::is_finished) {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let mut docs = 0;
    for h in handles {
        docs += join(h, "WAL writer").map_err(|e| format!("phase {}: {e}", phase.name()))?;
    }
    Ok(PhaseRun {
        latencies_ms: Vec::new(),
        docs,
        secs: started.elapsed().as_secs_f64(),
        rows: 0,
        segments: 0,
    })
}

/// Runs one phase on `coll` (the HNSW or the flat collection).
fn run_phase(
    phase: Phase,
    coll: &Arc<Collection>,
    base: &Arc<Vec<Vec<f32>>>,
    queries: &Arc<Vec<Vec<f32>>>,
    secs: f64,
) -> Result<PhaseRun, String> {
    let stats = coll.stats();
    let (rows, segments) = (stats.doc_count, stats.segments as u64);
    let writers = phase.writers();
    let reader = phase.reader();
    let start = Arc::new(Barrier::new(writers + usize::from(reader) + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let reader_handle =
        reader.then(|| spawn_reader(coll.clone(), queries.clone(), start.clone(), stop.clone()));
    let writer_handles: Vec<_> = (0..writers)
        .map(|t| {
            spawn_writer(
                coll.clone(),
                base.clone(),
                phase.name(),
                t,
                writers,
                phase.batch(),
                start.clone(),
                stop.clone(),
            )
        })
        .collect();
    start.wait();
    let started = Instant::now();
    let optimized = if phase == Phase::Optimize {
        coll.optimize().map_err(err)
    } else {
        // Until the time is up or a writer stopped (it failed).
        while started.elapsed().as_secs_f64() < secs
            && !writer_handles.iter().any(JoinHandle::is_finished)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    };
    stop.store(true, Ordering::Relaxed);
    let mut docs = 0;
    let mut first_error = optimized.err();
    for h in writer_handles {
        match join(h, "writer") {
            Ok(n) => docs += n,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let latencies = reader_handle.map(|h| join(h, "reader"));
    if let Some(e) = first_error {
        return Err(format!("phase {}: {e}", phase.name()));
    }
    let mut latencies_ms = match latencies {
        Some(r) => r.map_err(|e| format!("phase {}: reader: {e}", phase.name()))?,
        None => Vec::new(),
    };
    latencies_ms.sort_by(|a, b| a.total_cmp(b));
    Ok(PhaseRun {
        latencies_ms,
        docs,
        secs,
        rows,
        segments,
    })
}

/// One whole measurement in a fresh temporary directory: a `PhaseRun` per phase, in order.
fn run_once(
    cfg: &ConcurrencyConfig,
    base: &Arc<Vec<Vec<f32>>>,
    queries: &Arc<Vec<Vec<f32>>>,
    pb: &ProgressBar,
    run: usize,
) -> Result<Vec<PhaseRun>, String> {
    let tmp = tempfile::Builder::new()
        .prefix(".stratavec-bench-")
        .tempdir_in(&cfg.dir)
        .map_err(|e| format!("create a temporary directory in {}: {e}", cfg.dir.display()))?;
    let dim = base[0].len();
    let step = |what: &str| pb.set_message(format!("run {}/{}: {what}", run + 1, cfg.runs));
    step("preload hnsw");
    let hnsw = create(
        &tmp.path().join("hnsw"),
        dim,
        IndexKind::Hnsw {
            m: M,
            ef_construction: EF_CONSTRUCTION,
        },
    )?;
    load(&hnsw, base, "", 0, cfg.preload)?;
    step("preload flat");
    let flat = create(&tmp.path().join("flat"), dim, IndexKind::Flat)?;
    load(&flat, base, "", 0, cfg.preload)?;
    step("warm-up");
    for q in queries.iter() {
        query(&hnsw, q)?;
    }
    let mut out = Vec::with_capacity(Phase::ALL.len());
    for phase in Phase::ALL {
        if phase == Phase::Optimize {
            step("sealed segments for optimize");
            hnsw.flush().map_err(err)?;
            let mut round = 0;
            while hnsw.stats().segments < SEALED_SEGMENTS {
                load(
                    &hnsw,
                    base,
                    &format!("seg{round}-"),
                    round * LOAD_BATCH,
                    LOAD_BATCH,
                )?;
                round += 1;
            }
        }
        step(phase.name());
        if phase.index() == "wal" {
            // About the size of a one-document batch of 50-d vectors.
            out.push(run_wal_phase(phase, tmp.path(), 256, cfg.secs)?);
            pb.inc(1);
            continue;
        }
        let coll = if phase == Phase::Writer1Flat {
            &flat
        } else {
            &hnsw
        };
        out.push(run_phase(phase, coll, base, queries, cfg.secs)?);
        pb.inc(1);
    }
    step("clean up");
    hnsw.close().map_err(err)?;
    flat.close().map_err(err)?;
    drop((hnsw, flat));
    let tmp_path = tmp.path().to_path_buf();
    tmp.close()
        .map_err(|e| format!("remove {}: {e}", tmp_path.display()))?;
    Ok(out)
}

/// The medians over the runs of one phase.
fn summarize(phase: Phase, runs: &[&PhaseRun]) -> PhaseResult {
    let pick = |f: &dyn Fn(&PhaseRun) -> f64| median(runs.iter().map(|r| f(r)).collect());
    let latency = |p: f64| {
        phase
            .reader()
            .then(|| pick(&|r| quantile(&r.latencies_ms, p)))
    };
    PhaseResult {
        phase,
        queries: pick(&|r| r.latencies_ms.len() as f64) as u64,
        p50_ms: latency(0.5),
        p99_ms: latency(0.99),
        max_ms: latency(1.0),
        writer_docs_per_s: pick(&|r| r.docs as f64 / r.secs.max(1e-9)),
        docs: pick(&|r| r.docs as f64) as u64,
        secs: pick(&|r| r.secs),
        rows: pick(&|r| r.rows as f64) as u64,
        segments: pick(&|r| r.segments as f64) as u64,
    }
}

/// The table's heading lines.
fn table_header(cfg: &ConcurrencyConfig, dim: usize, queries: usize) -> Vec<String> {
    vec![
        format!(
            "{} preloaded rows of {} ({dim}-d, cosine), hnsw m={M} ef_construction={EF_CONSTRUCTION}; \
             reader: 1 thread, top {TOPK}, ef {EF}, {queries} queries cycling; writers: FlushPolicy::Always; \
             {} s per phase; medians of {} run(s), in {}; kernels {}",
            cfg.preload,
            cfg.base.display(),
            cfg.secs,
            cfg.runs,
            cfg.dir.display(),
            stratavec::kernel_name()
        ),
        String::new(),
        "| phase | reader | writers | batch | index | queries | p50 ms | p99 ms | max ms | writer docs/s | docs | secs | rows | segments |".into(),
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|".into(),
    ]
}

/// Runs the measurement and hands each output line to `line`: with `json` one JSON object
/// per phase, otherwise a heading and a Markdown table. Lines come once every run is done
/// (they are medians). An error from `line` stops the benchmark and is returned as is.
pub fn run(
    cfg: &ConcurrencyConfig,
    json: bool,
    mut line: impl FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    validate(cfg)?;
    let (base, queries) = read_inputs(cfg)?;
    fs::create_dir_all(&cfg.dir).map_err(|e| format!("create {}: {e}", cfg.dir.display()))?;
    let dim = base[0].len();
    let n_queries = queries.len();
    let (base, queries) = (Arc::new(base), Arc::new(queries));
    let pb = if cfg.progress {
        let pb = ProgressBar::new((Phase::ALL.len() * cfg.runs) as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} phases  {elapsed}  {msg}")
        {
            pb.set_style(style);
        }
        pb
    } else {
        ProgressBar::hidden()
    };
    let mut runs = Vec::with_capacity(cfg.runs);
    for r in 0..cfg.runs {
        runs.push(run_once(cfg, &base, &queries, &pb, r)?);
    }
    pb.finish_and_clear();
    if !json {
        for l in table_header(cfg, dim, n_queries) {
            line(&l)?;
        }
    }
    for (i, phase) in Phase::ALL.into_iter().enumerate() {
        let per_run: Vec<&PhaseRun> = runs.iter().map(|r| &r[i]).collect();
        let result = summarize(phase, &per_run);
        if json {
            line(&result.to_json(cfg.runs).to_string())?;
        } else {
            line(&result.table_row())?;
        }
    }
    Ok(())
}

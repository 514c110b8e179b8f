//! `stratavec bench search` (recall@k and queries/s per ef on fvecs/ivecs data) and the
//! output of `stratavec bench insert` (the measurement itself is in `bench_insert`).

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use stratavec::dataset::{read_fvecs, read_ivecs, recall_at_k};
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, IndexKind, Metric,
    OpenOptions, Query, SearchOptions, VectorSchema,
};

use crate::bench_insert::{self, median, percentile, InsertConfig, InsertResult};
use crate::{progress_enabled, CliError, Out, Res};

/// `x` rounded to `digits` decimals, so JSON shows 0.0308 rather than 0.030756999999999996.
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// `stratavec bench insert`: runs the measurement and prints one line per combination.
pub fn insert_command(out: &mut Out, json: bool, cfg: &InsertConfig) -> Res {
    let mut header_done = false;
    let mut emit = |r: &InsertResult| -> Result<(), String> {
        let print =
            |out: &mut Out, line: &str| out.line(line).map_err(|e| e.message.unwrap_or_default());
        if json {
            let obj = json!({
                "policy": r.policy.to_string(),
                "batch": r.batch,
                "threads": r.threads,
                "docs_per_s": round(r.docs_per_s, 1),
                "wal_mb_per_s": round(r.wal_mb_per_s, 3),
                "p50_ms": round(r.p50_ms, 4),
                "p99_ms": round(r.p99_ms, 4),
                "raw_fsync_per_s": round(r.raw_fsync_per_s, 1),
                "ratio_to_raw_fsync": round(r.ratio_to_raw_fsync, 4),
                "calls_per_s": round(r.calls_per_s, 1),
                "docs": r.docs,
                "dim": cfg.dim,
                "index": cfg.index.name(),
                "searchable_s": round(r.searchable_s, 6),
                "flush_s": round(r.flush_s, 6),
            });
            return print(out, &obj.to_string());
        }
        if !header_done {
            header_done = true;
            print(
                out,
                &format!(
                    "raw 4 KiB write+fdatasync: {:.0}/s; {} docs per combination ({}-d vector + 2 scalar fields, {} index), median of {} runs, in {}",
                    r.raw_fsync_per_s,
                    r.docs,
                    cfg.dim,
                    cfg.index.name(),
                    cfg.runs,
                    cfg.dir.display()
                ),
            )?;
            print(out, "| policy | batch | threads | docs/s | calls/s | WAL MB/s | p50 ms | p99 ms | × raw fsync | searchable s | flush s |")?;
            print(
                out,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            )?;
        }
        print(
            out,
            &format!(
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
            ),
        )
    };
    bench_insert::run(cfg, &mut emit).map_err(|e| {
        if e.is_empty() {
            // stdout was closed: end quietly.
            CliError {
                code: 0,
                message: None,
            }
        } else {
            CliError::new(e)
        }
    })
}

/// `stratavec bench search` options.
pub struct SearchConfig {
    pub base: PathBuf,
    pub query: PathBuf,
    pub gt: PathBuf,
    pub limit: Option<usize>,
    pub metric: String,
    pub m: usize,
    pub ef_construction: usize,
    pub ef: Vec<usize>,
    pub topk: usize,
    pub threads: usize,
    /// `(M, V, ground truth)`: base row i gets `cat = i % M`, queries use `cat = V`.
    pub filter: Option<(u32, u32, PathBuf)>,
    pub runs: usize,
    /// Separately persisted imports, merged by `optimize` when more than one.
    pub imports: usize,
    pub dir: PathBuf,
}

struct Pass {
    recall: f64,
    qps: f64,
    latencies_ms: Vec<f64>,
}

/// The shortest timed pass of `bench search`: this host's swings last a good part of a second,
/// and with 0.25 s passes one swing could still put a pass 1.4× off the others.
const MIN_PASS: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs every query `repeat` times on `threads` threads (thread t takes queries t, t+T, ...).
#[allow(clippy::too_many_arguments)]
fn pass(
    coll: &Collection,
    queries: &[Vec<f32>],
    truth: &[Vec<i32>],
    topk: usize,
    ef: usize,
    filter: Option<&str>,
    threads: usize,
    repeat: usize,
) -> Res<Pass> {
    let started = Instant::now();
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> Result<(f64, Vec<f64>), stratavec::Error> {
                    let mut recall = 0.0;
                    let mut lat = Vec::new();
                    let options = SearchOptions::new().topk(topk).ef(ef);
                    let mut pks: Vec<String> = Vec::with_capacity(topk);
                    let n = queries.len();
                    for i in (t..n * repeat).step_by(threads).map(|i| i % n) {
                        pks.clear();
                        let t0 = Instant::now();
                        match filter {
                            // The engine-bound entry point: keys and scores, no documents.
                            None => {
                                coll.search_keys("embedding", &queries[i], &options, |pk, _| {
                                    pks.push(pk.to_string())
                                })?;
                            }
                            Some(f) => {
                                let q = Query::vector("embedding", queries[i].clone())
                                    .topk(topk)
                                    .ef(ef)
                                    .output_fields(Vec::<String>::new())
                                    .filter(f);
                                pks.extend(coll.query(&q)?.into_iter().map(|h| h.pk));
                            }
                        }
                        lat.push(t0.elapsed().as_secs_f64() * 1e3);
                        recall += recall_at_k(&pks, &truth[i], topk);
                    }
                    Ok((recall, lat))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(stratavec::Error::InvalidArgument(
                        "a query thread panicked".into(),
                    ))
                })
            })
            .collect::<Vec<_>>()
    });
    let secs = started.elapsed().as_secs_f64();
    let mut recall = 0.0;
    let mut latencies_ms = Vec::with_capacity(queries.len());
    for r in results {
        let (rc, lat) = r?;
        recall += rc;
        latencies_ms.extend(lat);
    }
    let answered = (queries.len() * repeat).max(1) as f64;
    Ok(Pass {
        recall: recall / answered,
        qps: answered / secs,
        latencies_ms,
    })
}

fn bar(len: u64, template: &str) -> ProgressBar {
    if !progress_enabled() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style);
    }
    pb
}

/// `stratavec bench search`.
pub fn search(out: &mut Out, json: bool, c: &SearchConfig) -> Res {
    let metric = Metric::from_name(&c.metric).ok_or_else(|| {
        CliError::new(format!(
            "--metric {:?}: expected l2, ip or cosine",
            c.metric
        ))
    })?;
    if c.threads == 0 || c.topk == 0 || c.runs == 0 || c.imports == 0 || c.ef.is_empty() {
        return Err(CliError::new(
            "--threads, --topk, --runs and --imports must be at least 1 and --ef must list a value",
        ));
    }
    if c.filter.as_ref().is_some_and(|(m, _, _)| *m == 0) {
        return Err(CliError::new("--filter-mod must be at least 1"));
    }
    let base = crate::vecs::read_fvecs_limit(&c.base, c.limit)?;
    let Some(dim) = base.first().map(Vec::len) else {
        return Err(CliError::new(format!("{} has no rows", c.base.display())));
    };
    let queries = read_fvecs(&c.query)?;
    let gt_path = c.filter.as_ref().map_or(&c.gt, |(_, _, p)| p);
    let truth = read_ivecs(gt_path)?;
    if truth.len() < queries.len() {
        return Err(CliError::new(format!(
            "{} has {} rows for {} queries",
            gt_path.display(),
            truth.len(),
            queries.len()
        )));
    }
    let n = base.len();
    let beyond = truth
        .iter()
        .flat_map(|row| row.iter().take(c.topk))
        .filter(|&&id| id < 0 || id as usize >= n)
        .count();
    if beyond > 0 {
        eprintln!(
            "warning: {beyond} ground-truth ids of {} are not among the {n} base rows used; recall is measured against the ground truth as given",
            gt_path.display()
        );
    }
    let filter = c.filter.as_ref().map(|(_, v, _)| format!("cat = {v}"));

    let tmp = tempfile::Builder::new()
        .prefix(".stratavec-bench-")
        .tempdir_in(&c.dir)
        .map_err(|e| format!("create a temporary directory in {}: {e}", c.dir.display()))?;
    let path = tmp.path().join("search");
    let mut schema = CollectionSchema::new("bench_search");
    if c.filter.is_some() {
        schema = schema.field(FieldSchema::new("cat", DataType::Int32));
    }
    schema = schema.vector(VectorSchema::new("embedding", dim).metric(metric).index(
        IndexKind::Hnsw {
            m: c.m,
            ef_construction: c.ef_construction,
        },
    ));
    let options = CollectionOptions::default()
        .flush_policy(FlushPolicy::Never)
        .max_buffer_bytes(u64::MAX)
        .max_docs_per_segment(n as u64 + 1);
    let coll = Collection::create(&path, schema, options)?;
    if let Some(f) = &filter {
        // A filter the collection refuses fails now, not after the build.
        coll.query(&Query::new().filter(f.clone()))?;
    }
    let pb = bar(
        n as u64,
        "{bar:40} {pos}/{len} base rows  {per_sec}  eta {eta}",
    );
    let per_import = n.div_ceil(c.imports).max(1);
    let started = Instant::now();
    for (b, chunk) in base.chunks(1000).enumerate() {
        let docs: Vec<Doc> = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let i = b * 1000 + j;
                let mut d = Doc::new(i.to_string()).vector("embedding", v.clone());
                if let Some((m, _, _)) = &c.filter {
                    d = d.set("cat", (i as u32 % m) as i32);
                }
                d
            })
            .collect();
        coll.insert(&docs)?;
        pb.inc(docs.len() as u64);
        let done = b * 1000 + docs.len();
        if c.imports > 1 && done % per_import < 1000 && done < n {
            coll.flush()?;
        }
    }
    // With several imports, this includes their flushes.
    let insert_s = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    // Every row in a graph: the flush seals the writing segment, whose graph is the live one
    // completed or, when the bulk load outran it, a bulk build; `optimize` merges the imports.
    let t0 = Instant::now();
    if c.imports > 1 {
        coll.optimize()?;
    } else {
        coll.flush()?;
        // A base below `min_graph_rows` was sealed with its graph deferred: build it now.
        if coll.stats().graphs.iter().any(|g| g.rows_deferred > 0) {
            coll.optimize()?;
        }
    }
    let flush_s = t0.elapsed().as_secs_f64();
    let build_s = started.elapsed().as_secs_f64();
    let st = coll.stats();
    let deferred: u64 = st.graphs.iter().map(|g| g.rows_deferred).sum();
    if st.unindexed > 0 || st.writing_rows > 0 || deferred > 0 {
        return Err(CliError::new(format!(
            "after the flush, {} rows are still outside a graph",
            st.unindexed.max(st.writing_rows as u64).max(deferred)
        )));
    }
    coll.close()?;
    drop(coll);

    let t0 = Instant::now();
    let coll = Collection::open(&path, OpenOptions::default().read_only(true))?;
    let mut first =
        Query::vector("embedding", queries.first().cloned().unwrap_or_default()).topk(c.topk);
    if let Some(f) = &filter {
        first = first.filter(f.clone());
    }
    coll.query(&first)?;
    let reopen_s = t0.elapsed().as_secs_f64();
    // The timed passes measure the steady state: graphs packed for search (done in the
    // background after an open; the first queries walk the mapped files meanwhile).
    coll.wait_idle()?;
    let resident: u64 = coll.stats().sealed.iter().map(|s| s.resident_bytes).sum();
    let resident_per_row = resident as f64 / n.max(1) as f64;

    if json {
        out.json(&json!({
            "build_s": round(build_s, 6), "flush_s": round(flush_s, 6), "reopen_s": round(reopen_s, 6),
            "insert_s": round(insert_s, 6), "imports": c.imports,
            "docs": n, "dim": dim, "metric": metric.name(), "m": c.m,
            "ef_construction": c.ef_construction, "queries": queries.len(), "topk": c.topk,
            "threads": c.threads, "filter": filter, "kernel": stratavec::kernel_name(),
            "resident_bytes_per_row": round(resident_per_row, 1),
        }))?;
    } else {
        out.line(&format!(
            "{n} base rows of {} ({dim}-d, {}), hnsw m={} ef_construction={}; {} queries, top {}, {} thread(s){}; kernels {}",
            c.base.display(),
            metric.name(),
            c.m,
            c.ef_construction,
            queries.len(),
            c.topk,
            c.threads,
            filter.as_ref().map(|f| format!(", filter `{f}`")).unwrap_or_default(),
            stratavec::kernel_name()
        ))?;
        out.line(&format!(
            "build (first insert until every row is in a graph) {build_s:.3} s ({:.0} docs/s): {} {insert_s:.3} s, then {} {flush_s:.3} s; reopen + first query {:.1} ms; held in memory {resident_per_row:.1} B/row",
            n as f64 / build_s.max(1e-9),
            if c.imports > 1 { format!("{} imports", c.imports) } else { "inserts".into() },
            if c.imports > 1 { "optimize" } else { "flush" },
            reopen_s * 1e3
        ))?;
        out.line(&format!(
            "| ef | recall@{} | queries/s | p50 ms | p99 ms |",
            c.topk
        ))?;
        out.line("|---:|---:|---:|---:|---:|")?;
    }
    let pb = bar(
        (c.ef.len() * c.runs) as u64,
        "{bar:40} {pos}/{len} passes  {msg}",
    );
    let run = |ef, repeat| {
        pass(
            &coll,
            &queries,
            &truth,
            c.topk,
            ef,
            filter.as_deref(),
            c.threads,
            repeat,
        )
    };
    for &ef in &c.ef {
        pb.set_message(format!("ef {ef}"));
        // One untimed pass per ef warms caches and mapped pages, and sizes the timed passes:
        // the query set repeated until a pass lasts MIN_PASS, so that a scheduler hiccup on
        // this shared host weighs little against it (500 queries at ef 16 last ~20 ms).
        let warm = run(ef, 1)?;
        let warm_s = queries.len() as f64 / warm.qps.max(1e-9);
        let repeat = (MIN_PASS.as_secs_f64() / warm_s).ceil().clamp(1.0, 1000.0) as usize;
        let mut qps = Vec::new();
        let mut lat = Vec::new();
        let mut recall = 0.0;
        for _ in 0..c.runs {
            let p = run(ef, repeat)?;
            qps.push(p.qps);
            lat.extend(p.latencies_ms);
            recall = p.recall;
            pb.inc(1);
        }
        let (lo, hi) = qps.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
        let qps = median(qps);
        let p50 = percentile(&mut lat, 0.5);
        let p99 = percentile(&mut lat, 0.99);
        pb.suspend(|| {
            if json {
                out.json(&json!({
                    "ef": ef, "recall": round(recall, 4), "qps": round(qps, 1),
                    "p50_ms": round(p50, 4), "p99_ms": round(p99, 4),
                    "threads": c.threads, "qps_min": round(lo, 1), "qps_max": round(hi, 1),
                    "passes": c.runs, "queries_per_pass": queries.len() * repeat,
                }))
            } else {
                out.line(&format!(
                    "| {ef} | {recall:.4} | {qps:.0} | {p50:.3} | {p99:.3} |"
                ))
            }
        })?;
    }
    pb.finish_and_clear();
    Ok(())
}

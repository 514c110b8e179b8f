//! Model-based concurrency test: writers, readers and `optimize` share one collection, and every
//! read must show, for each writer, exactly the state after some prefix of that writer's batches
//! that lies between the batches acknowledged before the read began and those begun before it
//! ended.
//!
//! Each writer owns a key space (`w<t>k<i>`), so its history is a plain sequence of batches that
//! a model replays exactly: `snapshots[k]` is its key space after its first `k` batches. A
//! writer publishes `snapshots[k]` and then bumps `started` to `k` before its k-th call, and
//! bumps `acked` to `k` after the call returned Ok. A reader loads `lo = acked` before a read
//! and `hi = started` after it; the writer's part of the result must equal `snapshots[k]` for a
//! `k` in `lo..=hi`. That rules out a torn batch (no prefix matches), a resurrected or lost row,
//! a row of a write not yet begun, and a write acknowledged but not visible (`k < lo`).
//!
//! Reads: `fetch` of one writer's key space, a filter-only `query` over everything (one snapshot
//! checked against every writer), an exact search of the flat vector `v` with a topk covering
//! every document (must list all of them), a graph search of the HNSW vector `h` (every hit
//! must be a live row of an admissible snapshot, with that row's values), and `stats()`.
//!
//! At the end the collection is closed and reopened: it must hold the union of the writers'
//! final models.
//!
//! `STRATAVEC_SEED=<base>` changes the seeds, `STRATAVEC_TRIALS=<n>` runs more trials (each
//! with other options), `STRATAVEC_TRIAL=<n>` only one. Thread interleavings are not
//! reproducible, only the batches are.

mod crash_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crash_support::{
    all_writer_keys, assert_mirrored, read_back, rec_of, rng, run_mirrored, split_by_writer,
    trial_seed, trials, union, writer_keys, writer_of, Model, Rec, Trial,
};
use rand::rngs::SmallRng;
use rand::Rng;
use stratavec::wal::FlushPolicy;
use stratavec::{Collection, CollectionOptions, Doc, OpenOptions, Query, SearchOptions};

const WRITERS: usize = 4;
const READERS: usize = 3;
const KEY_SPACE: usize = 24;
const MAX_BATCH: usize = 8;
/// Batches per writer and trial.
const BATCHES: u64 = 150;

/// One writer's progress, shared with the readers.
struct Track {
    /// Batches begun (bumped before the call).
    started: AtomicU64,
    /// Batches acknowledged (bumped after the call returned Ok).
    acked: AtomicU64,
    /// `snapshots[k]`: the key space after the first `k` batches; entry `k` exists before
    /// `started` reaches `k`.
    snapshots: RwLock<Vec<Arc<Model>>>,
}

impl Track {
    fn new() -> Track {
        Track {
            started: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            snapshots: RwLock::new(vec![Arc::new(Model::new())]),
        }
    }

    /// The snapshots `lo..=hi`.
    fn window(&self, lo: u64, hi: u64) -> Vec<Arc<Model>> {
        let s = self.snapshots.read().unwrap();
        assert!(
            lo <= hi && (hi as usize) < s.len(),
            "window {lo}..={hi} of {}",
            s.len()
        );
        s[lo as usize..=hi as usize].to_vec()
    }
}

/// `lo` of every writer, loaded before a read.
fn acked_now(tracks: &[Track]) -> Vec<u64> {
    tracks.iter().map(|t| t.acked.load(SeqCst)).collect()
}

/// `hi` of every writer, loaded after a read.
fn started_now(tracks: &[Track]) -> Vec<u64> {
    tracks.iter().map(|t| t.started.load(SeqCst)).collect()
}

/// What readers found, for the summary and the sanity checks.
#[derive(Default)]
struct Seen {
    reads: AtomicU64,
    /// Reads that showed a batch that had begun but was not acknowledged yet.
    inflight_visible: AtomicU64,
    /// Reads whose window held more than one snapshot.
    open_windows: AtomicU64,
    searches: AtomicU64,
}

/// The index in `lo..=hi` of the snapshot that `got` equals (after `keep` filters the
/// snapshots); panics when there is none.
fn admissible(
    track: &Track,
    w: usize,
    (lo, hi): (u64, u64),
    got: &Model,
    keep: &dyn Fn(&Rec) -> bool,
    seen: &Seen,
    what: &str,
) -> u64 {
    let window = track.window(lo, hi);
    if window.len() > 1 {
        seen.open_windows.fetch_add(1, SeqCst);
    }
    let filtered = |m: &Model| -> Model {
        m.iter()
            .filter(|(_, r)| keep(r))
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()
    };
    for (i, m) in window.iter().enumerate() {
        if filtered(m) == *got {
            if i > 0 {
                seen.inflight_visible.fetch_add(1, SeqCst);
            }
            return lo + i as u64;
        }
    }
    let mut msg = format!(
        "{what}: writer {w}: the read matches none of the snapshots {lo}..={hi} (acknowledged \
         ..= begun)\n"
    );
    for (i, m) in window.iter().enumerate() {
        msg.push_str(&format!(
            "against snapshot {}:\n{}",
            lo + i as u64,
            crash_support::diff(&filtered(m), got)
        ));
    }
    panic!("{msg}");
}

/// Models of fetched or queried documents, one per writer; no pk twice.
fn by_writer(docs: &[Doc], what: &str) -> Vec<Model> {
    let mut all = Model::new();
    for d in docs {
        assert!(
            all.insert(d.pk.clone(), rec_of(d)).is_none(),
            "{what}: {} returned twice",
            d.pk
        );
    }
    assert_mirrored(docs, "h", what);
    split_by_writer(&all, WRITERS)
}

/// The filters of the filter-only queries.
const FILTERS: [&str; 4] = ["", "n >= 0", "s IS NULL", "n < 100 AND s IS NOT NULL"];

/// Whether a document passes `FILTERS[f]`, as the model sees it.
fn passes(f: usize, r: &Rec) -> bool {
    match f {
        0 => true,
        1 => r.n >= 0,
        2 => r.s.is_none(),
        _ => r.n < 100 && r.s.is_some(),
    }
}

fn random_vector(rng: &mut SmallRng) -> Vec<f32> {
    (0..4).map(|_| rng.gen_range(-50.0..50.0)).collect()
}

fn reader(c: &Collection, tracks: &[Track], stop: &AtomicBool, seen: &Seen, seed: u64) {
    let mut rng = rng(seed);
    let mut i = 0u64;
    while !stop.load(SeqCst) {
        i += 1;
        let what = format!("reader seed {seed:#x}, read {i}");
        match rng.gen_range(0..10) {
            // One writer's whole key space with one fetch.
            0..=4 => {
                let w = rng.gen_range(0..WRITERS);
                let keys = writer_keys(w, KEY_SPACE);
                let lo = tracks[w].acked.load(SeqCst);
                let docs = c
                    .fetch(&keys)
                    .unwrap_or_else(|e| panic!("{what}: fetch: {e}"));
                let hi = tracks[w].started.load(SeqCst);
                let got = by_writer(&docs, &what).swap_remove(w);
                admissible(&tracks[w], w, (lo, hi), &got, &|_| true, seen, &what);
            }
            // Everything with one filter-only query: one snapshot, checked for every writer.
            5..=6 => {
                let f = rng.gen_range(0..FILTERS.len());
                let expr = FILTERS[f];
                let keep = |r: &Rec| passes(f, r);
                let mut q = Query::new()
                    .topk(WRITERS * KEY_SPACE + 10)
                    .include_vector(true);
                if !expr.is_empty() {
                    q = q.filter(expr);
                }
                let lo = acked_now(tracks);
                let docs = c
                    .query(&q)
                    .unwrap_or_else(|e| panic!("{what}: query {expr:?}: {e}"));
                let hi = started_now(tracks);
                let what = format!("{what}, query filter {expr:?}");
                for (w, got) in by_writer(&docs, &what).iter().enumerate() {
                    admissible(&tracks[w], w, (lo[w], hi[w]), got, &keep, seen, &what);
                }
            }
            // Exact search of the flat vector, topk covering everything: every live document.
            7 => {
                let q = random_vector(&mut rng);
                let opts = SearchOptions::new()
                    .topk(WRITERS * KEY_SPACE + 10)
                    .include_vector(true);
                let lo = acked_now(tracks);
                let docs = c
                    .search("v", &q, &opts)
                    .unwrap_or_else(|e| panic!("{what}: search v: {e}"));
                let hi = started_now(tracks);
                seen.searches.fetch_add(1, SeqCst);
                assert!(
                    docs.windows(2).all(|p| p[0].score <= p[1].score),
                    "{what}: L2 hits are not in ascending order"
                );
                let what = format!("{what}, flat search");
                for (w, got) in by_writer(&docs, &what).iter().enumerate() {
                    admissible(&tracks[w], w, (lo[w], hi[w]), got, &|_| true, seen, &what);
                }
            }
            // Graph search of the HNSW vector: every hit is a row of an admissible snapshot.
            8 => {
                let q = random_vector(&mut rng);
                let topk = rng.gen_range(1..=20);
                let opts = SearchOptions::new().topk(topk).include_vector(true);
                let lo = acked_now(tracks);
                let docs = c
                    .search("h", &q, &opts)
                    .unwrap_or_else(|e| panic!("{what}: search h: {e}"));
                let hi = started_now(tracks);
                seen.searches.fetch_add(1, SeqCst);
                let what = format!("{what}, graph search topk {topk}");
                assert!(docs.len() <= topk, "{what}: {} hits", docs.len());
                assert!(
                    docs.windows(2).all(|p| p[0].score <= p[1].score),
                    "{what}: L2 hits are not in ascending order"
                );
                assert_mirrored(&docs, "h", &what);
                let pks: BTreeSet<&str> = docs.iter().map(|d| d.pk.as_str()).collect();
                assert_eq!(pks.len(), docs.len(), "{what}: a pk twice");
                for d in &docs {
                    let w = writer_of(&d.pk)
                        .filter(|&w| w < WRITERS)
                        .unwrap_or_else(|| panic!("{what}: hit {} of no writer", d.pk));
                    let r = rec_of(d);
                    let window = tracks[w].window(lo[w], hi[w]);
                    assert!(
                        window.iter().any(|m| m.get(&d.pk) == Some(&r)),
                        "{what}: hit {} = {r:?} is in none of writer {w}'s snapshots \
                         {}..={} (there: {:?})",
                        d.pk,
                        lo[w],
                        hi[w],
                        window.iter().map(|m| m.get(&d.pk)).collect::<Vec<_>>()
                    );
                }
            }
            // Counts: between the smallest and the largest admissible totals.
            _ => {
                let lo = acked_now(tracks);
                let stats = c.stats();
                let hi = started_now(tracks);
                let (mut min, mut max) = (0u64, 0u64);
                for (w, t) in tracks.iter().enumerate() {
                    let sizes: Vec<u64> = t
                        .window(lo[w], hi[w])
                        .iter()
                        .map(|m| m.len() as u64)
                        .collect();
                    min += sizes.iter().min().unwrap();
                    max += sizes.iter().max().unwrap();
                }
                assert!(
                    (min..=max).contains(&stats.doc_count),
                    "{what}: stats().doc_count {} outside {min}..={max}",
                    stats.doc_count
                );
            }
        }
        seen.reads.fetch_add(1, SeqCst);
    }
}

/// Runs writer `w`'s batches; returns its final model.
fn writer(c: &Collection, w: usize, track: &Track, seed: u64, flush_every: u32) -> Model {
    let mut rng = rng(seed);
    let mut model = Model::new();
    for k in 1..=BATCHES {
        if rng.gen_ratio(1, flush_every) {
            c.flush()
                .unwrap_or_else(|e| panic!("writer {w}: flush before batch {k}: {e}"));
        }
        let write = crash_support::random_write_for(&mut rng, w, KEY_SPACE, MAX_BATCH);
        let mut next = model.clone();
        let want = write.apply(&mut next);
        track
            .snapshots
            .write()
            .unwrap()
            .push(Arc::new(next.clone()));
        assert_eq!(track.started.fetch_add(1, SeqCst), k - 1);
        let got = run_mirrored(&write, c, "h")
            .unwrap_or_else(|e| panic!("writer {w}: batch {k} ({write:?}): {e}"));
        assert_eq!(got, want, "writer {w}: statuses of batch {k} ({write:?})");
        track.acked.store(k, SeqCst);
        model = next;
        // Read your writes: nobody else writes this key space, so a fetch right after the
        // acknowledgement shows exactly the model.
        if rng.gen_ratio(1, 3) {
            let keys = writer_keys(w, KEY_SPACE);
            let docs = c
                .fetch(&keys)
                .unwrap_or_else(|e| panic!("writer {w}: fetch after batch {k}: {e}"));
            let got = by_writer(&docs, "read your writes").swap_remove(w);
            assert!(
                got == model,
                "writer {w}: its own fetch right after batch {k} was acknowledged:\n{}",
                crash_support::diff(&model, &got)
            );
        }
    }
    model
}

fn options(trial: u64, rng: &mut SmallRng) -> (CollectionOptions, u32) {
    let (policy, max_docs) = if trial == 0 {
        (FlushPolicy::Always, 40)
    } else {
        let policy = match rng.gen_range(0..4) {
            0 => FlushPolicy::Always,
            1 => FlushPolicy::EveryDocs(rng.gen_range(1..=30)),
            2 => FlushPolicy::Interval(Duration::from_millis(rng.gen_range(1..=20))),
            _ => FlushPolicy::Never,
        };
        (policy, [7, 40, 200, 10_000_000][rng.gen_range(0..4)])
    };
    let flush_every = [10, 40, 1000][rng.gen_range(0..3)];
    (
        CollectionOptions::default()
            .flush_policy(policy)
            .max_docs_per_segment(max_docs),
        flush_every,
    )
}

#[test]
fn concurrent_writers_and_readers_see_only_whole_acknowledged_prefixes() {
    const TEST: &str = "concurrent_writers_and_readers_see_only_whole_acknowledged_prefixes";
    for trial in trials(2) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let (opts, flush_every) = options(trial, &mut rng);
        let what = format!(
            "{:?}, max_docs_per_segment {}, flush 1 in {flush_every}",
            opts.flush_policy, opts.max_docs_per_segment
        );
        let _trial = Trial::new(TEST, trial, seed, &what);
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let c = Collection::create(&path, crash_support::mirrored_schema(), opts).unwrap();
        let tracks: Vec<Track> = (0..WRITERS).map(|_| Track::new()).collect();
        let stop = AtomicBool::new(false);
        let writers_done = AtomicBool::new(false);
        let seen = Seen::default();
        let optimizes = AtomicU64::new(0);
        let models = std::thread::scope(|s| {
            let readers: Vec<_> = (0..READERS)
                .map(|r| {
                    let (c, tracks, stop, seen) = (&c, &tracks, &stop, &seen);
                    let seed = crash_support::splitmix(seed ^ (0x5EAD << 8) ^ r as u64);
                    s.spawn(move || reader(c, tracks, stop, seen, seed))
                })
                .collect();
            let optimizer = {
                let (c, writers_done, optimizes) = (&c, &writers_done, &optimizes);
                let mut rng = crash_support::rng(crash_support::splitmix(seed ^ 0x0971));
                s.spawn(move || {
                    while !writers_done.load(SeqCst) {
                        std::thread::sleep(Duration::from_millis(rng.gen_range(5..40)));
                        c.optimize()
                            .unwrap_or_else(|e| panic!("optimize during the writes: {e}"));
                        optimizes.fetch_add(1, SeqCst);
                    }
                })
            };
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let (c, track) = (&c, &tracks[w]);
                    let seed = crash_support::splitmix(seed ^ (0x3717 << 8) ^ w as u64);
                    s.spawn(move || writer(c, w, track, seed, flush_every))
                })
                .collect();
            let models: Vec<Model> = writers
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect();
            writers_done.store(true, SeqCst);
            optimizer
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            // A last round of reads on the quiet collection, then stop.
            std::thread::sleep(Duration::from_millis(20));
            stop.store(true, SeqCst);
            for r in readers {
                r.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            }
            models
        });
        let keys = all_writer_keys(WRITERS, KEY_SPACE);
        let want = union(&models);
        let got = read_back(&c, &keys);
        assert!(
            got == want,
            "{what}: after the writers finished:\n{}",
            crash_support::diff(&want, &got)
        );
        c.close().unwrap();
        let c = Collection::open(&path, OpenOptions::default()).unwrap();
        let got = read_back(&c, &keys);
        assert!(
            got == want,
            "{what}: after close and reopen:\n{}",
            crash_support::diff(&want, &got)
        );
        assert_mirrored(&c.fetch(&keys).unwrap(), "h", "after reopen");
        let reads = seen.reads.load(SeqCst);
        eprintln!(
            "trial {trial} ({what}): {} batches, {reads} reads ({} searches), {} with an \
             open window, {} showing an unacknowledged batch, {} optimizes, {} segments at the \
             end, {:.1?}",
            BATCHES * WRITERS as u64,
            seen.searches.load(SeqCst),
            seen.open_windows.load(SeqCst),
            seen.inflight_visible.load(SeqCst),
            optimizes.load(SeqCst),
            c.stats().segments,
            started.elapsed()
        );
        assert!(reads >= 50, "{what}: only {reads} reads ran");
        assert!(
            optimizes.load(SeqCst) >= 1,
            "{what}: optimize never ran during the writes"
        );
    }
}

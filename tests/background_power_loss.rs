//! Simulated power loss while several threads write concurrently, while the writing segment is
//! persisted (automatically, every `MAX_DOCS` rows, and by explicit flushes) and while
//! `optimize()` merges sealed segments. Under `FlushPolicy::Always`:
//! - every open after the power cut succeeds;
//! - every acknowledged write survives, and every batch is there whole or not at all: per
//!   writer (each has its own key space), the recovered state equals the writer's model after
//!   `k` of its batches, for a `k` between the batches it had acknowledged and those it had
//!   begun (the one in flight may be there, whole);
//! - once the power is off nothing more is acknowledged;
//! - the recovered collection takes writes, and they survive a clean reopen.
//!
//! The power is cut (`SimStorage` `PowerCut`) at mutation `j` for `j` spread over the mutations
//! of a fault-free run, then the machine restarts with `crash()` or `crash_torn(seed)`. The
//! number of writers (2..=4) varies with the trial. By default every mutation of the
//! fault-free runs is a cut point, once with `crash()` and once with `crash_torn()`;
//! `STRATAVEC_TRIALS=<n>` runs `n` trials instead (sampling the cut points evenly when `n` is
//! small), `STRATAVEC_TRIAL=<i>` only trial `i`, and `STRATAVEC_SEED=<base>` changes the
//! workload.

mod crash_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use crash_support::{
    all_writer_keys, fresh_sim, path, random_rec, random_write_for, read_back, rng, run_mirrored,
    split_by_writer, trial_seed, trials, writer_key, Model, Trial, Write,
};
use rand::Rng;
use stratavec::storage::{Fault, FaultKind, FaultOp, SimStorage};
use stratavec::wal::FlushPolicy;
use stratavec::{Collection, CollectionOptions, OpenOptions};

const TEST: &str = "power_cut_while_concurrent_writers_persist_and_optimize";
const KEY_SPACE: usize = 16;
const MAX_BATCH: usize = 4;
const BATCHES: u64 = 14;
const MAX_DOCS: u64 = 12;
/// Trials of a default run: for each writer count and each of `crash()` and `crash_torn()`,
/// up to `CUTS / 6` cut points, which covers every mutation of the fault-free runs (a few
/// hundred each).
const CUTS: u64 = 3000;

fn open(sim: &SimStorage) -> stratavec::Result<Collection> {
    Collection::open(
        path(),
        OpenOptions::default().storage(Arc::new(sim.clone())),
    )
}

/// What one writer did.
#[derive(Debug)]
struct WriterRun {
    /// `snapshots[k]`: the writer's key space after its first `k` batches.
    snapshots: Vec<Model>,
    acked: usize,
    /// Batches begun: `acked`, or `acked + 1` when a write failed.
    started: usize,
}

/// Lets the optimizer and the writers meet: at half of its batches a writer asks for an
/// optimize and waits until one has begun (or the optimizer gave up), so that the rest of the
/// writes run while (or after) the merge does.
#[derive(Default)]
struct Rendezvous {
    asked: AtomicBool,
    optimize_begun: AtomicBool,
    optimizer_gone: AtomicBool,
}

/// Writer `w`: `BATCHES` random batches, a flush now and then, until the first failure; after
/// it, two more writes that must fail too (the power is off).
fn writer(c: &Collection, w: usize, seed: u64, meet: &Rendezvous) -> WriterRun {
    let mut rng = rng(seed);
    let mut run = WriterRun {
        snapshots: vec![Model::new()],
        acked: 0,
        started: 0,
    };
    let mut failed = false;
    for k in 0..BATCHES {
        if k == BATCHES / 2 {
            meet.asked.store(true, SeqCst);
            while !meet.optimize_begun.load(SeqCst) && !meet.optimizer_gone.load(SeqCst) {
                std::thread::yield_now();
            }
        }
        let flush = rng.gen_ratio(1, 8);
        let write = random_write_for(&mut rng, w, KEY_SPACE, MAX_BATCH);
        if failed {
            continue;
        }
        if flush && c.flush().is_err() {
            failed = true;
            continue;
        }
        let next = write.applied_to(&run.snapshots[run.acked]);
        run.started += 1;
        match run_mirrored(&write, c, "h") {
            Ok(st) => {
                let mut m = run.snapshots[run.acked].clone();
                assert_eq!(st, write.apply(&mut m), "writer {w}: statuses of batch {k}");
                run.snapshots.push(next);
                run.acked += 1;
            }
            Err(_) => {
                run.snapshots.push(next);
                failed = true;
            }
        }
        std::thread::yield_now();
    }
    if failed {
        for i in 0..2 {
            let more = random_write_for(&mut rng, w, KEY_SPACE, MAX_BATCH);
            let r = run_mirrored(&more, c, "h");
            assert!(
                r.is_err(),
                "writer {w}: write {i} after a failure was acknowledged ({r:?}) with the \
                 power off"
            );
        }
    }
    run
}

/// Runs the concurrent workload on `c`: the writers, and a thread that optimizes (up to twice)
/// whenever three or more sealed segments exist or a writer asks for it. Returns the writers'
/// runs and how many optimizes succeeded.
fn workload(c: &Collection, writers: usize) -> (Vec<WriterRun>, u64) {
    let done = AtomicBool::new(false);
    let optimizes = AtomicU64::new(0);
    let meet = Rendezvous::default();
    let runs = std::thread::scope(|s| {
        let optimizer = s.spawn(|| {
            while !done.load(SeqCst) && optimizes.load(SeqCst) < 2 {
                let asked = meet.asked.load(SeqCst) && optimizes.load(SeqCst) == 0;
                if asked || c.stats().segments >= 3 {
                    meet.optimize_begun.store(true, SeqCst);
                    if c.optimize().is_err() {
                        break;
                    }
                    optimizes.fetch_add(1, SeqCst);
                }
                std::thread::yield_now();
            }
            meet.optimizer_gone.store(true, SeqCst);
        });
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let meet = &meet;
                let seed = trial_seed(TEST, (writers * 16 + w) as u64);
                s.spawn(move || writer(c, w, seed, meet))
            })
            .collect();
        let runs: Vec<WriterRun> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        done.store(true, SeqCst);
        optimizer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        runs
    });
    (runs, optimizes.load(SeqCst))
}

fn create(sim: &SimStorage) -> Collection {
    Collection::create(
        path(),
        crash_support::mirrored_schema(),
        CollectionOptions::default()
            .flush_policy(FlushPolicy::Always)
            .max_docs_per_segment(MAX_DOCS)
            .storage(Arc::new(sim.clone())),
    )
    .unwrap()
}

/// Per writer, the `k` in `acked..=started` whose snapshot `got` equals; panics otherwise.
fn check_windows(got: &Model, runs: &[WriterRun], what: &str) -> Vec<Model> {
    let parts = split_by_writer(got, runs.len());
    let mut out = Vec::new();
    for (w, (part, run)) in parts.iter().zip(runs).enumerate() {
        let hit = (run.acked..=run.started).find(|&k| run.snapshots[k] == *part);
        match hit {
            Some(k) => out.push(run.snapshots[k].clone()),
            None => {
                let mut msg = format!(
                    "{what}: writer {w} recovered a state that is none of its snapshots {}..={} \
                     (acknowledged ..= begun)\n",
                    run.acked, run.started
                );
                for k in run.acked..=run.started {
                    msg.push_str(&format!(
                        "against snapshot {k}:\n{}",
                        crash_support::diff(&run.snapshots[k], part)
                    ));
                }
                panic!("{msg}");
            }
        }
    }
    out
}

/// Mutations, persists and optimizes of a fault-free run with `writers` writers.
fn dry_run(writers: usize) -> u64 {
    let sim = fresh_sim();
    let c = create(&sim);
    let before = sim.counts().mutations;
    let (runs, optimizes) = workload(&c, writers);
    let keys = all_writer_keys(writers, KEY_SPACE);
    for (w, r) in runs.iter().enumerate() {
        assert_eq!(r.acked as u64, BATCHES, "writer {w} without faults");
    }
    let segments = c.stats().segments;
    drop(c);
    let total = sim.counts().mutations - before;
    sim.crash();
    let c = open(&sim).unwrap();
    check_windows(&read_back(&c, &keys), &runs, "fault-free run");
    eprintln!(
        "{writers} writers: {total} mutations, {optimizes} optimizes, {segments} sealed \
         segments before the close"
    );
    assert!(optimizes >= 1, "{writers} writers: optimize never ran");
    total
}

#[test]
fn power_cut_while_concurrent_writers_persist_and_optimize() {
    let totals: Vec<u64> = (2..=4).map(dry_run).collect();
    let budget = trials(CUTS).end.max(1);
    let mut tally = [0u64; 3];
    for i in trials(CUTS) {
        let writers = 2 + (i % 3) as usize;
        let total = totals[writers - 2];
        let torn = (i / 3 % 2 == 1).then(|| trial_seed(TEST, (1 << 32) | i));
        // Cut points of this writer count and crash kind, spread evenly over its mutations
        // (all of them when the budget allows).
        let per = budget.div_ceil(6).max(1);
        let nth = i / 6;
        let j = if per >= total {
            nth + 1
        } else {
            1 + nth * total / per
        };
        if j > total + 5 {
            continue;
        }
        let what = format!("{writers} writers, power cut at mutation {j}/{total}, torn {torn:?}");
        let _trial = Trial::new(TEST, i, j, &what);
        let sim = fresh_sim();
        let c = create(&sim);
        sim.inject(Fault {
            op: FaultOp::Mutation,
            nth: j,
            kind: FaultKind::PowerCut,
        });
        let (runs, _) = workload(&c, writers);
        // Dropping closes the collection: with the power off, that persists nothing.
        drop(c);
        let cut = sim.is_powered_off();
        match torn {
            Some(seed) => sim.crash_torn(seed),
            None => sim.crash(),
        }
        let keys = all_writer_keys(writers, KEY_SPACE);
        let c = open(&sim).unwrap_or_else(|e| panic!("{what}: open after the power cut: {e}"));
        let got = read_back(&c, &keys);
        let mut models = check_windows(&got, &runs, &what);
        tally[usize::from(cut)] += 1;
        if runs.iter().any(|r| r.started > r.acked) {
            tally[2] += 1;
        }
        // The recovered collection takes writes, and they survive a clean reopen.
        let mut rng = rng(j);
        for (w, m) in models.iter_mut().enumerate() {
            let write = Write::Upsert(vec![(writer_key(w, KEY_SPACE), random_rec(&mut rng))]);
            let st = run_mirrored(&write, &c, "h")
                .unwrap_or_else(|e| panic!("{what}: writer {w}'s write after recovery: {e}"));
            assert_eq!(st, write.apply(m));
        }
        c.close()
            .unwrap_or_else(|e| panic!("{what}: close after recovery: {e}"));
        let c = open(&sim).unwrap_or_else(|e| panic!("{what}: second open: {e}"));
        let keys = (0..writers)
            .flat_map(|w| (0..=KEY_SPACE).map(move |i| writer_key(w, i)))
            .collect::<Vec<_>>();
        let got = split_by_writer(&read_back(&c, &keys), writers);
        for (w, (g, m)) in got.iter().zip(&models).enumerate() {
            assert!(
                g == m,
                "{what}: writer {w} after writing on the recovered collection:\n{}",
                crash_support::diff(m, g)
            );
        }
    }
    eprintln!(
        "{} trials with the power cut during the workload, {} after it; {} with a write in \
         flight",
        tally[1], tally[0], tally[2]
    );
    // Background work makes the number of mutations vary from run to run, so some cuts land
    // after a shorter workload ends; most must still land inside it.
    if budget >= CUTS {
        assert!(
            tally[1] > 3 * tally[0],
            "most cuts must land inside the workloads: {tally:?}"
        );
    }
}

//! EIO and ENOSPC while a collection persists its writing segment (triggered by the writes
//! themselves, possibly in the background) and while `optimize` merges sealed segments.
//!
//! Contract checked after the first failure:
//! - the failing call reports `Error::Io` (with the injected errno) or `Error::Poisoned` (a
//!   write that only learns of an earlier, background failure);
//! - every later write, flush, sync and optimize returns `Error::Poisoned`;
//! - `fetch`, `search`, `query` and `stats` keep answering, with exactly the acknowledged
//!   writes (a failed write is never visible);
//! - `close()` returns an error (checked at the end of each test, over all trials, so that the
//!   other checks run for every fault point first);
//! - reopening, with the power kept or after a power cut, yields every acknowledged write (and
//!   maybe the failed one, whole), and the reopened collection takes writes again.
//!
//! Faults are injected with `SimStorage` at the k-th fsync or the k-th write from some moment,
//! for every k up to the number of fsyncs (writes) of the fault-free run.
//!
//! Two regressions this guards against: `close()` of a poisoned collection must report the
//! failure, and a failure while a write creates the writing segment's WAL (the fsync of the
//! collection directory, the WAL header's write or fsync, the fsync of the segment directory)
//! must poison like any other failed fsync (`a_failed_fsync_while_creating_the_wal_*`).

mod crash_support;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use crash_support::{
    all_writer_keys, expect_one_of, fresh_sim, key, keys, path, random_rec, random_write,
    random_write_for, read_back, rng, run_mirrored, split_by_writer, trial_seed, union, Model,
    Write,
};
use stratavec::storage::{Fault, FaultKind, FaultOp, SimStorage};
use stratavec::wal::FlushPolicy;
use stratavec::{Collection, CollectionOptions, Error, OpenOptions, SearchOptions};

const KEY_SPACE: usize = 40;
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn create(sim: &SimStorage, max_docs_per_segment: u64) -> Collection {
    create_with(sim, CollectionOptions::default(), max_docs_per_segment)
}

fn create_with(sim: &SimStorage, opts: CollectionOptions, max_docs_per_segment: u64) -> Collection {
    Collection::create(
        path(),
        crash_support::mirrored_schema(),
        opts.flush_policy(FlushPolicy::Always)
            .max_docs_per_segment(max_docs_per_segment)
            .storage(Arc::new(sim.clone())),
    )
    .unwrap()
}

fn open(sim: &SimStorage) -> stratavec::Result<Collection> {
    Collection::open(
        path(),
        OpenOptions::default().storage(Arc::new(sim.clone())),
    )
}

fn errno(kind: FaultKind) -> i32 {
    match kind {
        FaultKind::Eio => EIO,
        FaultKind::Enospc => ENOSPC,
        FaultKind::PowerCut => unreachable!(),
    }
}

/// Whether `e` is the injected error, or the poisoning it caused.
fn is_fault_or_poisoned(e: &Error, kind: FaultKind) -> bool {
    match e {
        Error::Io { source, .. } => source.raw_os_error() == Some(errno(kind)),
        Error::Poisoned { .. } => true,
        _ => false,
    }
}

fn run(write: &Write, c: &Collection) -> stratavec::Result<Vec<stratavec::DocStatus>> {
    run_mirrored(write, c, "h")
}

/// The checks every poisoned collection must pass before it is closed: writes and
/// maintenance refused with `Poisoned`, reads answering with exactly `acked`.
fn check_poisoned(c: &Collection, later: &[Write], acked: &Model, keys: &[String], what: &str) {
    for (i, w) in later.iter().enumerate() {
        let r = run(w, c);
        assert!(
            matches!(r, Err(Error::Poisoned { .. })),
            "{what}: write {i} after the failure returned {r:?}, expected Error::Poisoned"
        );
    }
    for (name, r) in [
        ("flush", c.flush()),
        ("sync", c.sync()),
        ("optimize", c.optimize()),
    ] {
        assert!(
            matches!(r, Err(Error::Poisoned { .. })),
            "{what}: {name} after the failure returned {r:?}, expected Error::Poisoned"
        );
    }
    // fetch + stats().doc_count + an exhaustive flat search, all equal to the model.
    let got = read_back(c, keys);
    assert!(
        got == *acked,
        "{what}: the poisoned collection does not show exactly the acknowledged writes:\n{}",
        crash_support::diff(acked, &got)
    );
    crash_support::assert_mirrored(&c.fetch(keys).unwrap(), "h", what);
    let stats = c.stats();
    assert_eq!(stats.doc_count, acked.len() as u64, "{what}: stats");
    // The graph field answers too, with live documents only.
    let hits = c
        .search("h", &[0.0; 4], &SearchOptions::new().topk(10))
        .unwrap_or_else(|e| panic!("{what}: graph search of the poisoned collection: {e}"));
    assert!(
        hits.iter().all(|d| acked.contains_key(&d.pk)),
        "{what}: graph search returned a pk that is not live"
    );
}

/// Reopens (after a power cut when `crash`) and checks `acked` (or `acked` + `inflight`) is
/// there; then the collection must take writes that survive a clean reopen.
fn reopen_and_check(
    sim: &SimStorage,
    crash: bool,
    acked: &Model,
    inflight: Option<&Write>,
    keys: &[String],
    what: &str,
) {
    if crash {
        sim.crash();
    }
    let c = open(sim).unwrap_or_else(|e| panic!("{what}: reopen (crash {crash}) failed: {e}"));
    let got = read_back(&c, keys);
    let with_inflight = inflight.map(|w| w.applied_to(acked));
    let applied = expect_one_of(
        &got,
        acked,
        with_inflight.as_ref(),
        &format!("{what}: reopen (crash {crash})"),
    );
    let mut model = if applied {
        with_inflight.unwrap()
    } else {
        acked.clone()
    };
    let mut rng = rng(model.len() as u64);
    let w = Write::Upsert(vec![(keys[keys.len() - 1].clone(), random_rec(&mut rng))]);
    let statuses =
        run(&w, &c).unwrap_or_else(|e| panic!("{what}: a write after the reopen failed: {e}"));
    assert_eq!(statuses, w.apply(&mut model), "{what}: write after reopen");
    c.close()
        .unwrap_or_else(|e| panic!("{what}: close after the reopen failed: {e}"));
    let c = open(sim).unwrap_or_else(|e| panic!("{what}: second reopen: {e}"));
    let got = read_back(&c, keys);
    expect_one_of(&got, &model, None, &format!("{what}: second reopen"));
}

/// close() of a poisoned collection must fail; collected over a test's trials and asserted at
/// the end.
#[derive(Default)]
struct Closes {
    total: u64,
    ok: Vec<String>,
}

impl Closes {
    fn record(&mut self, r: stratavec::Result<()>, what: &str) {
        self.total += 1;
        if r.is_ok() {
            self.ok.push(what.to_string());
        }
    }

    fn assert_all_failed(&self) {
        assert!(
            self.ok.is_empty(),
            "close() returned Ok on {} of {} poisoned collections (it must report the \
             failure); first: {}",
            self.ok.len(),
            self.total,
            self.ok[0]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (a) Faults while writes trigger persists

const MAX_DOCS_A: u64 = 20;

/// A fixed sequence of 1..=6-document writes over `KEY_SPACE` keys.
fn workload_a() -> Vec<Write> {
    let mut rng = rng(trial_seed("background_faults_workload_a", 0));
    (0..60)
        .map(|_| random_write(&mut rng, KEY_SPACE, 6))
        .collect()
}

/// Fsyncs and writes of the fault-free run, and how many persists it made.
fn dry_run_a(writes: &[Write]) -> (u64, u64, usize) {
    let sim = fresh_sim();
    let c = create(&sim, MAX_DOCS_A);
    let before = sim.counts();
    let mut model = Model::new();
    for w in writes {
        assert_eq!(run(w, &c).unwrap(), w.apply(&mut model));
        c.wait_idle().unwrap();
    }
    c.flush().unwrap();
    let after = sim.counts();
    let segments = c.stats().segments;
    assert_eq!(read_back(&c, &keys(KEY_SPACE)), model);
    (
        after.syncs - before.syncs,
        after.writes - before.writes,
        segments,
    )
}

#[derive(Debug, Default)]
struct TallyA {
    trials: u64,
    /// The first failing write reported the injected error itself (its own WAL write/fsync).
    first_io: u64,
    /// The first failing write reported `Poisoned`: the fault hit a persist before it.
    first_poisoned: u64,
    /// The fault hit the final flush.
    in_final_flush: u64,
    /// The fault never fired (a run with fewer operations than the fault-free one).
    not_fired: u64,
}

#[test]
fn eio_and_enospc_during_write_triggered_persists_poison_the_collection() {
    let writes = workload_a();
    let (syncs, write_ops, persists) = dry_run_a(&writes);
    assert!(
        persists >= 3,
        "the workload persists only {persists} times: the faults would miss the persists"
    );
    let all_keys = keys(KEY_SPACE);
    let mut closes = Closes::default();
    let mut tally = TallyA::default();
    for (op, total) in [(FaultOp::Sync, syncs), (FaultOp::Write, write_ops)] {
        for kind in [FaultKind::Eio, FaultKind::Enospc] {
            for k in 1..=total {
                let what = format!("{kind:?} on {op:?} {k}/{total}");
                tally.trials += 1;
                let sim = fresh_sim();
                let c = create(&sim, MAX_DOCS_A);
                sim.inject(Fault { op, nth: k, kind });
                let mut acked = Model::new();
                let mut failure = None;
                for (i, w) in writes.iter().enumerate() {
                    match run(w, &c) {
                        Ok(st) => {
                            assert_eq!(st, w.apply(&mut acked), "{what}: statuses of write {i}");
                            // Background work runs at a lowered priority: on a loaded machine a
                            // persist a write triggered may not run before the workload ends,
                            // and no fault would land in one. Let it finish (its failure is
                            // what the next write must report as Poisoned).
                            let _ = c.wait_idle();
                        }
                        Err(e) => {
                            failure = Some((i, e));
                            break;
                        }
                    }
                }
                let (inflight, later) = match failure {
                    Some((i, e)) => {
                        assert!(
                            is_fault_or_poisoned(&e, kind),
                            "{what}: write {i} failed with {e:?}, expected the injected \
                             error or Error::Poisoned"
                        );
                        if matches!(e, Error::Poisoned { .. }) {
                            tally.first_poisoned += 1;
                        } else {
                            tally.first_io += 1;
                        }
                        (Some(writes[i].clone()), &writes[i + 1..])
                    }
                    None => match c.flush() {
                        Ok(()) => {
                            tally.not_fired += 1;
                            continue;
                        }
                        Err(e) => {
                            assert!(
                                is_fault_or_poisoned(&e, kind),
                                "{what}: the final flush failed with {e:?}"
                            );
                            tally.in_final_flush += 1;
                            (None, &writes[..0])
                        }
                    },
                };
                // Every later write: the rest of the workload, and one of each kind.
                let mut later: Vec<Write> = later.iter().take(8).cloned().collect();
                later.extend([
                    Write::Insert(vec![(key(KEY_SPACE - 1), random_rec(&mut rng(k)))]),
                    Write::Upsert(vec![(key(0), random_rec(&mut rng(k + 1)))]),
                    Write::Delete(vec![key(1), key(2)]),
                ]);
                check_poisoned(&c, &later, &acked, &all_keys, &what);
                closes.record(c.close(), &what);
                drop(c);
                reopen_and_check(
                    &sim,
                    k % 2 == 0,
                    &acked,
                    inflight.as_ref(),
                    &all_keys,
                    &what,
                );
            }
        }
    }
    eprintln!("{syncs} fsyncs, {write_ops} writes, {persists} persists; {tally:?}");
    assert!(
        tally.first_poisoned > 0,
        "no fault landed in a persist (no first failure was Poisoned): {tally:?}"
    );
    assert!(
        tally.not_fired * 10 <= tally.trials,
        "too many faults never fired: {tally:?}"
    );
    closes.assert_all_failed();
}

// ---------------------------------------------------------------------------------------------
// (b) Faults inside optimize

/// Three flushed segments with deletes and updates across them, and unflushed writes on top:
/// `optimize` persists the writing segment, then merges four sealed segments.
///
/// Automatic merges are off: one racing with `optimize` would change how many operations
/// optimize performs from run to run, and the fault enumeration relies on that count.
fn setup_b(sim: &SimStorage) -> (Collection, Model) {
    let no_auto_merge = CollectionOptions::default().merge_policy(None);
    let c = create_with(sim, no_auto_merge, 10_000_000);
    let mut rng = rng(trial_seed("background_faults_setup_b", 0));
    let mut model = Model::new();
    for phase in 0..4 {
        for _ in 0..6 {
            let w = random_write(&mut rng, KEY_SPACE, 6);
            assert_eq!(run(&w, &c).unwrap(), w.apply(&mut model));
        }
        if phase < 3 {
            c.flush().unwrap();
        }
    }
    assert_eq!(
        c.stats().segments,
        3,
        "three sealed segments before optimize"
    );
    assert!(c.stats().writing_rows > 0, "unflushed rows before optimize");
    (c, model)
}

#[test]
fn eio_and_enospc_inside_optimize_poison_the_collection() {
    let all_keys = keys(KEY_SPACE);
    let (syncs, write_ops) = {
        let sim = fresh_sim();
        let (c, model) = setup_b(&sim);
        let before = sim.counts();
        c.optimize().unwrap();
        let after = sim.counts();
        assert_eq!(c.stats().segments, 1, "optimize merged everything");
        assert_eq!(read_back(&c, &all_keys), model);
        (after.syncs - before.syncs, after.writes - before.writes)
    };
    assert!(
        syncs >= 6 && write_ops >= 3,
        "{syncs} fsyncs, {write_ops} writes"
    );
    let mut closes = Closes::default();
    for (op, total) in [(FaultOp::Sync, syncs), (FaultOp::Write, write_ops)] {
        for kind in [FaultKind::Eio, FaultKind::Enospc] {
            for k in 1..=total {
                let what = format!("{kind:?} on {op:?} {k}/{total} of optimize");
                let sim = fresh_sim();
                let (c, model) = setup_b(&sim);
                sim.inject(Fault { op, nth: k, kind });
                let r = c.optimize();
                match &r {
                    Err(e) if is_fault_or_poisoned(e, kind) => {}
                    other => panic!("{what}: optimize returned {other:?}"),
                }
                let later = vec![
                    Write::Insert(vec![(key(KEY_SPACE - 1), random_rec(&mut rng(k)))]),
                    Write::Upsert(vec![(key(0), random_rec(&mut rng(k + 1)))]),
                    Write::Delete(vec![key(1), key(2)]),
                ];
                check_poisoned(&c, &later, &model, &all_keys, &what);
                closes.record(c.close(), &what);
                drop(c);
                reopen_and_check(&sim, k % 2 == 1, &model, None, &all_keys, &what);
                // The recovered collection optimizes fine and keeps its contents.
                let c = open(&sim).unwrap();
                let before = read_back(&c, &all_keys);
                c.optimize()
                    .unwrap_or_else(|e| panic!("{what}: optimize after recovery: {e}"));
                assert!(c.stats().segments <= 1, "{what}: optimize after recovery");
                assert_eq!(read_back(&c, &all_keys), before, "{what}");
            }
        }
    }
    eprintln!("optimize: {syncs} fsyncs, {write_ops} writes");
    closes.assert_all_failed();
}

// ---------------------------------------------------------------------------------------------
// (c) A fault inside optimize while other threads write

const WRITERS_C: usize = 2;
const KEYS_C: usize = 20;

/// One writer of (c): writes until its first failure; every call that began after some thread
/// saw a failure must be refused with `Poisoned`. Returns its acknowledged model and the write
/// that failed.
fn writer_c(
    c: &Collection,
    w: usize,
    start: Model,
    seed: u64,
    failed: &AtomicBool,
    kind: FaultKind,
    what: &str,
) -> (Model, Option<Write>) {
    let mut rng = rng(seed);
    let mut acked = start;
    for i in 0..400 {
        let write = random_write_for(&mut rng, w, KEYS_C, 4);
        let failed_before = failed.load(SeqCst);
        match run(&write, c) {
            Ok(st) => {
                assert!(
                    !failed_before,
                    "{what}: writer {w}, write {i} was acknowledged after a failure had been \
                     reported"
                );
                assert_eq!(st, write.apply(&mut acked), "{what}: writer {w}, write {i}");
            }
            Err(e) => {
                assert!(
                    is_fault_or_poisoned(&e, kind),
                    "{what}: writer {w}, write {i} failed with {e:?}"
                );
                assert!(
                    !failed_before || matches!(e, Error::Poisoned { .. }),
                    "{what}: writer {w}, write {i} began after a failure and returned {e:?}"
                );
                failed.store(true, SeqCst);
                for j in 0..3 {
                    let more = random_write_for(&mut rng, w, KEYS_C, 4);
                    let r = run(&more, c);
                    assert!(
                        matches!(r, Err(Error::Poisoned { .. })),
                        "{what}: writer {w}, write {j} after its failure returned {r:?}"
                    );
                }
                return (acked, Some(write));
            }
        }
    }
    panic!("{what}: writer {w} never saw the fault");
}

#[test]
fn a_fault_inside_optimize_with_concurrent_writers_poisons_the_collection() {
    let setup = |sim: &SimStorage| -> Collection {
        let c = create(sim, 16);
        for w in 0..WRITERS_C {
            let mut rng = rng(trial_seed("background_faults_setup_c", w as u64));
            for _ in 0..3 {
                let rows = (0..KEYS_C)
                    .map(|i| (crash_support::writer_key(w, i), random_rec(&mut rng)))
                    .collect();
                run(&Write::Upsert(rows), &c).unwrap();
                c.flush().unwrap();
            }
        }
        c
    };
    // The fsyncs of optimize on the quiet collection: the window the faults are aimed at.
    let syncs = {
        let sim = fresh_sim();
        let c = setup(&sim);
        let before = sim.counts().syncs;
        c.optimize().unwrap();
        sim.counts().syncs - before
    };
    let all_keys = all_writer_keys(WRITERS_C, KEYS_C);
    let mut closes = Closes::default();
    let mut optimize_failed = 0;
    for kind in [FaultKind::Eio, FaultKind::Enospc] {
        for k in 1..=syncs {
            let what = format!("{kind:?} on fsync {k} from the start of optimize");
            let sim = fresh_sim();
            let c = setup(&sim);
            let before: Vec<Model> = split_by_writer(&read_back(&c, &all_keys), WRITERS_C);
            let failed = AtomicBool::new(false);
            sim.inject(Fault {
                op: FaultOp::Sync,
                nth: k,
                kind,
            });
            let (optimized, results) = std::thread::scope(|s| {
                let handles: Vec<_> = (0..WRITERS_C)
                    .map(|w| {
                        let (c, failed, what) = (&c, &failed, &what);
                        let start = before[w].clone();
                        let seed = trial_seed("background_faults_c", k * 8 + w as u64);
                        s.spawn(move || writer_c(c, w, start, seed, failed, kind, what))
                    })
                    .collect();
                let failed_before = failed.load(SeqCst);
                let optimized = c.optimize();
                match &optimized {
                    Ok(()) => assert!(!failed_before, "{what}: optimize succeeded after a failure"),
                    Err(e) => {
                        assert!(is_fault_or_poisoned(e, kind), "{what}: optimize: {e:?}");
                        failed.store(true, SeqCst);
                    }
                }
                let results: Vec<(Model, Option<Write>)> = handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect();
                (optimized, results)
            });
            optimize_failed += u64::from(optimized.is_err());
            let acked: Vec<Model> = results.iter().map(|(m, _)| m.clone()).collect();
            let union_acked = union(&acked);
            check_poisoned(&c, &[], &union_acked, &all_keys, &what);
            closes.record(c.close(), &what);
            drop(c);
            if k % 2 == 0 {
                sim.crash();
            }
            let c = open(&sim).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
            let got = split_by_writer(&read_back(&c, &all_keys), WRITERS_C);
            for (w, (m, f)) in results.iter().enumerate() {
                let with_failed = f.as_ref().map(|f| f.applied_to(m));
                expect_one_of(
                    &got[w],
                    m,
                    with_failed.as_ref(),
                    &format!("{what}: writer {w} after the reopen"),
                );
            }
            let w = Write::Upsert(vec![(all_keys[0].clone(), random_rec(&mut rng(k)))]);
            run(&w, &c).unwrap_or_else(|e| panic!("{what}: write after the reopen: {e}"));
            c.close().unwrap();
        }
    }
    eprintln!("{optimize_failed} of {} optimizes failed", 2 * syncs);
    closes.assert_all_failed();
}

/// Minimal reproduction: the first write after `create` creates the WAL; an EIO on the first
/// fsync it makes (of the collection directory) must poison the collection like any other
/// failed fsync, not be retried by the next write.
#[test]
fn a_failed_fsync_while_creating_the_wal_poisons_the_collection() {
    for kind in [FaultKind::Eio, FaultKind::Enospc] {
        for (op, nth) in [
            (FaultOp::Sync, 1),
            (FaultOp::Sync, 2),
            (FaultOp::Sync, 3),
            (FaultOp::Write, 1),
        ] {
            let what = format!("{kind:?} on {op:?} {nth} of the first write");
            let sim = fresh_sim();
            let c = create(&sim, 10_000_000);
            sim.inject(Fault { op, nth, kind });
            let first = Write::Insert(vec![(key(0), random_rec(&mut rng(1)))]);
            let r = run(&first, &c);
            assert!(
                matches!(&r, Err(e) if is_fault_or_poisoned(e, kind)),
                "{what}: the first write returned {r:?}"
            );
            let second = Write::Insert(vec![(key(1), random_rec(&mut rng(2)))]);
            let r = run(&second, &c);
            assert!(
                matches!(r, Err(Error::Poisoned { .. })),
                "{what}: the next write returned {r:?}, expected Error::Poisoned"
            );
        }
    }
}

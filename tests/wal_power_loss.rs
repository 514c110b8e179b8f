//! Simulated power loss: whatever the flush policy promised survives, and recovery never mistakes
//! a crash for corruption.
//!
//! Every trial runs a random workload against a WAL on `SimStorage`, cuts the power at a random
//! point (an injected `PowerCut` on a random operation, or a crash between appends, sometimes
//! while several threads append), crashes (alternately dropping everything unsynced and keeping
//! a random prefix of it), reopens, and checks the recovered log against what was acknowledged.
//!
//! A failing trial prints its seed; `STRATAVEC_SEED=<base> STRATAVEC_TRIAL=<n>` replays it
//! (trials under `Interval` also depend on the background syncer's timing), and
//! `STRATAVEC_TRIALS=<n>` runs more trials.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{
    assert_well_formed, fresh, op_for, open, random_docs, random_len, reopen, rng, trial_seed,
    trials, wal_path, Crash, Doc, Trial, ID,
};
use rand::rngs::SmallRng;
use rand::Rng;
use stratavec::storage::{Fault, FaultKind, FaultOp, SimStorage, Storage};
use stratavec::wal::{FlushPolicy, Op, Recovered, Wal};
use stratavec::Error;

const TRIALS: u64 = 200;

/// How the power goes off.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// An injected `PowerCut` on the nth operation of a class; a crash follows the workload.
    Fault(FaultOp, u64),
    /// A crash after this many append calls (one writer) or acknowledgements (several).
    After(u64),
}

#[derive(Debug)]
enum Shape {
    Single { appends: u64 },
    Threads { threads: u64, per_thread: u64 },
}

/// One record handed to the WAL.
#[derive(Debug, Clone)]
struct Sent {
    seq: u64,
    op: Op,
    doc: Doc,
    /// The WAL's length after the record (one writer only).
    end: u64,
}

struct Outcome {
    /// Acknowledged appends, in seq order.
    acked: Vec<Sent>,
    /// Records whose write reached the file, in order (one writer only).
    written: Option<Vec<Sent>>,
    /// Every record up to this seq was appended before a `sync()` that returned Ok.
    synced_seq: u64,
    /// `durable_len()` just before the crash: bytes the WAL knew durable.
    durable_len: u64,
}

fn next_doc(rng: &mut SmallRng, id: u64) -> (Op, Doc) {
    (op_for(id), Doc::new(id, random_docs(rng), random_len(rng)))
}

fn plan(rng: &mut SmallRng) -> (Shape, Cut) {
    let shape = if rng.gen_ratio(1, 4) {
        Shape::Threads {
            threads: rng.gen_range(2..=4),
            per_thread: rng.gen_range(3..=20),
        }
    } else {
        Shape::Single {
            appends: rng.gen_range(0..=40),
        }
    };
    let total = match shape {
        Shape::Single { appends } => appends,
        Shape::Threads {
            threads,
            per_thread,
        } => threads * per_thread,
    };
    let cut = if rng.gen_bool(0.5) {
        let op = [FaultOp::Write, FaultOp::Sync, FaultOp::Mutation][rng.gen_range(0..3)];
        Cut::Fault(op, rng.gen_range(1..=2 * total + 2))
    } else {
        Cut::After(rng.gen_range(0..=total))
    };
    (shape, cut)
}

/// One writer: every append's outcome and the file's length after it are known exactly.
fn single_writer(
    rng: &mut SmallRng,
    sim: &SimStorage,
    wal: &Wal<Doc>,
    appends: u64,
    cut: Cut,
    crash: Crash,
) -> Outcome {
    let interval = matches!(wal.policy(), FlushPolicy::Interval(_));
    let mut written: Vec<Sent> = Vec::new();
    let mut acked = Vec::new();
    let mut synced_seq = 0;
    let mut failed = false;
    for i in 0..appends {
        if matches!(cut, Cut::After(c) if c == i) {
            break;
        }
        if rng.gen_ratio(1, 10) {
            let upto = written.last().map_or(0, |s| s.seq);
            match wal.sync() {
                Ok(()) => synced_seq = synced_seq.max(upto),
                Err(e) => {
                    assert!(sim.is_powered_off(), "sync failed with the power on: {e}");
                    assert!(wal.is_poisoned(), "a failed sync must poison the WAL");
                    if failed {
                        assert!(
                            matches!(e, Error::Poisoned { .. }),
                            "want Poisoned, got {e}"
                        );
                    }
                    failed = true;
                }
            }
        }
        if interval && rng.gen_ratio(1, 6) {
            // Let the background syncer run now and then.
            std::thread::sleep(Duration::from_millis(rng.gen_range(1..=4)));
        }
        let seq = wal.next_seq();
        let (op, doc) = next_doc(rng, seq);
        let len_before = wal.len();
        let result = wal.append(op, &doc);
        let sent = Sent {
            seq,
            op,
            doc,
            end: wal.len(),
        };
        if sent.end > len_before {
            written.push(sent.clone());
        }
        match result {
            Ok(got) => {
                assert!(
                    !failed,
                    "append {seq} acknowledged after an earlier failure"
                );
                assert_eq!(got, seq, "append returned the wrong seq");
                assert!(
                    sent.end > len_before,
                    "acknowledged append {seq} wrote nothing"
                );
                acked.push(sent);
            }
            Err(e) => {
                assert!(sim.is_powered_off(), "append failed with the power on: {e}");
                assert!(wal.is_poisoned(), "a failed append must poison the WAL");
                match e {
                    Error::Poisoned { .. } => {}
                    Error::Io { .. } if !failed => {}
                    e => panic!("append {seq} after the power cut: unexpected error {e}"),
                }
                failed = true;
            }
        }
    }
    let durable_len = wal.durable_len();
    crash.hit(sim);
    Outcome {
        acked,
        written: Some(written),
        synced_seq,
        durable_len,
    }
}

/// Several writers, and sometimes the power goes off under their feet.
fn many_writers(
    seed: u64,
    sim: &SimStorage,
    wal: &Wal<Doc>,
    threads: u64,
    per_thread: u64,
    cut: Cut,
    crash: Crash,
) -> Outcome {
    let acks = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let synced = AtomicU64::new(0);
    let crashed = AtomicBool::new(false);
    let mut durable_len = 0;
    let mut acked: Vec<Sent> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (acks, done, synced, crashed) = (&acks, &done, &synced, &crashed);
                s.spawn(move || {
                    let mut rng = rng(seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let mut mine: Vec<Sent> = Vec::new();
                    let mut failed = false;
                    for n in 0..per_thread {
                        if rng.gen_ratio(1, 8) {
                            let upto = mine.last().map_or(0, |s| s.seq);
                            match wal.sync() {
                                Ok(()) => {
                                    synced.fetch_max(upto, Ordering::SeqCst);
                                }
                                Err(_) => failed = true,
                            }
                        }
                        let (op, doc) = next_doc(&mut rng, t << 32 | n);
                        match wal.append(op, &doc) {
                            Ok(seq) => {
                                assert!(!failed, "thread {t}: acknowledged after a failure");
                                mine.push(Sent {
                                    seq,
                                    op,
                                    doc,
                                    end: 0,
                                });
                                acks.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => {
                                assert!(
                                    sim.is_powered_off() || crashed.load(Ordering::SeqCst),
                                    "thread {t}: append failed with the power on: {e}"
                                );
                                match e {
                                    Error::Poisoned { .. } => {}
                                    Error::Io { .. } if !failed => {}
                                    e => panic!("thread {t}: unexpected error {e}"),
                                }
                                assert!(wal.is_poisoned());
                                failed = true;
                            }
                        }
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                    mine
                })
            })
            .collect();
        if let Cut::After(target) = cut {
            while acks.load(Ordering::SeqCst) < target && done.load(Ordering::SeqCst) < threads {
                std::thread::yield_now();
            }
            durable_len = wal.durable_len();
            crashed.store(true, Ordering::SeqCst);
            crash.hit(sim);
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    if let Cut::Fault(..) = cut {
        durable_len = wal.durable_len();
        crash.hit(sim);
    }
    acked.sort_by_key(|s| s.seq);
    Outcome {
        acked,
        written: None,
        synced_seq: synced.load(Ordering::SeqCst),
        durable_len,
    }
}

/// Checks a recovery against what the workload saw and what `policy` promises.
fn verify(policy: FlushPolicy, out: &Outcome, image_len: u64, rec: &Recovered<Doc>) {
    let records = &rec.records;
    let k = records.len() as u64;
    assert_well_formed(records);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r.seq,
            i as u64 + 1,
            "recovered seqs must be 1..={k} (a prefix of the log): a record is missing"
        );
    }
    if let Some(written) = &out.written {
        assert!(
            records.len() <= written.len(),
            "recovered {} records, only {} were written",
            records.len(),
            written.len()
        );
        for (r, w) in records.iter().zip(written) {
            assert_eq!(r.op, w.op, "record {} has the wrong op", r.seq);
            assert_eq!(
                r.payload, w.doc,
                "record {} differs from what was written",
                r.seq
            );
        }
        let end = records
            .last()
            .map_or(40, |r| written[r.seq as usize - 1].end);
        assert_eq!(
            rec.report.bytes, end,
            "report.bytes is not the end of the last record"
        );
    }
    for a in out.acked.iter().filter(|a| a.seq <= k) {
        let r = &records[a.seq as usize - 1];
        assert_eq!(r.op, a.op, "acknowledged record {} has the wrong op", a.seq);
        assert_eq!(r.payload, a.doc, "acknowledged record {} differs", a.seq);
    }
    assert!(
        k >= out.synced_seq,
        "record {} was appended before a sync() that returned Ok, yet only {k} survived",
        out.synced_seq
    );
    assert!(
        rec.report.bytes >= out.durable_len,
        "the WAL said {} bytes were durable, only {} survived",
        out.durable_len,
        rec.report.bytes
    );
    let lost: Vec<&Sent> = out.acked.iter().filter(|a| a.seq > k).collect();
    let lost_docs: u64 = lost.iter().map(|a| u64::from(a.doc.docs)).sum();
    match policy {
        FlushPolicy::Always => assert!(
            lost.is_empty(),
            "Always lost {} acknowledged records (first seq {}); {k} recovered",
            lost.len(),
            lost[0].seq
        ),
        FlushPolicy::EveryDocs(n) => assert!(
            lost_docs < u64::from(n),
            "EveryDocs({n}) lost {lost_docs} acknowledged docs in {} records (seqs {:?})",
            lost.len(),
            lost.iter().map(|a| a.seq).collect::<Vec<_>>()
        ),
        _ => {}
    }
    let r = &rec.report;
    assert_eq!(r.records as u64, k, "report.records");
    let docs: u64 = records.iter().map(|r| u64::from(r.payload.docs)).sum();
    assert_eq!(r.docs, docs, "report.docs");
    assert!(
        r.salvaged.is_none() && !r.short_header,
        "unexpected report {r:?}"
    );
    assert_eq!(
        r.truncated_bytes,
        image_len - r.bytes,
        "truncated_bytes must be what followed the valid prefix"
    );
}

fn power_loss_trials(test: &str, policy: FlushPolicy) {
    let mut torn_tails = 0;
    let mut lost_some = 0;
    for trial in trials(TRIALS) {
        let seed = trial_seed(test, trial);
        let mut rng = rng(seed);
        let crash = if trial.is_multiple_of(2) {
            Crash::Clean
        } else {
            Crash::Torn(rng.gen())
        };
        let (shape, cut) = plan(&mut rng);
        let _trial = Trial::new(
            test,
            trial,
            seed,
            format!("{policy}, {shape:?}, {cut:?}, {crash:?}"),
        );

        let (sim, wal) = fresh(policy);
        if let Cut::Fault(op, nth) = cut {
            sim.inject(Fault {
                op,
                nth,
                kind: FaultKind::PowerCut,
            });
        }
        let out = match shape {
            Shape::Single { appends } => single_writer(&mut rng, &sim, &wal, appends, cut, crash),
            Shape::Threads {
                threads,
                per_thread,
            } => many_writers(seed, &sim, &wal, threads, per_thread, cut, crash),
        };
        // After the crash: the handle is dead, and dropping it (the Interval syncer's last
        // fsync included) must not change the disk.
        drop(wal);

        let image_len = sim.read(wal_path()).unwrap().len() as u64;
        let (wal, rec) = reopen(&sim, policy);
        verify(policy, &out, image_len, &rec);
        torn_tails += u64::from(rec.report.truncated_bytes > 0);
        lost_some += u64::from(
            out.acked
                .last()
                .is_some_and(|a| a.seq as usize > rec.records.len()),
        );
        assert_eq!(
            sim.read(wal_path()).unwrap().len() as u64,
            rec.report.bytes,
            "recovery must cut the torn tail off"
        );

        // The recovered WAL takes new records, and they survive the next power loss.
        let k = rec.records.len() as u64;
        assert!(!wal.is_poisoned());
        assert_eq!(wal.next_seq(), k + 1, "next seq after recovery");
        let (op, doc) = next_doc(&mut rng, k + 1);
        assert_eq!(wal.append(op, &doc).expect("append after recovery"), k + 1);
        wal.sync().expect("sync after recovery");
        crash.other().hit(&sim);
        drop(wal);
        let (_wal, again) = reopen(&sim, policy);
        assert_eq!(
            again.records.len() as u64,
            k + 1,
            "the record appended after recovery"
        );
        assert_eq!(
            again.records[..k as usize],
            rec.records[..],
            "earlier records changed"
        );
        let last = &again.records[k as usize];
        assert_eq!((last.seq, last.op, &last.payload), (k + 1, op, &doc));
    }
    // Not a check of the WAL: a guard that the trials reach the states they are meant to.
    let n = trials(TRIALS).count();
    if n >= 100 {
        assert!(
            torn_tails > 0,
            "no trial produced a torn tail: the workload is too tame"
        );
        if !matches!(policy, FlushPolicy::Always) {
            assert!(
                lost_some > 0,
                "no trial lost an unsynced record: the workload is too tame"
            );
        }
    }
}

#[test]
fn always_loses_nothing_acknowledged() {
    power_loss_trials("always_loses_nothing_acknowledged", FlushPolicy::Always);
}

#[test]
fn every_docs_loses_fewer_than_n_acknowledged_docs() {
    power_loss_trials(
        "every_docs_loses_fewer_than_n_acknowledged_docs",
        FlushPolicy::EveryDocs(7),
    );
}

#[test]
fn interval_recovers_a_clean_prefix() {
    power_loss_trials(
        "interval_recovers_a_clean_prefix",
        FlushPolicy::Interval(Duration::from_millis(5)),
    );
}

#[test]
fn never_recovers_a_clean_prefix() {
    power_loss_trials("never_recovers_a_clean_prefix", FlushPolicy::Never);
}

/// A crash while the WAL is being created leaves no WAL, or an empty one, never a broken one.
#[test]
fn power_loss_while_creating_leaves_no_wal_or_an_empty_one() {
    for nth in 1..=5 {
        for crash in [Crash::Clean, Crash::Torn(nth)] {
            let sim = SimStorage::new();
            sim.create_dir_all(Path::new("/db")).unwrap();
            sim.inject(Fault {
                op: FaultOp::Mutation,
                nth,
                kind: FaultKind::PowerCut,
            });
            let created = Wal::<Doc>::create(
                Arc::new(sim.clone()),
                wal_path(),
                ID,
                1,
                FlushPolicy::Always,
            );
            // create, write header, fsync, fsync dir: the fifth mutation is past creation.
            assert_eq!(created.is_err(), nth <= 4, "mutation {nth}: {created:?}");
            crash.hit(&sim);
            drop(created);
            if sim.exists(wal_path()).unwrap() {
                let (_, rec) = open(&sim, FlushPolicy::Always)
                    .unwrap_or_else(|e| panic!("mutation {nth}, {crash:?}: {e}"));
                assert!(rec.records.is_empty());
            } else {
                assert!(nth <= 4, "a created WAL vanished");
            }
            let wal = Wal::create(
                Arc::new(sim.clone()),
                wal_path(),
                ID,
                1,
                FlushPolicy::Always,
            )
            .unwrap();
            wal.append(Op::Insert, &Doc::new(1, 1, 10)).unwrap();
            crash.hit(&sim);
            drop(wal);
            let (_, rec) = reopen(&sim, FlushPolicy::Always);
            assert_eq!(rec.records.len(), 1);
        }
    }
}

/// Recovery cuts a torn tail off; a power loss during that repair is recovered from too.
#[test]
fn power_loss_during_recovery_is_recovered_from() {
    const TEST: &str = "power_loss_during_recovery_is_recovered_from";
    let mut interrupted = 0;
    for trial in trials(60) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let _trial = Trial::new(TEST, trial, seed, "");
        let (sim, wal) = fresh(FlushPolicy::Never);
        let mut synced = 0;
        for seq in 1..=rng.gen_range(1..=30) {
            let (op, doc) = next_doc(&mut rng, seq);
            wal.append(op, &doc).unwrap();
            if rng.gen_ratio(1, 5) {
                wal.sync().unwrap();
                synced = seq;
            }
        }
        sim.crash_torn(rng.gen());
        drop(wal);

        let before = sim.read(wal_path()).unwrap();
        let first = Wal::<Doc>::read(&sim, wal_path(), ID).expect("read after power loss");
        assert_eq!(
            sim.read(wal_path()).unwrap(),
            before,
            "Wal::read changed the file"
        );
        assert!(first.records.len() as u64 >= synced);

        // The repair is a truncate and an fsync (a clean log gets just the fsync, which makes
        // what a dead process left in the page cache durable): cut the power at either.
        let nth = rng.gen_range(1..=2);
        sim.inject(Fault {
            op: FaultOp::Mutation,
            nth,
            kind: FaultKind::PowerCut,
        });
        let opened = open(&sim, FlushPolicy::Never);
        let needs_repair = first.report.truncated_bytes > 0;
        let mutations = if needs_repair { 2 } else { 1 };
        assert_eq!(
            opened.is_err(),
            nth <= mutations,
            "{:?}",
            opened.as_ref().err()
        );
        interrupted += u64::from(needs_repair);
        if let Ok((wal, rec)) = opened {
            assert_eq!(rec.records, first.records);
            drop(wal);
        }
        let crash = if rng.gen() {
            Crash::Clean
        } else {
            Crash::Torn(rng.gen())
        };
        crash.hit(&sim);
        let (_, rec) = reopen(&sim, FlushPolicy::Never);
        assert_well_formed(&rec.records);
        assert!(rec.records.len() as u64 >= synced, "synced records lost");
        // What the first crash left on the disk is still there after the second.
        assert_eq!(rec.records, first.records);
    }
    if trials(60).count() >= 60 {
        assert!(interrupted > 0, "no trial had a torn tail to repair");
    }
}

/// Under `Interval` the background syncer fsyncs once more when the WAL is dropped, so a clean
/// shutdown loses nothing even if the period never elapsed.
#[test]
fn interval_clean_shutdown_loses_nothing() {
    let (sim, wal) = fresh(FlushPolicy::Interval(Duration::from_secs(3600)));
    for seq in 1..=20 {
        wal.append(op_for(seq), &Doc::new(seq, 1, seq as usize * 10))
            .unwrap();
    }
    drop(wal);
    sim.crash();
    let (_, rec) = reopen(&sim, FlushPolicy::Never);
    assert_eq!(rec.records.len(), 20);
    assert_well_formed(&rec.records);
}

// Regressions of bugs found by these tests, and one known limitation (ignored).

/// A process that dies with unsynced records leaves them in the page cache (here: the
/// simulator's live image, which a drop without a crash keeps). Reopening recovers them and the
/// writer counts them durable without ever fsyncing them, so `EveryDocs(n)` can then lose up to
/// 2n - 2 acknowledged docs to a power loss.
#[test]
fn every_docs_bound_holds_across_a_process_restart() {
    const N: u32 = 10;
    let (sim, wal) = fresh(FlushPolicy::EveryDocs(N));
    for seq in 1..u64::from(N) {
        wal.append(op_for(seq), &Doc::new(seq, 1, 32)).unwrap();
    }
    drop(wal); // the process exits; nothing was lost yet
    let (wal, rec) = reopen(&sim, FlushPolicy::EveryDocs(N));
    assert_eq!(rec.records.len() as u32, N - 1);
    for seq in u64::from(N)..2 * u64::from(N) - 1 {
        wal.append(op_for(seq), &Doc::new(seq, 1, 32)).unwrap();
    }
    sim.crash();
    drop(wal);
    let (_, rec) = reopen(&sim, FlushPolicy::Never);
    let lost = 2 * (N - 1) - rec.records.len() as u32;
    assert!(lost < N, "EveryDocs({N}) lost {lost} acknowledged docs");
}

/// Same cause: after recovery, `sync()` returns Ok without making the recovered records durable
/// (and `durable_len()` already claims them).
#[test]
fn sync_after_recovery_makes_recovered_records_durable() {
    let (sim, wal) = fresh(FlushPolicy::Never);
    for seq in 1..=5 {
        wal.append(op_for(seq), &Doc::new(seq, 1, 32)).unwrap();
    }
    drop(wal); // the process exits
    let (wal, rec) = reopen(&sim, FlushPolicy::Always);
    assert_eq!(rec.records.len(), 5);
    wal.sync().unwrap();
    sim.crash();
    drop(wal);
    let (_, rec) = reopen(&sim, FlushPolicy::Never);
    assert_eq!(
        rec.records.len(),
        5,
        "records recovered and then synced were lost"
    );
}

/// A record whose payload happens to contain a complete, valid WAL frame (say, a document that
/// stores a copy of a WAL) is torn by a power loss after that inner frame: the scanner finds the
/// inner frame "after" the torn record and calls the tail corruption, so reopening fails.
#[test]
#[ignore = "known limitation: a torn record whose payload embeds a valid frame is reported as corruption (fails safe; salvage recovers the same prefix). Telling it from a bit-flipped length needs a checksummed frame header: a format change"]
fn torn_record_whose_payload_embeds_a_frame_is_a_torn_tail() {
    use serde_bytes::ByteBuf;
    let mut inner = vec![0u8; 8];
    inner.extend_from_slice(&[0xAB; 100]);
    stratavec::wal::format::seal_frame(&mut inner);
    let mut data = vec![7u8; 50];
    data.extend_from_slice(&inner);
    data.extend_from_slice(&[9u8; 2000]);
    for seed in 0..20 {
        let sim = SimStorage::new();
        sim.create_dir_all(Path::new("/db")).unwrap();
        let storage = Arc::new(sim.clone());
        let wal =
            Wal::<ByteBuf>::create(storage.clone(), wal_path(), ID, 1, FlushPolicy::Never).unwrap();
        wal.append(Op::Insert, &ByteBuf::from(data.clone()))
            .unwrap();
        sim.crash_torn(seed);
        drop(wal);
        let len = sim.read(wal_path()).unwrap().len();
        if let Err(e) = Wal::<ByteBuf>::open(storage, wal_path(), ID, &Default::default()) {
            panic!("seed {seed}: power loss left {len} bytes, reopening failed: {e}");
        }
    }
}

/// `SimStorage::crash_torn` keeps a prefix of the unsynced appends, "as a disk that wrote part
/// of its cache would": those bytes are on the medium, yet a second crash drops them again.
#[test]
fn bytes_that_survived_a_torn_crash_survive_the_next_crash() {
    for seed in 0..20 {
        let (sim, wal) = fresh(FlushPolicy::Never);
        for seq in 1..=5 {
            wal.append(op_for(seq), &Doc::new(seq, 1, 32)).unwrap();
        }
        sim.crash_torn(seed);
        drop(wal);
        let survived = sim.read(wal_path()).unwrap();
        sim.crash();
        let after = sim.read(wal_path()).unwrap();
        assert!(
            after == survived,
            "seed {seed}: {} bytes survived the torn crash, {} the crash after it",
            survived.len(),
            after.len()
        );
    }
}

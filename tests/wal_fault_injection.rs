//! Injected I/O failures: a failed write or fsync is reported once as `Error::Io`, poisons the
//! WAL so that every later append and sync is refused with `Error::Poisoned`, never lets a
//! caller believe a record is durable when it is not, and leaves a log that reopens at its last
//! durable state.
//!
//! A failing trial prints its seed; `STRATAVEC_SEED=<base> STRATAVEC_TRIAL=<n>` replays it.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    assert_well_formed, fresh, op_for, random_docs, random_len, reopen, rng, trial_seed, trials,
    wal_path, Crash, Doc, Trial, EIO, ENOSPC,
};
use rand::Rng;
use stratavec::storage::{Fault, FaultKind, FaultOp};
use stratavec::wal::{FlushPolicy, Wal, WalRecord};
use stratavec::Error;

const KINDS: [FaultKind; 2] = [FaultKind::Eio, FaultKind::Enospc];

fn errno(kind: FaultKind) -> i32 {
    match kind {
        FaultKind::Eio => EIO,
        FaultKind::Enospc => ENOSPC,
        FaultKind::PowerCut => unreachable!("not an errno"),
    }
}

/// `e` is the original failure: `Error::Io` of operation `op` on the WAL with `errno`.
#[track_caller]
fn assert_io(e: &Error, op: &str, errno: i32) {
    match e {
        Error::Io {
            op: got,
            path,
            source,
        } => {
            assert_eq!(*got, op, "failed operation of {e}");
            assert_eq!(path, wal_path(), "the error must name the WAL: {e}");
            assert_eq!(source.raw_os_error(), Some(errno), "errno of {e}");
        }
        other => panic!("want Error::Io from {op} with errno {errno}, got {other:?}"),
    }
}

/// `e` is a refusal after an earlier failure with `errno`.
#[track_caller]
fn assert_poisoned(e: &Error, errno: i32) {
    match e {
        Error::Poisoned { path, cause } => {
            assert_eq!(path, wal_path(), "the error must name the WAL: {e}");
            assert_eq!(cause.raw_os_error(), Some(errno), "cause of {e}");
        }
        other => panic!("want Error::Poisoned (errno {errno}), got {other:?}"),
    }
}

/// Appends the record meant for the WAL's next seq.
fn append_next(wal: &Wal<Doc>, rng: &mut rand::rngs::SmallRng) -> (Doc, stratavec::Result<u64>) {
    let seq = wal.next_seq();
    let doc = Doc::new(seq, random_docs(rng), random_len(rng));
    let result = wal.append(op_for(seq), &doc);
    (doc, result)
}

/// A poisoned WAL refuses appends and syncs, every time, naming the first failure.
#[track_caller]
fn assert_refuses_writes(wal: &Wal<Doc>, errno: i32) {
    assert!(wal.is_poisoned());
    for i in 0..3 {
        let e = wal
            .append(op_for(1000 + i), &Doc::new(1000 + i, 1, 20))
            .expect_err("append on a poisoned WAL");
        assert_poisoned(&e, errno);
    }
    assert_poisoned(&wal.sync().expect_err("sync on a poisoned WAL"), errno);
    assert!(wal.is_poisoned());
}

/// The recovered records are the first ones appended, byte for byte.
#[track_caller]
fn assert_prefix_of(records: &[WalRecord<Doc>], appended: &[Doc]) {
    assert_well_formed(records);
    assert!(
        records.len() <= appended.len(),
        "{} records recovered, {} appended",
        records.len(),
        appended.len()
    );
    for (i, (r, doc)) in records.iter().zip(appended).enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "seqs must be 1, 2, ...");
        assert_eq!(
            &r.payload, doc,
            "record {} differs from what was appended",
            r.seq
        );
    }
}

#[test]
fn failed_fsync_under_always_is_reported_once_then_poisons() {
    const TEST: &str = "failed_fsync_under_always_is_reported_once_then_poisons";
    for trial in trials(40) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let kind = KINDS[(trial % 2) as usize];
        // Half the trials lose power before reopening; the others just reopen, which is what
        // Error::Poisoned tells the user to do.
        let crash = (trial % 4 >= 2).then(|| Crash::alternate(trial / 4));
        let before = rng.gen_range(0..=12u64);
        let _trial = Trial::new(
            TEST,
            trial,
            seed,
            format!("{kind:?}, {before} ok, {crash:?}"),
        );

        let (sim, wal) = fresh(FlushPolicy::Always);
        sim.inject(Fault {
            op: FaultOp::Sync,
            nth: before + 1,
            kind,
        });
        let mut appended = Vec::new();
        for seq in 1..=before {
            let (doc, result) = append_next(&wal, &mut rng);
            assert_eq!(result.expect("append before the failure"), seq);
            appended.push(doc);
        }
        let len_before_failure = wal.len();
        assert_eq!(
            wal.durable_len(),
            len_before_failure,
            "Always: all acknowledged is durable"
        );
        let (failed_doc, result) = append_next(&wal, &mut rng);
        assert_io(
            &result.expect_err("the append whose fsync fails"),
            "fsync",
            errno(kind),
        );
        appended.push(failed_doc);
        assert_refuses_writes(&wal, errno(kind));
        assert_eq!(
            wal.durable_len(),
            len_before_failure,
            "the record whose fsync failed must not count as durable"
        );

        if let Some(crash) = crash {
            crash.hit(&sim);
        }
        drop(wal);
        let (wal, rec) = reopen(&sim, FlushPolicy::Always);
        assert_prefix_of(&rec.records, &appended);
        assert!(
            rec.records.len() as u64 >= before,
            "{} of {before} acknowledged records survived",
            rec.records.len()
        );
        // The reopened WAL works again, and what it acknowledges is durable.
        let k = rec.records.len();
        assert!(!wal.is_poisoned());
        let (doc, result) = append_next(&wal, &mut rng);
        assert_eq!(result.expect("append after reopening"), k as u64 + 1);
        Crash::Clean.hit(&sim);
        drop(wal);
        let (_, again) = reopen(&sim, FlushPolicy::Always);
        assert_eq!(again.records.len(), k + 1);
        assert_eq!(again.records[..k], rec.records[..]);
        assert_eq!(again.records[k].payload, doc);
    }
}

#[test]
fn failed_write_poisons_under_every_policy() {
    const TEST: &str = "failed_write_poisons_under_every_policy";
    let policies = [
        FlushPolicy::Always,
        FlushPolicy::EveryDocs(4),
        FlushPolicy::Interval(Duration::from_millis(2)),
        FlushPolicy::Never,
    ];
    for trial in trials(32) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let policy = policies[(trial % 4) as usize];
        let kind = KINDS[((trial / 4) % 2) as usize];
        let crash = Crash::alternate(trial / 8);
        let before = rng.gen_range(0..=10u64);
        let _trial = Trial::new(
            TEST,
            trial,
            seed,
            format!("{policy}, {kind:?}, {before} ok, {crash:?}"),
        );

        let (sim, wal) = fresh(policy);
        sim.inject(Fault {
            op: FaultOp::Write,
            nth: before + 1,
            kind,
        });
        let mut acked = Vec::new();
        for seq in 1..=before {
            let (doc, result) = append_next(&wal, &mut rng);
            assert_eq!(result.expect("append before the failure"), seq);
            acked.push(doc);
        }
        let len = wal.len();
        let (_, result) = append_next(&wal, &mut rng);
        assert_io(
            &result.expect_err("the append whose write fails"),
            "write",
            errno(kind),
        );
        assert_eq!(wal.len(), len, "a failed write must not count as appended");
        assert!(wal.is_poisoned());
        for i in 0..3 {
            let e = wal
                .append(op_for(1000 + i), &Doc::new(1000 + i, 1, 20))
                .expect_err("append on a poisoned WAL");
            assert_poisoned(&e, errno(kind));
        }

        crash.hit(&sim);
        drop(wal);
        let (_, rec) = reopen(&sim, policy);
        // The simulated write failed without effect, so the refused record cannot reappear.
        assert_prefix_of(&rec.records, &acked);
        let lost: u64 = acked[rec.records.len()..]
            .iter()
            .map(|d| u64::from(d.docs))
            .sum();
        match policy {
            FlushPolicy::Always => assert_eq!(rec.records.len(), acked.len()),
            FlushPolicy::EveryDocs(n) => assert!(lost < u64::from(n), "lost {lost} docs"),
            _ => {}
        }
    }
}

/// Eight writers share fsyncs; one fsync fails. Whoever ran it gets `Error::Io`, everybody
/// whose record it covered gets `Error::Poisoned`, and every `Ok` is a durable record.
#[test]
fn concurrent_writers_get_ok_only_for_durable_records_when_an_fsync_fails() {
    const TEST: &str = "concurrent_writers_get_ok_only_for_durable_records_when_an_fsync_fails";
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 40;
    for trial in trials(12) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let kind = KINDS[(trial % 2) as usize];
        let crash = Crash::alternate(trial / 2);
        // Each fsync covers at most THREADS records, so at least PER_THREAD of them run.
        let nth = rng.gen_range(1..=30);
        let _trial = Trial::new(
            TEST,
            trial,
            seed,
            format!("{kind:?}, fsync {nth}, {crash:?}"),
        );

        let (sim, wal) = fresh(FlushPolicy::Always);
        sim.inject(Fault {
            op: FaultOp::Sync,
            nth,
            kind,
        });
        let results: Vec<(Vec<(u64, Doc)>, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let wal = &wal;
                    s.spawn(move || {
                        let mut rng = common::rng(seed ^ (t + 1));
                        let mut acked = Vec::new();
                        let mut io_errors = 0;
                        let mut failed = false;
                        for n in 0..PER_THREAD {
                            let id = t << 32 | n;
                            let doc = Doc::new(id, 1, random_len(&mut rng) % 2048);
                            match wal.append(op_for(id), &doc) {
                                Ok(seq) => {
                                    assert!(!failed, "thread {t}: Ok after an error");
                                    acked.push((seq, doc));
                                }
                                Err(e) => {
                                    if matches!(e, Error::Io { .. }) {
                                        assert_io(&e, "fsync", errno(kind));
                                        assert!(!failed, "thread {t}: Io after an error");
                                        io_errors += 1;
                                    } else {
                                        assert_poisoned(&e, errno(kind));
                                    }
                                    assert!(wal.is_poisoned());
                                    failed = true;
                                }
                            }
                        }
                        (acked, io_errors)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let io_errors: u64 = results.iter().map(|r| r.1).sum();
        assert_eq!(
            io_errors, 1,
            "exactly the append that ran the failed fsync sees Error::Io"
        );
        assert_refuses_writes(&wal, errno(kind));
        let mut acked: Vec<(u64, Doc)> = results.into_iter().flat_map(|r| r.0).collect();
        acked.sort_by_key(|a| a.0);

        crash.hit(&sim);
        drop(wal);
        let (_, rec) = reopen(&sim, FlushPolicy::Always);
        assert_well_formed(&rec.records);
        for (i, r) in rec.records.iter().enumerate() {
            assert_eq!(
                r.seq,
                i as u64 + 1,
                "a record is missing from the middle of the log"
            );
        }
        for (seq, doc) in &acked {
            let r = rec.records.get(*seq as usize - 1).unwrap_or_else(|| {
                panic!(
                    "record {seq} was acknowledged but is not durable ({} recovered)",
                    rec.records.len()
                )
            });
            assert_eq!(&r.payload, doc, "acknowledged record {seq} differs");
        }
    }
}

#[test]
fn failed_fsync_under_every_docs_poisons() {
    const TEST: &str = "failed_fsync_under_every_docs_poisons";
    const N: u32 = 5;
    for trial in trials(20) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let kind = KINDS[(trial % 2) as usize];
        let crash = Crash::alternate(trial / 2);
        let nth = rng.gen_range(1..=3);
        let _trial = Trial::new(
            TEST,
            trial,
            seed,
            format!("{kind:?}, fsync {nth}, {crash:?}"),
        );

        let (sim, wal) = fresh(FlushPolicy::EveryDocs(N));
        sim.inject(Fault {
            op: FaultOp::Sync,
            nth,
            kind,
        });
        let mut appended = Vec::new();
        let mut acked_docs = Vec::new();
        let mut failed = false;
        // At least one doc per append: the third fsync comes within 15 appends.
        for _ in 0..20 {
            let seq = wal.next_seq();
            let doc = Doc::new(seq, rng.gen_range(1..=3), random_len(&mut rng));
            let result = wal.append(op_for(seq), &doc);
            appended.push(doc.clone());
            match result {
                Ok(got) => {
                    assert_eq!(got, seq);
                    acked_docs.push(doc.docs);
                }
                Err(e) => {
                    assert_io(&e, "fsync", errno(kind));
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "the injected fsync failure never fired");
        assert_refuses_writes(&wal, errno(kind));

        crash.hit(&sim);
        drop(wal);
        let (_, rec) = reopen(&sim, FlushPolicy::EveryDocs(N));
        assert_prefix_of(&rec.records, &appended);
        let lost: u32 = acked_docs.iter().skip(rec.records.len()).sum();
        assert!(
            lost < N,
            "lost {lost} acknowledged docs, EveryDocs({N}) allows < {N}"
        );
    }
}

/// Under `Interval` the fsync runs on a background thread; its failure surfaces as
/// `Error::Poisoned` on a later append.
#[test]
fn failed_background_fsync_under_interval_poisons() {
    for kind in KINDS {
        let (sim, wal) = fresh(FlushPolicy::Interval(Duration::from_millis(2)));
        sim.inject(Fault {
            op: FaultOp::Sync,
            nth: 1,
            kind,
        });
        let mut rng = rng(7);
        let mut appended = Vec::new();
        // Generous bound: the syncer runs every 2 ms.
        let deadline = Instant::now() + Duration::from_secs(5);
        let refusal = loop {
            let (doc, result) = append_next(&wal, &mut rng);
            match result {
                Ok(seq) => {
                    assert_eq!(seq, appended.len() as u64 + 1);
                    appended.push(doc);
                }
                Err(e) => break e,
            }
            assert!(
                Instant::now() < deadline,
                "{kind:?}: the background fsync failure never reached the writer"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_poisoned(&refusal, errno(kind));
        assert_refuses_writes(&wal, errno(kind));

        sim.crash();
        drop(wal);
        let (_, rec) = reopen(&sim, FlushPolicy::Never);
        assert_prefix_of(&rec.records, &appended);
    }
}

/// An explicit `sync()` that fails poisons too, under a policy that never fsyncs on its own.
#[test]
fn failed_explicit_sync_under_never_poisons() {
    for kind in KINDS {
        let (sim, wal) = fresh(FlushPolicy::Never);
        let mut rng = rng(11);
        let mut appended = Vec::new();
        for _ in 0..5 {
            let (doc, result) = append_next(&wal, &mut rng);
            result.expect("append");
            appended.push(doc);
        }
        sim.inject(Fault {
            op: FaultOp::Sync,
            nth: 1,
            kind,
        });
        assert_io(
            &wal.sync().expect_err("the failing sync"),
            "fsync",
            errno(kind),
        );
        assert_refuses_writes(&wal, errno(kind));
        sim.crash_torn(u64::from(errno(kind) as u32));
        drop(wal);
        let (_, rec) = reopen(&sim, FlushPolicy::Never);
        assert_prefix_of(&rec.records, &appended);
    }
}

/// A failed fsync while the WAL is being created is reported, not swallowed.
#[test]
fn failed_fsync_while_creating_is_an_io_error() {
    for nth in 1..=2 {
        for kind in KINDS {
            let sim = stratavec::storage::SimStorage::new();
            stratavec::storage::Storage::create_dir_all(&sim, Path::new("/db")).unwrap();
            sim.inject(Fault {
                op: FaultOp::Sync,
                nth,
                kind,
            });
            let e = Wal::<Doc>::create(
                std::sync::Arc::new(sim.clone()),
                wal_path(),
                common::ID,
                1,
                FlushPolicy::Always,
            )
            .expect_err("create with a failing fsync");
            let op = if nth == 1 { "fsync" } else { "fsync directory" };
            match &e {
                Error::Io {
                    op: got, source, ..
                } => {
                    assert_eq!(*got, op);
                    assert_eq!(source.raw_os_error(), Some(errno(kind)));
                }
                other => panic!("want Error::Io, got {other:?}"),
            }
        }
    }
}

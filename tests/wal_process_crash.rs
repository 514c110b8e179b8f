//! A real process crash: SIGKILL while appending loses nothing acknowledged, under any policy
//! (here `Never`, the weakest), because every append reaches the operating system first.
//!
//! The test binary re-executes itself. With `STRATAVEC_CRASH_CHILD=<dir>` set, the test runs as
//! the child: it creates (or recovers) `<dir>/0.wal` and appends records of varying sizes
//! forever, printing `STRATAVEC-ACK <seq> OK` after each acknowledged one. The parent kills it
//! at a random moment, then checks the log on disk against the acknowledgements. Some trials
//! continue the previous trial's log, so appending after recovery (including recovery of a log
//! that was itself cut by a kill) is exercised too.
//!
//! A failing trial prints its seed; `STRATAVEC_SEED=<base>` replays the run (the kill moments
//! depend on timing, so a replay is not exact).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{op_for, rng, trial_seed, trials, Doc, Trial, ID};
use rand::Rng;
use stratavec::storage::{StdStorage, Storage};
use stratavec::wal::{FlushPolicy, Wal, WalOpenOptions};

const TEST: &str = "sigkill_while_appending_loses_nothing_acknowledged";
const CHILD_DIR: &str = "STRATAVEC_CRASH_CHILD";
const CHILD_NEXT_SEQ: &str = "STRATAVEC_CRASH_NEXT_SEQ";
const ACK: &str = "STRATAVEC-ACK ";
const SIGKILL: i32 = 9;
/// Waiting for a child that does not start is a failure, not a timing assertion.
const START_BOUND: Duration = Duration::from_secs(60);

/// What record `seq` holds: its size and doc count follow from the seq alone, so the parent
/// can check every byte without hearing from the child. Mostly small, some KiB, and one in 300
/// of 64 to 256 KiB (a write the kill may interrupt half way: that leaves a torn tail).
fn record_for(seq: u64) -> Doc {
    let h = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    let len = match h % 1000 {
        0..=2 => 64 * 1024 + (h as usize * 7919) % (192 * 1024),
        3..=27 => 1024 + (h as usize * 31) % 8192,
        _ => (h as usize * 13) % 200,
    };
    Doc::new(seq, (h % 5) as u32, len)
}

fn wal_path(dir: &Path) -> PathBuf {
    dir.join("0.wal")
}

/// The child role: append forever, acknowledging each record on stdout.
fn child(dir: &Path) -> ! {
    let path = wal_path(dir);
    let storage = Arc::new(StdStorage);
    let wal: Wal<Doc> = match std::env::var(CHILD_NEXT_SEQ) {
        Err(_) => Wal::create(storage, &path, ID, 1, FlushPolicy::Never).expect("create"),
        Ok(next) => {
            let options = WalOpenOptions {
                policy: FlushPolicy::Never,
                salvage: false,
                next_seq: next.parse().expect("next seq"),
            };
            Wal::open(storage, &path, ID, &options).expect("recover").0
        }
    };
    let mut out = std::io::stdout().lock();
    // libtest may have printed "test name ... " without a newline.
    let _ = writeln!(out);
    for _ in 0..1_000_000 {
        let seq = wal.next_seq();
        let doc = record_for(seq);
        let got = wal.append(op_for(seq), &doc).expect("append");
        assert_eq!(got, seq);
        if writeln!(out, "{ACK}{seq} OK")
            .and_then(|()| out.flush())
            .is_err()
        {
            std::process::exit(3); // the parent is gone
        }
    }
    // Never reached in a normal run: wait to be killed rather than exit on our own.
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if writeln!(out, "STRATAVEC-IDLE")
            .and_then(|()| out.flush())
            .is_err()
        {
            std::process::exit(3);
        }
    }
}

struct Killed {
    acked: Vec<u64>,
}

/// Runs one child on `dir`, kills it after it acknowledged something (or right away), and
/// returns what it acknowledged.
fn run_child(dir: &Path, next_seq: Option<u64>, wait_for_ack: bool, delay: Duration) -> Killed {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env_remove(CHILD_NEXT_SEQ)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(next) = next_seq {
        cmd.env(CHILD_NEXT_SEQ, next.to_string());
    }
    let mut child = cmd.spawn().expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let (first_tx, first_rx) = mpsc::channel();
    let reader = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            let mut first = Some(first_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(rest) = line.trim().strip_prefix(ACK) else {
                    continue;
                };
                // A line cut short by the kill has no " OK" and does not count.
                let Some(seq) = rest.strip_suffix(" OK") else {
                    continue;
                };
                acked
                    .lock()
                    .unwrap()
                    .push(seq.parse::<u64>().expect("ACK line"));
                if let Some(tx) = first.take() {
                    let _ = tx.send(());
                }
            }
        })
    };
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    if wait_for_ack && first_rx.recv_timeout(START_BOUND).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the child acknowledged nothing: {}",
            errors.join().unwrap_or_default()
        );
    }
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL the child");
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let stderr = errors.join().unwrap();
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "the child must die of our SIGKILL, not on its own ({status}); its stderr:\n{stderr}"
    );
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    Killed { acked }
}

#[test]
fn sigkill_while_appending_loses_nothing_acknowledged() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        child(Path::new(&dir));
    }

    // A chain of trials shares one log; a new chain starts with a new log.
    let mut chain: Option<(tempfile::TempDir, Vec<u64>)> = None;
    let mut kills_with_acks = 0;
    let mut torn = 0;
    for trial in trials(24) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let continue_chain = !trial.is_multiple_of(3) && chain.is_some();
        if !continue_chain {
            chain = Some((tempfile::tempdir().unwrap(), Vec::new()));
        }
        let (dir, previous) = chain.as_mut().unwrap();
        let exists = wal_path(dir.path()).exists();
        // Continuing a log: the opener's next_seq may be behind the log (the log's own last
        // seq + 1 wins), right at it, or ahead of it (a gap, as for a collection whose other
        // logs went further).
        let last = previous.last().copied().unwrap_or(0);
        let next_seq = exists.then(|| match rng.gen_range(0..3) {
            0 => rng.gen_range(1..=last.max(1)),
            1 => last + 1,
            _ => last + 1 + rng.gen_range(1..50),
        });
        let first_seq = next_seq.map_or(1, |n| n.max(last + 1));
        // A few kills land before the first append: during creation or recovery.
        let wait_for_ack = !rng.gen_ratio(1, 8);
        let delay = Duration::from_millis(if wait_for_ack {
            rng.gen_range(0..100)
        } else {
            rng.gen_range(0..20)
        });
        let _trial = Trial::new(
            TEST,
            trial,
            seed,
            format!(
                "dir {}, {} earlier records, next_seq {next_seq:?}, wait {wait_for_ack}, delay {delay:?}",
                dir.path().display(),
                previous.len()
            ),
        );

        let Killed { acked } = run_child(dir.path(), next_seq, wait_for_ack, delay);
        kills_with_acks += u64::from(!acked.is_empty());
        for pair in acked.windows(2) {
            assert!(
                pair[0] < pair[1],
                "the child acknowledged seqs out of order"
            );
        }
        let path = wal_path(dir.path());
        if !path.exists() {
            assert!(acked.is_empty() && !exists, "the WAL vanished");
            continue;
        }

        // A read-only look first: it must not call the kill corruption.
        let read = Wal::<Doc>::read(&StdStorage, &path, ID)
            .unwrap_or_else(|e| panic!("reading the WAL after SIGKILL failed: {e}"));
        let records = &read.records;
        for r in records {
            assert!(r.payload == record_for(r.seq), "record {} differs", r.seq);
            assert_eq!(r.op, op_for(r.seq), "record {} has the wrong op", r.seq);
        }
        for pair in records.windows(2) {
            assert!(pair[0].seq < pair[1].seq, "seqs must strictly increase");
        }
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert!(
            seqs.starts_with(previous),
            "records from earlier trials changed or vanished"
        );
        let new = &seqs[previous.len()..];
        if let Some(first) = new.first() {
            assert_eq!(
                *first, first_seq,
                "the first new record must take max(next_seq, last seq + 1)"
            );
        }
        for pair in new.windows(2) {
            assert_eq!(pair[0] + 1, pair[1], "seqs of one run must be contiguous");
        }
        let present: HashSet<u64> = new.iter().copied().collect();
        for seq in &acked {
            assert!(
                present.contains(seq),
                "record {seq} was acknowledged but is not in the log ({} records)",
                records.len()
            );
        }
        // At most the record being written when the kill came is unacknowledged.
        assert!(
            new.len() <= acked.len() + 1,
            "{} new records, {} acked",
            new.len(),
            acked.len()
        );
        torn += u64::from(read.report.truncated_bytes > 0);

        // Half the time recover here (cutting any torn tail); else leave it to the next child.
        if rng.gen() {
            let (wal, rec) = Wal::<Doc>::open(
                Arc::new(StdStorage),
                &path,
                ID,
                &WalOpenOptions {
                    policy: FlushPolicy::Never,
                    salvage: false,
                    next_seq: 1,
                },
            )
            .unwrap_or_else(|e| panic!("recovering the WAL after SIGKILL failed: {e}"));
            assert_eq!(rec.records, read.records);
            assert_eq!(
                StdStorage.read(&path).unwrap().len() as u64,
                rec.report.bytes
            );
            drop(wal);
        }
        *previous = seqs;
    }
    eprintln!("{kills_with_acks} kills after acknowledgements, {torn} torn tails");
    if trials(24).count() >= 24 {
        assert!(
            kills_with_acks >= 12,
            "too few children got to append before the kill"
        );
    }
}

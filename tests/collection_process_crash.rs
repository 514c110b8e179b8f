//! Real process crashes: a collection killed with SIGKILL at a random moment loses nothing it
//! acknowledged, under any flush policy, and a batch is never half applied.
//!
//! The test binary re-executes itself. With `STRATAVEC_COLL_CHILD=<profile>,<seed>,<dir>` set,
//! a test runs as the child: it creates (or opens) the collection `<dir>/c` and writes to it,
//! telling the parent on stdout what it does. Before each call it prints `BEGIN <i> <call> END`,
//! after the call returned Ok `ACK <i> <statuses> END`; a line cut short by the kill has no
//! `END` and does not count. The parent kills the child, replays the acknowledged calls into an
//! in-memory model (cross-checking every status the child saw), and reopens the collection: it
//! must hold exactly the model, or the model plus the one call that had begun but was not
//! acknowledged, applied as a whole.
//!
//! Trials continue on the same directory across kills, so recovery of recovered collections
//! (sometimes recovered by the parent, sometimes only by the next child) is exercised too.
//!
//! A failing trial prints its seed; `STRATAVEC_SEED=<base>` replays the run, though the moments
//! of the kills depend on timing, so a replay is not exact. `STRATAVEC_TRIALS=<n>` runs more.

mod crash_support;

use std::io::{BufRead, BufReader, Read, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crash_support::{
    all_writer_keys, decode_call, decode_statuses, encode_call, encode_statuses, expect_one_of,
    key, keys, random_call, random_call_for, read_back, rng, split_by_writer, splitmix, trial_seed,
    trials, union, Call, Model, Rec, Trial, Write,
};
use rand::rngs::SmallRng;
use rand::Rng;
use stratavec::wal::FlushPolicy;
use stratavec::{Collection, CollectionOptions, DocStatus, Error, OpenOptions};

const CHILD_ENV: &str = "STRATAVEC_COLL_CHILD";
const SIGKILL: i32 = 9;
/// Waiting for a child that never gets going is a failure, not a timing assertion.
const START_BOUND: Duration = Duration::from_secs(120);
/// The key space of the random workloads: small, so inserts conflict and updates hit.
const KEY_SPACE: usize = 61;
/// Documents of the insert-then-kill workload (zvec's case 14).
const COUNT_N: usize = 500;

// ---------------------------------------------------------------------------------------------
// The child

/// What a child does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// Random batches of 1..=20 documents, flushes, syncs and optimizes, forever.
    Random,
    /// Like `Random` with batches of 1..=3 in a collection that persists every document
    /// (`max_docs_per_segment(1)`, zvec's case 13).
    OneDocSegments,
    /// One insert of three documents, one with a string of more than 4 MiB (zvec's case 8).
    BigString,
    /// Inserts of `COUNT_N` distinct documents (zvec's case 14).
    Count,
    /// `CONC_WRITERS` threads writing random batches at once, each in its own key space and
    /// with its own numbering (lines tagged `W<t>`), in a collection with small segments so
    /// that persists run all the time, plus a thread calling `optimize` in a loop.
    Concurrent,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Random => "random",
            Profile::OneDocSegments => "onedoc",
            Profile::BigString => "big",
            Profile::Count => "count",
            Profile::Concurrent => "concurrent",
        }
    }

    fn parse(s: &str) -> Profile {
        match s {
            "random" => Profile::Random,
            "onedoc" => Profile::OneDocSegments,
            "big" => Profile::BigString,
            "count" => Profile::Count,
            "concurrent" => Profile::Concurrent,
            other => panic!("unknown child profile {other}"),
        }
    }
}

fn random_policy(rng: &mut SmallRng) -> FlushPolicy {
    match rng.gen_range(0..4) {
        0 => FlushPolicy::Always,
        1 => FlushPolicy::EveryDocs(rng.gen_range(1..=50)),
        2 => FlushPolicy::Interval(Duration::from_millis(rng.gen_range(1..=30))),
        _ => FlushPolicy::Never,
    }
}

/// Creation options of a profile.
fn create_options(profile: Profile, rng: &mut SmallRng) -> CollectionOptions {
    let policy = random_policy(rng);
    let opts = CollectionOptions::default().flush_policy(policy);
    match profile {
        Profile::Random => opts.max_docs_per_segment([7, 40, 300, 10_000_000][rng.gen_range(0..4)]),
        Profile::OneDocSegments => opts.max_docs_per_segment(1),
        Profile::BigString => opts,
        Profile::Count => opts
            .flush_policy(FlushPolicy::Never)
            .max_docs_per_segment(if rng.gen() { 64 } else { 10_000_000 }),
        Profile::Concurrent => opts.max_docs_per_segment([5, 13, 40][rng.gen_range(0..3)]),
    }
}

/// The three documents of zvec's case 8; `k1`'s string is a little over 4 MiB.
fn big_batch(seed: u64) -> Write {
    let mut state = splitmix(seed);
    let big: String = (0..(4 << 20) + 4099)
        .map(|i| {
            if i % 8 == 0 {
                state = splitmix(state);
            }
            (b'a' + ((state >> ((i % 8) * 8)) % 26) as u8) as char
        })
        .collect();
    Write::Insert(vec![
        (
            key(0),
            Rec {
                n: 1,
                s: Some("small".into()),
                v: [1.0, 0.0, 0.0, 0.0],
            },
        ),
        (
            key(1),
            Rec {
                n: 2,
                s: Some(big),
                v: [0.0, 1.0, 0.0, 0.0],
            },
        ),
        (
            key(2),
            Rec {
                n: 3,
                s: None,
                v: [0.0, 0.0, 1.0, 0.0],
            },
        ),
    ])
}

/// The inserts of zvec's case 14: `k0..k<COUNT_N>` in batches of 1..=50.
fn count_batches(rng: &mut SmallRng) -> Vec<Write> {
    let mut out = Vec::new();
    let mut next = 0;
    while next < COUNT_N {
        let len = rng.gen_range(1..=50).min(COUNT_N - next);
        out.push(Write::Insert(
            (next..next + len)
                .map(|i| (key(i), crash_support::random_rec(rng)))
                .collect(),
        ));
        next += len;
    }
    out
}

/// Lines to the parent; exits quietly when the parent is gone.
struct Out(std::io::StdoutLock<'static>);

impl Out {
    fn line(&mut self, s: &str) {
        if writeln!(self.0, "{s}")
            .and_then(|()| self.0.flush())
            .is_err()
        {
            std::process::exit(3);
        }
    }

    /// Runs one call between its BEGIN and ACK lines.
    fn call(&mut self, c: &Collection, i: u64, call: &Call) {
        self.line(&format!("BEGIN {i} {} END", encode_call(call)));
        let statuses = call
            .run(c)
            .unwrap_or_else(|e| panic!("child: call {i} ({}) failed: {e}", encode_call(call)));
        self.line(&format!("ACK {i} {} END", encode_statuses(&statuses)));
    }

    /// Waits to be killed.
    fn idle(&mut self) -> ! {
        loop {
            std::thread::sleep(Duration::from_millis(20));
            self.line("IDLE END");
        }
    }
}

/// The child role; never returns.
fn child(spec: &str) -> ! {
    let mut parts = spec.splitn(3, ',');
    let profile = Profile::parse(parts.next().unwrap());
    let seed: u64 = parts.next().unwrap().parse().unwrap();
    let dir = PathBuf::from(parts.next().unwrap());
    let path = dir.join("c");
    let mut rng = rng(seed);
    let mut out = Out(std::io::stdout().lock());
    // libtest may have printed "test name ... " without a newline.
    out.line("");
    let c = if path.exists() {
        let policy = random_policy(&mut rng);
        let c = Collection::open(&path, OpenOptions::default().flush_policy(policy))
            .unwrap_or_else(|e| panic!("child: open: {e}"));
        out.line(&format!("OPENED {} END", c.stats().doc_count));
        c
    } else {
        let opts = create_options(profile, &mut rng);
        let c = Collection::create(&path, crash_support::schema(), opts)
            .unwrap_or_else(|e| panic!("child: create: {e}"));
        out.line("CREATED END");
        c
    };
    match profile {
        Profile::Random | Profile::OneDocSegments => {
            let max_batch = if profile == Profile::Random { 20 } else { 3 };
            for i in 0.. {
                let call = random_call(&mut rng, KEY_SPACE, max_batch);
                out.call(&c, i, &call);
            }
            unreachable!()
        }
        Profile::BigString => {
            out.call(&c, 0, &Call::Write(big_batch(seed)));
            out.line("DONE END");
            out.idle()
        }
        Profile::Count => {
            for (i, w) in count_batches(&mut rng).into_iter().enumerate() {
                out.call(&c, i as u64, &Call::Write(w));
            }
            out.line("DONE END");
            out.idle()
        }
        Profile::Concurrent => {
            // The threads print line by line; nobody may hold stdout for longer.
            drop(out);
            concurrent_child(&c, seed)
        }
    }
}

/// Writer threads of the `Concurrent` profile.
const CONC_WRITERS: usize = 3;
/// The key space of each of them.
const CONC_KEY_SPACE: usize = 30;

/// One whole line to the parent: the stdout lock is held for the line and its flush, so lines
/// of different threads never mix. Exits quietly when the parent is gone.
fn tagged_line(s: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{s}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

/// The `Concurrent` child: `CONC_WRITERS` writers and an optimizer, until killed. Any failure
/// ends the process at once with status 101, so that the parent (which expects death by its
/// SIGKILL) sees it, instead of a panicking thread going unnoticed among the others.
fn concurrent_child(c: &Collection, seed: u64) -> ! {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("child: {info}");
        std::process::exit(101);
    }));
    std::thread::scope(|s| {
        for t in 0..CONC_WRITERS {
            s.spawn(move || {
                let mut rng = rng(splitmix(seed ^ ((t as u64 + 1) << 40)));
                for i in 0u64.. {
                    let call = random_call_for(&mut rng, t, CONC_KEY_SPACE, 12);
                    tagged_line(&format!("W{t} BEGIN {i} {} END", encode_call(&call)));
                    let statuses = call.run(c).unwrap_or_else(|e| {
                        panic!("writer {t}: call {i} ({}) failed: {e}", encode_call(&call))
                    });
                    tagged_line(&format!("W{t} ACK {i} {} END", encode_statuses(&statuses)));
                }
            });
        }
        s.spawn(move || {
            let mut rng = rng(splitmix(seed ^ 0x0971));
            loop {
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..20)));
                c.optimize()
                    .unwrap_or_else(|e| panic!("optimize in a loop failed: {e}"));
            }
        });
    });
    unreachable!()
}

/// Turns this test into the child when the parent asked for one.
fn child_if_requested() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
}

// ---------------------------------------------------------------------------------------------
// The parent

#[derive(Debug)]
enum Event {
    Created,
    Opened(u64),
    Begin(u64, Call),
    Ack(u64, Vec<DocStatus>),
    Done,
    /// A line of writer thread `t` of the `Concurrent` profile (`W<t> BEGIN ...`).
    Writer(usize, Box<Event>),
}

impl Event {
    fn is_ack(&self) -> bool {
        match self {
            Event::Ack(..) => true,
            Event::Writer(_, e) => e.is_ack(),
            _ => false,
        }
    }
}

fn malformed<T>(line: &str) -> T {
    panic!("the child printed a malformed line: {line:.200}")
}

/// A complete line of the child, or `None` for other output and lines cut by the kill.
fn parse_line(line: &str) -> Option<Event> {
    let body = line.strip_suffix(" END")?;
    Some(match body.split_once(' ') {
        None if body == "CREATED" => Event::Created,
        None if body == "DONE" => Event::Done,
        None => return None,
        Some(("OPENED", n)) => Event::Opened(n.parse().unwrap_or_else(|_| malformed(line))),
        Some(("BEGIN", rest)) => {
            let (i, call) = rest.split_once(' ').unwrap_or_else(|| malformed(line));
            Event::Begin(
                i.parse().unwrap_or_else(|_| malformed(line)),
                decode_call(call).unwrap_or_else(|| malformed(line)),
            )
        }
        Some(("ACK", rest)) => {
            let (i, st) = rest.split_once(' ').unwrap_or_else(|| malformed(line));
            Event::Ack(
                i.parse().unwrap_or_else(|_| malformed(line)),
                decode_statuses(st).unwrap_or_else(|| malformed(line)),
            )
        }
        Some((tag, rest)) if tag.starts_with('W') => {
            let t = tag[1..].parse().unwrap_or_else(|_| malformed(line));
            match parse_line(&format!("{rest} END"))? {
                e @ (Event::Begin(..) | Event::Ack(..)) => Event::Writer(t, Box::new(e)),
                _ => malformed(line),
            }
        }
        Some(_) => return None,
    })
}

/// When the parent kills the child.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after the spawn: during start-up, creation, recovery or the first writes.
    Early(Duration),
    /// This long after the first acknowledgement.
    AfterAck(Duration),
    /// This long after the child printed DONE.
    AfterDone(Duration),
}

/// Held while the parent has collection files open, and while it spawns a child.
///
/// A child forked by one test thread gets a copy of every descriptor the process has open,
/// until its `exec` closes them. If another test thread has a collection open at that moment,
/// the copy keeps that collection's `flock` held a little longer, and the next child opening
/// the collection finds it locked. Never spawning while holding a collection open rules that
/// out.
static PARENT_FILES: Mutex<()> = Mutex::new(());

fn parent_files() -> std::sync::MutexGuard<'static, ()> {
    PARENT_FILES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a child on `dir` and kills it as `kill` says; returns the events it reported.
fn run_child(test: &str, profile: Profile, seed: u64, dir: &Path, kill: Kill) -> Vec<Event> {
    let exe = std::env::current_exe().unwrap();
    let spawning = parent_files();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            test,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{},{seed},{}", profile.name(), dir.display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    drop(spawning);
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel::<&'static str>();
    let reader: JoinHandle<()> = {
        let events = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(event) = parse_line(&line) else {
                    continue;
                };
                let signal = match &event {
                    e if e.is_ack() => Some("ack"),
                    Event::Done => Some("done"),
                    _ => None,
                };
                events.lock().unwrap().push(event);
                if let Some(s) = signal {
                    let _ = tx.send(s);
                }
            }
        })
    };
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let waited = match kill {
        Kill::Early(delay) => {
            std::thread::sleep(delay);
            Ok(())
        }
        Kill::AfterAck(delay) | Kill::AfterDone(delay) => {
            let want = if matches!(kill, Kill::AfterAck(_)) {
                "ack"
            } else {
                "done"
            };
            let got = loop {
                match rx.recv_timeout(START_BOUND) {
                    Ok(s) if s == want => break Ok(()),
                    Ok(_) => continue,
                    Err(e) => break Err(e),
                }
            };
            if got.is_ok() {
                std::thread::sleep(delay);
            }
            got
        }
    };
    let _ = child.kill();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let stderr = errors.join().unwrap();
    if let Err(e) = waited {
        panic!("the child never got to the kill point ({e}, exit {status}); its stderr:\n{stderr}");
    }
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "the child must die of our SIGKILL, not on its own ({status}); its stderr:\n{stderr}"
    );
    let events = std::mem::take(&mut *events.lock().unwrap());
    events
}

/// What the events of one child say.
struct Replayed {
    created: bool,
    /// Acknowledged calls.
    acked: u64,
    /// The write that had begun but was not acknowledged.
    inflight: Option<Write>,
}

/// Replays the acknowledged calls into `model`, checking the statuses the child saw.
fn replay(events: &[Event], model: &mut Model) -> Replayed {
    let mut out = Replayed {
        created: false,
        acked: 0,
        inflight: None,
    };
    let mut pending: Option<(u64, &Call)> = None;
    let mut next = 0;
    for e in events {
        match e {
            Event::Created => out.created = true,
            Event::Opened(count) => assert_eq!(
                *count,
                model.len() as u64,
                "the child's open found {count} documents, the model has {}",
                model.len()
            ),
            Event::Begin(i, call) => {
                assert!(pending.is_none(), "BEGIN {i} before the previous ACK");
                assert_eq!(*i, next, "calls are numbered in order");
                pending = Some((*i, call));
            }
            Event::Ack(i, statuses) => {
                let (began, call) = pending.take().expect("ACK without BEGIN");
                assert_eq!(began, *i, "ACK of another call than the one begun");
                match call.as_write() {
                    Some(w) => {
                        let want = w.apply(model);
                        assert_eq!(
                            statuses,
                            &want,
                            "call {i}: the statuses the child got differ from the model's \
                             ({})",
                            encode_call(call)
                        );
                    }
                    None => assert!(statuses.is_empty()),
                }
                out.acked += 1;
                next += 1;
            }
            Event::Done => assert!(pending.is_none(), "DONE with a call in flight"),
            Event::Writer(t, _) => panic!("a line of writer {t} in a single-writer replay"),
        }
    }
    out.inflight = pending.and_then(|(_, c)| c.as_write().cloned());
    out
}

/// Every file below `dir` whose name starts with `.tmp-`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(temp_files(&p));
        } else if p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tmp-")
        {
            out.push(p);
        }
    }
    out
}

fn open_rw(path: &Path) -> Collection {
    Collection::open(path, OpenOptions::default())
        .unwrap_or_else(|e| panic!("open after SIGKILL failed: {e}"))
}

/// Checks a killed collection against the model and settles whether the in-flight write is
/// in. A read-only open first (it changes nothing on disk); then, when `writer_open`, the
/// writer's open, which recovers on disk, must agree and leave no temporary file.
fn settle(
    path: &Path,
    model: &mut Model,
    inflight: Option<&Write>,
    writer_open: bool,
    key_space: usize,
    what: &str,
) -> bool {
    let ro = Collection::open(path, OpenOptions::default().read_only(true))
        .unwrap_or_else(|e| panic!("{what}: read-only open after SIGKILL failed: {e}"));
    let got = read_back(&ro, &keys(key_space));
    drop(ro);
    let with_inflight = inflight.map(|w| w.applied_to(model));
    let applied = expect_one_of(&got, model, with_inflight.as_ref(), what);
    if applied {
        *model = with_inflight.unwrap();
    }
    if writer_open {
        let c = open_rw(path);
        // Segments recovered from rotated WALs are persisted in the background.
        c.wait_idle()
            .unwrap_or_else(|e| panic!("{what}: background work after the open failed: {e}"));
        let temps = temp_files(path);
        assert!(
            temps.is_empty(),
            "{what}: temporary files survived the open: {temps:?}"
        );
        let again = read_back(&c, &keys(key_space));
        expect_one_of(
            &again,
            model,
            None,
            &format!("{what}: the writer's open after the read-only one"),
        );
    }
    applied
}

/// One directory that trials continue on.
struct Chain {
    dir: tempfile::TempDir,
    model: Model,
    /// Whether the collection is known to exist (its creation was acknowledged or seen).
    exists: bool,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            dir: tempfile::tempdir().unwrap(),
            model: Model::new(),
            exists: false,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("c")
    }
}

#[derive(Debug, Default)]
struct Tally {
    kills_after_acks: u64,
    acked_calls: u64,
    inflight_writes: u64,
    inflight_applied: u64,
    interrupted_creations: u64,
}

/// `n` kill trials of a random-writing profile; a new directory every `fresh_every` trials.
fn random_kill_trials(test: &str, n: u64, profile: Profile, fresh_every: u64) -> Tally {
    let mut tally = Tally::default();
    let mut chain: Option<Chain> = None;
    for trial in trials(n) {
        let seed = trial_seed(test, trial);
        let mut rng = rng(seed);
        if chain.is_none() || trial.is_multiple_of(fresh_every) {
            chain = Some(Chain::new());
        }
        let ch = chain.as_mut().unwrap();
        let path = ch.path();
        let kill = if rng.gen_ratio(1, 8) {
            Kill::Early(Duration::from_millis(rng.gen_range(0..=25)))
        } else {
            Kill::AfterAck(Duration::from_millis(rng.gen_range(0..=250)))
        };
        let what = format!(
            "trial {trial} ({profile:?}, seed {seed:#x}, kill {kill:?}, dir {}, {} docs before)",
            ch.dir.path().display(),
            ch.model.len()
        );
        let _trial = Trial::in_run(test, trial, seed, &what);

        let events = run_child(test, profile, seed, ch.dir.path(), kill);
        let _files = parent_files();
        let replayed = replay(&events, &mut ch.model);
        tally.acked_calls += replayed.acked;
        tally.kills_after_acks += u64::from(replayed.acked > 0);
        if !ch.exists && !replayed.created {
            // Killed before `create` returned: nothing was promised. The path holds no
            // collection, or an empty one.
            assert!(replayed.acked == 0 && ch.model.is_empty());
            if !path.exists() {
                continue;
            }
            match Collection::open(&path, OpenOptions::default()) {
                Ok(c) => {
                    assert_eq!(read_back(&c, &keys(KEY_SPACE)), Model::new(), "{what}");
                }
                Err(e @ Error::Corrupted { .. }) if e.to_string().contains("no manifest") => {
                    // See `power_cut_during_create_leaves_a_usable_path` in
                    // collection_power_loss.rs: an interrupted create leaves a directory
                    // that neither opens nor can be created again.
                    eprintln!("{what}: the interrupted create left an unusable path: {e}");
                    tally.interrupted_creations += 1;
                    std::fs::remove_dir_all(&path).unwrap();
                    continue;
                }
                Err(e) => panic!("{what}: open after an interrupted create failed: {e}"),
            }
        }
        ch.exists = true;
        tally.inflight_writes += u64::from(replayed.inflight.is_some());
        let applied = settle(
            &path,
            &mut ch.model,
            replayed.inflight.as_ref(),
            rng.gen(),
            KEY_SPACE,
            &what,
        );
        tally.inflight_applied += u64::from(applied);
    }
    eprintln!("{test}: {tally:?}");
    tally
}

#[test]
fn sigkill_during_random_batches_loses_nothing_acknowledged() {
    const TEST: &str = "sigkill_during_random_batches_loses_nothing_acknowledged";
    child_if_requested();
    let t = random_kill_trials(TEST, 36, Profile::Random, 6);
    if trials(36).count() >= 36 {
        assert!(
            t.kills_after_acks >= 24,
            "too few kills after acknowledged writes: {t:?}"
        );
        assert!(
            t.inflight_writes >= 6,
            "too few kills with a write in flight: {t:?}"
        );
    }
}

#[test]
#[ignore = "1000 kills: about two minutes"]
fn sigkill_during_random_batches_1000_trials() {
    const TEST: &str = "sigkill_during_random_batches_1000_trials";
    child_if_requested();
    let t = random_kill_trials(TEST, 1000, Profile::Random, 10);
    assert!(
        t.kills_after_acks >= 700,
        "too few kills after acknowledged writes: {t:?}"
    );
}

/// zvec's case 13: with `max_docs_per_segment(1)` every write persists a segment; whatever
/// insert, update, upsert or delete was acknowledged last before the kill shows, updated and
/// upserted documents have their latest values and deleted ones stay deleted (which a reused
/// doc id would break).
#[test]
fn sigkill_with_one_doc_segments_keeps_the_latest_acknowledged_values() {
    const TEST: &str = "sigkill_with_one_doc_segments_keeps_the_latest_acknowledged_values";
    child_if_requested();
    let t = random_kill_trials(TEST, 8, Profile::OneDocSegments, 8);
    if trials(8).count() >= 8 {
        assert!(
            t.kills_after_acks >= 4,
            "too few kills after acknowledged writes: {t:?}"
        );
    }
}

/// zvec's case 8: three documents, one with a string of more than 4 MiB, inserted, then the
/// process is killed: two reopens in a row find all three with their exact values.
#[test]
fn sigkill_after_inserting_a_4mib_string_keeps_it_exactly() {
    const TEST: &str = "sigkill_after_inserting_a_4mib_string_keeps_it_exactly";
    child_if_requested();
    for trial in trials(2) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let dir = tempfile::tempdir().unwrap();
        let kill = Kill::AfterDone(Duration::from_millis(rng.gen_range(0..=30)));
        let _trial = Trial::new(TEST, trial, seed, format!("kill {kill:?}"));
        let events = run_child(TEST, Profile::BigString, seed, dir.path(), kill);
        let _files = parent_files();
        let mut model = Model::new();
        let replayed = replay(&events, &mut model);
        assert_eq!(replayed.acked, 1, "the child acknowledged its insert");
        let mut want = Model::new();
        big_batch(seed).apply(&mut want);
        assert!(
            model == want,
            "the child inserted other documents than the parent expects"
        );
        for round in 0..2 {
            let c = open_rw(&dir.path().join("c"));
            assert_eq!(c.stats().doc_count, 3, "open {round}");
            let got = read_back(&c, &keys(3));
            expect_one_of(&got, &want, None, &format!("open {round}"));
            assert!(got[&key(1)].s.as_ref().unwrap().len() > 4 << 20);
            if round == 0 {
                c.close().unwrap();
            }
        }
    }
}

/// zvec's case 14: insert N documents, kill, reopen, optimize, close, reopen: N documents.
#[test]
fn sigkill_after_inserts_then_optimize_keeps_the_count() {
    const TEST: &str = "sigkill_after_inserts_then_optimize_keeps_the_count";
    child_if_requested();
    for trial in trials(2) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let dir = tempfile::tempdir().unwrap();
        let kill = Kill::AfterDone(Duration::from_millis(rng.gen_range(0..=30)));
        let _trial = Trial::new(TEST, trial, seed, format!("kill {kill:?}"));
        let events = run_child(TEST, Profile::Count, seed, dir.path(), kill);
        let _files = parent_files();
        let mut model = Model::new();
        let replayed = replay(&events, &mut model);
        assert!(replayed.inflight.is_none());
        assert_eq!(model.len(), COUNT_N, "every insert was acknowledged");
        let path = dir.path().join("c");
        let c = open_rw(&path);
        assert_eq!(c.stats().doc_count, COUNT_N as u64, "after the kill");
        expect_one_of(
            &read_back(&c, &keys(COUNT_N)),
            &model,
            None,
            "after the kill",
        );
        c.optimize().unwrap();
        assert_eq!(c.stats().doc_count, COUNT_N as u64, "after optimize");
        c.close().unwrap();
        let c = open_rw(&path);
        assert_eq!(
            c.stats().doc_count,
            COUNT_N as u64,
            "after optimize and reopen"
        );
        assert!(c.stats().segments <= 1, "optimize merged everything");
        expect_one_of(
            &read_back(&c, &keys(COUNT_N)),
            &model,
            None,
            "after optimize and reopen",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrent writers

/// The events of one `Concurrent` child: its own (CREATED, OPENED) and each writer's.
fn split_events(events: Vec<Event>) -> (Vec<Event>, Vec<Vec<Event>>) {
    let mut own = Vec::new();
    let mut per_writer: Vec<Vec<Event>> = (0..CONC_WRITERS).map(|_| Vec::new()).collect();
    for e in events {
        match e {
            Event::Writer(t, inner) => {
                assert!(t < CONC_WRITERS, "a line of writer {t}");
                per_writer[t].push(*inner);
            }
            other => own.push(other),
        }
    }
    (own, per_writer)
}

/// Checks a killed concurrent collection: per writer, the model or the model plus that
/// writer's in-flight write, applied whole. Read-only open first, then (when `writer_open`)
/// the writer's open, which must agree and leave no temporary file.
fn settle_writers(
    path: &Path,
    models: &mut [Model],
    inflight: &[Option<Write>],
    writer_open: bool,
    what: &str,
) -> u64 {
    let keys = all_writer_keys(CONC_WRITERS, CONC_KEY_SPACE);
    let ro = Collection::open(path, OpenOptions::default().read_only(true))
        .unwrap_or_else(|e| panic!("{what}: read-only open after SIGKILL failed: {e}"));
    let got = split_by_writer(&read_back(&ro, &keys), CONC_WRITERS);
    drop(ro);
    let mut applied = 0;
    for (t, model) in models.iter_mut().enumerate() {
        let with_inflight = inflight[t].as_ref().map(|w| w.applied_to(model));
        if expect_one_of(
            &got[t],
            model,
            with_inflight.as_ref(),
            &format!("{what}: writer {t}"),
        ) {
            *model = with_inflight.unwrap();
            applied += 1;
        }
    }
    if writer_open {
        let c = open_rw(path);
        // Segments recovered from rotated WALs are persisted in the background.
        c.wait_idle()
            .unwrap_or_else(|e| panic!("{what}: background work after the open failed: {e}"));
        let temps = temp_files(path);
        assert!(
            temps.is_empty(),
            "{what}: temporary files survived the open: {temps:?}"
        );
        expect_one_of(
            &read_back(&c, &keys),
            &union(models),
            None,
            &format!("{what}: the writer's open after the read-only one"),
        );
    }
    applied
}

/// `n` kill trials of the `Concurrent` profile; a new directory every `fresh_every` trials.
fn concurrent_kill_trials(test: &str, n: u64, fresh_every: u64) -> Tally {
    let mut tally = Tally::default();
    let mut chain: Option<(Chain, Vec<Model>)> = None;
    for trial in trials(n) {
        let seed = trial_seed(test, trial);
        let mut rng = rng(seed);
        if chain.is_none() || trial.is_multiple_of(fresh_every) {
            chain = Some((Chain::new(), vec![Model::new(); CONC_WRITERS]));
        }
        let (ch, models) = chain.as_mut().unwrap();
        let path = ch.path();
        let kill = if rng.gen_ratio(1, 8) {
            Kill::Early(Duration::from_millis(rng.gen_range(0..=25)))
        } else {
            Kill::AfterAck(Duration::from_millis(rng.gen_range(0..=300)))
        };
        let what = format!(
            "trial {trial} (concurrent, seed {seed:#x}, kill {kill:?}, dir {}, {} docs before)",
            ch.dir.path().display(),
            union(models).len()
        );
        let _trial = Trial::in_run(test, trial, seed, &what);

        let events = run_child(test, Profile::Concurrent, seed, ch.dir.path(), kill);
        let _files = parent_files();
        let (own, per_writer) = split_events(events);
        let created = own.iter().any(|e| matches!(e, Event::Created));
        for e in &own {
            if let Event::Opened(count) = e {
                assert_eq!(
                    *count,
                    union(models).len() as u64,
                    "{what}: the child's open found {count} documents"
                );
            }
        }
        let mut inflight = Vec::new();
        let mut acked = 0;
        for (t, events) in per_writer.iter().enumerate() {
            let _writer = Trial::in_run(test, trial, seed, format!("writer {t}"));
            let r = replay(events, &mut models[t]);
            acked += r.acked;
            inflight.push(r.inflight);
        }
        tally.acked_calls += acked;
        tally.kills_after_acks += u64::from(acked > 0);
        if !ch.exists && !created {
            assert!(acked == 0 && models.iter().all(Model::is_empty));
            if !path.exists() {
                continue;
            }
            match Collection::open(&path, OpenOptions::default()) {
                Ok(c) => assert_eq!(
                    read_back(&c, &all_writer_keys(CONC_WRITERS, CONC_KEY_SPACE)),
                    Model::new(),
                    "{what}"
                ),
                Err(e @ Error::Corrupted { .. }) if e.to_string().contains("no manifest") => {
                    eprintln!("{what}: the interrupted create left an unusable path: {e}");
                    tally.interrupted_creations += 1;
                    std::fs::remove_dir_all(&path).unwrap();
                    continue;
                }
                Err(e) => panic!("{what}: open after an interrupted create failed: {e}"),
            }
        }
        ch.exists = true;
        tally.inflight_writes += inflight.iter().flatten().count() as u64;
        tally.inflight_applied += settle_writers(&path, models, &inflight, rng.gen(), &what);
    }
    eprintln!("{test}: {tally:?}");
    tally
}

/// Three writer threads in one process, each in its own key space, with small segments (so
/// persists run all the time) and `optimize` in a loop, killed at random moments: per writer,
/// the reopened collection holds its acknowledged batches, plus maybe its one batch in flight,
/// whole.
#[test]
fn sigkill_during_concurrent_writers_persists_and_optimize() {
    const TEST: &str = "sigkill_during_concurrent_writers_persists_and_optimize";
    child_if_requested();
    let t = concurrent_kill_trials(TEST, 24, 6);
    if trials(24).count() >= 24 {
        assert!(
            t.kills_after_acks >= 16,
            "too few kills after acknowledged writes: {t:?}"
        );
        assert!(
            t.inflight_writes >= 6,
            "too few kills with a write in flight: {t:?}"
        );
    }
}

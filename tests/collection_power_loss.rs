//! Simulated power loss under `FlushPolicy::Always`: whatever a collection acknowledged survives
//! a power cut at any step of the persist protocol, the write in flight is there whole or not at
//! all, recovery always succeeds and leaves no temporary file behind, and a failed fsync makes
//! the collection refuse writes instead of acknowledging what may be lost.
//!
//! Collections live on a `SimStorage` at `/db/c`. A `PowerCut` injected on the k-th mutating
//! storage operation turns the machine off: that operation and every later one fail, until
//! `crash()` (drop everything unsynced) or `crash_torn(seed)` (keep a random prefix of unsynced
//! appends) turns it back on.
//!
//! A failing trial prints its seed; `STRATAVEC_SEED=<base> STRATAVEC_TRIAL=<n>` replays it and
//! `STRATAVEC_TRIALS=<n>` runs more random trials.

mod crash_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crash_support::{
    expect_one_of, fresh_sim, key, keys, path, random_call, random_rec, read_back, rng, trial_seed,
    trials, Call, Model, Patch, Rec, Trial, Write,
};
use rand::Rng;
use stratavec::storage::{Fault, FaultKind, FaultOp, SimStorage, Storage};
use stratavec::wal::FlushPolicy;
use stratavec::{Collection, CollectionOptions, Error, OpenOptions};

const KEY_SPACE: usize = 40;

fn create(sim: &SimStorage, max_docs_per_segment: u64) -> stratavec::Result<Collection> {
    Collection::create(
        path(),
        crash_support::schema(),
        CollectionOptions::default()
            .flush_policy(FlushPolicy::Always)
            .max_docs_per_segment(max_docs_per_segment)
            .storage(Arc::new(sim.clone())),
    )
}

fn open(sim: &SimStorage) -> stratavec::Result<Collection> {
    Collection::open(
        path(),
        OpenOptions::default().storage(Arc::new(sim.clone())),
    )
}

/// Every file below `dir`, recursively.
fn files_below(sim: &SimStorage, dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for name in sim.list(dir).unwrap() {
        let p = dir.join(name);
        if sim.list(&p).is_ok() {
            out.extend(files_below(sim, &p));
        } else {
            out.push(p);
        }
    }
    out
}

/// What an open must leave: no temporary file anywhere, one manifest, at most one delete file.
fn assert_no_leftovers(sim: &SimStorage) {
    let files = files_below(sim, Path::new("/db"));
    let named = |prefix: &str| {
        files
            .iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .collect::<Vec<_>>()
    };
    assert!(
        named(".tmp-").is_empty(),
        "temporary files survived the open: {files:?}"
    );
    assert_eq!(
        named("manifest.").len(),
        1,
        "manifests after the open: {files:?}"
    );
    assert!(
        named("del.").len() <= 1,
        "delete files after the open: {files:?}"
    );
}

#[derive(Debug, Clone)]
enum Step {
    Call(Call),
    Close,
}

/// How far a workload got before the power went off.
struct Run {
    /// The model of every acknowledged write, applied to the starting model.
    acked: Model,
    /// The write that returned an error, if the failing step was a write.
    inflight: Option<Write>,
    /// Index of the first step that failed.
    failed_at: Option<usize>,
}

/// Runs `steps` until one fails, checking each acknowledged write's statuses against the model.
/// Once a step failed, every later write must fail too: with the power off, nothing can be made
/// durable, so nothing may be acknowledged.
fn run_steps(c: &Collection, steps: &[Step], start: &Model) -> Run {
    let mut run = Run {
        acked: start.clone(),
        inflight: None,
        failed_at: None,
    };
    for (i, step) in steps.iter().enumerate() {
        let result = match step {
            Step::Call(call) => call.run(c),
            Step::Close => c.close().map(|()| Vec::new()),
        };
        if let Some(first) = run.failed_at {
            if let (Step::Call(Call::Write(_)), Ok(st)) = (step, &result) {
                panic!(
                    "step {i} was acknowledged ({st:?}) after step {first} failed on a dead disk"
                );
            }
            continue;
        }
        match result {
            Ok(statuses) => {
                if let Step::Call(Call::Write(w)) = step {
                    let want = w.apply(&mut run.acked);
                    assert_eq!(statuses, want, "statuses of step {i} ({w:?})");
                }
            }
            Err(_) => {
                run.failed_at = Some(i);
                if let Step::Call(Call::Write(w)) = step {
                    run.inflight = Some(w.clone());
                }
            }
        }
    }
    run
}

/// Crashes, reopens and checks the contents against the acknowledged writes (plus, maybe, the
/// in-flight one). Returns the recovered collection and its model.
fn recover(sim: &SimStorage, run: &Run, torn: Option<u64>, what: &str) -> (Collection, Model) {
    recover_twice(sim, run, torn, None, what)
}

/// [`recover`], where `cut_open: Some(j)` first cuts the power again at mutation j of the
/// recovering open: recovery must survive being interrupted itself.
fn recover_twice(
    sim: &SimStorage,
    run: &Run,
    torn: Option<u64>,
    cut_open: Option<u64>,
    what: &str,
) -> (Collection, Model) {
    let crash = || match torn {
        Some(seed) => sim.crash_torn(seed),
        None => sim.crash(),
    };
    crash();
    if let Some(j) = cut_open {
        sim.inject(Fault {
            op: FaultOp::Mutation,
            nth: j,
            kind: FaultKind::PowerCut,
        });
        // The open fails when the cut hits it; else the cut may hit the close of the drop.
        drop(open(sim));
        crash();
    }
    // A read-only open changes nothing on disk and must see what the writer's open sees.
    let ro = Collection::open(
        path(),
        OpenOptions::default()
            .read_only(true)
            .storage(Arc::new(sim.clone())),
    )
    .unwrap_or_else(|e| panic!("{what}: read-only open after the power cut failed: {e}"));
    let got_ro = read_back(&ro, &keys(KEY_SPACE));
    drop(ro);
    let c = open(sim).unwrap_or_else(|e| panic!("{what}: open after the power cut failed: {e}"));
    // Segments recovered from rotated WALs are persisted in the background: let that finish
    // before looking at the files.
    c.wait_idle()
        .unwrap_or_else(|e| panic!("{what}: background work after the open failed: {e}"));
    assert_no_leftovers(sim);
    let got = read_back(&c, &keys(KEY_SPACE));
    assert!(
        got == got_ro,
        "{what}: the read-only open and the read-write open disagree:\n{}",
        crash_support::diff(&got_ro, &got)
    );
    let with_inflight = run.inflight.as_ref().map(|w| w.applied_to(&run.acked));
    let applied = expect_one_of(&got, &run.acked, with_inflight.as_ref(), what);
    let model = if applied {
        with_inflight.unwrap()
    } else {
        run.acked.clone()
    };
    (c, model)
}

/// After recovery the collection takes writes, and they survive a clean reopen.
fn write_after_recovery(sim: &SimStorage, c: Collection, mut model: Model, what: &str) {
    let mut rng = rng(model.len() as u64);
    let w = Write::Upsert(vec![(key(KEY_SPACE - 1), random_rec(&mut rng))]);
    assert_eq!(
        w.run(&c)
            .unwrap_or_else(|e| panic!("{what}: upsert after recovery: {e}")),
        w.apply(&mut model)
    );
    if let Some(first) = model.keys().next().cloned() {
        let d = Write::Delete(vec![first]);
        assert_eq!(d.run(&c).unwrap(), d.apply(&mut model));
    }
    c.close()
        .unwrap_or_else(|e| panic!("{what}: close after recovery: {e}"));
    let c = open(sim).unwrap_or_else(|e| panic!("{what}: second open: {e}"));
    let got = read_back(&c, &keys(KEY_SPACE));
    expect_one_of(
        &got,
        &model,
        None,
        &format!("{what}, after writing on the recovered collection"),
    );
}

fn rec(n: i64, s: Option<&str>) -> Rec {
    let x = n as f32;
    Rec {
        n,
        s: s.map(str::to_string),
        v: [x, -x, x / 2.0, 1.0],
    }
}

fn rows(ks: &[usize], n0: i64) -> Vec<(String, Rec)> {
    ks.iter()
        .enumerate()
        .map(|(i, &k)| (key(k), rec(n0 + i as i64, (i % 3 != 0).then_some("abc"))))
        .collect()
}

/// Inserts, upserts, updates and deletes, two flushes, more writes, an optimize, a close: every
/// stage of the persist protocol and of the merge.
fn fixed_workload() -> Vec<Step> {
    let w = |w: Write| Step::Call(Call::Write(w));
    let pks = |ks: &[usize]| ks.iter().map(|&k| key(k)).collect::<Vec<_>>();
    vec![
        w(Write::Insert(rows(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 0))),
        w(Write::Upsert(rows(&[5, 10, 11], 100))),
        w(Write::Delete(pks(&[0, 1, 30]))),
        w(Write::Update(vec![
            (
                key(2),
                Patch {
                    n: Some(-2),
                    ..Patch::default()
                },
            ),
            (
                key(3),
                Patch {
                    s: Some(None),
                    v: Some([9.0, 9.0, 9.0, 9.0]),
                    ..Patch::default()
                },
            ),
            (
                key(31),
                Patch {
                    n: Some(1),
                    ..Patch::default()
                },
            ),
        ])),
        w(Write::Insert(rows(&[2, 12], 200))),
        Step::Call(Call::Flush),
        w(Write::Upsert(rows(&[2, 13], 300))),
        w(Write::Delete(pks(&[3, 13]))),
        w(Write::Update(vec![(
            key(4),
            Patch {
                s: Some(Some("zz".into())),
                ..Patch::default()
            },
        )])),
        w(Write::Insert(rows(&[14, 15, 16, 17, 18], 400))),
        Step::Call(Call::Sync),
        Step::Call(Call::Flush),
        w(Write::Delete(pks(&[14]))),
        w(Write::Upsert(rows(&[0], 500))),
        Step::Call(Call::Optimize),
        w(Write::Update(vec![(
            key(5),
            Patch {
                n: Some(55),
                ..Patch::default()
            },
        )])),
        w(Write::Insert(rows(&[20, 21], 600))),
        Step::Close,
    ]
}

/// The mutations `steps` make on a fresh collection (creation excluded), and the model of a
/// run without faults.
fn dry_run(steps: &[Step], max_docs: u64) -> (u64, Model) {
    let sim = fresh_sim();
    let c = create(&sim, max_docs).unwrap();
    let before = sim.counts().mutations;
    let run = run_steps(&c, steps, &Model::new());
    assert_eq!(run.failed_at, None, "the workload fails without any fault");
    drop(c);
    let total = sim.counts().mutations - before;
    // Without a fault the collection reopens with everything.
    let c = open(&sim).unwrap();
    let got = read_back(&c, &keys(KEY_SPACE));
    expect_one_of(&got, &run.acked, None, "the workload without faults");
    (total, run.acked)
}

/// The mutations `steps` and the close after them make on a fresh collection.
fn mutations_of(steps: &[Step], max_docs: u64) -> u64 {
    let sim = fresh_sim();
    let c = create(&sim, max_docs).unwrap();
    let before = sim.counts().mutations;
    run_steps(&c, steps, &Model::new());
    drop(c);
    sim.counts().mutations - before
}

/// One trial: the workload on a fresh collection with the power cut at mutation `k`.
fn cut_at(steps: &[Step], max_docs: u64, k: u64, torn: Option<u64>, what: &str) {
    let sim = fresh_sim();
    let c = create(&sim, max_docs).unwrap();
    sim.inject(Fault {
        op: FaultOp::Mutation,
        nth: k,
        kind: FaultKind::PowerCut,
    });
    let run = run_steps(&c, steps, &Model::new());
    // Dropping closes the collection: that must happen while the power is still off.
    drop(c);
    assert!(
        sim.is_powered_off(),
        "{what}: mutation {k} never happened: the workload is not deterministic"
    );
    let (c, model) = recover(&sim, &run, torn, what);
    write_after_recovery(&sim, c, model, what);
}

#[test]
fn power_cut_at_every_mutation_of_the_persist_protocol() {
    let steps = fixed_workload();
    let (total, full) = dry_run(&steps, 10_000_000);
    assert!(full.len() > 10, "the workload leaves {} docs", full.len());
    assert!(
        total > 50,
        "only {total} mutations: the workload persists nothing?"
    );
    for k in 1..=total {
        cut_at(
            &steps,
            10_000_000,
            k,
            None,
            &format!("power cut at mutation {k}/{total}"),
        );
    }
}

#[test]
fn torn_power_cut_at_every_mutation_of_the_persist_protocol() {
    let steps = fixed_workload();
    let (total, _) = dry_run(&steps, 10_000_000);
    for k in 1..=total {
        let seed = trial_seed("torn_power_cut", k);
        cut_at(
            &steps,
            10_000_000,
            k,
            Some(seed),
            &format!("torn power cut at mutation {k}/{total}, crash_torn({seed:#x})"),
        );
    }
}

/// With one document per segment every write persists on its own (zvec's case 13).
#[test]
fn power_cut_at_every_mutation_with_one_doc_segments() {
    let steps = fixed_workload();
    let (total, _) = dry_run(&steps, 1);
    for k in 1..=total {
        let torn = k
            .is_multiple_of(2)
            .then(|| trial_seed("one_doc_segments", k));
        cut_at(
            &steps,
            1,
            k,
            torn,
            &format!("one-doc segments, power cut at mutation {k}/{total}, torn {torn:?}"),
        );
    }
}

/// Random workloads, random options, a random cut; then more rounds on the recovered
/// collection, each with its own cut.
#[test]
fn power_cut_at_random_points_of_random_workloads() {
    const TEST: &str = "power_cut_at_random_points_of_random_workloads";
    let mut outcomes = [0u64; 2];
    let mut where_cut = [0u64; 3];
    for trial in trials(200) {
        let seed = trial_seed(TEST, trial);
        let mut rng = rng(seed);
        let max_docs = [1, 2, 7, 30, 10_000_000][rng.gen_range(0..5)];
        let rounds = rng.gen_range(1..=3);
        let _trial = Trial::new(
            TEST,
            trial,
            seed,
            format!("max_docs_per_segment {max_docs}, {rounds} rounds"),
        );

        let sim = fresh_sim();
        let mut c = create(&sim, max_docs).unwrap();
        let mut model = Model::new();
        for round in 0..rounds {
            let len = rng.gen_range(1..=30);
            let mut steps: Vec<Step> = (0..len)
                .map(|_| Step::Call(random_call(&mut rng, KEY_SPACE - 1, 12)))
                .collect();
            if rng.gen_ratio(1, 4) {
                steps.push(Step::Close);
            }
            // Cut anywhere in the steps or the close that follows them (counted on a fresh
            // collection: from a recovered one the count differs a little, so now and then the
            // cut comes after everything, and the crash hits a cleanly closed collection).
            let total = mutations_of(&steps, max_docs);
            let k = rng.gen_range(1..=total + 1);
            sim.inject(Fault {
                op: FaultOp::Mutation,
                nth: k,
                kind: FaultKind::PowerCut,
            });
            let run = run_steps(&c, &steps, &model);
            let cut_in_steps = sim.is_powered_off();
            // Dropping closes the collection; when the cut came before, nothing more happens.
            drop(c);
            where_cut[if cut_in_steps {
                0
            } else if sim.is_powered_off() {
                1
            } else {
                2
            }] += 1;
            let torn = rng.gen::<bool>().then(|| rng.gen::<u64>());
            let cut_open = rng.gen_ratio(1, 3).then(|| rng.gen_range(1..=10));
            let what = format!(
                "round {round}: cut at mutation {k}, failed step {:?}, torn {torn:?}, cut of \
                 the recovering open {cut_open:?}",
                run.failed_at
            );
            let (recovered, m) = recover_twice(&sim, &run, torn, cut_open, &what);
            outcomes[usize::from(run.inflight.is_some() && m != run.acked)] += 1;
            c = recovered;
            model = m;
        }
        drop(c);
    }
    eprintln!(
        "{} recoveries without the in-flight write, {} with it; cuts: {} in the workload, {} \
         in the close of the drop, {} after everything",
        outcomes[0], outcomes[1], where_cut[0], where_cut[1], where_cut[2]
    );
    if trials(200).count() >= 100 {
        assert!(
            where_cut[0] >= where_cut[1] + where_cut[2],
            "most cuts must land inside the workloads"
        );
    }
}

/// zvec's contract: a failed fsync poisons the collection. Every fsync of a flush in turn
/// fails with EIO: the flush reports it, every later write, sync and flush is refused with
/// `Error::Poisoned`, reads still see the acknowledged writes, and after a power cut (or
/// without one) the reopened collection holds exactly the acknowledged writes.
#[test]
fn eio_on_an_fsync_during_flush_poisons_the_collection() {
    let setup = |sim: &SimStorage| -> (Collection, Model) {
        // No automatic merge after the flush's persist: this counts the flush's own fsyncs.
        let c = Collection::create(
            path(),
            crash_support::schema(),
            CollectionOptions::default()
                .merge_policy(None)
                .storage(Arc::new(sim.clone())),
        )
        .unwrap();
        let mut model = Model::new();
        for w in [
            Write::Insert(rows(&[0, 1, 2, 3], 0)),
            Write::Delete(vec![key(1)]),
        ] {
            assert_eq!(w.run(&c).unwrap(), w.apply(&mut model));
        }
        c.flush().unwrap();
        for w in [
            Write::Upsert(rows(&[2, 5], 10)),
            Write::Delete(vec![key(3)]),
            Write::Update(vec![(
                key(0),
                Patch {
                    n: Some(7),
                    ..Patch::default()
                },
            )]),
        ] {
            assert_eq!(w.run(&c).unwrap(), w.apply(&mut model));
        }
        (c, model)
    };
    // How many fsyncs the flush makes.
    let syncs = {
        let sim = fresh_sim();
        let (c, _) = setup(&sim);
        let before = sim.counts().syncs;
        c.flush().unwrap();
        sim.counts().syncs - before
    };
    assert!(syncs >= 4, "a flush with only {syncs} fsyncs");
    for nth in 1..=syncs {
        for crash in [false, true] {
            let what = format!("EIO on fsync {nth}/{syncs} of the flush, crash {crash}");
            let sim = fresh_sim();
            let (c, model) = setup(&sim);
            sim.inject(Fault {
                op: FaultOp::Sync,
                nth,
                kind: FaultKind::Eio,
            });
            let err = c.flush().expect_err(&what);
            assert!(
                matches!(&err, Error::Io { source, .. } if source.raw_os_error() == Some(5)),
                "{what}: flush returned {err:?}, expected the EIO"
            );
            for w in [
                Write::Insert(rows(&[20], 0)),
                Write::Upsert(rows(&[0], 0)),
                Write::Update(vec![(
                    key(2),
                    Patch {
                        n: Some(1),
                        ..Patch::default()
                    },
                )]),
                Write::Delete(vec![key(2)]),
            ] {
                let r = w.run(&c);
                assert!(
                    matches!(r, Err(Error::Poisoned { .. })),
                    "{what}: {w:?} returned {r:?}"
                );
            }
            assert!(
                matches!(c.sync(), Err(Error::Poisoned { .. })),
                "{what}: sync"
            );
            assert!(
                matches!(c.flush(), Err(Error::Poisoned { .. })),
                "{what}: second flush"
            );
            assert!(
                matches!(c.optimize(), Err(Error::Poisoned { .. })),
                "{what}: optimize"
            );
            let got = read_back(&c, &keys(KEY_SPACE));
            expect_one_of(
                &got,
                &model,
                None,
                &format!("{what}: reads of the poisoned collection"),
            );
            drop(c);
            if crash {
                sim.crash();
            }
            let c = open(&sim).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
            assert_no_leftovers(&sim);
            let got = read_back(&c, &keys(KEY_SPACE));
            expect_one_of(&got, &model, None, &what);
        }
    }
}

/// A failed fsync of a write's WAL record poisons the collection too: that write reports the
/// error, and nothing written later is acknowledged, a flush in between or not. Whatever was
/// acknowledged survives a power cut.
#[test]
fn eio_on_a_wal_fsync_poisons_the_collection() {
    let sim = fresh_sim();
    let c = create(&sim, 10_000_000).unwrap();
    let mut model = Model::new();
    let first = Write::Insert(rows(&[0, 1, 2], 0));
    assert_eq!(first.run(&c).unwrap(), first.apply(&mut model));
    sim.inject(Fault {
        op: FaultOp::Sync,
        nth: 1,
        kind: FaultKind::Eio,
    });
    let failed = Write::Upsert(rows(&[3], 10));
    let err = failed.run(&c).expect_err("a write whose fsync failed");
    assert!(
        matches!(&err, Error::Io { source, .. } if source.raw_os_error() == Some(5)),
        "the failed write returned {err:?}, expected the EIO"
    );
    let later = Write::Insert(rows(&[4], 20));
    assert!(
        matches!(later.run(&c), Err(Error::Poisoned { .. })),
        "a write after the failed fsync"
    );
    let flushed = c.flush();
    let after_flush = Write::Insert(rows(&[5], 30));
    let r = after_flush.run(&c);
    assert!(
        matches!(r, Err(Error::Poisoned { .. })),
        "a write after the failed fsync and a flush ({flushed:?}) returned {r:?}"
    );
    drop(c);
    sim.crash();
    let c = open(&sim).unwrap();
    let got = read_back(&c, &keys(KEY_SPACE));
    let with_failed = failed.applied_to(&model);
    expect_one_of(&got, &model, Some(&with_failed), "after the power cut");
}

/// Whatever a collection acknowledges after a failed WAL fsync must survive a power cut, even
/// when the collection (wrongly) keeps taking writes after a flush.
#[test]
fn writes_acknowledged_after_a_failed_wal_fsync_survive_a_power_cut() {
    let sim = fresh_sim();
    let c = create(&sim, 10_000_000).unwrap();
    let mut model = Model::new();
    let first = Write::Insert(rows(&[0, 1, 2], 0));
    assert_eq!(first.run(&c).unwrap(), first.apply(&mut model));
    sim.inject(Fault {
        op: FaultOp::Sync,
        nth: 1,
        kind: FaultKind::Eio,
    });
    let failed = Write::Upsert(rows(&[3], 10));
    assert!(failed.run(&c).is_err(), "the write whose fsync failed");
    // The failed write may or may not be there from here on.
    let alternatives = |m: &Model| (m.clone(), failed.applied_to(m));
    let _ = c.flush();
    let later = Write::Insert(rows(&[4, 5], 20));
    let acked_later = later.run(&c).is_ok();
    let (mut a, mut b) = alternatives(&model);
    if acked_later {
        later.apply(&mut a);
        later.apply(&mut b);
    }
    // The power goes off right after the acknowledgement: no close gets to persist anything.
    sim.inject(Fault {
        op: FaultOp::Mutation,
        nth: 1,
        kind: FaultKind::PowerCut,
    });
    drop(c);
    sim.crash();
    let c = open(&sim).unwrap();
    let got = read_back(&c, &keys(KEY_SPACE));
    expect_one_of(
        &got,
        &a,
        Some(&b),
        &format!("after the power cut (the later write was acknowledged: {acked_later})"),
    );
}

/// A power cut while `create` runs: if `create` returned Ok the collection opens (empty);
/// otherwise the path must still be usable: it opens as an empty collection, or `create` can
/// make it anew.
#[test]
fn power_cut_during_create_leaves_a_usable_path() {
    let total = {
        let sim = fresh_sim();
        let before = sim.counts().mutations;
        drop(create(&sim, 10_000_000).unwrap());
        // The drop closes the empty collection, which writes nothing.
        sim.counts().mutations - before
    };
    assert!(total >= 3, "create makes only {total} mutations");
    for k in 1..=total {
        let what = format!("power cut at mutation {k}/{total} of create");
        let sim = fresh_sim();
        sim.inject(Fault {
            op: FaultOp::Mutation,
            nth: k,
            kind: FaultKind::PowerCut,
        });
        let created = create(&sim, 10_000_000);
        let acked = created.is_ok();
        drop(created);
        sim.crash();
        match open(&sim) {
            Ok(c) => {
                assert_no_leftovers(&sim);
                assert_eq!(read_back(&c, &keys(KEY_SPACE)), Model::new(), "{what}");
            }
            Err(e) => {
                assert!(!acked, "{what}: create returned Ok, but open fails: {e}");
                let again = create(&sim, 10_000_000);
                assert!(
                    again.is_ok(),
                    "{what}: the path is stuck: open fails with {e:?}, create again with {:?}",
                    again.err()
                );
            }
        }
    }
}

/// The temporary file of an interrupted atomic replacement survives a crash when its directory
/// entry reached the disk (another fsync of the directory, or a crash of the process rather
/// than the machine). The next open removes every such file, at the top and in segments.
#[test]
fn open_removes_temporary_files_left_by_a_crash() {
    let sim = fresh_sim();
    let c = create(&sim, 10_000_000).unwrap();
    let mut model = Model::new();
    for (i, w) in [
        Write::Insert(rows(&[0, 1, 2, 3], 0)),
        Write::Delete(vec![key(1)]),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(w.run(&c).unwrap(), w.apply(&mut model), "write {i}");
    }
    c.flush().unwrap();
    let w = Write::Upsert(rows(&[2, 7], 50));
    assert_eq!(w.run(&c).unwrap(), w.apply(&mut model));
    // Half-written temporaries, durable, in the collection directory and in every segment.
    let root = path().to_path_buf();
    let mut dirs = vec![root.clone()];
    for name in sim.list(&root).unwrap() {
        if name.parse::<u64>().is_ok() {
            dirs.push(root.join(name));
        }
    }
    assert!(dirs.len() >= 3, "a sealed and a writing segment: {dirs:?}");
    for dir in &dirs {
        let (_, file) = sim.create_temp(dir).unwrap();
        file.append(b"half a manifest").unwrap();
        file.sync().unwrap();
        sim.sync_dir(dir).unwrap();
    }
    // The power goes off before the collection is closed.
    sim.inject(Fault {
        op: FaultOp::Mutation,
        nth: 1,
        kind: FaultKind::PowerCut,
    });
    drop(c);
    sim.crash();
    let planted = files_below(&sim, Path::new("/db"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .count();
    assert_eq!(planted, dirs.len(), "the planted files are durable");
    let c = open(&sim).unwrap();
    assert_no_leftovers(&sim);
    let got = read_back(&c, &keys(KEY_SPACE));
    expect_one_of(&got, &model, None, "after removing the temporary files");
}

//! Real process crashes during schema changes: a child process cycles through DDL operations
//! (with writes between them) until it is killed with SIGKILL at a random moment. The reopened
//! collection must have the schema after the last acknowledged change or after the one that
//! had begun, never a mix, and every acknowledged document with its values.
//!
//! The test binary re-executes itself: with `STRATAVEC_DDL_CHILD=<seed>,<dir>` set, the test
//! runs as the child and reports on stdout `READY`, then per step `BEGIN <i>` / `ACK <i>`
//! around the change and `INS <i>` / `INSACK <i>` around a write (a line cut by the kill has no
//! trailing `END` and does not count).

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, IndexKind, Metric,
    OpenOptions, ScalarIndex, Value, VectorSchema,
};

const CHILD_ENV: &str = "STRATAVEC_DDL_CHILD";
const PRELOAD: i64 = 400;
const HNSW: IndexKind = IndexKind::Hnsw {
    m: 8,
    ef_construction: 32,
};

fn base_schema() -> CollectionSchema {
    CollectionSchema::new("crash")
        .field(FieldSchema::new("n", DataType::Int64))
        .vector(VectorSchema::new("v", 8).metric(Metric::L2))
}

/// The schema after `k` steps of the cycle (it repeats every 6).
fn schema_after(k: u64) -> CollectionSchema {
    let mut s = base_schema();
    let extra = |name: &str, t: DataType| FieldSchema::new(name, t);
    match k % 6 {
        0 => {}
        1 => s.fields.push(extra("extra", DataType::Int32)),
        2 => s.fields.push(extra("extra2", DataType::Int64)),
        3 => {
            s.fields.push(extra("extra2", DataType::Int64));
            s.vectors[0].index = HNSW;
        }
        4 => {
            s.fields
                .push(extra("extra2", DataType::Int64).index(ScalarIndex::Inverted));
            s.vectors[0].index = HNSW;
        }
        _ => s
            .fields
            .push(extra("extra2", DataType::Int64).index(ScalarIndex::Inverted)),
    }
    s
}

fn step(c: &Collection, k: u64) -> stratavec::Result<()> {
    match k % 6 {
        0 => c.add_column(
            FieldSchema::new("extra", DataType::Int32),
            stratavec::ColumnFill::Value(Value::Int32(7)),
        ),
        1 => c.alter_column("extra", Some("extra2"), Some(DataType::Int64)),
        2 => c.create_index("v", HNSW),
        3 => c.create_index("extra2", ScalarIndex::Inverted),
        4 => c.drop_index("v"),
        _ => c.drop_column("extra2"),
    }
}

fn doc(i: i64, schema: &CollectionSchema) -> Doc {
    let x = i as f32;
    let mut d = Doc::new(format!("k{i}")).set("n", i).vector(
        "v",
        vec![
            x.sin(),
            x.cos(),
            (x / 7.0).sin(),
            1.0,
            x / 500.0,
            0.0,
            -1.0,
            0.5,
        ],
    );
    for f in &schema.fields {
        match f.data_type {
            DataType::Int32 if f.name != "n" => d = d.set(&f.name, 7i32),
            DataType::Int64 if f.name != "n" => d = d.set(&f.name, 7i64),
            _ => {}
        }
    }
    d
}

fn line(s: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s} END");
    let _ = out.flush();
}

fn child(spec: &str) -> ! {
    let (_seed, dir) = spec.split_once(',').expect("child spec");
    let path = Path::new(dir).join("c");
    let c = Collection::create(
        &path,
        base_schema(),
        CollectionOptions::default().flush_policy(FlushPolicy::Always),
    )
    .unwrap_or_else(|e| panic!("child: create: {e}"));
    let base = base_schema();
    for chunk in (0..PRELOAD).collect::<Vec<_>>().chunks(100) {
        c.insert(&chunk.iter().map(|&i| doc(i, &base)).collect::<Vec<_>>())
            .unwrap();
        if chunk[0] == 100 {
            c.flush().unwrap();
        }
    }
    line("READY");
    for k in 0u64.. {
        line(&format!("BEGIN {k}"));
        step(&c, k).unwrap_or_else(|e| panic!("child: step {k}: {e}"));
        line(&format!("ACK {k}"));
        let i = PRELOAD + k as i64;
        line(&format!("INS {i}"));
        c.insert(&[doc(i, &schema_after(k + 1))])
            .unwrap_or_else(|e| panic!("child: insert {i}: {e}"));
        line(&format!("INSACK {i}"));
    }
    unreachable!()
}

/// What the parent learnt from the child's stdout.
#[derive(Debug, Default)]
struct Seen {
    ready: bool,
    begun: Option<u64>,
    acked: Option<u64>,
    inserting: Option<i64>,
    inserted: Vec<i64>,
}

fn run_child(dir: &Path, seed: u64, kill_after: Duration) -> Seen {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "sigkill_during_schema_changes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{seed},{}", dir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut seen = Seen::default();
    let apply = |l: &str, seen: &mut Seen| {
        let Some(body) = l.strip_suffix(" END") else {
            return;
        };
        // The harness may print its own text before the child's first line.
        let words: Vec<&str> = body.split(' ').collect();
        let (tag, n) = match words.as_slice() {
            [.., "READY"] => ("READY", None),
            [.., tag, n] => (*tag, Some(*n)),
            _ => return,
        };
        match (tag, n) {
            ("READY", _) => seen.ready = true,
            ("BEGIN", Some(n)) => seen.begun = n.parse().ok(),
            ("ACK", Some(n)) => seen.acked = n.parse().ok(),
            ("INS", Some(n)) => seen.inserting = n.parse().ok(),
            ("INSACK", Some(n)) => seen.inserted.push(n.parse().unwrap()),
            _ => {}
        }
    };
    // Wait for READY (bounded), then let the child run its cycle for a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !seen.ready {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => apply(&l, &mut seen),
            Err(_) => {
                let _ = child.kill();
                panic!("the child never got ready");
            }
        }
    }
    std::thread::sleep(kill_after);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    while let Ok(l) = rx.try_recv() {
        apply(&l, &mut seen);
    }
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died on its own: {status}"
    );
    seen
}

#[test]
fn sigkill_during_schema_changes() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
    let trials: u64 = std::env::var("STRATAVEC_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(6);
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        // Spread the kills over the first steps of the cycle and the middle of them.
        let delay = Duration::from_millis(40 + (trial * 173) % 900);
        let seen = run_child(dir.path(), trial, delay);
        let what = format!("trial {trial} (kill after {delay:?}, {seen:?})");
        eprintln!("{what}");
        let done = seen.acked.map_or(0, |a| a + 1);
        let begun = seen.begun.map_or(0, |b| b + 1);
        let c = Collection::open(dir.path().join("c"), OpenOptions::default())
            .unwrap_or_else(|e| panic!("{what}: open: {e}"));
        let s = c.schema();
        let k = if *s == schema_after(done) {
            done
        } else if *s == schema_after(begun) {
            begun
        } else {
            panic!("{what}: the schema is neither after step {done} nor {begun}: {s:?}");
        };
        // Every acknowledged document, with its values in the recovered schema.
        let mut want: Vec<i64> = (0..PRELOAD).collect();
        want.extend(&seen.inserted);
        let pks: Vec<String> = want.iter().map(|i| format!("k{i}")).collect();
        let docs = c.fetch(&pks).unwrap();
        assert_eq!(
            docs.len(),
            want.len(),
            "{what}: acknowledged documents lost"
        );
        let has_extra = s.fields.len() == 2;
        for d in &docs {
            assert!(matches!(d.fields.get("n"), Some(Value::Int64(_))), "{what}");
            if has_extra {
                let f = &s.fields[1];
                let want = match f.data_type {
                    DataType::Int32 => Value::Int32(7),
                    _ => Value::Int64(7),
                };
                assert_eq!(d.fields.get(&f.name), Some(&want), "{what}: {}", d.pk);
            }
        }
        let total = c.stats().doc_count;
        let inflight = seen
            .inserting
            .filter(|i| !seen.inserted.contains(i))
            .is_some();
        assert!(
            total == want.len() as u64 || (inflight && total == want.len() as u64 + 1),
            "{what}: {total} documents"
        );
        // The recovered collection goes on with the cycle.
        step(&c, k).unwrap_or_else(|e| panic!("{what}: the next step after recovery: {e}"));
        assert_eq!(*c.schema(), schema_after(k + 1), "{what}");
        c.close().unwrap();
        let report = Collection::verify(dir.path().join("c"), &OpenOptions::default()).unwrap();
        assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
    }
}

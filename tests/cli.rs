//! The `stratavec` binary, run as scripts run it: every subcommand, failing ones included, with
//! the `--json` output parsed and checked.

#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_stratavec");

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data-fixtures")
        .join(name)
        .display()
        .to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run the stratavec binary")
}

/// Runs a command that must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "stratavec {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs a command that must fail with `code`; checks the one-line error and returns it.
fn fail(args: &[&str], code: i32) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stratavec {args:?}: stdout {} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err:?}"
    );
    err
}

/// Each stdout line as a JSON object.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn has_keys(v: &Value, want: &[&str]) {
    for k in want {
        assert!(v.get(k).is_some(), "key {k} missing in {v}");
    }
}

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Env {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        Env { _tmp: tmp, root }
    }

    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// A collection of GloVe-50 vectors (cosine) with a nullable int field `cat`.
    fn glove(&self, name: &str, index: &str, policy: &str) -> String {
        let schema = self.write(
            &format!("{name}.json"),
            &format!(
                r#"{{"name": "glove", "fields": [{{"name": "cat", "type": "int32", "nullable": true}}],
                   "vectors": [{{"name": "embedding", "dim": 50, "metric": "cosine", "index": {index}}}]}}"#
            ),
        );
        let dir = self.path(name);
        ok(&[
            "create",
            &dir,
            "--schema",
            &schema,
            "--flush-policy",
            policy,
        ]);
        dir
    }
}

const HNSW: &str = r#"{"type": "hnsw", "m": 16, "ef_construction": 100}"#;
const FLAT: &str = r#"{"type": "flat"}"#;

fn stats(dir: &str) -> Value {
    let v = json_lines(&ok(&["stats", dir, "--json"]));
    assert_eq!(v.len(), 1);
    has_keys(&v[0], &["doc_count", "segments", "wal_bytes", "deleted"]);
    v[0].clone()
}

#[test]
fn import_query_fetch_delete_stats() {
    let env = Env::new();
    let dir = env.glove("c", HNSW, "every:100");
    let base = fixture("glove50-10000.base.fvecs");
    let out = ok(&[
        "import", &dir, "--fvecs", &base, "--limit", "1000", "--batch", "100", "--json",
    ]);
    let acks = json_lines(&out);
    assert_eq!(acks.len(), 10, "{out}");
    for (i, a) in acks.iter().enumerate() {
        // `acked` and `last_pk` first, as scripts have always read them; counts after.
        assert_eq!(
            keys(a),
            ["acked", "last_pk", "inserted", "existing", "failed"]
        );
        assert_eq!(a["inserted"], (i + 1) * 100);
        assert_eq!(
            (a["existing"].clone(), a["failed"].clone()),
            (0.into(), 0.into())
        );
        assert_eq!(a["acked"], (i + 1) * 100);
        assert_eq!(a["last_pk"], ((i + 1) * 100 - 1).to_string());
    }
    let s = stats(&dir);
    assert_eq!(s["doc_count"], 1000);
    assert_eq!(s["deleted"], 0);

    let query = fixture("glove50.query.fvecs");
    let hits = json_lines(&ok(&[
        "query", &dir, "--fvecs", &query, "--row", "0", "--topk", "10", "--json",
    ]));
    assert_eq!(hits.len(), 10);
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] <= w[1]),
        "cosine scores ascend: {scores:?}"
    );
    for h in &hits {
        has_keys(h, &["pk", "score", "fields"]);
        assert!(h["pk"].as_str().unwrap().parse::<u32>().unwrap() < 1000);
    }
    // Same query, the vector field named, ef given, human output.
    let text = ok(&[
        "query",
        &dir,
        "--field",
        "embedding",
        "--fvecs",
        &query,
        "--topk",
        "3",
        "--ef",
        "64",
    ]);
    assert!(text.contains(hits[0]["pk"].as_str().unwrap()), "{text}");

    let top = hits[0]["pk"].as_str().unwrap().to_string();
    let lines = json_lines(&ok(&["fetch", &dir, &top, "5", "no-such-pk", "--json"]));
    assert_eq!(lines.len(), 3, "one line per key, in request order");
    assert_eq!(
        lines[2],
        serde_json::json!({"pk": "no-such-pk", "found": false})
    );
    let docs: Vec<&Value> = lines.iter().filter(|d| d["found"] == true).collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["pk"], top.as_str());
    assert_eq!(docs[1]["pk"], "5");
    for d in docs {
        has_keys(d, &["pk", "fields", "vectors"]);
        assert_eq!(d["vectors"]["embedding"].as_array().unwrap().len(), 50);
    }

    let del = json_lines(&ok(&["delete", &dir, &top, "no-such-pk", "--json"]));
    assert_eq!(del.len(), 2);
    assert_eq!(del[0]["deleted"], true);
    assert_eq!(del[1]["deleted"], false);
    assert_eq!(
        json_lines(&ok(&["fetch", &dir, &top, "--json"]))[0]["found"],
        false
    );
    let s = stats(&dir);
    assert_eq!(s["doc_count"], 999);
    assert_eq!(s["deleted"], 1);
    let hits = json_lines(&ok(&[
        "query", &dir, "--fvecs", &query, "--topk", "10", "--json",
    ]));
    assert!(hits.iter().all(|h| h["pk"] != top.as_str()));

    // optimize drops the deleted row for good.
    let o = json_lines(&ok(&["optimize", &dir, "--json"]));
    assert_eq!(o[0]["doc_count"], 999);
    let s = stats(&dir);
    assert_eq!(
        (s["doc_count"].clone(), s["deleted"].clone()),
        (999.into(), 0.into())
    );
    assert_eq!(s["segments"], 1);
    let text = ok(&["stats", &dir]);
    assert!(text.contains("doc_count:        999"), "{text}");
}

#[test]
fn import_offset_limit_prefix_and_vector_field() {
    let env = Env::new();
    let dir = env.glove("c", FLAT, "never");
    let base = fixture("glove50-10000.base.fvecs");
    let out = ok(&[
        "import",
        &dir,
        "--fvecs",
        &base,
        "--offset",
        "5",
        "--limit",
        "3",
        "--id-prefix",
        "g",
        "--vector-field",
        "embedding",
        "--json",
    ]);
    let acks = json_lines(&out);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["acked"], 3);
    assert_eq!(acks[0]["last_pk"], "g7");
    let docs: Vec<Value> = json_lines(&ok(&[
        "fetch", &dir, "g4", "g5", "g6", "g7", "g8", "--json",
    ]))
    .into_iter()
    .filter(|d| d["found"] == true)
    .collect();
    let pks: Vec<&str> = docs.iter().map(|d| d["pk"].as_str().unwrap()).collect();
    assert_eq!(pks, ["g5", "g6", "g7"]);
    // Row 5 of the file is g5's vector.
    let row5 = stratavec::dataset::read_fvecs(&base).unwrap()[5].clone();
    let got: Vec<f32> = docs[0]["vectors"]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(got, row5);
    // Importing the same rows again is acknowledged (they already exist); human summary.
    let text = ok(&[
        "import",
        &dir,
        "--fvecs",
        &base,
        "--offset",
        "5",
        "--limit",
        "3",
        "--id-prefix",
        "g",
    ]);
    assert!(text.contains("3 already existed"), "{text}");
    // An offset past the end imports nothing.
    assert_eq!(
        ok(&["import", &dir, "--fvecs", &base, "--offset", "20000", "--json"]),
        ""
    );
    assert_eq!(stats(&dir)["doc_count"], 3);
    fail(
        &["import", &dir, "--fvecs", &base, "--vector-field", "nope"],
        1,
    );
    fail(&["import", &dir, "--fvecs", &base, "--batch", "0"], 1);
    fail(&["import", &dir, "--fvecs", &base, "--batch", "5000"], 1);
    let err = fail(
        &[
            "import",
            &dir,
            "--fvecs",
            &fixture("glove50-10000.gt.ivecs"),
            "--limit",
            "2",
        ],
        1,
    );
    assert!(err.contains("dimension"), "{err}");
}

#[test]
fn jsonl_import_fields_and_filter_only_query() {
    let env = Env::new();
    let schema = env.write(
        "s.json",
        r#"{"name": "articles",
            "fields": [{"name": "year", "type": "int32"},
                       {"name": "tags", "type": "array_string", "nullable": true},
                       {"name": "w", "type": "double", "nullable": true}],
            "vectors": [{"name": "embedding", "dim": 3, "metric": "l2"}]}"#,
    );
    let dir = env.path("c");
    let out = ok(&["create", &dir, "--schema", &schema, "--json"]);
    assert_eq!(json_lines(&out)[0]["flush_policy"], "always");
    let docs = env.write(
        "docs.jsonl",
        concat!(
            r#"{"pk": "a", "fields": {"year": 2024, "tags": ["x", "y"], "w": 0.5}, "vectors": {"embedding": [1, 0, 0]}}"#,
            "\n",
            r#"{"pk": "b", "fields": {"year": 2020}, "vectors": {"embedding": [0, 1, 0]}}"#,
            "\n\n",
            r#"{"pk": "c", "fields": {"year": 2021, "tags": null}, "vectors": {"embedding": [0, 0, 1]}}"#,
            "\n",
        ),
    );
    let acks = json_lines(&ok(&[
        "import", &dir, "--jsonl", &docs, "--batch", "2", "--json",
    ]));
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[1]["acked"], 3);
    assert_eq!(acks[1]["last_pk"], "c");
    let fetched = json_lines(&ok(&["fetch", &dir, "a", "--json"]));
    assert_eq!(fetched[0]["fields"]["year"], 2024);
    assert_eq!(fetched[0]["fields"]["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(fetched[0]["fields"]["w"], 0.5);
    assert_eq!(
        fetched[0]["vectors"]["embedding"],
        serde_json::json!([1.0, 0.0, 0.0])
    );

    // No vector: live documents in insertion order, score 0.
    let hits = json_lines(&ok(&["query", &dir, "--topk", "2", "--json"]));
    let pks: Vec<&str> = hits.iter().map(|h| h["pk"].as_str().unwrap()).collect();
    assert_eq!(pks, ["a", "b"]);
    assert!(hits.iter().all(|h| h["score"] == 0.0));
    // A filter: checked when the filter language is there, else a one-line filter error.
    let out = run(&["query", &dir, "--filter", "year >= 2021", "--json"]);
    if out.status.success() {
        let hits = json_lines(&String::from_utf8(out.stdout).unwrap());
        let pks: Vec<&str> = hits.iter().map(|h| h["pk"].as_str().unwrap()).collect();
        assert_eq!(pks, ["a", "c"]);
    } else {
        assert!(String::from_utf8_lossy(&out.stderr).contains("filter"));
    }
    let hits = json_lines(&ok(&["query", &dir, "--output-fields", "year", "--json"]));
    assert_eq!(keys(&hits[0]["fields"]), ["year"]);

    // --offset / --limit count lines; a bad line names file and line.
    let acks = json_lines(&ok(&[
        "import", &dir, "--jsonl", &docs, "--offset", "1", "--limit", "1", "--json",
    ]));
    assert_eq!(acks[0]["last_pk"], "b");
    let bad = env.write(
        "bad.jsonl",
        "{\"pk\": \"d\", \"fields\": {\"year\": \"x\"}}\n",
    );
    let err = fail(&["import", &dir, "--jsonl", &bad], 1);
    assert!(
        err.contains("bad.jsonl line 1") && err.contains("year"),
        "{err}"
    );
    let bad = env.write("bad2.jsonl", "{\"pk\": \"d\", \"fields\": {\"nope\": 1}}\n");
    assert!(fail(&["import", &dir, "--jsonl", &bad], 1).contains("nope"));
    fail(&["query", &dir, "--output-fields", "nope"], 1);
}

/// An import killed mid-way leaves a WAL: dump, verify, stats, flush and optimize see it, and
/// every acknowledged document survives.
#[test]
fn killed_import_then_wal_dump_verify_flush_optimize() {
    let env = Env::new();
    let dir = env.glove("c", FLAT, "always");
    let base = fixture("glove50-10000.base.fvecs");
    ok(&[
        "import",
        &dir,
        "--fvecs",
        &base,
        "--limit",
        "50",
        "--id-prefix",
        "s",
    ]);
    let mut child = Command::new(BIN)
        .args(["import", &dir, "--fvecs", &base, "--batch", "10", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = Value::Null;
    for _ in 0..5 {
        last = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for l in lines.map_while(Result::ok) {
        last = serde_json::from_str(&l).unwrap();
    }
    let acked = last["acked"].as_u64().unwrap();
    assert!(acked >= 50);
    let last_pk = last["last_pk"].as_str().unwrap().to_string();

    let wal = Path::new(&dir).join("1").join("0.wal");
    assert!(wal.exists(), "the killed import left its WAL");
    let wal = wal.display().to_string();
    let dump = json_lines(&ok(&["wal", "dump", &wal, "--json"]));
    let (records, end) = dump.split_at(dump.len() - 1);
    assert!(records.len() as u64 >= acked / 10);
    for (i, r) in records.iter().enumerate() {
        has_keys(
            r,
            &["offset", "seq", "op", "docs", "pks", "bytes", "crc_ok"],
        );
        assert_eq!(r["op"], "Insert");
        assert_eq!(r["docs"], 10);
        assert_eq!(r["crc_ok"], true);
        assert_eq!(r["pks"][0], (i * 10).to_string());
    }
    // SIGKILL can cut a write short: a torn tail is what a crash may leave.
    assert!(
        ["clean", "torn"].contains(&end[0]["stopped"].as_str().unwrap()),
        "{}",
        end[0]
    );
    let text = ok(&["wal", "dump", &wal]);
    assert!(text.contains("reading stopped at offset"), "{text}");
    let v = json_lines(&ok(&["wal", "verify", &dir, "--json"]));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["ok"], true);
    assert_eq!(v[0]["records"], records.len());
    ok(&["wal", "verify", &wal]);

    let s = stats(&dir);
    assert!(s["wal_bytes"].as_u64().unwrap() > 0);
    assert_eq!(s["segments"], 1);
    let docs = s["doc_count"].as_u64().unwrap();
    assert!(docs >= 50 + acked);
    assert_eq!(
        json_lines(&ok(&["fetch", &dir, &last_pk, "--json"]))[0]["found"],
        true
    );

    // A corrupted copy: verify exits 2 naming file and offset; dump shows the bad record.
    let bad_dir = env.path("bad");
    std::fs::create_dir_all(Path::new(&bad_dir).join("1")).unwrap();
    let bad = Path::new(&bad_dir).join("1").join("0.wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    let second = records[1]["offset"].as_u64().unwrap() as usize;
    bytes[second + 100] ^= 0xFF;
    std::fs::write(&bad, &bytes).unwrap();
    let bad = bad.display().to_string();
    for target in [&bad_dir, &bad] {
        let err = fail(&["wal", "verify", target], 2);
        assert!(
            err.contains(&bad) && err.contains(&format!("offset {second}")),
            "{err}"
        );
    }
    let out = run(&["wal", "verify", &bad, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        (v[0]["ok"].clone(), v[0]["offset"].clone()),
        (false.into(), second.into())
    );
    let dump = json_lines(&ok(&["wal", "dump", &bad, "--json"]));
    assert_eq!(dump.len(), 3, "two records and the end line");
    assert_eq!(dump[1]["crc_ok"], false);
    assert_eq!(dump[2]["stopped"], "corrupted");
    assert_eq!(dump[2]["stop_offset"], second);
    // A torn tail is what a crash leaves: clean for verify.
    std::fs::write(&bad, &bytes[..second + 20]).unwrap();
    let v = json_lines(&ok(&["wal", "verify", &bad_dir, "--json"]));
    assert_eq!(v[0]["status"], "torn");
    let dump = json_lines(&ok(&["wal", "dump", &bad, "--json"]));
    assert_eq!(dump.last().unwrap()["stopped"], "torn");

    // flush persists the WAL's rows as a segment; optimize merges the segments.
    let f = json_lines(&ok(&["flush", &dir, "--json"]));
    assert_eq!(f[0]["doc_count"], docs);
    let s = stats(&dir);
    assert_eq!(s["wal_bytes"], 0);
    assert_eq!(s["segments"], 2);
    let t = ok(&["wal", "verify", &dir]);
    assert!(t.contains("no WAL files"), "{t}");
    ok(&["optimize", &dir]);
    let s = stats(&dir);
    assert_eq!(
        (s["segments"].clone(), s["doc_count"].clone()),
        (1.into(), docs.into())
    );
}

#[test]
fn failures_are_one_line_and_exit_1() {
    let env = Env::new();
    let good = env.write(
        "good.json",
        r#"{"name": "c", "vectors": [{"name": "v", "dim": 50, "metric": "cosine", "index": {"type": "hnsw"}}]}"#,
    );
    let bad_json = env.write("bad.json", r#"{"name": "c", "fields": ["#);
    let bad_type = env.write(
        "type.json",
        r#"{"name": "c", "fields": [{"name": "a", "type": "int8"}]}"#,
    );
    let bad_metric = env.write(
        "metric.json",
        r#"{"name": "c", "vectors": [{"name": "v", "dim": 3, "metric": "dot"}]}"#,
    );
    let bad_index = env.write(
        "index.json",
        r#"{"name": "c", "vectors": [{"name": "v", "dim": 3, "index": {"type": "ivf"}}]}"#,
    );
    let typo = env.write("typo.json", r#"{"name": "c", "feilds": []}"#);
    let dir = env.path("c");
    assert!(fail(&["create", &dir, "--schema", &bad_json], 1).contains("bad.json"));
    assert!(fail(&["create", &dir, "--schema", &bad_type], 1).contains("int8"));
    assert!(fail(&["create", &dir, "--schema", &bad_metric], 1).contains("dot"));
    assert!(fail(&["create", &dir, "--schema", &bad_index], 1).contains("ivf"));
    assert!(fail(&["create", &dir, "--schema", &typo], 1).contains("feilds"));
    fail(&["create", &dir, "--schema", &env.path("missing.json")], 1);
    fail(
        &[
            "create",
            &dir,
            "--schema",
            &good,
            "--flush-policy",
            "sometimes",
        ],
        1,
    );
    assert!(!Path::new(&dir).exists(), "failed creates leave nothing");
    let out = json_lines(&ok(&[
        "create",
        &dir,
        "--schema",
        &good,
        "--flush-policy",
        "interval:10",
        "--json",
    ]));
    assert_eq!(out[0]["flush_policy"], "interval:10");
    assert_eq!(out[0]["schema"]["vectors"][0]["index"]["m"], 16);
    assert!(fail(&["create", &dir, "--schema", &good], 1).contains("exists"));

    // A bad filter (malformed whatever the filter language accepts).
    let err = fail(&["query", &dir, "--filter", "year >= (("], 1);
    assert!(err.to_lowercase().contains("filter"), "{err}");

    let missing = env.path("missing");
    let q = fixture("glove50.query.fvecs");
    for args in [
        vec!["stats", &missing],
        vec!["query", &missing],
        vec!["fetch", &missing, "a"],
        vec!["delete", &missing, "a"],
        vec!["flush", &missing],
        vec!["optimize", &missing],
        vec!["import", &missing, "--fvecs", &q],
        vec!["wal", "verify", &missing],
        vec!["wal", "dump", &missing],
    ] {
        fail(&args, 1);
    }
    assert!(!Path::new(&missing).exists());
    // Argument errors are one line too.
    fail(&["import", &dir], 1);
    fail(&["fetch", &dir], 1);
    fail(&["nonsense"], 1);
    fail(&["query", &dir, "--fvecs", &q, "--row", "100000"], 1);
    fail(&["query", &dir, "--fvecs", &q, "--topk", "0"], 1);

    let help = ok(&["--help"]);
    for cmd in [
        "create", "import", "query", "fetch", "delete", "stats", "flush", "optimize", "wal",
        "bench",
    ] {
        assert!(help.contains(cmd), "{cmd} in {help}");
    }
}

#[test]
fn bench_insert_prints_one_object_per_combination() {
    let env = Env::new();
    let out = ok(&[
        "bench",
        "insert",
        "--policies",
        "always,every:100,never",
        "--batch",
        "1,100",
        "--threads",
        "1,2",
        "--docs",
        "200",
        "--dim",
        "128",
        "--raw-fsync-secs",
        "0.05",
        "--dir",
        &env.path(""),
        "--json",
    ]);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 3 * 2 * 2);
    let mut combos = Vec::new();
    for r in &rows {
        has_keys(
            r,
            &[
                "policy",
                "batch",
                "threads",
                "docs_per_s",
                "wal_mb_per_s",
                "p50_ms",
                "p99_ms",
                "raw_fsync_per_s",
                "ratio_to_raw_fsync",
            ],
        );
        for k in [
            "docs_per_s",
            "wal_mb_per_s",
            "raw_fsync_per_s",
            "ratio_to_raw_fsync",
        ] {
            assert!(r[k].as_f64().unwrap() > 0.0, "{k} in {r}");
        }
        assert!(r["p50_ms"].as_f64().unwrap() <= r["p99_ms"].as_f64().unwrap());
        combos.push((
            r["policy"].as_str().unwrap().to_string(),
            r["batch"].as_u64().unwrap(),
            r["threads"].as_u64().unwrap(),
        ));
    }
    assert_eq!(combos[0], ("always".to_string(), 1, 1));
    assert_eq!(combos[11], ("never".to_string(), 100, 2));
    // Nothing left behind in --dir.
    assert_eq!(std::fs::read_dir(&env.root).unwrap().count(), 0);
    let text = ok(&[
        "bench",
        "insert",
        "--policies",
        "never",
        "--batch",
        "10",
        "--threads",
        "1",
        "--docs",
        "20",
        "--raw-fsync-secs",
        "0.01",
        "--dir",
        &env.path(""),
    ]);
    assert!(text.contains("| never | 10 | 1 |"), "{text}");
    fail(&["bench", "insert", "--batch", "0", "--docs", "10"], 1);
    fail(&["bench", "insert", "--policies", "sometimes"], 1);
}

#[test]
fn bench_search_prints_build_then_one_object_per_ef() {
    let env = Env::new();
    let (base, query, gt) = (
        fixture("glove50-10000.base.fvecs"),
        fixture("glove50.query.fvecs"),
        fixture("glove50-10000.gt.ivecs"),
    );
    let common = [
        "bench",
        "search",
        "--base",
        &base,
        "--query",
        &query,
        "--gt",
        &gt,
        "--limit",
        "2000",
        "--m",
        "8",
        "--ef-construction",
        "40",
        "--ef",
        "16,64",
        "--dir",
        env.root.to_str().unwrap(),
    ]
    .map(|s| s.to_string());
    let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
    args.extend(["--threads", "2", "--json"]);
    let rows = json_lines(&ok(&args));
    assert_eq!(rows.len(), 3);
    has_keys(&rows[0], &["build_s", "flush_s", "reopen_s"]);
    for k in ["build_s", "flush_s", "reopen_s"] {
        assert!(rows[0][k].as_f64().unwrap() > 0.0);
    }
    for (r, ef) in rows[1..].iter().zip([16, 64]) {
        has_keys(r, &["ef", "recall", "qps", "p50_ms", "p99_ms"]);
        assert_eq!(r["ef"], ef);
        let recall = r["recall"].as_f64().unwrap();
        // Ground truth of 10,000 rows against the first 2,000: about a fifth is reachable.
        assert!((0.1..=1.0).contains(&recall), "{r}");
        assert!(r["qps"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(std::fs::read_dir(&env.root).unwrap().count(), 0);

    // Filtered: works once filters do; until then a one-line filter error.
    let gt3 = fixture("glove50-10000.gt-cat3.ivecs");
    let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
    args.extend([
        "--filter-mod",
        "10",
        "--filter-val",
        "3",
        "--filter-gt",
        &gt3,
        "--json",
    ]);
    let out = run(&args);
    if out.status.success() {
        let rows = json_lines(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(rows.len(), 3);
        has_keys(&rows[2], &["ef", "recall", "qps", "p50_ms", "p99_ms"]);
    } else {
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(err.contains("filter"), "{err}");
    }
    fail(
        &[
            "bench", "search", "--base", &base, "--query", &query, "--gt", &gt, "--metric", "dot",
        ],
        1,
    );
    fail(
        &[
            "bench",
            "search",
            "--base",
            &base,
            "--query",
            &query,
            "--gt",
            &gt,
            "--filter-mod",
            "3",
        ],
        1,
    );
}

/// `verify` checks every file: exit 0 on a sound collection (flushed, with deletes and a WAL),
/// exit 2 with the damaged file and offset when anything is wrong, and nothing changes.
#[test]
fn verify_exits_0_when_sound_and_2_naming_the_damaged_file() {
    let env = Env::new();
    let dir = env.glove("c", HNSW, "always");
    let base = fixture("glove50-10000.base.fvecs");
    ok(&["import", &dir, "--fvecs", &base, "--limit", "300"]);
    ok(&["flush", &dir]);
    ok(&["delete", &dir, "0", "1"]);
    let out = ok(&["verify", &dir]);
    assert!(out.starts_with("ok  "), "{out}");
    let v = json_lines(&ok(&["verify", &dir, "--json"]));
    assert_eq!(v.last().unwrap()["ok"], Value::Bool(true));

    // One flipped byte in the forward store: its checksum no longer matches the manifest.
    let fwd = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("0.fwd"))
        .find(|p| p.exists())
        .unwrap();
    let mut bytes = std::fs::read(&fwd).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&fwd, &bytes).unwrap();
    let err = fail(&["verify", &dir], 2);
    assert!(err.contains("1 problem"), "{err}");
    let out = run(&["verify", &dir, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(v[0]["file"], Value::String(fwd.display().to_string()));
    assert!(v[0]["offset"].is_u64());
    assert_eq!(
        std::fs::read(&fwd).unwrap(),
        bytes,
        "verify changed nothing"
    );
}

//! The `stratavec` commands of issue 13, run as scripts run them: upsert, update, delete
//! --filter, query --vector/--id, export, count, schema, destroy, --salvage, --skip-invalid,
//! the import counts, fetch's missing keys and the lock-conflict message. Each test checks the
//! output a script reads, the exit code, and the data a later process sees.

#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_stratavec");

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the stratavec binary");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn run(args: &[&str]) -> Output {
    run_with_stdin(args, "")
}

fn check_ok(args: &[&str], out: Output) -> (String, String) {
    assert!(
        out.status.success(),
        "stratavec {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

/// Runs a command that must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    check_ok(args, run(args)).0
}

/// Runs a command that must fail with exit code 1; checks the one-line error and returns it.
fn fail(args: &[&str]) -> String {
    fail_output(args, run(args))
}

fn fail_output(args: &[&str], out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stratavec {args:?}: stdout {} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(!err.contains("panicked"), "{err:?}");
    err
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

/// Articles: `year` (int32, inverted index), `tags` (nullable string array), a 3-d vector.
const SCHEMA: &str = r#"{"name": "articles",
    "fields": [{"name": "year", "type": "int32", "index": {"type": "inverted"}},
               {"name": "tags", "type": "array_string", "nullable": true}],
    "vectors": [{"name": "embedding", "dim": 3, "metric": "l2"}]}"#;

fn doc_line(pk: &str, year: i32, v: [f32; 3]) -> String {
    json!({"pk": pk, "fields": {"year": year}, "vectors": {"embedding": v}}).to_string() + "\n"
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

    /// A collection of five articles a..e, years 2020..2024, vectors along the axes.
    fn articles(&self, name: &str) -> String {
        let schema = self.write(&format!("{name}.schema.json"), SCHEMA);
        let dir = self.path(name);
        ok(&["create", &dir, "--schema", &schema]);
        let mut docs = String::new();
        for (i, pk) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let mut v = [0.0; 3];
            v[i % 3] = 1.0 + i as f32;
            docs.push_str(&doc_line(pk, 2020 + i as i32, v));
        }
        let file = self.write(&format!("{name}.jsonl"), &docs);
        ok(&["import", &dir, "--jsonl", &file]);
        dir
    }
}

fn fetch_one(dir: &str, pk: &str) -> Value {
    let lines = json_lines(&ok(&["fetch", dir, pk, "--json"]));
    assert_eq!(lines.len(), 1);
    lines[0].clone()
}

fn count(dir: &str, filter: Option<&str>) -> u64 {
    let mut args = vec!["count", dir, "--json"];
    if let Some(f) = filter {
        args.extend(["--filter", f]);
    }
    let v = json_lines(&ok(&args));
    assert_eq!(keys(&v[0]), ["count"]);
    v[0]["count"].as_u64().expect("count")
}

#[test]
fn import_acks_count_inserted_existing_failed() {
    let env = Env::new();
    let dir = env.articles("c");
    let more: String = doc_line("e", 1, [1.0, 1.0, 1.0]) + &doc_line("f", 2025, [0.0, 0.0, 9.0]);
    let file = env.write("more.jsonl", &more);
    let acks = json_lines(&ok(&["import", &dir, "--jsonl", &file, "--json"]));
    assert_eq!(acks.len(), 1);
    assert_eq!(
        keys(&acks[0]),
        ["acked", "last_pk", "inserted", "existing", "failed"]
    );
    assert_eq!(
        acks[0],
        json!({"acked": 2, "last_pk": "f", "inserted": 1, "existing": 1, "failed": 0})
    );
    // The existing document was left as it was.
    assert_eq!(fetch_one(&dir, "e")["fields"]["year"], 2024);
    assert_eq!(count(&dir, None), 6);
    let text = ok(&["import", &dir, "--jsonl", &file]);
    assert!(text.contains("0 inserted, 2 already existed"), "{text}");
}

#[test]
fn skip_invalid_counts_failed_documents_and_names_them() {
    let env = Env::new();
    let dir = env.articles("c");
    let mixed = [
        doc_line("g", 2030, [1.0, 0.0, 0.0]),
        r#"{"pk": "h", "fields": {"year": "x"}, "vectors": {"embedding": [1, 0, 0]}}"#.to_string()
            + "\n",
        "not json\n".to_string(),
        r#"{"pk": "i", "fields": {"year": 1}, "vectors": {"embedding": [1, 0]}}"#.to_string()
            + "\n",
        doc_line("j", 2031, [0.0, 1.0, 0.0]),
    ]
    .concat();
    let file = env.write("mixed.jsonl", &mixed);
    // Without the flag: the first bad line stops the import, named by file and line.
    let err = fail(&["import", &dir, "--jsonl", &file, "--batch", "1"]);
    assert!(err.contains("mixed.jsonl line 2"), "{err}");
    assert_eq!(count(&dir, None), 6, "the document before it was written");
    // A batch refused by the engine (dimension) names its line too.
    let err = fail(&["import", &dir, "--jsonl", &file, "--offset", "3"]);
    assert!(err.contains("mixed.jsonl line 4"), "{err}");

    let args = ["import", &dir, "--jsonl", &file, "--skip-invalid", "--json"];
    let (stdout, stderr) = check_ok(&args, run(&args));
    let acks = json_lines(&stdout);
    let last = acks.last().expect("an ack");
    assert_eq!(
        last,
        &json!({"acked": 2, "last_pk": "j", "inserted": 1, "existing": 1, "failed": 3})
    );
    for line in [2, 3, 4] {
        assert!(
            stderr.contains(&format!("mixed.jsonl line {line}")),
            "{stderr}"
        );
    }
    assert_eq!(count(&dir, None), 7);
    assert_eq!(fetch_one(&dir, "h")["found"], false);
}

#[test]
fn upsert_replaces_and_update_merges() {
    let env = Env::new();
    let dir = env.articles("c");
    // Upsert from standard input: one replaced, one new.
    let input = json!({"pk": "a", "fields": {"year": 1999, "tags": ["t"]},
                       "vectors": {"embedding": [5, 5, 5]}})
    .to_string()
        + "\n"
        + &doc_line("z", 2000, [0.0, 0.0, 1.0]);
    let args = ["upsert", &dir, "--jsonl", "-", "--json"];
    let (stdout, _) = check_ok(&args, run_with_stdin(&args, &input));
    assert_eq!(
        json_lines(&stdout),
        [json!({"acked": 2, "last_pk": "z", "upserted": 2, "failed": 0})]
    );
    let a = fetch_one(&dir, "a");
    assert_eq!(a["fields"], json!({"tags": ["t"], "year": 1999}));
    assert_eq!(a["vectors"]["embedding"], json!([5.0, 5.0, 5.0]));
    // An upsert must be complete.
    let partial = env.write("partial.jsonl", r#"{"pk": "b", "fields": {"year": 1}}"#);
    assert!(fail(&["upsert", &dir, "--jsonl", &partial]).contains("embedding"));

    // Update: only the given fields change; null clears; a key not live is counted.
    let patch = [
        r#"{"pk": "a", "fields": {"tags": null}}"#,
        r#"{"pk": "b", "fields": {"year": 1}}"#,
        r#"{"pk": "nope", "fields": {"year": 2}}"#,
    ]
    .join("\n");
    let file = env.write("patch.jsonl", &patch);
    let acks = json_lines(&ok(&["update", &dir, "--jsonl", &file, "--json"]));
    assert_eq!(
        acks,
        [json!({"acked": 3, "last_pk": "nope", "updated": 2, "not_found": 1, "failed": 0})]
    );
    let a = fetch_one(&dir, "a");
    assert_eq!(
        a["fields"],
        json!({"year": 1999}),
        "a null field is not printed"
    );
    assert_eq!(a["vectors"]["embedding"], json!([5.0, 5.0, 5.0]));
    let b = fetch_one(&dir, "b");
    assert_eq!(b["fields"]["year"], 1);
    assert_eq!(b["vectors"]["embedding"], json!([0.0, 2.0, 0.0]));
    assert_eq!(fetch_one(&dir, "nope")["found"], false);
    let text = ok(&["update", &dir, "--jsonl", &file]);
    assert!(
        text.contains("updated 2 of 3") && text.contains("1 not found"),
        "{text}"
    );
    assert_eq!(count(&dir, None), 6);
}

#[test]
fn delete_by_filter_and_count() {
    let env = Env::new();
    let dir = env.articles("c");
    assert_eq!(ok(&["count", &dir]).trim(), "5");
    assert_eq!(count(&dir, Some("year >= 2022")), 3);
    assert_eq!(count(&dir, Some("year = 2020")), 1);
    let out = json_lines(&ok(&["delete", &dir, "--filter", "year >= 2022", "--json"]));
    assert_eq!(out, [json!({"deleted": 3, "filter": "year >= 2022"})]);
    assert_eq!(count(&dir, None), 2);
    assert_eq!(fetch_one(&dir, "e")["found"], false);
    let text = ok(&["delete", &dir, "--filter", "year = 1"]);
    assert!(text.contains("deleted 0 documents"), "{text}");
    // Keys or a filter, not both, not neither; a bad filter is an error.
    fail(&["delete", &dir]);
    fail(&["delete", &dir, "a", "--filter", "year = 2020"]);
    assert!(fail(&["delete", &dir, "--filter", "nope = 1"]).contains("nope"));
    assert!(fail(&["count", &dir, "--filter", "year >= (("]).contains("filter"));
    assert_eq!(count(&dir, None), 2);
}

#[test]
fn query_by_vector_and_by_stored_document() {
    let env = Env::new();
    let dir = env.articles("c");
    let pks = |out: &str| -> Vec<String> {
        json_lines(out)
            .iter()
            .map(|h| h["pk"].as_str().expect("pk").to_string())
            .collect()
    };
    // b is [0, 2, 0], e is [0, 5, 0]: nearest to [0, 2.1, 0] are b, then a or c.
    let hits = ok(&[
        "query",
        &dir,
        "--vector",
        "[0, 2.1, 0]",
        "--topk",
        "1",
        "--json",
    ]);
    assert_eq!(pks(&hits), ["b"]);
    let hits = ok(&[
        "query", &dir, "--vector", "0,4.9,0", "--topk", "1", "--json",
    ]);
    assert_eq!(pks(&hits), ["e"]);
    let hits = ok(&[
        "query",
        &dir,
        "--field",
        "embedding",
        "--vector",
        "-1, 0, 0",
        "--topk",
        "1",
        "--json",
    ]);
    // Squared distances from [-1, 0, 0]: a 4, b 5, c 10, d 25, e 26.
    assert_eq!(pks(&hits), ["a"]);
    // By the stored vector of b: b itself first.
    let hits = ok(&["query", &dir, "--id", "b", "--topk", "2", "--json"]);
    assert_eq!(pks(&hits)[0], "b");
    let hits = ok(&[
        "query",
        &dir,
        "--id",
        "e",
        "--filter",
        "year < 2024",
        "--topk",
        "1",
        "--json",
    ]);
    assert_eq!(pks(&hits), ["b"]);

    assert!(fail(&["query", &dir, "--vector", "[1, 2]"]).contains("dimension"));
    assert!(fail(&["query", &dir, "--vector", "[1, \"x\", 2]"]).contains("--vector"));
    assert!(fail(&["query", &dir, "--vector", "1,,2"]).contains("--vector"));
    assert!(fail(&["query", &dir, "--vector", "[]"]).contains("empty"));
    assert!(fail(&["query", &dir, "--id", "nope"]).contains("nope"));
    fail(&["query", &dir, "--id", "a", "--vector", "[1, 0, 0]"]);
    fail(&["query", &dir, "--field", "embedding"]);
}

#[test]
fn fetch_json_reports_each_key_once_in_request_order() {
    let env = Env::new();
    let dir = env.articles("c");
    let lines = json_lines(&ok(&["fetch", &dir, "c", "x", "a", "c", "--json"]));
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines.iter().map(|l| l["pk"].clone()).collect::<Vec<_>>(),
        ["c", "x", "a"]
    );
    assert_eq!(keys(&lines[0]), ["pk", "found", "fields", "vectors"]);
    assert_eq!(lines[1], json!({"pk": "x", "found": false}));
    assert_eq!(lines[2]["found"], true);
    let text = ok(&["fetch", &dir, "a", "x", "y"]);
    assert!(text.contains("1 found, 2 not found: x, y"), "{text}");
}

#[test]
fn export_round_trips_through_schema_create_and_import() {
    let env = Env::new();
    let dir = env.articles("c");
    ok(&[
        "update",
        &dir,
        "--jsonl",
        &env.write("t.jsonl", r#"{"pk": "b", "fields": {"tags": ["x", "y"]}}"#),
    ]);
    let (all, summary) = check_ok(&["export"], run(&["export", &dir]));
    let docs = json_lines(&all);
    assert_eq!(docs.len(), 5);
    // An update writes a new version of b: it comes last in doc-id order.
    assert_eq!(
        docs[4],
        json!({"pk": "b", "fields": {"tags": ["x", "y"], "year": 2021},
               "vectors": {"embedding": [0.0, 2.0, 0.0]}})
    );
    assert!(summary.contains("exported 5 documents"), "{summary}");

    // The schema printed is a schema file: a copy of the collection from schema + export.
    let schema_text = ok(&["schema", &dir]);
    let schema: Value = serde_json::from_str(&schema_text).expect("schema is JSON");
    assert_eq!(schema["fields"][0]["index"], json!({"type": "inverted"}));
    assert!(schema["fields"][1].get("index").is_none());
    let one_line = json_lines(&ok(&["schema", &dir, "--json"]));
    assert_eq!(one_line.len(), 1);
    assert_eq!(one_line[0], schema, "--json is the same, on one line");
    let copy = env.path("copy");
    let schema_file = env.write("copy.json", &schema_text);
    ok(&["create", &copy, "--schema", &schema_file]);
    let args = ["import", &copy, "--jsonl", "-", "--json"];
    let (acks, _) = check_ok(&args, run_with_stdin(&args, &all));
    assert_eq!(json_lines(&acks).last().expect("ack")["inserted"], 5);
    assert_eq!(ok(&["export", &copy]), all);
    let stats: Value = serde_json::from_str(&ok(&["stats", &copy, "--json"])).expect("stats");
    assert_eq!(stats["schema"], schema);

    // --out: the file holds the documents, stdout the summary.
    let file = env.path("out.jsonl");
    let out = json_lines(&ok(&["export", &dir, "--out", &file, "--json"]));
    assert_eq!(out, [json!({"exported": 5, "next": null})]);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), all);

    // Pages of two, each resumed from the cursor the previous one printed.
    let mut pages = String::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec!["export", &dir, "--limit", "2", "--json"];
        if let Some(a) = &after {
            args.extend(["--after", a]);
        }
        let (docs, summary) = check_ok(&args, run(&args));
        pages.push_str(&docs);
        let summary: Value = serde_json::from_str(summary.trim()).expect("summary");
        match summary["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, all);

    // Narrowed: a filter, chosen fields, no vectors or chosen vectors.
    let some = json_lines(&ok(&[
        "export",
        &dir,
        "--filter",
        "year >= 2023",
        "--fields",
        "year",
        "--no-vectors",
    ]));
    assert_eq!(
        some,
        [
            json!({"pk": "d", "fields": {"year": 2023}, "vectors": {}}),
            json!({"pk": "e", "fields": {"year": 2024}, "vectors": {}}),
        ]
    );
    let some = json_lines(&ok(&[
        "export",
        &dir,
        "--fields",
        "",
        "--vectors",
        "embedding",
        "--limit",
        "1",
    ]));
    assert_eq!(
        some,
        [json!({"pk": "a", "fields": {}, "vectors": {"embedding": [1.0, 0.0, 0.0]}})]
    );
    assert!(fail(&["export", &dir, "--fields", "embedding"]).contains("embedding"));
    assert!(fail(&["export", &dir, "--vectors", "year"]).contains("year"));
    assert!(fail(&["export", &dir, "--after", "zz"]).contains("cursor"));
    fail(&["export", &dir, "--limit", "0"]);
    fail(&["export", &dir, "--filter", "nope = 1"]);
    // A failed export leaves no file under the --out name.
    let never = env.path("never.jsonl");
    fail(&["export", &dir, "--out", &never, "--filter", "nope = 1"]);
    assert!(!Path::new(&never).exists());
}

#[test]
fn destroy_needs_yes_and_a_collection() {
    let env = Env::new();
    let dir = env.articles("c");
    assert!(fail(&["destroy", &dir]).contains("--yes"));
    assert_eq!(count(&dir, None), 5, "nothing happened without --yes");

    // A directory that is not a collection is left exactly as it was (no lock file either).
    let other = env.path("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(Path::new(&other).join("keep.txt"), "x").expect("write");
    assert!(fail(&["destroy", &other, "--yes"]).contains("not a stratavec collection"));
    let names: Vec<_> = std::fs::read_dir(&other)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    let file = env.write("plain", "x");
    fail(&["destroy", &file, "--yes"]);
    assert!(Path::new(&file).exists());
    fail(&["destroy", &env.path("missing"), "--yes"]);

    let out = json_lines(&ok(&["destroy", &dir, "--yes", "--json"]));
    assert_eq!(out, [json!({"destroyed": dir, "name": "articles"})]);
    assert!(!Path::new(&dir).exists());
    fail(&["count", &dir]);
}

#[test]
fn a_collection_held_by_another_process_says_so() {
    let env = Env::new();
    let dir = env.articles("c");
    // A writer that holds the collection until its standard input closes.
    let mut child = Command::new(BIN)
        .args(["upsert", &dir, "--jsonl", "-", "--batch", "1", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut acks = BufReader::new(child.stdout.take().expect("stdout")).lines();
    stdin
        .write_all(doc_line("held", 1, [1.0, 1.0, 1.0]).as_bytes())
        .expect("write");
    stdin.flush().expect("flush");
    // Its first ack means it has the collection open.
    let ack: Value =
        serde_json::from_str(&acks.next().expect("an ack").expect("read")).expect("json");
    assert_eq!(ack["acked"], 1);

    for args in [
        vec!["count", dir.as_str()],
        vec!["delete", dir.as_str(), "a"],
        vec!["destroy", dir.as_str(), "--yes"],
    ] {
        let err = fail(&args);
        assert!(err.contains("another process"), "{args:?}: {err}");
    }
    drop(stdin);
    assert!(child.wait().expect("wait").success());
    assert_eq!(
        count(&dir, None),
        6,
        "the writer's document is there, nothing deleted"
    );
}

/// The WAL files under a collection directory.
fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(wal_files(&path));
        } else if path.extension().is_some_and(|e| e == "wal") {
            found.push(path);
        }
    }
    found
}

#[test]
fn salvage_opens_a_collection_whose_wal_is_corrupted() {
    let env = Env::new();
    let schema = env.write("s.json", SCHEMA);
    let dir = env.path("c");
    ok(&[
        "create",
        &dir,
        "--schema",
        &schema,
        "--flush-policy",
        "always",
    ]);
    // Four records in the WAL, then the writer is killed so that the WAL stays.
    let mut child = Command::new(BIN)
        .args(["import", &dir, "--jsonl", "-", "--batch", "1", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut acks = BufReader::new(child.stdout.take().expect("stdout")).lines();
    for (i, pk) in ["p0", "p1", "p2", "p3"].iter().enumerate() {
        stdin
            .write_all(doc_line(pk, i as i32, [1.0, 0.0, 0.0]).as_bytes())
            .expect("write");
        stdin.flush().expect("flush");
        acks.next().expect("an ack").expect("read");
    }
    child.kill().expect("kill"); // SIGKILL: nothing persisted, the WAL is all there is
    child.wait().expect("wait");
    drop(stdin);

    let wals = wal_files(Path::new(&dir));
    assert_eq!(wals.len(), 1, "{wals:?}");
    let wal = wals[0].display().to_string();
    let dump = json_lines(&ok(&["wal", "dump", &wal, "--json"]));
    assert_eq!(dump.len(), 5, "four records and the end line");
    // A byte in the middle of the second record: valid records follow, so this is damage,
    // not a torn tail.
    let offset = |i: usize| dump[i]["offset"].as_u64().expect("offset") as usize;
    let mut bytes = std::fs::read(&wal).expect("read");
    bytes[(offset(1) + offset(2)) / 2] ^= 0xFF;
    std::fs::write(&wal, &bytes).expect("write");

    // Refused without --salvage, by reads and writes alike; nothing changes.
    fail(&["count", &dir]);
    let err = fail(&["flush", &dir]);
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(std::fs::read(&wal).expect("read"), bytes);

    let args = ["flush", &dir, "--salvage", "--json"];
    let (stdout, stderr) = check_ok(&args, run(&args));
    assert!(
        stderr.contains("salvaged") && stderr.contains(".corrupt"),
        "{stderr}"
    );
    assert_eq!(
        json_lines(&stdout)[0]["doc_count"],
        1,
        "the record before the damage"
    );
    assert_eq!(fetch_one(&dir, "p0")["found"], true);
    assert_eq!(fetch_one(&dir, "p1")["found"], false);
    // Salvaged for good: later opens need no flag.
    assert_eq!(count(&dir, None), 1);
    ok(&[
        "import",
        &dir,
        "--jsonl",
        &env.write("p1.jsonl", &doc_line("p1", 1, [0.0, 1.0, 0.0])),
        "--salvage",
    ]);
    assert_eq!(count(&dir, None), 2);
}

#[test]
fn help_lists_every_command() {
    let help = ok(&["--help"]);
    for cmd in [
        "import", "upsert", "update", "query", "fetch", "delete", "export", "count", "schema",
        "destroy", "stats", "verify", "flush", "optimize",
    ] {
        assert!(help.contains(cmd), "{cmd} in {help}");
    }
    for (cmd, flag) in [
        ("import", "--salvage"),
        ("import", "--skip-invalid"),
        ("update", "--salvage"),
        ("delete", "--filter"),
        ("query", "--vector"),
        ("query", "--id"),
        ("export", "--after"),
        ("flush", "--salvage"),
        ("optimize", "--salvage"),
    ] {
        let text = ok(&[cmd, "--help"]);
        assert!(text.contains(flag), "{cmd} {flag}: {text}");
    }
}

/// The README's articles walk-through, schema changes included, runs as written (from `cat >
/// articles.json` to the last schema change), with the binary on `PATH`.
#[test]
fn readme_schema_changes_run_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("cat > articles.json"))
        .expect("the articles example");
    let end = lines
        .iter()
        .rposition(|l| l.starts_with("stratavec drop-index data/articles"))
        .expect("the schema-change lines");
    let script = lines[start..=end].join("\n");
    for cmd in [
        "add-column",
        "drop-column",
        "alter-column",
        "create-index",
        "drop-index",
    ] {
        assert!(
            script.contains(&format!("stratavec {cmd} data/articles")),
            "{cmd}"
        );
    }
    let env = Env::new();
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-e", "-c", &script])
        .current_dir(&env.root)
        .env("PATH", path)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "the README lines failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""op":"create-index""#), "{stdout}");
    let dir = env.path("data/articles");
    let schema = json_lines(&ok(&["schema", &dir, "--json"]));
    assert_eq!(
        schema[0]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["name"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["year", "tags"]
    );
    assert_eq!(schema[0]["vectors"][0]["index"], json!({"type": "flat"}));
    assert_eq!(schema[0]["vectors"][0]["metric"], "cosine");
    assert_eq!(count(&dir, None), 2);
}

#[test]
fn schema_change_commands_and_their_errors() {
    let env = Env::new();
    let dir = env.articles("c");
    let out = json_lines(&ok(&[
        "add-column",
        &dir,
        "score",
        "--type",
        "double",
        "--nullable",
        "--json",
    ]));
    assert_eq!(out[0]["op"], "add-column");
    assert_eq!(out[0]["schema"]["fields"][2]["name"], "score");
    ok(&[
        "add-column",
        &dir,
        "rank",
        "--type",
        "uint32",
        "--default",
        "3",
    ]);
    assert_eq!(count(&dir, Some("rank = 3")), 5);
    ok(&[
        "alter-column",
        &dir,
        "rank",
        "--rename",
        "r",
        "--type",
        "uint64",
    ]);
    assert_eq!(fetch_one(&dir, "a")["fields"]["r"], 3);
    ok(&["create-index", &dir, "r", "--inverted"]);
    ok(&["create-index", &dir, "embedding", "--hnsw", "--m", "8"]);
    ok(&["drop-index", &dir, "r"]);
    ok(&["drop-column", &dir, "r"]);
    let err = fail(&["add-column", &dir, "z", "--type", "string", "--nullable"]);
    assert_eq!(
        err.trim_end(),
        "error: this operation requires a numeric field; field[z] has type STRING"
    );
    let err = fail(&["add-column", &dir, "x", "--type", "int32"]);
    assert_eq!(
        err.trim_end(),
        "error: non-nullable field[x] requires an expression when added"
    );
    let err = fail(&["create-index", &dir, "year", "--hnsw"]);
    assert_eq!(
        err.trim_end(),
        "error: Invalid schema: scalar field[year] does not support vector index params"
    );
    let err = fail(&[
        "add-column",
        &dir,
        "x",
        "--type",
        "int32",
        "--default",
        "nope",
    ]);
    assert!(err.contains("--default"), "{err}");
    let err = fail(&["alter-column", &dir, "year", "--type", "int128"]);
    assert!(err.contains("unknown type"), "{err}");
    assert_eq!(count(&dir, Some("score IS NULL")), 5);
    // An expression over existing columns gives each document its own value.
    ok(&[
        "add-column",
        &dir,
        "age",
        "--type",
        "int64",
        "--expression",
        "2025 - year",
    ]);
    assert_eq!(fetch_one(&dir, "c")["fields"]["age"], 3);
    assert_eq!(count(&dir, Some("age <= 2")), 2);
    let err = fail(&[
        "add-column",
        &dir,
        "x",
        "--type",
        "int32",
        "--nullable",
        "--expression",
        "10 / (year - 2022)",
    ]);
    assert_eq!(
        err.trim_end(),
        "error: evaluate expression failed:divide by zero for field[x] of doc[c]"
    );
    let err = fail(&[
        "add-column",
        &dir,
        "x",
        "--type",
        "int32",
        "--expression",
        "nope + 1",
    ]);
    assert_eq!(
        err.trim_end(),
        "error: parse expression failed:Column not found in schema: nope"
    );
    let err = fail(&[
        "add-column",
        &dir,
        "x",
        "--type",
        "int32",
        "--default",
        "1",
        "--expression",
        "2",
    ]);
    assert!(err.contains("--expression"), "{err}");
    assert_eq!(count(&dir, Some("age >= 0")), 5);
}

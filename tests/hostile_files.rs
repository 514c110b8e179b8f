//! Hostile files: a collection directory edited the way a bug, a tool or an attacker edits it
//! (checksums recomputed after every edit, so the damage reaches the decoders) must give a
//! clean error, the documented rebuild, or the correct answer. Never a panic, an abort, a
//! `process::exit`, a hang, an unbounded allocation, a file written outside the collection, or
//! a wrong answer in silence.
//!
//! Cases that could allocate without bound (or make hnsw_rs exit the process) run in a child
//! process under `setrlimit(RLIMIT_AS)`: an unbounded allocation then fails that child, and so
//! this test, instead of the machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use rmpv::Value as Mp;
use stratavec::fuzz::{reseal_envelope, reseal_graph};
use stratavec::wal::format::frame_crc;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, Error, FieldSchema, GraphLoad,
    IndexKind, Metric, OpenOptions, SearchOptions, VectorSchema,
};

const DIM: usize = 8;
const SEALED: usize = 1000;
const UNFLUSHED: usize = 50;

fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| {
            let x = (i as u64 * 2654435761 + d as u64 * 40503) % 1000;
            x as f32 / 1000.0 - 0.5
        })
        .collect()
}

fn schema() -> CollectionSchema {
    CollectionSchema::new("hostile")
        .field(FieldSchema::new("year", DataType::Int32))
        .field(FieldSchema::new("tag", DataType::String).nullable())
        .vector(
            VectorSchema::new("v", DIM)
                .metric(Metric::Cosine)
                .index(IndexKind::Hnsw {
                    m: 8,
                    ef_construction: 32,
                }),
        )
}

fn doc(pk: String, i: usize) -> Doc {
    Doc::new(pk)
        .set("year", 2000 + (i % 30) as i32)
        .set("tag", format!("t{}", i % 7))
        .vector("v", vector(i))
}

/// A collection with sealed segments (forward stores, graphs), a delete file, and a WAL of
/// unflushed writes (a copy taken while the collection was open: what a crash leaves, since
/// `close` would persist the WAL); built once, copied for every case.
fn template() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let live = root.join("live");
        let path = root.join("template");
        // Graph files at once (not deferred until writes pause): the cases damage them.
        let c = Collection::create(
            &live,
            schema(),
            CollectionOptions::default()
                .merge_policy(None)
                .min_graph_rows(0),
        )
        .unwrap();
        for chunk in (0..SEALED).collect::<Vec<_>>().chunks(500) {
            let docs: Vec<Doc> = chunk.iter().map(|&i| doc(format!("d{i}"), i)).collect();
            c.insert(&docs).unwrap();
        }
        c.flush().unwrap();
        c.delete(&(0..10).map(|i| format!("d{i}")).collect::<Vec<_>>())
            .unwrap();
        c.upsert(&[doc("d10".into(), 5000)]).unwrap();
        c.flush().unwrap();
        for b in 0..5 {
            let docs: Vec<Doc> = (0..UNFLUSHED / 5)
                .map(|j| {
                    let i = 10_000 + b * 10 + j;
                    doc(format!("w{i}"), i)
                })
                .collect();
            c.insert(&docs).unwrap();
        }
        c.delete(&["w10000"]).unwrap();
        copy_dir(&live, &path);
        c.close().unwrap();
        path
    })
}

fn all_pks() -> Vec<String> {
    (0..SEALED)
        .map(|i| format!("d{i}"))
        .chain((0..UNFLUSHED).map(|i| format!("w{}", 10_000 + i)))
        .collect()
}

/// What a user sees: every document by pk, and three searches.
fn answers(c: &Collection) -> stratavec::Result<String> {
    let mut out = String::new();
    let mut docs = c.fetch(&all_pks())?;
    docs.sort_by(|a, b| a.pk.cmp(&b.pk));
    for d in docs {
        out.push_str(&format!("{} {:?} {:?}\n", d.pk, d.fields, d.vectors));
    }
    for q in [3usize, 333, 10_007] {
        // ef above the row count: the answer does not depend on which graph was built.
        for h in c.search("v", &vector(q), &SearchOptions::new().topk(5).ef(2000))? {
            out.push_str(&format!("q{q}: {} {:.4}\n", h.pk, h.score));
        }
    }
    Ok(out)
}

fn expected() -> &'static str {
    static A: OnceLock<String> = OnceLock::new();
    A.get_or_init(|| {
        let c = Collection::open(template(), OpenOptions::default().read_only(true)).unwrap();
        answers(&c).unwrap()
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A fresh copy of the template; the TempDir removes it when dropped.
fn fresh() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("c");
    copy_dir(template(), &p);
    (t, p)
}

fn newest(dir: &Path, prefix: &str) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<u64>().ok())
        {
            if best.as_ref().is_none_or(|(b, _)| n > *b) {
                best = Some((n, e.path()));
            }
        }
    }
    best.unwrap().1
}

fn manifest_path(dir: &Path) -> PathBuf {
    newest(dir, "manifest.")
}

fn decode(bytes: &[u8]) -> Mp {
    rmpv::decode::read_value(&mut &bytes[..]).unwrap()
}

fn encode(v: &Mp) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).unwrap();
    out
}

/// The value of `key` in a MessagePack map.
fn get<'a>(v: &'a mut Mp, key: &str) -> &'a mut Mp {
    match v {
        Mp::Map(entries) => {
            &mut entries
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some(key))
                .unwrap_or_else(|| panic!("no key {key}"))
                .1
        }
        other => panic!("not a map: {other:?}"),
    }
}

fn at(v: &mut Mp, i: usize) -> &mut Mp {
    match v {
        Mp::Array(items) => &mut items[i],
        other => panic!("not an array: {other:?}"),
    }
}

/// Edits the payload of an enveloped file (manifest, del, fwd) and reseals it.
fn edit_envelope(path: &Path, edit: impl FnOnce(&mut Mp)) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let mut v = decode(&bytes[24..]);
    edit(&mut v);
    let mut out = bytes[..24].to_vec();
    out.extend_from_slice(&encode(&v));
    reseal_envelope(&mut out);
    out
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Mp)) {
    let path = manifest_path(dir);
    let bytes = edit_envelope(&path, edit);
    std::fs::write(path, bytes).unwrap();
}

/// Replaces a file the manifest lists (by its stored name) and updates the manifest's length
/// and checksum of it, as a tool that rewrites files consistently would.
fn replace_listed(dir: &Path, rel: &str, bytes: &[u8]) {
    std::fs::write(dir.join(rel), bytes).unwrap();
    let len = bytes.len() as u64;
    // A version-2 forward file is listed by the checksum of its header and section table.
    let crc = if rel.ends_with(".fwd") && bytes.len() >= 64 {
        let count = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        crc32c::crc32c(&bytes[..(64 + 32 * count).min(bytes.len())])
    } else {
        crc32c::crc32c(bytes)
    };
    edit_manifest(dir, |m| {
        let mut metas: Vec<&mut Mp> = Vec::new();
        if let Mp::Array(segs) = get(m, "segments") {
            for s in segs {
                metas.push(get(s, "file"));
            }
        }
        for meta in metas {
            if get(meta, "name").as_str() == Some(rel) {
                *get(meta, "len") = Mp::from(len);
                *get(meta, "crc") = Mp::from(crc);
            }
        }
        let del = get(m, "deletes");
        if !del.is_nil() && get(del, "name").as_str() == Some(rel) {
            *get(del, "len") = Mp::from(len);
            *get(del, "crc") = Mp::from(crc);
        }
    });
}

/// Sections of the forward file, by position in its table.
const DOC_IDS: usize = 0;
const PK_ENDS: usize = 1;
const PK_BYTES: usize = 2;
const KEYS: usize = 3;
const BLOOM: usize = 4;
const YEAR: usize = 5;
const TAG: usize = 6;
const VECTORS: usize = 7;

/// (offset, length) of section `i` of a forward file.
fn fwd_section(f: &[u8], i: usize) -> (usize, usize) {
    let e = 64 + 32 * i;
    let off = u64::from_le_bytes(f[e + 8..e + 16].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(f[e + 16..e + 24].try_into().unwrap()) as usize;
    (off, len)
}

/// Edits section `i` of the forward file in place, reseals every checksum and lists the file
/// in the manifest again: a consistent forgery.
fn edit_fwd(dir: &Path, i: usize, edit: impl FnOnce(&mut [u8])) {
    let rel = fwd_rel(dir);
    let mut bytes = std::fs::read(dir.join(&rel)).unwrap();
    let (off, len) = fwd_section(&bytes, i);
    edit(&mut bytes[off..off + len]);
    stratavec::fuzz::reseal_forward(&mut bytes);
    replace_listed(dir, &rel, &bytes);
}

/// Writes `x` over the table entry field at `field` (8: offset, 16: length) of section `i`.
fn edit_fwd_table(dir: &Path, i: usize, field: usize, x: u64) {
    let rel = fwd_rel(dir);
    let mut bytes = std::fs::read(dir.join(&rel)).unwrap();
    let e = 64 + 32 * i + field;
    bytes[e..e + 8].copy_from_slice(&x.to_le_bytes());
    stratavec::fuzz::reseal_forward(&mut bytes);
    replace_listed(dir, &rel, &bytes);
}

fn sealed_id(dir: &Path) -> u64 {
    let bytes = std::fs::read(manifest_path(dir)).unwrap();
    let mut m = decode(&bytes[24..]);
    get(at(get(&mut m, "segments"), 0), "id").as_u64().unwrap()
}

fn fwd_rel(dir: &Path) -> String {
    format!("{}/0.fwd", sealed_id(dir))
}

fn graph_rel(dir: &Path) -> String {
    format!("{}/v.0.graph", sealed_id(dir))
}

fn del_rel(dir: &Path) -> String {
    newest(dir, "del.")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn wal_path(dir: &Path) -> PathBuf {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path().join("0.wal");
        if p.exists() {
            return p;
        }
    }
    panic!("no WAL");
}

/// The frames of a WAL: (offset, payload).
fn frames(bytes: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 40;
    while off + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        out.push((off, bytes[off + 8..off + 8 + len].to_vec()));
        off += 8 + len;
    }
    out
}

/// Replaces frame `i`'s payload (checksum recomputed) and returns its offset.
fn rewrite_frame(path: &Path, i: usize, payload: &[u8]) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let fs = frames(&bytes);
    let (off, old) = &fs[i];
    let mut out = bytes[..*off].to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame_crc(payload.len() as u32, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&bytes[off + 8 + old.len()..]);
    std::fs::write(path, out).unwrap();
    *off as u64
}

fn edit_frame(path: &Path, i: usize, edit: impl FnOnce(&mut Mp)) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut v = decode(&frames(&bytes)[i].1);
    edit(&mut v);
    rewrite_frame(path, i, &encode(&v))
}

/// The first row of the first insert record.
fn first_row(record: &mut Mp) -> &mut Mp {
    at(get(get(record, "payload"), "Rows"), 0)
}

/// What opening, reading and flushing a crafted collection gave.
#[derive(Debug)]
enum Outcome {
    /// A typed error (open, read or flush).
    Refused(Error),
    /// Everything worked; the answers were the original ones.
    Correct,
    /// Everything worked but the answers differ: a silently wrong answer.
    Wrong(String),
}

fn exercise(dir: &Path) -> Outcome {
    let run = || -> stratavec::Result<Option<String>> {
        let ro = Collection::open(dir, OpenOptions::default().read_only(true))?;
        let a = answers(&ro)?;
        drop(ro);
        if a != expected() {
            return Ok(Some(a));
        }
        let rw = Collection::open(dir, OpenOptions::default())?;
        rw.flush()?;
        let b = answers(&rw)?;
        rw.close()?;
        if b != expected() {
            return Ok(Some(b));
        }
        let again = Collection::open(dir, OpenOptions::default().read_only(true))?;
        let c = answers(&again)?;
        Ok((c != expected()).then_some(c))
    };
    match run() {
        Err(e) => Outcome::Refused(e),
        Ok(None) => Outcome::Correct,
        Ok(Some(a)) => Outcome::Wrong(a),
    }
}

fn assert_clean(what: &str, dir: &Path) -> Outcome {
    let o = exercise(dir);
    if let Outcome::Wrong(a) = &o {
        panic!(
            "{what}: silently wrong answers:\n{}",
            &a[..a.len().min(2000)]
        );
    }
    o
}

fn assert_corrupted(what: &str, o: Outcome, file_ends: &str) {
    match o {
        Outcome::Refused(Error::Corrupted { path, .. }) => assert!(
            path.to_string_lossy().ends_with(file_ends),
            "{what}: corruption reported in {path:?}, expected a path ending in {file_ends}"
        ),
        other => panic!("{what}: expected Corrupted in {file_ends}, got {other:?}"),
    }
}

const EDGE: [u64; 4] = [0, (1 << 31) - 1, (1 << 32) - 1, 1 << 62];

// ---------------------------------------------------------------------------------------------
// The child process under a memory limit.

const CHILD_ENV: &str = "STRATAVEC_HOSTILE_CHILD";
/// Far above what the cases need (tens of MiB), far below what the old code asked for.
const ADDRESS_SPACE: u64 = 2 << 30;

/// Runs `name` (one of the `child_*` functions below) in a child process of this test binary
/// with its address space limited, and fails with its output if it does not pass.
fn in_child(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        // Fewer malloc arenas: each reserves 64 MiB of address space per thread.
        .env("MALLOC_ARENA_MAX", "2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let id = child.id();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(300)).is_err() {
            // A hang: end the child (by its pid, nothing else) so that the test fails.
            unsafe { libc::kill(id as i32, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    assert!(
        out.status.success(),
        "child case {name} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("CHILD {name} PASSED")),
        "child case {name} did not run:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The child side: does nothing in a normal run.
#[test]
fn child_entry() {
    let Ok(name) = std::env::var(CHILD_ENV) else {
        return;
    };
    let limit = libc::rlimit {
        rlim_cur: ADDRESS_SPACE,
        rlim_max: ADDRESS_SPACE,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    match name.as_str() {
        "manifest_fields" => child_manifest_fields(),
        "file_fields" => child_file_fields(),
        "sparse_wal_tail" => child_sparse_wal_tail(),
        other => panic!("unknown child case {other}"),
    }
    println!("CHILD {name} PASSED");
}

/// Every numeric field of the manifest at 0, 2^31−1, 2^32−1 and 2^62.
fn child_manifest_fields() {
    type Setter = fn(&mut Mp, u64);
    let fields: Vec<(&str, Setter)> = vec![
        ("version", |m, x| *get(m, "version") = x.into()),
        ("writing_segment", |m, x| {
            *get(m, "writing_segment") = x.into()
        }),
        ("next_segment_id", |m, x| {
            *get(m, "next_segment_id") = x.into()
        }),
        ("next_doc_id", |m, x| *get(m, "next_doc_id") = x.into()),
        ("applied_seq", |m, x| *get(m, "applied_seq") = x.into()),
        ("segments[0].id", |m, x| {
            *get(at(get(m, "segments"), 0), "id") = x.into()
        }),
        ("segments[0].block", |m, x| {
            *get(at(get(m, "segments"), 0), "block") = x.into()
        }),
        ("segments[0].rows", |m, x| {
            *get(at(get(m, "segments"), 0), "rows") = x.into()
        }),
        ("segments[0].file.len", |m, x| {
            *get(get(at(get(m, "segments"), 0), "file"), "len") = x.into()
        }),
        ("deletes.len", |m, x| {
            *get(get(m, "deletes"), "len") = x.into()
        }),
        ("dimension", |m, x| {
            *get(at(get(get(m, "schema"), "vectors"), 0), "dimension") = x.into()
        }),
        ("hnsw m", |m, x| {
            let v = at(get(get(m, "schema"), "vectors"), 0);
            *get(get(get(v, "index"), "Hnsw"), "m") = x.into()
        }),
        ("hnsw ef_construction", |m, x| {
            let v = at(get(get(m, "schema"), "vectors"), 0);
            *get(get(get(v, "index"), "Hnsw"), "ef_construction") = x.into()
        }),
        ("max_docs_per_segment", |m, x| {
            *get(get(m, "options"), "max_docs_per_segment") = x.into()
        }),
        ("max_buffer_bytes", |m, x| {
            *get(get(m, "options"), "max_buffer_bytes") = x.into()
        }),
    ];
    for (field, set) in &fields {
        for &x in &EDGE {
            let (_t, dir) = fresh();
            edit_manifest(&dir, |m| set(m, x));
            let what = format!("manifest {field} = {x}");
            let o = assert_clean(&what, &dir);
            eprintln!("{what}: {o:?}");
        }
    }
}

/// Length, count and id fields of the other file kinds at the same edge values.
fn child_file_fields() {
    // Forward store: the first doc id, the first pk end, the first value end of a field, the
    // rows in the header, and each section's offset and length in the table.
    for &x in &EDGE {
        for (part, section) in [("doc_ids", DOC_IDS), ("pk_ends", PK_ENDS), ("tag", TAG)] {
            let (_t, dir) = fresh();
            edit_fwd(&dir, section, |b| b[..8].copy_from_slice(&x.to_le_bytes()));
            let what = format!("fwd {part}[0] = {x}");
            eprintln!("{what}: {:?}", assert_clean(&what, &dir));
        }
        let (_t, dir) = fresh();
        let rel = fwd_rel(&dir);
        let mut bytes = std::fs::read(dir.join(&rel)).unwrap();
        bytes[16..24].copy_from_slice(&x.to_le_bytes());
        stratavec::fuzz::reseal_forward(&mut bytes);
        replace_listed(&dir, &rel, &bytes);
        let what = format!("fwd rows = {x}");
        eprintln!("{what}: {:?}", assert_clean(&what, &dir));
        for section in [DOC_IDS, KEYS, VECTORS] {
            for field in [8, 16] {
                let (_t, dir) = fresh();
                edit_fwd_table(&dir, section, field, x);
                let what = format!("fwd section {section} table field {field} = {x}");
                eprintln!("{what}: {:?}", assert_clean(&what, &dir));
            }
        }
    }
    // Delete set: its count, and a range reaching each edge value.
    for &x in &EDGE {
        let (_t, dir) = fresh();
        let rel = del_rel(&dir);
        let bytes = edit_envelope(&dir.join(&rel), |v| *get(v, "count") = x.into());
        replace_listed(&dir, &rel, &bytes);
        let what = format!("del count = {x}");
        eprintln!("{what}: {:?}", assert_clean(&what, &dir));

        let (_t, dir) = fresh();
        let bytes = edit_envelope(&dir.join(&rel), |v| {
            let mut r = Vec::new();
            r.extend_from_slice(&0u64.to_le_bytes());
            r.extend_from_slice(&x.to_le_bytes());
            *get(v, "ranges") = Mp::Binary(r);
            *get(v, "count") = x.saturating_add(1).into();
        });
        replace_listed(&dir, &rel, &bytes);
        let what = format!("del range 0..={x}");
        eprintln!("{what}: {:?}", assert_clean(&what, &dir));
    }
    // Graph: rows, layers, entry, section count, and the first section's offset and length.
    for &x in &EDGE {
        for (field, offset, width) in [
            ("rows", 16, 4),
            ("layers", 20, 4),
            ("entry", 24, 4),
            ("sections", 28, 4),
            ("section 0 offset", 64, 8),
            ("section 0 length", 72, 8),
        ] {
            let (_t, dir) = fresh();
            let path = dir.join(graph_rel(&dir));
            let mut g = std::fs::read(&path).unwrap();
            g[offset..offset + width].copy_from_slice(&x.to_le_bytes()[..width]);
            reseal_graph(&mut g);
            std::fs::write(&path, g).unwrap();
            let what = format!("graph {field} = {x}");
            let o = assert_clean(&what, &dir);
            // A graph that fails its checks is rebuilt, so the answers stay right.
            assert!(matches!(o, Outcome::Correct), "{what}: {o:?}");
        }
    }
    // WAL: a frame length, a record's seq, and the header's segment id.
    for &x in &EDGE {
        let (_t, dir) = fresh();
        let wal = wal_path(&dir);
        let mut bytes = std::fs::read(&wal).unwrap();
        let off = frames(&bytes)[1].0;
        bytes[off..off + 4].copy_from_slice(&(x as u32).to_le_bytes());
        std::fs::write(&wal, bytes).unwrap();
        let what = format!("wal frame length = {}", x as u32);
        eprintln!("{what}: {:?}", exercise(&dir));

        let (_t, dir) = fresh();
        let wal = wal_path(&dir);
        edit_frame(&wal, 2, |r| *get(r, "seq") = x.into());
        let what = format!("wal seq = {x}");
        let o = exercise(&dir);
        assert!(matches!(o, Outcome::Refused(_)), "{what}: {o:?}");

        let (_t, dir) = fresh();
        let wal = wal_path(&dir);
        let mut bytes = std::fs::read(&wal).unwrap();
        bytes[16..24].copy_from_slice(&x.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..36]);
        bytes[36..40].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&wal, bytes).unwrap();
        let what = format!("wal header segment = {x}");
        let o = exercise(&dir);
        assert!(matches!(o, Outcome::Refused(_)), "{what}: {o:?}");
    }
}

/// A WAL with a 3 GiB sparse zero tail opens under a 2 GiB address-space limit: the tail is a
/// torn tail, truncated, and nothing acknowledged is lost. A 3 GiB manifest is refused unread.
fn child_sparse_wal_tail() {
    let (_t, dir) = fresh();
    let wal = wal_path(&dir);
    let len = std::fs::metadata(&wal).unwrap().len();
    let tail = 3u64 << 30;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len + tail)
        .unwrap();
    let c = Collection::open(&dir, OpenOptions::default()).unwrap();
    let report = c.open_report().wal.clone().unwrap();
    assert_eq!(report.truncated_bytes, tail);
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), len);
    assert_eq!(answers(&c).unwrap(), expected());
    c.close().unwrap();

    // A manifest padded to 3 GiB is refused before it is read.
    let (_t, dir) = fresh();
    let manifest = manifest_path(&dir);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&manifest)
        .unwrap()
        .set_len(tail)
        .unwrap();
    assert_corrupted("3 GiB manifest", exercise(&dir), "manifest.3");
}

#[test]
fn manifest_fields_at_edge_values_under_a_memory_limit() {
    in_child("manifest_fields");
}

#[test]
fn file_fields_at_edge_values_under_a_memory_limit() {
    in_child("file_fields");
}

#[test]
fn a_sparse_multi_gigabyte_zero_tail_is_a_torn_tail() {
    in_child("sparse_wal_tail");
}

// ---------------------------------------------------------------------------------------------
// The cases of the issue, one by one.

#[test]
fn the_template_answers_correctly() {
    let (_t, dir) = fresh();
    assert!(matches!(exercise(&dir), Outcome::Correct));
    let report = Collection::verify(&dir, &OpenOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn hnsw_limits_in_the_manifest_are_refused_not_exited_on() {
    for (m, ef) in [
        (1usize << 31, 32u64),
        (8, (1 << 31) - 1),
        (8, 1 << 62),
        (257, 32),
    ] {
        let (_t, dir) = fresh();
        edit_manifest(&dir, |man| {
            let v = at(get(get(man, "schema"), "vectors"), 0);
            let h = get(get(v, "index"), "Hnsw");
            *get(h, "m") = (m as u64).into();
            *get(h, "ef_construction") = ef.into();
        });
        let o = exercise(&dir);
        assert_corrupted(&format!("m {m} ef {ef}"), o, "manifest.3");
    }
}

#[test]
fn next_doc_id_zero_is_refused_and_a_large_one_still_answers_correctly() {
    let (_t, dir) = fresh();
    edit_manifest(&dir, |m| *get(m, "next_doc_id") = 0u64.into());
    assert_corrupted("next_doc_id 0", exercise(&dir), "manifest.3");

    // Below the stored rows' count: doc ids would be reused.
    let (_t, dir) = fresh();
    edit_manifest(&dir, |m| *get(m, "next_doc_id") = 995u64.into());
    assert_corrupted("next_doc_id 995", exercise(&dir), "manifest.3");

    let (_t, dir) = fresh();
    edit_manifest(&dir, |m| *get(m, "next_doc_id") = (1u64 << 62).into());
    assert!(matches!(exercise(&dir), Outcome::Correct));
    let c = Collection::open(&dir, OpenOptions::default()).unwrap();
    c.insert(&[doc("new".into(), 7)]).unwrap();
    assert_eq!(c.fetch(&["new"]).unwrap().len(), 1);
}

#[test]
fn applied_seq_above_the_wal_is_refused_not_skipped() {
    let (_t, dir) = fresh();
    edit_manifest(&dir, |m| *get(m, "applied_seq") = 1_000_000u64.into());
    assert_corrupted("applied_seq high", exercise(&dir), "0.wal");
    // Nothing was deleted: with the manifest repaired, every acknowledged write is there.
    edit_manifest(&dir, |m| *get(m, "applied_seq") = 4u64.into());
    assert!(matches!(exercise(&dir), Outcome::Correct));
}

#[test]
fn stored_file_names_cannot_leave_the_collection() {
    for name in [
        "../escape.graph",
        "/tmp/stratavec-escape.graph",
        "1/v.0.graph\0x",
        "x",
    ] {
        let (t, dir) = fresh();
        let graph = dir.join(graph_rel(&dir));
        std::fs::remove_file(&graph).unwrap();
        edit_manifest(&dir, |m| {
            *at(get(at(get(m, "segments"), 0), "graphs"), 0) = Mp::from(name);
        });
        assert_corrupted(name, exercise(&dir), "manifest.3");
        assert!(!t.path().join("escape.graph").exists());
        assert!(!Path::new("/tmp/stratavec-escape.graph").exists());
    }
    for (field, name) in [("file", "../0.fwd"), ("deletes", "../del.3")] {
        let (_t, dir) = fresh();
        edit_manifest(&dir, |m| {
            let meta = if field == "file" {
                get(at(get(m, "segments"), 0), "file")
            } else {
                get(m, "deletes")
            };
            *get(meta, "name") = Mp::from(name);
        });
        assert_corrupted(name, exercise(&dir), "manifest.3");
    }
}

#[test]
fn collection_names_and_schemas_are_validated_like_create() {
    for name in ["x".repeat(1 << 20), "a\n../b".to_string(), String::new()] {
        let t = tempfile::tempdir().unwrap();
        let mut s = schema();
        s.name = name.clone();
        let err = Collection::create(t.path().join("c"), s, CollectionOptions::default());
        assert!(matches!(err, Err(Error::InvalidSchema { .. })));
        let (_t, dir) = fresh();
        edit_manifest(&dir, |m| {
            *get(get(m, "schema"), "name") = Mp::from(name.as_str())
        });
        assert_corrupted("name", exercise(&dir), "manifest.3");
    }
    // A schema without vector fields is allowed: a filter-only collection.
    let t = tempfile::tempdir().unwrap();
    let c = Collection::create(
        t.path().join("c"),
        CollectionSchema::new("plain").field(FieldSchema::new("year", DataType::Int32)),
        CollectionOptions::default(),
    )
    .unwrap();
    c.insert(&[Doc::new("a").set("year", 1)]).unwrap();
    assert_eq!(c.fetch(&["a"]).unwrap().len(), 1);
}

#[test]
fn trailing_bytes_after_a_manifest_are_refused() {
    let (_t, dir) = fresh();
    let path = manifest_path(&dir);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.push(0xc0);
    reseal_envelope(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    assert_corrupted("trailing byte", exercise(&dir), "manifest.3");
}

/// Each kind of invalid row, logged with a valid checksum, is refused at its record's offset,
/// or salvaged up to it on request; never applied.
#[test]
fn invalid_replayed_rows_are_corruption_at_their_record() {
    type Edit = fn(&mut Mp);
    let cases: Vec<(&str, Edit)> = vec![
        ("NaN vector", |r| {
            if let Mp::Binary(b) = at(get(first_row(r), "vectors"), 0) {
                b[..4].copy_from_slice(&f32::NAN.to_le_bytes());
            }
        }),
        ("infinite vector", |r| {
            if let Mp::Binary(b) = at(get(first_row(r), "vectors"), 0) {
                b[4..8].copy_from_slice(&f32::INFINITY.to_le_bytes());
            }
        }),
        ("short vector", |r| {
            if let Mp::Binary(b) = at(get(first_row(r), "vectors"), 0) {
                b.truncate(4);
            }
        }),
        ("string in an int32 column", |r| {
            *at(get(first_row(r), "fields"), 0) =
                Mp::Map(vec![(Mp::from("String"), Mp::from("x"))]);
        }),
        ("null in a non-nullable column", |r| {
            *at(get(first_row(r), "fields"), 0) = Mp::from("Null");
        }),
        ("empty pk", |r| *get(first_row(r), "pk") = Mp::from("")),
        ("pk with NUL", |r| {
            *get(first_row(r), "pk") = Mp::from("a\0b")
        }),
        ("pk with newline", |r| {
            *get(first_row(r), "pk") = Mp::from("a\nb")
        }),
        ("5000-byte pk", |r| {
            *get(first_row(r), "pk") = Mp::from("p".repeat(5000).as_str())
        }),
        ("empty batch", |r| {
            *get(get(r, "payload"), "Rows") = Mp::Array(Vec::new());
        }),
        ("rows in a delete", |r| *get(r, "op") = Mp::from("Delete")),
    ];
    for (what, edit) in cases {
        let (_t, dir) = fresh();
        let wal = wal_path(&dir);
        let offset = edit_frame(&wal, 2, edit);
        match exercise(&dir) {
            Outcome::Refused(Error::Corrupted {
                path, offset: at, ..
            }) => {
                assert_eq!(path, wal, "{what}");
                assert_eq!(at, offset, "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
        // Salvage keeps the records before it (two batches) and the damaged file aside.
        let c = Collection::open(&dir, OpenOptions::default().salvage(true)).unwrap();
        let kept = c
            .fetch(
                &(0..UNFLUSHED)
                    .map(|i| format!("w{}", 10_000 + i))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert_eq!(kept.len(), 2 * UNFLUSHED / 5, "{what}");
        assert!(wal.with_extension("wal.corrupt").exists(), "{what}");
    }
}

/// A batch whose array length is forged to 0 leaves its rows as trailing bytes: refused.
#[test]
fn a_forged_batch_length_is_refused() {
    let (_t, dir) = fresh();
    let wal = wal_path(&dir);
    let bytes = std::fs::read(&wal).unwrap();
    let mut record = decode(&frames(&bytes)[2].1);
    let rows = std::mem::replace(
        get(get(&mut record, "payload"), "Rows"),
        Mp::Array(Vec::new()),
    );
    let mut payload = encode(&record);
    if let Mp::Array(rows) = rows {
        for r in rows {
            payload.extend_from_slice(&encode(&r));
        }
    }
    let offset = rewrite_frame(&wal, 2, &payload);
    match exercise(&dir) {
        Outcome::Refused(Error::Corrupted {
            path,
            offset: at,
            reason,
        }) => {
            assert_eq!((path, at), (wal, offset));
            assert!(reason.contains("trailing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn forward_store_pk_damage_is_refused() {
    // A zero first pk end: an empty pk.
    let (_t, dir) = fresh();
    edit_fwd(&dir, PK_ENDS, |b| {
        b[..8].copy_from_slice(&0u64.to_le_bytes())
    });
    assert_corrupted("zero pk end", exercise(&dir), "0.fwd");

    // Two live rows with one pk: d500's pk becomes d501's (the key index still says d500).
    let (_t, dir) = fresh();
    let rel = fwd_rel(&dir);
    let bytes = std::fs::read(dir.join(&rel)).unwrap();
    let (ends_at, _) = fwd_section(&bytes, PK_ENDS);
    let end = |i: usize| {
        u64::from_le_bytes(
            bytes[ends_at + 8 * i..ends_at + 8 * i + 8]
                .try_into()
                .unwrap(),
        ) as usize
    };
    let (a, b) = (end(499), end(500));
    edit_fwd(&dir, PK_BYTES, |pks| pks[a..b].copy_from_slice(b"d501"));
    assert_corrupted("duplicate live pk", exercise(&dir), "0.fwd");

    // A NaN vector in the forward store.
    let (_t, dir) = fresh();
    edit_fwd(&dir, VECTORS, |b| {
        b[..4].copy_from_slice(&f32::NAN.to_le_bytes())
    });
    std::fs::remove_file(dir.join(graph_rel(&dir))).unwrap();
    assert_corrupted("NaN in fwd", exercise(&dir), "0.fwd");
}

#[test]
fn forward_store_damage_in_every_section_is_reported() {
    let sections = [DOC_IDS, PK_ENDS, PK_BYTES, KEYS, BLOOM, YEAR, TAG, VECTORS];
    for &section in &sections {
        // A bit flip without the checksum recomputed: the section's checksum catches it.
        let (_t, dir) = fresh();
        let rel = fwd_rel(&dir);
        let mut bytes = std::fs::read(dir.join(&rel)).unwrap();
        let (off, len) = fwd_section(&bytes, section);
        bytes[off + len / 2] ^= 0x10;
        std::fs::write(dir.join(&rel), &bytes).unwrap();
        assert_corrupted(
            &format!("bit flip in section {section}"),
            exercise(&dir),
            "0.fwd",
        );
        let report = Collection::verify(&dir, &OpenOptions::default()).unwrap();
        assert!(
            report.problems.iter().any(|p| p.path.ends_with(&rel)),
            "verify misses a bit flip in section {section}: {:?}",
            report.problems
        );
        // A bit flip in the section's chunk checksums (right after its bytes).
        let (_t, dir) = fresh();
        let mut bytes = std::fs::read(dir.join(&rel)).unwrap();
        bytes[off + len] ^= 0x01;
        std::fs::write(dir.join(&rel), &bytes).unwrap();
        assert_corrupted(
            &format!("bit flip in the checksums of section {section}"),
            exercise(&dir),
            "0.fwd",
        );
    }
    // Forged contents with every checksum recomputed: the structure checks catch them (or the
    // answers stay right).
    type Forgery = (&'static str, usize, fn(&mut [u8]));
    let forgeries: [Forgery; 7] = [
        ("doc ids out of order", DOC_IDS, |b| b.swap(8, 16)),
        ("a key entry pointing at another row", KEYS, |b| b[8] ^= 1),
        ("key entries out of order", KEYS, |b| {
            let (x, y) = b.split_at_mut(16);
            x.swap_with_slice(&mut y[..16]);
        }),
        ("an empty bloom filter", BLOOM, |b| b.fill(0)),
        ("a NULL in a non-nullable field", YEAR, |b| b[..8].fill(0)),
        ("a value end past the section", TAG, |b| {
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes())
        }),
        ("an infinite vector component", VECTORS, |b| {
            b[4..8].copy_from_slice(&f32::INFINITY.to_le_bytes())
        }),
    ];
    for (what, section, forge) in forgeries {
        let (_t, dir) = fresh();
        edit_fwd(&dir, section, forge);
        if section == VECTORS {
            std::fs::remove_file(dir.join(graph_rel(&dir))).unwrap();
        }
        match exercise(&dir) {
            Outcome::Wrong(a) => panic!(
                "{what}: silently wrong answers:\n{}",
                &a[..a.len().min(500)]
            ),
            o => eprintln!("{what}: {o:?}"),
        }
        let report = Collection::verify(&dir, &OpenOptions::default()).unwrap();
        assert!(!report.problems.is_empty(), "verify misses {what}");
    }
    // Truncation at several offsets: refused by the length the manifest records, or (with the
    // manifest agreeing) by the header and table.
    for cut in [0usize, 10, 63, 64, 100, 4096] {
        let (_t, dir) = fresh();
        let rel = fwd_rel(&dir);
        let bytes = std::fs::read(dir.join(&rel)).unwrap();
        std::fs::write(dir.join(&rel), &bytes[..cut]).unwrap();
        assert_corrupted(&format!("cut at {cut}"), exercise(&dir), "0.fwd");
        let (_t, dir) = fresh();
        replace_listed(&dir, &rel, &bytes[..cut]);
        assert_corrupted(&format!("cut at {cut}, listed"), exercise(&dir), "0.fwd");
    }
}

#[test]
fn a_fetch_checks_only_the_chunks_it_reads() {
    // A bit flip in the vector of row 500 (d500), checksums left alone: the vector section has
    // one checksum per 4 KiB, and row 500's bytes lie in its fourth chunk.
    let (_t, dir) = fresh();
    let rel = fwd_rel(&dir);
    let mut bytes = std::fs::read(dir.join(&rel)).unwrap();
    let (off, _) = fwd_section(&bytes, VECTORS);
    let at = off + 500 * 4 * DIM;
    bytes[at] ^= 0x10;
    std::fs::write(dir.join(&rel), &bytes).unwrap();
    let intact = Collection::open(template(), OpenOptions::default().read_only(true)).unwrap();
    let c = Collection::open(&dir, OpenOptions::default().read_only(true)).unwrap();
    // A row in an intact chunk answers exactly as before the damage.
    let got = c.fetch(&["d20", "d999"]).unwrap();
    assert_eq!(got, intact.fetch(&["d20", "d999"]).unwrap());
    // The damaged row is reported, at the start of its chunk.
    match c.fetch(&["d500"]) {
        Err(Error::Corrupted { path, offset, .. }) => {
            assert!(path.ends_with(&rel), "{path:?}");
            assert_eq!(offset, (off + (at - off) / 4096 * 4096) as u64);
        }
        other => panic!("fetch of the damaged row: {other:?}"),
    }
    // A search reads the whole column, and reports it too; rows in intact chunks stay
    // readable after that (the open's background warm-up may have found the damage first).
    let search = c.search("v", &vector(3), &SearchOptions::new().topk(5).ef(2000));
    assert!(matches!(search, Err(Error::Corrupted { .. })), "{search:?}");
    assert_eq!(c.fetch(&["d20"]).unwrap(), intact.fetch(&["d20"]).unwrap());
}

/// Graph sections of a crafted file: (offset, length) of section `i`.
fn section(g: &[u8], i: usize) -> (usize, usize) {
    let e = 64 + 24 * i;
    let off = u64::from_le_bytes(g[e..e + 8].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(g[e + 8..e + 16].try_into().unwrap()) as usize;
    (off, len)
}

#[test]
fn bad_inverse_norms_make_the_graph_rebuild() {
    for bad in [0.0f32, f32::NAN, f32::INFINITY, 3.0] {
        let (_t, dir) = fresh();
        let path = dir.join(graph_rel(&dir));
        let mut g = std::fs::read(&path).unwrap();
        let (off, _) = section(&g, 0);
        g[off + 40..off + 44].copy_from_slice(&bad.to_le_bytes());
        reseal_graph(&mut g);
        std::fs::write(&path, &g).unwrap();
        let report = Collection::verify(&dir, &OpenOptions::default()).unwrap();
        assert!(
            report.problems.iter().any(|p| p.path == path),
            "{bad}: {:?}",
            report.problems
        );
        // Norms are checked against the vectors on first use (an open does not read the
        // vectors): the graph is rebuilt in memory then, and the answers stay right.
        let c = Collection::open(&dir, OpenOptions::default().read_only(true)).unwrap();
        assert_eq!(answers(&c).unwrap(), expected(), "{bad}");
        assert_eq!(c.stats().graphs[0].in_memory, 1, "{bad}");
    }
}

#[test]
fn verify_reports_a_crafted_ring_and_unreachable_rows() {
    // Layer 0 rewired into a ring (every neighbour of row i is i + 1): structurally valid,
    // connected, and useless for search.
    let (_t, dir) = fresh();
    let path = dir.join(graph_rel(&dir));
    let mut g = std::fs::read(&path).unwrap();
    let (offs, _) = section(&g, 2);
    let (nbs, _) = section(&g, 3);
    let word = |g: &[u8], at: usize| u32::from_le_bytes(g[at..at + 4].try_into().unwrap());
    let rows = word(&g, 16) as usize;
    for r in 0..rows {
        let (a, b) = (word(&g, offs + 4 * r), word(&g, offs + 4 * r + 4));
        for k in a..b {
            let at = nbs + 4 * k as usize;
            g[at..at + 4].copy_from_slice(&(((r + 1) % rows) as u32).to_le_bytes());
        }
    }
    reseal_graph(&mut g);
    std::fs::write(&path, &g).unwrap();
    let report = Collection::verify(&dir, &OpenOptions::default()).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.path == path && p.reason.contains("recall")),
        "{:?}",
        report.problems
    );

    // Every neighbour is row 0: most rows are unreachable.
    let (_t, dir) = fresh();
    let path = dir.join(graph_rel(&dir));
    let mut g = std::fs::read(&path).unwrap();
    let (nbs, len) = section(&g, 3);
    g[nbs..nbs + len].fill(0);
    reseal_graph(&mut g);
    std::fs::write(&path, &g).unwrap();
    let report = Collection::verify(&dir, &OpenOptions::default()).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.path == path && p.reason.contains("unreachable")),
        "{:?}",
        report.problems
    );
}

#[test]
fn reserved_bytes_must_be_zero() {
    let (_t, dir) = fresh();
    let wal = wal_path(&dir);
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[12] = 1;
    let crc = crc32c::crc32c(&bytes[..36]);
    bytes[36..40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&wal, bytes).unwrap();
    assert_corrupted("WAL reserved", exercise(&dir), "0.wal");

    let (_t, dir) = fresh();
    let path = dir.join(graph_rel(&dir));
    let mut g = std::fs::read(&path).unwrap();
    g[40] = 1;
    reseal_graph(&mut g);
    std::fs::write(&path, &g).unwrap();
    let c = Collection::open(&dir, OpenOptions::default().read_only(true)).unwrap();
    assert!(c.open_report().graphs.iter().any(
        |(_, _, l)| matches!(l, GraphLoad::Rebuilt { reason } if reason.contains("reserved"))
    ));
}

/// Opens in a thread and fails the test if it has not returned within a minute.
fn open_within_a_minute(dir: &Path) -> stratavec::Result<()> {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let r = Collection::open(&dir, OpenOptions::default().read_only(true)).map(|_| ());
        let _ = tx.send(r);
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("open hung on a special file")
}

#[test]
fn special_files_in_place_of_collection_files_are_errors_not_hangs() {
    let targets: Vec<fn(&Path) -> PathBuf> = vec![
        manifest_path,
        |d| d.join(fwd_rel(d)),
        |d| d.join(del_rel(d)),
        wal_path,
        |d| d.join(graph_rel(d)),
    ];
    for target in targets {
        // A FIFO.
        let (_t, dir) = fresh();
        let path = target(&dir);
        std::fs::remove_file(&path).unwrap();
        let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let r = open_within_a_minute(&dir);
        // A graph is rebuilt from the forward store; everything else is an error.
        if path.extension().is_some_and(|e| e == "graph") {
            assert!(r.is_ok(), "{path:?}: {r:?}");
        } else {
            assert!(r.is_err(), "{path:?}");
        }
        // A symlink to the real file.
        let (_t, dir) = fresh();
        let path = target(&dir);
        let real = path.with_extension("real");
        std::fs::rename(&path, &real).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        let r = open_within_a_minute(&dir);
        if path.extension().is_some_and(|e| e == "graph") {
            assert!(r.is_ok(), "{path:?}: {r:?}");
        } else {
            assert!(matches!(r, Err(Error::Io { .. })), "{path:?}: {r:?}");
        }
    }
}

#[test]
fn version_1_delete_files_are_still_read() {
    let (_t, dir) = fresh();
    let rel = del_rel(&dir);
    // The first release's bitset: d0..d9 have doc ids 0..9, the replaced d10 has id 10.
    let mut words = vec![0u8; 8];
    words[..8].copy_from_slice(&0x7ffu64.to_le_bytes());
    let payload = encode(&Mp::Map(vec![
        (Mp::from("words"), Mp::Binary(words)),
        (Mp::from("count"), Mp::from(11u64)),
    ]));
    let mut bytes = b"SVDEL\r\n\x1a".to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 12]);
    bytes.extend_from_slice(&payload);
    reseal_envelope(&mut bytes);
    replace_listed(&dir, &rel, &bytes);
    assert!(matches!(exercise(&dir), Outcome::Correct));

    // An unknown version is refused, naming it.
    let (_t, dir) = fresh();
    let mut bytes = std::fs::read(dir.join(&rel)).unwrap();
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    replace_listed(&dir, &rel, &bytes);
    match exercise(&dir) {
        Outcome::Refused(Error::Corrupted { reason, .. }) => {
            assert!(reason.contains("version 3"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// Finite but huge components overflow products to ±inf (and a sum of both to NaN, on which
/// hnsw_rs panics); whatever the kernels make of them, building and searching a graph over them
/// works (the graph distance maps a NaN to "as far as can be").
#[test]
fn huge_finite_components_do_not_reach_hnsw_as_nan() {
    let t = tempfile::tempdir().unwrap();
    let s =
        CollectionSchema::new("huge").vector(VectorSchema::new("v", 4).metric(Metric::Ip).index(
            IndexKind::Hnsw {
                m: 4,
                ef_construction: 16,
            },
        ));
    let c = Collection::create(t.path().join("c"), s, CollectionOptions::default()).unwrap();
    let big = 3e38f32;
    let docs: Vec<Doc> = (0..40)
        .map(|i| {
            let sign = |k: usize| if (i >> k) & 1 == 1 { -big } else { big };
            Doc::new(format!("h{i}")).vector("v", vec![sign(0), sign(1), sign(2), sign(3)])
        })
        .collect();
    c.insert(&docs).unwrap();
    c.flush().unwrap();
    let hits = c
        .search("v", &[big, -big, big, -big], &SearchOptions::new().topk(3))
        .unwrap();
    assert_eq!(hits.len(), 3);
    c.close().unwrap();
}

/// The WAL reader never loads a zero tail, yet a record whose payload itself ends in zeros (a
/// zero vector, say) is read whole, with or without a zero tail after it.
#[test]
fn records_ending_in_zeros_survive_the_zero_tail_trimming() {
    use serde_bytes::ByteBuf;
    use stratavec::storage::StdStorage;
    use stratavec::wal::{FlushPolicy, Op, Wal, WalId, WalOpenOptions};
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("0.wal");
    let id = WalId {
        segment: 0,
        block: 0,
    };
    let storage = std::sync::Arc::new(StdStorage);
    let payloads: Vec<Vec<u8>> = vec![
        vec![1, 0, 0, 0],
        vec![0; 5000],
        vec![7; 3],
        vec![2; 1]
            .into_iter()
            .chain(std::iter::repeat_n(0, 70_000))
            .collect(),
    ];
    let wal: Wal<ByteBuf> =
        Wal::create(storage.clone(), &path, id, 1, FlushPolicy::Always).unwrap();
    for p in &payloads {
        wal.append(Op::Insert, &ByteBuf::from(p.clone())).unwrap();
    }
    drop(wal);
    let len = std::fs::metadata(&path).unwrap().len();
    for tail in [0u64, 3, 4096, 5 << 20] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len + tail)
            .unwrap();
        let read = Wal::<ByteBuf>::read(&StdStorage, &path, id).unwrap();
        let got: Vec<Vec<u8>> = read.records.iter().map(|r| r.payload.to_vec()).collect();
        assert_eq!(got, payloads, "tail {tail}");
        assert_eq!(read.report.truncated_bytes, tail, "tail {tail}");
        let (_, rec) =
            Wal::<ByteBuf>::open(storage.clone(), &path, id, &WalOpenOptions::default()).unwrap();
        assert_eq!(rec.records.len(), payloads.len());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    }
}

/// `verify` goes on after a problem: each damaged file is listed, with its offset, and nothing
/// is changed or rebuilt.
#[test]
fn verify_lists_every_problem_and_changes_nothing() {
    let (_t, dir) = fresh();
    // The second sealed segment's forward store: one flipped byte (checksum mismatch).
    let bytes = std::fs::read(manifest_path(&dir)).unwrap();
    let mut m = decode(&bytes[24..]);
    let second = get(at(get(&mut m, "segments"), 1), "id").as_u64().unwrap();
    let fwd = dir.join(format!("{second}/0.fwd"));
    let mut f = std::fs::read(&fwd).unwrap();
    let last = f.len() - 1;
    f[last] ^= 1;
    std::fs::write(&fwd, &f).unwrap();
    // The first segment's graph: a NaN inverse norm (checksums recomputed).
    let graph = dir.join(graph_rel(&dir));
    let mut g = std::fs::read(&graph).unwrap();
    let (off, _) = section(&g, 0);
    g[off..off + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal_graph(&mut g);
    std::fs::write(&graph, &g).unwrap();
    // The WAL: a record at or below the manifest's applied seq.
    edit_manifest(&dir, |m| *get(m, "applied_seq") = 5u64.into());

    let report = Collection::verify(&dir, &OpenOptions::default()).unwrap();
    let paths: Vec<&Path> = report.problems.iter().map(|p| p.path.as_path()).collect();
    assert_eq!(
        paths,
        vec![graph.as_path(), fwd.as_path()],
        "{:?}",
        report.problems
    );
    assert_eq!(report.problems[0].offset, off as u64);
    assert!(!report.is_ok());
    assert_eq!(std::fs::read(&graph).unwrap(), g, "verify rebuilt nothing");

    // With the forward store repaired, the cross-file checks and the WAL replay run too.
    f[last] ^= 1;
    std::fs::write(&fwd, &f).unwrap();
    let report = Collection::verify(&dir, &OpenOptions::default()).unwrap();
    let wal = wal_path(&dir);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.path == wal && p.offset == 40 && p.reason.contains("applied seq")),
        "{:?}",
        report.problems
    );
}

/// A segment directory replaced by a symlink to a directory outside the collection is refused:
/// following it would read files from elsewhere, rebuild a graph into it, or remove its files
/// as leftovers.
#[test]
fn a_symlinked_segment_directory_is_refused_and_its_target_untouched() {
    let (t, dir) = fresh();
    let seg = dir.join(sealed_id(&dir).to_string());
    let outside = t.path().join("outside");
    std::fs::rename(&seg, &outside).unwrap();
    std::fs::write(outside.join("precious"), b"keep me").unwrap();
    std::fs::remove_file(outside.join("v.0.graph")).unwrap();
    std::os::unix::fs::symlink(&outside, &seg).unwrap();
    for read_only in [false, true] {
        let r = Collection::open(&dir, OpenOptions::default().read_only(read_only));
        assert!(
            matches!(&r, Err(Error::Corrupted { path, .. }) if *path == seg),
            "{r:?}"
        );
    }
    assert_eq!(std::fs::read(outside.join("precious")).unwrap(), b"keep me");
    assert!(
        !outside.join("v.0.graph").exists(),
        "no graph rebuilt outside"
    );
    let report = Collection::verify(&dir, &OpenOptions::default()).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
}

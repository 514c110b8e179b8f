//! Helpers shared by the collection crash tests: the schema, random write calls, an in-memory
//! model of what a collection must hold, a text form of calls that a child process prints, and
//! seeded trial plumbing.
//!
//! The model applies writes with the collection's semantics, one document after the other:
//! insert only when the key is absent, upsert replaces, update merges the given fields into a
//! live document, delete removes.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stratavec::{
    Collection, CollectionSchema, DataType, Doc, DocStatus, FieldSchema, Metric, Result,
    SearchOptions, Value, VectorSchema,
};

/// The schema of every crash test: an int64 `n`, a nullable string `s`, a 4-d vector `v`.
pub fn schema() -> CollectionSchema {
    CollectionSchema::new("crash")
        .field(FieldSchema::new("n", DataType::Int64))
        .field(FieldSchema::new("s", DataType::String).nullable())
        .vector(VectorSchema::new("v", 4).metric(Metric::L2))
}

/// A whole document as the model keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub n: i64,
    pub s: Option<String>,
    pub v: [f32; 4],
}

/// The fields an update gives: `s: Some(None)` clears `s`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch {
    pub n: Option<i64>,
    pub s: Option<Option<String>>,
    pub v: Option<[f32; 4]>,
}

/// One write call and its batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Insert(Vec<(String, Rec)>),
    Upsert(Vec<(String, Rec)>),
    Update(Vec<(String, Patch)>),
    Delete(Vec<String>),
}

/// One call of a workload.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Write(Write),
    Flush,
    Sync,
    Optimize,
}

/// Primary key → document: what a collection must hold.
pub type Model = BTreeMap<String, Rec>;

pub fn key(i: usize) -> String {
    format!("k{i}")
}

/// The key space `k0..k<n>`.
pub fn keys(n: usize) -> Vec<String> {
    (0..n).map(key).collect()
}

fn rec_doc(pk: &str, r: &Rec) -> Doc {
    let d = Doc::new(pk).set("n", r.n).vector("v", r.v.to_vec());
    match &r.s {
        Some(s) => d.set("s", s.as_str()),
        // Leaving a nullable field out and giving it as Null mean the same; use both.
        None if r.n.rem_euclid(2) == 0 => d.set("s", Value::Null),
        None => d,
    }
}

fn patch_doc(pk: &str, p: &Patch) -> Doc {
    let mut d = Doc::new(pk);
    if let Some(n) = p.n {
        d = d.set("n", n);
    }
    match &p.s {
        Some(Some(s)) => d = d.set("s", s.as_str()),
        Some(None) => d = d.set("s", Value::Null),
        None => {}
    }
    if let Some(v) = p.v {
        d = d.vector("v", v.to_vec());
    }
    d
}

impl Write {
    /// Applies the write to the model; returns the statuses the collection must report.
    pub fn apply(&self, model: &mut Model) -> Vec<DocStatus> {
        match self {
            Write::Insert(docs) => docs
                .iter()
                .map(|(pk, r)| {
                    if model.contains_key(pk) {
                        DocStatus::AlreadyExists
                    } else {
                        model.insert(pk.clone(), r.clone());
                        DocStatus::Ok
                    }
                })
                .collect(),
            Write::Upsert(docs) => docs
                .iter()
                .map(|(pk, r)| {
                    model.insert(pk.clone(), r.clone());
                    DocStatus::Ok
                })
                .collect(),
            Write::Update(docs) => docs
                .iter()
                .map(|(pk, p)| match model.get_mut(pk) {
                    None => DocStatus::NotFound,
                    Some(r) => {
                        if let Some(n) = p.n {
                            r.n = n;
                        }
                        if let Some(s) = &p.s {
                            r.s = s.clone();
                        }
                        if let Some(v) = p.v {
                            r.v = v;
                        }
                        DocStatus::Ok
                    }
                })
                .collect(),
            Write::Delete(pks) => pks
                .iter()
                .map(|pk| match model.remove(pk) {
                    Some(_) => DocStatus::Ok,
                    None => DocStatus::NotFound,
                })
                .collect(),
        }
    }

    /// The model after this write.
    pub fn applied_to(&self, model: &Model) -> Model {
        let mut m = model.clone();
        self.apply(&mut m);
        m
    }

    /// Runs the write on a collection.
    pub fn run(&self, c: &Collection) -> Result<Vec<DocStatus>> {
        match self {
            Write::Insert(docs) => {
                c.insert(&docs.iter().map(|(k, r)| rec_doc(k, r)).collect::<Vec<_>>())
            }
            Write::Upsert(docs) => {
                c.upsert(&docs.iter().map(|(k, r)| rec_doc(k, r)).collect::<Vec<_>>())
            }
            Write::Update(docs) => c.update(
                &docs
                    .iter()
                    .map(|(k, p)| patch_doc(k, p))
                    .collect::<Vec<_>>(),
            ),
            Write::Delete(pks) => c.delete(pks),
        }
    }

    /// Number of documents in the batch.
    pub fn len(&self) -> usize {
        match self {
            Write::Insert(d) | Write::Upsert(d) => d.len(),
            Write::Update(d) => d.len(),
            Write::Delete(d) => d.len(),
        }
    }
}

impl Call {
    /// Runs the call; flush, sync and optimize report no statuses.
    pub fn run(&self, c: &Collection) -> Result<Vec<DocStatus>> {
        match self {
            Call::Write(w) => w.run(c),
            Call::Flush => c.flush().map(|()| Vec::new()),
            Call::Sync => c.sync().map(|()| Vec::new()),
            Call::Optimize => c.optimize().map(|()| Vec::new()),
        }
    }

    pub fn as_write(&self) -> Option<&Write> {
        match self {
            Call::Write(w) => Some(w),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Random calls

/// Strings of `[a-z0-9]`, sometimes empty: no separator of the text form can occur in them.
fn random_string(rng: &mut SmallRng) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let len = if rng.gen_ratio(1, 10) {
        0
    } else {
        rng.gen_range(1..=16)
    };
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn random_vector(rng: &mut SmallRng) -> [f32; 4] {
    std::array::from_fn(|_| rng.gen_range(-400i32..400) as f32 / 8.0)
}

pub fn random_rec(rng: &mut SmallRng) -> Rec {
    Rec {
        n: if rng.gen_ratio(1, 8) {
            rng.gen()
        } else {
            rng.gen_range(-1000..1000)
        },
        s: if rng.gen_ratio(1, 3) {
            None
        } else {
            Some(random_string(rng))
        },
        v: random_vector(rng),
    }
}

fn random_patch(rng: &mut SmallRng) -> Patch {
    Patch {
        n: rng.gen_ratio(1, 2).then(|| rng.gen_range(-1000..1000)),
        s: rng
            .gen_ratio(1, 2)
            .then(|| rng.gen_ratio(2, 3).then(|| random_string(rng))),
        v: rng.gen_ratio(1, 2).then(|| random_vector(rng)),
    }
}

/// A write of 1..=`max_batch` documents over the key space `k0..k<key_space>`, so that
/// duplicates, conflicts and misses are common.
pub fn random_write(rng: &mut SmallRng, key_space: usize, max_batch: usize) -> Write {
    let len = rng.gen_range(1..=max_batch);
    let pk = |rng: &mut SmallRng| key(rng.gen_range(0..key_space));
    match rng.gen_range(0..10) {
        0..=2 => Write::Insert((0..len).map(|_| (pk(rng), random_rec(rng))).collect()),
        3..=4 => Write::Upsert((0..len).map(|_| (pk(rng), random_rec(rng))).collect()),
        5..=6 => Write::Update((0..len).map(|_| (pk(rng), random_patch(rng))).collect()),
        _ => Write::Delete((0..len).map(|_| pk(rng)).collect()),
    }
}

/// Mostly writes; now and then a flush, a sync or an optimize.
pub fn random_call(rng: &mut SmallRng, key_space: usize, max_batch: usize) -> Call {
    match rng.gen_range(0..100) {
        0..=2 => Call::Flush,
        3..=5 => Call::Sync,
        6 => Call::Optimize,
        _ => Call::Write(random_write(rng, key_space, max_batch)),
    }
}

// ---------------------------------------------------------------------------------------------
// Text form: one call per line, for a child process to tell its parent what it does.
//
//   insert pk|n|s|v pk|n|s|v ...     s: `~` for null; v: four f32 bit patterns in hex
//   upsert ...
//   update pk|n|s|v ...              a `-` component is not given
//   delete pk pk ...
//   flush | sync | optimize

fn enc_vec(v: &[f32; 4]) -> String {
    v.iter()
        .map(|x| format!("{:x}", x.to_bits()))
        .collect::<Vec<_>>()
        .join(",")
}

fn dec_vec(s: &str) -> Option<[f32; 4]> {
    let parts: Vec<f32> = s
        .split(',')
        .map(|p| u32::from_str_radix(p, 16).ok().map(f32::from_bits))
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

fn enc_s(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("~")
}

fn dec_s(s: &str) -> Option<String> {
    (s != "~").then(|| s.to_string())
}

pub fn encode_call(call: &Call) -> String {
    let mut out = String::new();
    match call {
        Call::Flush => out.push_str("flush"),
        Call::Sync => out.push_str("sync"),
        Call::Optimize => out.push_str("optimize"),
        Call::Write(Write::Insert(d)) | Call::Write(Write::Upsert(d)) => {
            out.push_str(if matches!(call, Call::Write(Write::Insert(_))) {
                "insert"
            } else {
                "upsert"
            });
            for (pk, r) in d {
                let _ = write!(out, " {pk}|{}|{}|{}", r.n, enc_s(&r.s), enc_vec(&r.v));
            }
        }
        Call::Write(Write::Update(d)) => {
            out.push_str("update");
            for (pk, p) in d {
                let n = p.n.map_or("-".to_string(), |n| n.to_string());
                let s = match &p.s {
                    None => "-",
                    Some(s) => enc_s(s),
                };
                let v = p.v.as_ref().map_or("-".to_string(), enc_vec);
                let _ = write!(out, " {pk}|{n}|{s}|{v}");
            }
        }
        Call::Write(Write::Delete(pks)) => {
            out.push_str("delete");
            for pk in pks {
                let _ = write!(out, " {pk}");
            }
        }
    }
    out
}

pub fn decode_call(line: &str) -> Option<Call> {
    let mut tokens = line.split(' ');
    let op = tokens.next()?;
    let fields = |t: &str| -> Option<[String; 4]> {
        let parts: Vec<String> = t.split('|').map(str::to_string).collect();
        parts.try_into().ok()
    };
    Some(match op {
        "flush" => Call::Flush,
        "sync" => Call::Sync,
        "optimize" => Call::Optimize,
        "insert" | "upsert" => {
            let docs = tokens
                .map(|t| {
                    let [pk, n, s, v] = fields(t)?;
                    Some((
                        pk,
                        Rec {
                            n: n.parse().ok()?,
                            s: dec_s(&s),
                            v: dec_vec(&v)?,
                        },
                    ))
                })
                .collect::<Option<Vec<_>>>()?;
            Call::Write(if op == "insert" {
                Write::Insert(docs)
            } else {
                Write::Upsert(docs)
            })
        }
        "update" => Call::Write(Write::Update(
            tokens
                .map(|t| {
                    let [pk, n, s, v] = fields(t)?;
                    let patch = Patch {
                        n: if n == "-" {
                            None
                        } else {
                            Some(n.parse().ok()?)
                        },
                        s: (s != "-").then(|| dec_s(&s)),
                        v: if v == "-" { None } else { Some(dec_vec(&v)?) },
                    };
                    Some((pk, patch))
                })
                .collect::<Option<Vec<_>>>()?,
        )),
        "delete" => Call::Write(Write::Delete(tokens.map(str::to_string).collect())),
        _ => return None,
    })
}

pub fn encode_statuses(st: &[DocStatus]) -> String {
    st.iter()
        .map(|s| match s {
            DocStatus::Ok => 'O',
            DocStatus::AlreadyExists => 'A',
            DocStatus::NotFound => 'N',
        })
        .collect()
}

pub fn decode_statuses(s: &str) -> Option<Vec<DocStatus>> {
    s.chars()
        .map(|c| match c {
            'O' => Some(DocStatus::Ok),
            'A' => Some(DocStatus::AlreadyExists),
            'N' => Some(DocStatus::NotFound),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading a collection back

/// The model form of a fetched document; panics on a document the schema cannot produce.
pub fn rec_of(d: &Doc) -> Rec {
    let n = match d.fields.get("n") {
        Some(Value::Int64(n)) => *n,
        other => panic!("doc {}: field n is {other:?}, expected an int64", d.pk),
    };
    let s = match d.fields.get("s") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => panic!("doc {}: field s is {other:?}, expected a string", d.pk),
    };
    assert!(
        d.fields.keys().all(|k| k == "n" || k == "s"),
        "doc {} has unknown fields: {:?}",
        d.pk,
        d.fields.keys().collect::<Vec<_>>()
    );
    let v = d
        .vectors
        .get("v")
        .unwrap_or_else(|| panic!("doc {} has no vector v", d.pk));
    let v: [f32; 4] = v
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("doc {}: vector of {} components", d.pk, v.len()));
    Rec { n, s, v }
}

/// Everything the collection holds under `keys`, read three ways that must agree: `fetch` of
/// every key (with vectors), `stats().doc_count`, and an exhaustive search.
pub fn read_back(c: &Collection, keys: &[String]) -> Model {
    let docs = c
        .fetch(keys)
        .unwrap_or_else(|e| panic!("fetch after recovery failed: {e}"));
    let mut got = Model::new();
    for d in &docs {
        assert!(
            got.insert(d.pk.clone(), rec_of(d)).is_none(),
            "fetch returned {} twice",
            d.pk
        );
    }
    let count = c.stats().doc_count;
    assert_eq!(
        count,
        got.len() as u64,
        "stats().doc_count disagrees with fetch ({} docs)",
        got.len()
    );
    let hits = c
        .search(
            "v",
            &[0.0; 4],
            &SearchOptions::new()
                .topk(keys.len() + 10)
                .include_vector(false),
        )
        .unwrap_or_else(|e| panic!("search after recovery failed: {e}"));
    let hit_pks: BTreeSet<&str> = hits.iter().map(|d| d.pk.as_str()).collect();
    assert_eq!(hit_pks.len(), hits.len(), "search returned a pk twice");
    assert!(
        hit_pks.iter().copied().eq(got.keys().map(String::as_str)),
        "search finds {:?}, fetch {:?}",
        hit_pks,
        got.keys().collect::<Vec<_>>()
    );
    got
}

/// A readable account of how `got` differs from `want`.
pub fn diff(want: &Model, got: &Model) -> String {
    let mut out = String::new();
    let all: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    let mut shown = 0;
    for k in all {
        let (w, g) = (want.get(k), got.get(k));
        if w != g {
            shown += 1;
            if shown <= 8 {
                let _ = writeln!(out, "  {k}: want {w:?}, got {g:?}");
            }
        }
    }
    if shown > 8 {
        let _ = writeln!(out, "  ... {} more", shown - 8);
    }
    out
}

/// Which of the allowed outcomes the collection shows: `Some(false)` the acknowledged writes
/// alone, `Some(true)` those plus the in-flight write; panics otherwise.
pub fn expect_one_of(got: &Model, acked: &Model, inflight: Option<&Model>, what: &str) -> bool {
    if got == acked {
        return false;
    }
    if inflight.is_some_and(|m| got == m) {
        return true;
    }
    match inflight {
        Some(m) if m != acked => panic!(
            "{what}: the collection holds neither the acknowledged writes nor those plus the \
             in-flight batch.\nagainst the acknowledged writes:\n{}against acknowledged + \
             in-flight:\n{}",
            diff(acked, got),
            diff(m, got)
        ),
        _ => panic!(
            "{what}: the collection differs from the acknowledged writes:\n{}",
            diff(acked, got)
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds and trials

fn env_u64(name: &str) -> Option<u64> {
    let s = std::env::var(name).ok()?;
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The base seed of a run: `STRATAVEC_SEED` or a fixed default.
pub fn base_seed() -> u64 {
    env_u64("STRATAVEC_SEED").unwrap_or(0xC011_EC71_0000_0001)
}

/// `0..default`, or `0..STRATAVEC_TRIALS`, or only `STRATAVEC_TRIAL`.
pub fn trials(default: u64) -> std::ops::Range<u64> {
    if let Some(t) = env_u64("STRATAVEC_TRIAL") {
        return t..t + 1;
    }
    0..env_u64("STRATAVEC_TRIALS").unwrap_or(default)
}

pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The seed of one trial of one test.
pub fn trial_seed(test: &str, trial: u64) -> u64 {
    let mut h = base_seed();
    for b in test.bytes() {
        h = splitmix(h ^ u64::from(b));
    }
    splitmix(h ^ trial)
}

pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

/// Prints how to replay a trial when the test panics while it is alive.
pub struct Trial {
    what: String,
}

impl Trial {
    /// For trials that depend on earlier ones (they continue on the same collection): the
    /// whole run is the unit of replay.
    pub fn in_run(test: &str, trial: u64, seed: u64, detail: impl std::fmt::Display) -> Trial {
        Trial {
            what: format!(
                "FAILED TRIAL: test {test}, trial {trial}, seed {seed:#x}, {detail}\n  replay \
                 the run: STRATAVEC_SEED={:#x} cargo test --test <file> {test}",
                base_seed()
            ),
        }
    }

    pub fn new(test: &str, trial: u64, seed: u64, detail: impl std::fmt::Display) -> Trial {
        Trial {
            what: format!(
                "FAILED TRIAL: test {test}, trial {trial}, seed {seed:#x}, {detail}\n  replay: \
                 STRATAVEC_SEED={:#x} STRATAVEC_TRIAL={trial} cargo test --test <file> {test}",
                base_seed()
            ),
        }
    }
}

impl Drop for Trial {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.what);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrent writers: one key space per writer, and a schema with a second (HNSW) vector

/// [`schema`] plus an HNSW vector `h` that always mirrors `v` (written by [`run_mirrored`]), so
/// that persists and merges write graph files too.
pub fn mirrored_schema() -> CollectionSchema {
    schema().vector(VectorSchema::new("h", 4).metric(Metric::L2).index(
        stratavec::IndexKind::Hnsw {
            m: 8,
            ef_construction: 32,
        },
    ))
}

/// Key `i` of writer `w`: `w<w>k<i>`.
pub fn writer_key(w: usize, i: usize) -> String {
    format!("w{w}{}", key(i))
}

/// The key space of writer `w`.
pub fn writer_keys(w: usize, n: usize) -> Vec<String> {
    (0..n).map(|i| writer_key(w, i)).collect()
}

/// The key spaces of writers `0..writers`, one after the other.
pub fn all_writer_keys(writers: usize, n: usize) -> Vec<String> {
    (0..writers).flat_map(|w| writer_keys(w, n)).collect()
}

/// The writer whose key space holds `pk`.
pub fn writer_of(pk: &str) -> Option<usize> {
    let rest = pk.strip_prefix('w')?;
    let digits = rest.split('k').next()?;
    digits.parse().ok()
}

/// `model` cut into the key spaces of writers `0..writers`; panics on a key of no writer.
pub fn split_by_writer(model: &Model, writers: usize) -> Vec<Model> {
    let mut out = vec![Model::new(); writers];
    for (pk, r) in model {
        let w = writer_of(pk)
            .filter(|&w| w < writers)
            .unwrap_or_else(|| panic!("key {pk} belongs to no writer"));
        out[w].insert(pk.clone(), r.clone());
    }
    out
}

/// The union of the writers' models.
pub fn union(models: &[Model]) -> Model {
    models.iter().flat_map(|m| m.clone()).collect()
}

/// The write with every key `k<i>` moved into writer `w`'s key space.
pub fn in_writer_space(w: usize, write: Write) -> Write {
    let k = |pk: String| format!("w{w}{pk}");
    match write {
        Write::Insert(d) => Write::Insert(d.into_iter().map(|(pk, r)| (k(pk), r)).collect()),
        Write::Upsert(d) => Write::Upsert(d.into_iter().map(|(pk, r)| (k(pk), r)).collect()),
        Write::Update(d) => Write::Update(d.into_iter().map(|(pk, p)| (k(pk), p)).collect()),
        Write::Delete(d) => Write::Delete(d.into_iter().map(k).collect()),
    }
}

/// [`random_write`] in writer `w`'s key space.
pub fn random_write_for(rng: &mut SmallRng, w: usize, key_space: usize, max_batch: usize) -> Write {
    in_writer_space(w, random_write(rng, key_space, max_batch))
}

/// [`random_call`] in writer `w`'s key space.
pub fn random_call_for(rng: &mut SmallRng, w: usize, key_space: usize, max_batch: usize) -> Call {
    match random_call(rng, key_space, max_batch) {
        Call::Write(write) => Call::Write(in_writer_space(w, write)),
        other => other,
    }
}

/// Runs the write on a collection of [`mirrored_schema`]: every document that gives `v` gives
/// the same vector as `mirror`.
pub fn run_mirrored(write: &Write, c: &Collection, mirror: &str) -> Result<Vec<DocStatus>> {
    let full = |docs: &[(String, Rec)]| -> Vec<Doc> {
        docs.iter()
            .map(|(k, r)| rec_doc(k, r).vector(mirror, r.v.to_vec()))
            .collect()
    };
    match write {
        Write::Insert(docs) => c.insert(&full(docs)),
        Write::Upsert(docs) => c.upsert(&full(docs)),
        Write::Update(docs) => c.update(
            &docs
                .iter()
                .map(|(k, p)| match p.v {
                    Some(v) => patch_doc(k, p).vector(mirror, v.to_vec()),
                    None => patch_doc(k, p),
                })
                .collect::<Vec<_>>(),
        ),
        Write::Delete(pks) => c.delete(pks),
    }
}

/// Panics unless every document carries vector `mirror` equal to its `v`.
pub fn assert_mirrored(docs: &[Doc], mirror: &str, what: &str) {
    for d in docs {
        assert_eq!(
            d.vectors.get(mirror),
            d.vectors.get("v"),
            "{what}: doc {}: vector {mirror} differs from v",
            d.pk
        );
    }
}

/// Where the simulated-storage tests keep their collection.
pub fn path() -> &'static std::path::Path {
    std::path::Path::new("/db/c")
}

/// A simulated file system holding the empty directory `/db`.
pub fn fresh_sim() -> stratavec::storage::SimStorage {
    use stratavec::storage::Storage as _;
    let sim = stratavec::storage::SimStorage::new();
    sim.create_dir_all(std::path::Path::new("/db")).unwrap();
    sim
}

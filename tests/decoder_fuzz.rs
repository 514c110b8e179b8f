//! Fuzz-style tests of every decoder of untrusted files: the WAL reader, the manifest, the
//! delete set, the forward store and the graph. Inputs are mutations (byte flips, edge values
//! written over length/count/id fields, truncations, duplicated ranges) of a seed corpus of real
//! files checked into `tests/fuzz_corpus/`, with checksums recomputed after each mutation so
//! that the mutations reach the code behind them. No decoder may panic, hang or allocate
//! without bound: the process runs under a 2 GiB address-space limit, so an unbounded
//! allocation fails the test instead of the machine.
//!
//! The default run is short (`PROPTEST_CASES`, 200 per decoder). A longer run:
//! `PROPTEST_CASES=100000 cargo test --release --test decoder_fuzz`. The seed corpus is
//! regenerated with `cargo test --test decoder_fuzz -- --ignored write_seed_corpus`.

use std::path::{Path, PathBuf};
use std::sync::Once;

use proptest::prelude::*;
use stratavec::fuzz;
use stratavec::wal::format::frame_crc;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, IndexKind, Metric,
    OpenOptions, VectorSchema,
};

const M: usize = 4;

fn schema() -> CollectionSchema {
    CollectionSchema::new("fuzz")
        .field(FieldSchema::new("n", DataType::Int64))
        .field(FieldSchema::new("s", DataType::String).nullable())
        .field(FieldSchema::new("a", DataType::ArrayInt32).nullable())
        .vector(
            VectorSchema::new("v", 4)
                .metric(Metric::Cosine)
                .index(IndexKind::Hnsw {
                    m: M,
                    ef_construction: 16,
                }),
        )
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus")
}

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(corpus().join(name)).unwrap_or_else(|e| panic!("seed {name}: {e}"))
}

/// Rows of the seed forward store and graph.
const ROWS: usize = 40;

fn limit_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let limit = libc::rlimit {
            rlim_cur: 2 << 30,
            rlim_max: 2 << 30,
        };
        // SAFETY: setrlimit reads the struct we pass and nothing else.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    });
}

/// One mutation of a file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    U32(usize, u32),
    U64(usize, u64),
    Truncate(usize),
    Duplicate(usize, usize),
}

const EDGES: [u64; 8] = [
    0,
    1,
    0xff,
    (1 << 31) - 1,
    1 << 31,
    (1 << 32) - 1,
    1 << 62,
    u64::MAX,
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, x)| Mutation::Flip(at, x)),
        (any::<usize>(), 0..EDGES.len()).prop_map(|(at, e)| Mutation::U32(at, EDGES[e] as u32)),
        (any::<usize>(), 0..EDGES.len()).prop_map(|(at, e)| Mutation::U64(at, EDGES[e])),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..64usize).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
    ]
}

/// Applies mutations to the bytes from `from` on (so that a format's checksummed header can be
/// kept and resealed).
fn mutate(mut bytes: Vec<u8>, from: usize, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let span = bytes.len().saturating_sub(from).max(1);
        let pos = |at: usize| from + at % span;
        match *m {
            Mutation::Flip(at, x) => {
                let p = pos(at);
                if p < bytes.len() {
                    bytes[p] ^= x;
                }
            }
            Mutation::U32(at, x) => {
                let p = pos(at);
                if p + 4 <= bytes.len() {
                    bytes[p..p + 4].copy_from_slice(&x.to_le_bytes());
                }
            }
            Mutation::U64(at, x) => {
                let p = pos(at);
                if p + 8 <= bytes.len() {
                    bytes[p..p + 8].copy_from_slice(&x.to_le_bytes());
                }
            }
            Mutation::Truncate(at) => bytes.truncate(pos(at).max(from)),
            Mutation::Duplicate(at, n) => {
                let p = pos(at).min(bytes.len());
                let end = (p + n).min(bytes.len());
                let copy = bytes[p..end].to_vec();
                bytes.splice(p..p, copy);
            }
        }
    }
    bytes
}

/// Recomputes the checksum of every frame that still parses, so that mutated payloads reach
/// the record decoder.
fn reseal_wal(bytes: &mut [u8]) {
    let mut off = 40;
    while off + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 || off + 8 + len > bytes.len() {
            break;
        }
        let crc = frame_crc(len as u32, &bytes[off + 8..off + 8 + len]);
        bytes[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
        off += 8 + len;
    }
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn seeds_decode() {
    limit_memory();
    fuzz::manifest_payload(&seed("manifest.payload")).unwrap();
    fuzz::delete_file(&seed("del")).unwrap();
    fuzz::forward_file(&seed("fwd"), &schema()).unwrap();
    fuzz::forward_file(&seed("fwd2"), &schema()).unwrap();
    fuzz::graph_file(&seed("graph"), Metric::Cosine, ROWS, M).unwrap();
    assert!(fuzz::wal_image(&seed("wal"), &schema()).unwrap() >= 4);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn manifest_decoder(muts in proptest::collection::vec(mutation(), 1..6)) {
        limit_memory();
        let _ = fuzz::manifest_payload(&mutate(seed("manifest.payload"), 0, &muts));
    }

    #[test]
    fn delete_set_decoder(muts in proptest::collection::vec(mutation(), 1..6)) {
        limit_memory();
        let mut bytes = mutate(seed("del"), 24, &muts);
        fuzz::reseal_envelope(&mut bytes);
        let _ = fuzz::delete_file(&bytes);
    }

    #[test]
    fn forward_store_decoder(muts in proptest::collection::vec(mutation(), 1..6)) {
        limit_memory();
        let mut bytes = mutate(seed("fwd"), 24, &muts);
        fuzz::reseal_envelope(&mut bytes);
        let _ = fuzz::forward_file(&bytes, &schema());
    }

    #[test]
    fn forward_store_v2_decoder(muts in proptest::collection::vec(mutation(), 1..6)) {
        limit_memory();
        let mut bytes = mutate(seed("fwd2"), 12, &muts);
        fuzz::reseal_forward(&mut bytes);
        let _ = fuzz::forward_file(&bytes, &schema());
    }

    #[test]
    fn graph_decoder(muts in proptest::collection::vec(mutation(), 1..6)) {
        limit_memory();
        let mut bytes = mutate(seed("graph"), 8, &muts);
        fuzz::reseal_graph(&mut bytes);
        let _ = fuzz::graph_file(&bytes, Metric::Cosine, ROWS, M);
    }

    #[test]
    fn wal_decoder(muts in proptest::collection::vec(mutation(), 1..6)) {
        limit_memory();
        let mut bytes = mutate(seed("wal"), 40, &muts);
        reseal_wal(&mut bytes);
        let _ = fuzz::wal_image(&bytes, &schema());
    }

    #[test]
    fn wal_decoder_unsealed(muts in proptest::collection::vec(mutation(), 1..6)) {
        limit_memory();
        let _ = fuzz::wal_image(&mutate(seed("wal"), 0, &muts), &schema());
    }
}

/// Writes the seed corpus from a small real collection (run by hand, see the module docs).
#[test]
#[ignore]
fn write_seed_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let c = Collection::create(
        &live,
        schema(),
        CollectionOptions::default().merge_policy(None),
    )
    .unwrap();
    let doc = |i: usize| {
        let mut d = Doc::new(format!("k{i}"))
            .set("n", i as i64)
            .vector("v", vec![i as f32, 1.0, (i % 3) as f32, -1.0]);
        if i.is_multiple_of(2) {
            d = d.set("s", format!("s{i}")).set("a", vec![i as i32, 7]);
        }
        d
    };
    c.insert(&(0..ROWS).map(doc).collect::<Vec<_>>()).unwrap();
    c.flush().unwrap();
    c.delete(&["k1", "k2", "k3", "k20"]).unwrap();
    c.insert(&(100..104).map(doc).collect::<Vec<_>>()).unwrap();
    c.update(&[Doc::new("k5").set("n", 55i64)]).unwrap();
    c.upsert(&[doc(6)]).unwrap();
    c.delete(&["k7"]).unwrap();
    c.flush().unwrap();
    c.insert(&(200..205).map(doc).collect::<Vec<_>>()).unwrap();
    c.update(&[Doc::new("k8").vector("v", vec![0.5, 0.5, 0.5, 0.5])])
        .unwrap();
    c.delete(&["k9", "k200"]).unwrap();
    c.upsert(&[doc(201)]).unwrap();
    // The WAL as a crash leaves it (close would persist it).
    let out = corpus();
    std::fs::create_dir_all(&out).unwrap();
    let find = |pred: &dyn Fn(&Path) -> bool| -> PathBuf {
        let mut stack = vec![live.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if pred(&p) {
                    return p;
                }
            }
        }
        panic!("not found");
    };
    let copy = |from: PathBuf, to: &str| std::fs::copy(from, out.join(to)).unwrap();
    // `fwd` is a file of the first layout (version 1), kept as it was written; a regenerated
    // corpus writes the current layout as `fwd2`.
    copy(find(&|p| p.ends_with("0/0.fwd")), "fwd2");
    copy(find(&|p| p.ends_with("0/v.0.graph")), "graph");
    copy(find(&|p| p.extension().is_some_and(|e| e == "wal")), "wal");
    copy(
        find(&|p| p.file_name().unwrap().to_string_lossy().starts_with("del.")),
        "del",
    );
    let manifest = find(&|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("manifest.")
    });
    std::fs::write(
        out.join("manifest.payload"),
        &std::fs::read(manifest).unwrap()[24..],
    )
    .unwrap();
    c.close().unwrap();
    // The seeds are what a sound collection holds.
    Collection::open(&live, OpenOptions::default().read_only(true)).unwrap();
}

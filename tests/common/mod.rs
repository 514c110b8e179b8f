//! Helpers shared by the WAL crash tests: a self-checking payload, seeded trial plumbing and
//! the checks every recovery must pass.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use stratavec::storage::{SimStorage, Storage};
use stratavec::wal::{
    FlushPolicy, Op, Recovered, Wal, WalId, WalOpenOptions, WalPayload, WalRecord,
};
use stratavec::Result;

/// The WAL every crash test uses.
pub const ID: WalId = WalId {
    segment: 0,
    block: 0,
};

/// Linux errno values; the simulator reports exactly these.
pub const EIO: i32 = 5;
pub const ENOSPC: i32 = 28;

/// A payload that can tell whether it is intact: `data` is a pseudo-random pattern derived
/// from `id` and its length, and `check` a checksum over everything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doc {
    /// Who wrote it: the seq it was meant for, or `thread << 32 | n` for concurrent writers.
    pub id: u64,
    /// How many documents it stands for (the unit of `FlushPolicy::EveryDocs`).
    pub docs: u32,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub check: u32,
}

impl WalPayload for Doc {
    fn doc_count(&self) -> usize {
        self.docs as usize
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The bytes a `Doc` with this id and length carries.
pub fn pattern(id: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut state = splitmix(id ^ (len as u64).rotate_left(32));
    while out.len() < len {
        state = splitmix(state);
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn checksum(id: u64, docs: u32, data: &[u8]) -> u32 {
    let mut head = [0u8; 12];
    head[..8].copy_from_slice(&id.to_le_bytes());
    head[8..].copy_from_slice(&docs.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&head), data)
}

impl Doc {
    pub fn new(id: u64, docs: u32, len: usize) -> Doc {
        let data = pattern(id, len);
        Doc {
            id,
            docs,
            check: checksum(id, docs, &data),
            data,
        }
    }

    /// Whether the payload is exactly what `Doc::new` made: no byte garbled or missing.
    pub fn is_intact(&self) -> bool {
        self.check == checksum(self.id, self.docs, &self.data)
            && self.data == pattern(self.id, self.data.len())
    }
}

/// The op a record with this id logs: all four kinds show up.
pub fn op_for(id: u64) -> Op {
    match splitmix(id) % 4 {
        0 => Op::Insert,
        1 => Op::Upsert,
        2 => Op::Update,
        _ => Op::Delete,
    }
}

/// A payload length: mostly small, sometimes a few KiB, rarely tens of KiB.
pub fn random_len(rng: &mut SmallRng) -> usize {
    match rng.gen_range(0..100) {
        0..=29 => rng.gen_range(0..64),
        30..=84 => rng.gen_range(64..1024),
        85..=98 => rng.gen_range(1024..16 * 1024),
        _ => rng.gen_range(16 * 1024..70 * 1024),
    }
}

/// A doc count for `EveryDocs`: usually 1..=4, sometimes a big batch, rarely zero.
pub fn random_docs(rng: &mut SmallRng) -> u32 {
    match rng.gen_range(0..20) {
        0 => 0,
        1 => rng.gen_range(5..=12),
        _ => rng.gen_range(1..=4),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// The base seed of a run: `STRATAVEC_SEED` or a fixed default, so runs are reproducible.
pub fn base_seed() -> u64 {
    env_u64("STRATAVEC_SEED").unwrap_or(0x5EED_57A7_AEC0_0001)
}

/// The trials to run: `0..default` (or `0..STRATAVEC_TRIALS`), or only `STRATAVEC_TRIAL`.
pub fn trials(default: u64) -> std::ops::Range<u64> {
    if let Some(t) = env_u64("STRATAVEC_TRIAL") {
        return t..t + 1;
    }
    0..env_u64("STRATAVEC_TRIALS").unwrap_or(default)
}

/// The seed of one trial of one test.
pub fn trial_seed(test: &str, trial: u64) -> u64 {
    let salt = test.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    splitmix(base_seed() ^ salt ^ splitmix(trial))
}

pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

/// Prints how to replay a trial if it panics (the panic message itself says what failed).
pub struct Trial {
    what: String,
}

impl Trial {
    pub fn new(test: &str, trial: u64, seed: u64, detail: impl std::fmt::Display) -> Trial {
        let mut what = String::new();
        let _ = write!(
            what,
            "FAILED TRIAL: test {test}, trial {trial}, seed {seed:#x}, {detail}\n  replay: \
             STRATAVEC_SEED={:#x} STRATAVEC_TRIAL={trial} cargo test --test {} {test}",
            base_seed(),
            env!("CARGO_CRATE_NAME")
        );
        Trial { what }
    }
}

impl Drop for Trial {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.what);
        }
    }
}

/// Checks what every recovered log must be, whatever the crash: seqs strictly increasing and
/// every payload intact.
pub fn assert_well_formed(records: &[WalRecord<Doc>]) {
    for pair in records.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "seqs not strictly increasing: {} then {}",
            pair[0].seq,
            pair[1].seq
        );
    }
    for r in records {
        assert!(
            r.payload.is_intact(),
            "record seq {} has a garbled payload (id {}, {} data bytes)",
            r.seq,
            r.payload.id,
            r.payload.data.len()
        );
        assert_eq!(
            r.op,
            op_for(r.payload.id),
            "record seq {} has the wrong op",
            r.seq
        );
    }
}

/// Where the simulated WAL lives.
pub fn wal_path() -> &'static Path {
    Path::new("/db/0.wal")
}

/// A fresh simulated disk holding an empty, durable WAL.
pub fn fresh(policy: FlushPolicy) -> (SimStorage, Wal<Doc>) {
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new("/db")).unwrap();
    let wal = Wal::create(Arc::new(sim.clone()), wal_path(), ID, 1, policy).unwrap();
    (sim, wal)
}

/// Opens the simulated WAL for appending, as recovery does.
pub fn open(sim: &SimStorage, policy: FlushPolicy) -> Result<(Wal<Doc>, Recovered<Doc>)> {
    Wal::open(
        Arc::new(sim.clone()),
        wal_path(),
        ID,
        &WalOpenOptions {
            policy,
            salvage: false,
            next_seq: 1,
        },
    )
}

/// Reopens after a power loss or a failure, which must always work.
pub fn reopen(sim: &SimStorage, policy: FlushPolicy) -> (Wal<Doc>, Recovered<Doc>) {
    match open(sim, policy) {
        Ok(x) => x,
        Err(e) => panic!("reopening after a power loss failed: {e}"),
    }
}

/// A simulated power loss.
#[derive(Debug, Clone, Copy)]
pub enum Crash {
    /// Everything not fsynced is lost.
    Clean,
    /// A random prefix of the unsynced appends survives.
    Torn(u64),
}

impl Crash {
    pub fn hit(self, sim: &SimStorage) {
        match self {
            Crash::Clean => sim.crash(),
            Crash::Torn(seed) => sim.crash_torn(seed),
        }
    }

    /// The other kind, for the next crash.
    pub fn other(self) -> Crash {
        match self {
            Crash::Clean => Crash::Torn(0xD15C),
            Crash::Torn(_) => Crash::Clean,
        }
    }

    /// Trials alternate between the two kinds.
    pub fn alternate(trial: u64) -> Crash {
        if trial.is_multiple_of(2) {
            Crash::Clean
        } else {
            Crash::Torn(splitmix(trial))
        }
    }
}

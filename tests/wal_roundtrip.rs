//! Records come back exactly as written: across reopens, and under concurrent writers.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use stratavec::storage::{StdStorage, Storage};
use stratavec::wal::{FlushPolicy, Op, Wal, WalId, WalOpenOptions, WalPayload};

const ID: WalId = WalId {
    segment: 3,
    block: 7,
};

fn storage() -> Arc<dyn Storage> {
    Arc::new(StdStorage)
}

fn bytes_for(i: u64, len: usize) -> ByteBuf {
    ByteBuf::from(
        (0..len)
            .map(|j| (i as usize * 31 + j * 7) as u8)
            .collect::<Vec<u8>>(),
    )
}

fn reopen(
    path: &Path,
    policy: FlushPolicy,
) -> (Wal<ByteBuf>, Vec<stratavec::wal::WalRecord<ByteBuf>>) {
    let opts = WalOpenOptions {
        policy,
        ..Default::default()
    };
    let (wal, rec) = Wal::<ByteBuf>::open(storage(), path, ID, &opts).expect("reopen");
    assert_eq!(
        rec.report.truncated_bytes, 0,
        "a clean WAL has no torn tail"
    );
    (wal, rec.records)
}

#[test]
fn ten_thousand_records_with_a_4_mib_one_round_trip_across_three_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("7.wal");
    let big = 4 * 1024 * 1024;
    let size_of = |i: u64| match i {
        5_000 => big,
        i if i >= 20_000 => 64,
        i => (i % 300) as usize + 1,
    };

    let wal = Wal::<ByteBuf>::create(storage(), &path, ID, 1, FlushPolicy::Never).unwrap();
    let mut expected = Vec::new();
    for i in 0..10_000u64 {
        let seq = wal.append(Op::Insert, &bytes_for(i, size_of(i))).unwrap();
        expected.push((seq, i));
    }
    wal.sync().unwrap();
    drop(wal);

    // Three rounds of reopen + append: order and contents are kept, seqs keep increasing.
    let ops = [Op::Upsert, Op::Update, Op::Delete];
    for (round, op) in ops.iter().enumerate() {
        let (wal, records) = reopen(&path, FlushPolicy::Never);
        assert_eq!(records.len(), expected.len(), "round {round}");
        for (r, &(seq, i)) in records.iter().zip(&expected) {
            assert_eq!(r.seq, seq);
            assert_eq!(r.payload, bytes_for(i, size_of(i)), "record {i} differs");
        }
        for k in 0..100u64 {
            let i = 20_000 + round as u64 * 100 + k;
            let seq = wal.append(*op, &bytes_for(i, 64)).unwrap();
            assert!(seq > expected.last().unwrap().0);
            expected.push((seq, i));
        }
        wal.sync().unwrap();
    }
    let (_, records) = reopen(&path, FlushPolicy::Never);
    assert_eq!(records.len(), 10_300);
    assert_eq!(records.last().unwrap().op, Op::Delete);
    assert_eq!(records[5_000].payload.len(), big);
}

/// A payload that names its writer, so interleaving or duplication is visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tagged {
    thread: u32,
    n: u32,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

impl WalPayload for Tagged {
    fn doc_count(&self) -> usize {
        1
    }
}

fn tagged(thread: u32, n: u32) -> Tagged {
    let len = 16 + (n as usize * 13 + thread as usize) % 200;
    Tagged {
        thread,
        n,
        body: vec![(thread * 17 + n) as u8; len],
    }
}

fn concurrent_appends(policy: FlushPolicy) {
    const THREADS: u32 = 8;
    const PER_THREAD: u32 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.wal");
    let wal = Arc::new(Wal::<Tagged>::create(storage(), &path, ID, 1, policy).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for n in 0..PER_THREAD {
                    seqs.push(wal.append(Op::Insert, &tagged(t, n)).unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut acked = HashSet::new();
    for h in handles {
        for seq in h.join().unwrap() {
            assert!(acked.insert(seq), "{policy}: seq {seq} handed out twice");
        }
    }
    drop(wal); // also stops an interval syncer, which fsyncs once more

    let (_, rec) = Wal::<Tagged>::open(storage(), &path, ID, &WalOpenOptions::default()).unwrap();
    assert_eq!(
        rec.records.len(),
        (THREADS * PER_THREAD) as usize,
        "{policy}"
    );
    let mut next = vec![0u32; THREADS as usize];
    let mut last_seq = 0;
    for r in &rec.records {
        assert!(
            r.seq > last_seq,
            "{policy}: seqs must increase in file order"
        );
        last_seq = r.seq;
        assert!(
            acked.contains(&r.seq),
            "{policy}: unacknowledged seq {}",
            r.seq
        );
        let p = &r.payload;
        // Each thread's records appear once each, in that thread's order, intact.
        assert_eq!(
            p.n, next[p.thread as usize],
            "{policy}: thread {} out of order",
            p.thread
        );
        assert_eq!(*p, tagged(p.thread, p.n), "{policy}: record garbled");
        next[p.thread as usize] += 1;
    }
}

#[test]
fn eight_threads_under_always() {
    concurrent_appends(FlushPolicy::Always);
}

#[test]
fn eight_threads_under_every_docs() {
    concurrent_appends(FlushPolicy::EveryDocs(100));
}

#[test]
fn eight_threads_under_interval() {
    concurrent_appends(FlushPolicy::Interval(Duration::from_millis(5)));
}

#[test]
fn eight_threads_under_never() {
    concurrent_appends(FlushPolicy::Never);
}

#[test]
fn next_seq_continues_from_the_larger_of_the_log_and_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.wal");
    let wal = Wal::<ByteBuf>::create(storage(), &path, ID, 40, FlushPolicy::Always).unwrap();
    assert_eq!(wal.append(Op::Insert, &bytes_for(1, 3)).unwrap(), 40);
    drop(wal);
    let opts = WalOpenOptions {
        next_seq: 10,
        ..Default::default()
    };
    let (wal, _) = Wal::<ByteBuf>::open(storage(), &path, ID, &opts).unwrap();
    assert_eq!(wal.next_seq(), 41);
    drop(wal);
    let opts = WalOpenOptions {
        next_seq: 100,
        ..Default::default()
    };
    let (wal, _) = Wal::<ByteBuf>::open(storage(), &path, ID, &opts).unwrap();
    assert_eq!(wal.append(Op::Delete, &bytes_for(2, 3)).unwrap(), 100);
}

#[test]
fn a_wal_of_another_block_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.wal");
    drop(Wal::<ByteBuf>::create(storage(), &path, ID, 1, FlushPolicy::Always).unwrap());
    let other = WalId {
        segment: 3,
        block: 8,
    };
    let err =
        Wal::<ByteBuf>::open(storage(), &path, other, &WalOpenOptions::default()).unwrap_err();
    assert!(
        matches!(err, stratavec::Error::Corrupted { offset: 0, .. }),
        "{err}"
    );
}

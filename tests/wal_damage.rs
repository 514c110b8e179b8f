//! What a damaged WAL does on open: torn tails are cut, short headers are empty logs, and real
//! corruption is reported with file and offset and leaves the file alone (or is salvaged).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_bytes::ByteBuf;
use stratavec::storage::{StdStorage, Storage};
use stratavec::wal::format::HEADER_LEN;
use stratavec::wal::{FlushPolicy, Op, Wal, WalId, WalOpenOptions, WalRecord};
use stratavec::Error;

const ID: WalId = WalId {
    segment: 0,
    block: 0,
};

fn storage() -> Arc<dyn Storage> {
    Arc::new(StdStorage)
}

fn payload(i: u64) -> ByteBuf {
    ByteBuf::from(
        format!("record-{i}-")
            .repeat(1 + i as usize % 4)
            .into_bytes(),
    )
}

/// Writes `n` records and returns the path and each record's start offset.
fn write_wal(dir: &Path, n: u64) -> (PathBuf, Vec<u64>) {
    let path = dir.join("0.wal");
    let wal = Wal::<ByteBuf>::create(storage(), &path, ID, 1, FlushPolicy::Always).unwrap();
    let mut offsets = Vec::new();
    for i in 0..n {
        offsets.push(wal.len());
        wal.append(Op::Insert, &payload(i)).unwrap();
    }
    (path, offsets)
}

fn open(
    path: &Path,
    salvage: bool,
) -> stratavec::Result<(
    Wal<ByteBuf>,
    Vec<WalRecord<ByteBuf>>,
    stratavec::wal::RecoveryReport,
)> {
    let opts = WalOpenOptions {
        salvage,
        ..Default::default()
    };
    Wal::<ByteBuf>::open(storage(), path, ID, &opts).map(|(w, r)| (w, r.records, r.report))
}

fn assert_prefix(records: &[WalRecord<ByteBuf>], n: usize) {
    assert_eq!(records.len(), n);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.payload, payload(i as u64));
    }
}

#[test]
fn torn_tail_cut_at_every_byte_of_the_last_record_recovers_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_wal(dir.path(), 5);
    let full = fs::read(&path).unwrap();
    let last = *offsets.last().unwrap() as usize;
    for cut in last..full.len() {
        fs::write(&path, &full[..cut]).unwrap();
        let (wal, records, report) =
            open(&path, false).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_prefix(&records, 4);
        assert_eq!(report.truncated_bytes, (cut - last) as u64, "cut at {cut}");
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            last as u64,
            "file truncated to the prefix"
        );
        // A new append after recovery is valid and survives another reopen.
        let seq = wal.append(Op::Upsert, &payload(99)).unwrap();
        assert_eq!(seq, 5);
        drop(wal);
        let (_, records, report) = open(&path, false).unwrap();
        assert_eq!(records.len(), 5, "cut at {cut}");
        assert_eq!(records[4].payload, payload(99));
        assert_eq!(report.truncated_bytes, 0);
    }
}

#[test]
fn zero_filled_tail_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_wal(dir.path(), 3);
    let clean_len = fs::metadata(&path).unwrap().len();
    for zeros in [1usize, 7, 8, 9, 4096, 1 << 20] {
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(clean_len as usize);
        bytes.extend(std::iter::repeat_n(0u8, zeros));
        fs::write(&path, &bytes).unwrap();
        let (wal, records, report) = open(&path, false).unwrap();
        assert_prefix(&records, 3);
        assert_eq!(report.truncated_bytes, zeros as u64);
        assert_eq!(wal.len(), clean_len);
        assert_eq!(fs::metadata(&path).unwrap().len(), clean_len);
    }
}

#[test]
fn a_bit_flip_in_any_byte_of_a_middle_record_is_corruption_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_wal(dir.path(), 7);
    let clean = fs::read(&path).unwrap();
    let (start, end) = (offsets[3] as usize, offsets[4] as usize);
    for at in start..end {
        for bit in [0u8, 7] {
            let mut damaged = clean.clone();
            damaged[at] ^= 1 << bit;
            fs::write(&path, &damaged).unwrap();
            match open(&path, false) {
                Err(Error::Corrupted {
                    path: p,
                    offset,
                    reason,
                }) => {
                    assert_eq!(p, path);
                    assert_eq!(offset, start as u64, "byte {at}: {reason}");
                }
                Err(e) => panic!("byte {at}: unexpected error {e}"),
                Ok(_) => panic!("byte {at} bit {bit}: corruption went unnoticed"),
            }
            assert_eq!(
                fs::read(&path).unwrap(),
                damaged,
                "byte {at}: file must stay unchanged"
            );
            assert!(!dir.path().join("0.wal.corrupt").exists());
        }
    }
}

#[test]
fn salvage_keeps_the_prefix_and_the_damaged_file_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_wal(dir.path(), 7);
    let mut damaged = fs::read(&path).unwrap();
    let at = offsets[3] as usize + 10;
    damaged[at] ^= 0x40;
    fs::write(&path, &damaged).unwrap();

    let (wal, records, report) = open(&path, true).unwrap();
    assert_prefix(&records, 3);
    let salvage = report.salvaged.expect("the report names the salvage");
    assert_eq!(salvage.offset, offsets[3]);
    assert_eq!(salvage.corrupt_path, dir.path().join("0.wal.corrupt"));
    assert_eq!(
        fs::read(&salvage.corrupt_path).unwrap(),
        damaged,
        "damaged bytes kept verbatim"
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), offsets[3]);
    // The salvaged log continues after the prefix, and the next open is clean.
    assert_eq!(wal.append(Op::Insert, &payload(3)).unwrap(), 4);
    drop(wal);
    let (_, records, report) = open(&path, false).unwrap();
    assert_prefix(&records, 4);
    assert!(report.salvaged.is_none());
}

#[test]
fn a_damaged_header_is_corruption_at_offset_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_wal(dir.path(), 2);
    let clean = fs::read(&path).unwrap();
    for at in 0..HEADER_LEN {
        let mut damaged = clean.clone();
        damaged[at] ^= 0x10;
        fs::write(&path, &damaged).unwrap();
        match open(&path, false) {
            Err(Error::Corrupted { offset: 0, .. }) => {}
            other => panic!(
                "header byte {at}: expected corruption at 0, got {:?}",
                other.map(|r| r.1.len())
            ),
        }
        assert_eq!(fs::read(&path).unwrap(), damaged);
    }
}

#[test]
fn an_empty_file_and_a_short_header_are_empty_wals() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_wal(dir.path(), 1);
    let header = fs::read(&path).unwrap()[..HEADER_LEN].to_vec();
    for len in 0..HEADER_LEN {
        fs::write(&path, &header[..len]).unwrap();
        let (wal, records, report) =
            open(&path, false).unwrap_or_else(|e| panic!("{len} bytes: {e}"));
        assert!(records.is_empty());
        assert!(report.short_header, "{len} bytes");
        assert_eq!(wal.append(Op::Insert, &payload(0)).unwrap(), 1);
        drop(wal);
        let (_, records, _) = open(&path, false).unwrap();
        assert_prefix(&records, 1);
    }
    // An all-zero header area (the size was extended, the data never written) is empty too.
    fs::write(&path, vec![0u8; HEADER_LEN + 100]).unwrap();
    let (_, records, report) = open(&path, false).unwrap();
    assert!(records.is_empty() && report.short_header);
}

#[test]
fn read_only_reading_reports_a_torn_tail_without_cutting_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_wal(dir.path(), 4);
    let full = fs::read(&path).unwrap();
    let cut = offsets[3] as usize + 5;
    fs::write(&path, &full[..cut]).unwrap();
    let rec = Wal::<ByteBuf>::read(&StdStorage, &path, ID).unwrap();
    assert_prefix(&rec.records, 3);
    assert_eq!(rec.report.truncated_bytes, 5);
    assert_eq!(
        fs::read(&path).unwrap(),
        &full[..cut],
        "read() never writes"
    );
}

#[test]
fn garbage_that_is_not_a_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.wal");
    fs::write(
        &path,
        b"this is definitely not a write-ahead log, it is prose",
    )
    .unwrap();
    assert!(matches!(
        open(&path, false),
        Err(Error::Corrupted { offset: 0, .. })
    ));
}

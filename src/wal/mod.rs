//! The write-ahead log of one segment block: `<segment>/<block>.wal`.
//!
//! Every write call becomes exactly one record, appended with one `write` and acknowledged only
//! as durable as the [`FlushPolicy`] promises. Opening a WAL classifies its tail: a torn tail
//! left by a crash is truncated, a short header is an empty log, and real corruption is an
//! [`Error::Corrupted`] that leaves the file untouched (or, with `salvage`, keeps the damaged
//! file aside as `<block>.wal.corrupt` and continues from the valid prefix).
//!
//! ```
//! use std::sync::Arc;
//! use serde_bytes::ByteBuf;
//! use stratavec::storage::StdStorage;
//! use stratavec::wal::{FlushPolicy, Op, Wal, WalId, WalOpenOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("0.wal");
//! let id = WalId { segment: 0, block: 0 };
//! let wal: Wal<ByteBuf> = Wal::create(Arc::new(StdStorage), &path, id, 1, FlushPolicy::Always).unwrap();
//! let seq = wal.append(Op::Insert, &ByteBuf::from(b"hello".to_vec())).unwrap();
//! assert_eq!(seq, 1);
//! drop(wal);
//!
//! let (_wal, recovered) =
//!     Wal::<ByteBuf>::open(Arc::new(StdStorage), &path, id, &WalOpenOptions::default()).unwrap();
//! assert_eq!(recovered.records.len(), 1);
//! assert_eq!(recovered.records[0].payload.as_ref(), b"hello");
//! ```

pub mod format;
mod policy;
pub mod reader;
mod record;
mod writer;

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use format::WalId;
pub use policy::FlushPolicy;
pub use reader::{scan, Frame, Scan, Tail};
pub use record::{Op, WalPayload, WalRecord};

use crate::error::{Error, Result};
use crate::storage::{atomic_write, envelope, parent_dir, Storage};
use record::WalRecordRef;
pub use writer::Appended;
use writer::{LogWriter, Syncer};

/// How to open an existing WAL.
#[derive(Debug, Clone)]
pub struct WalOpenOptions {
    /// The flush policy of later appends.
    pub policy: FlushPolicy,
    /// On real corruption, keep the valid prefix (and the damaged file as `.wal.corrupt`)
    /// instead of failing.
    pub salvage: bool,
    /// The smallest seq the next append may get (the log's own last seq + 1 when larger).
    pub next_seq: u64,
}

impl Default for WalOpenOptions {
    fn default() -> Self {
        WalOpenOptions {
            policy: FlushPolicy::default(),
            salvage: false,
            next_seq: 1,
        }
    }
}

/// What recovery found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryReport {
    /// The WAL file.
    pub path: PathBuf,
    /// Valid records recovered.
    pub records: usize,
    /// Documents in those records.
    pub docs: u64,
    /// Bytes of the valid prefix, header included.
    pub bytes: u64,
    /// Bytes of torn tail cut off (or that a read-write open would cut off).
    pub truncated_bytes: u64,
    /// The file was shorter than its header (a crash during creation).
    pub short_header: bool,
    /// Set when salvage kept a valid prefix of a corrupted file.
    pub salvaged: Option<Salvage>,
    /// Time spent reading and repairing.
    pub duration: Duration,
}

/// Where salvage found damage and where it put the damaged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salvage {
    /// Offset of the first bad byte.
    pub offset: u64,
    /// What was wrong there.
    pub reason: String,
    /// The damaged file, kept for inspection.
    pub corrupt_path: PathBuf,
}

/// The records of a WAL and the report of how they were recovered.
#[derive(Debug, Clone)]
pub struct Recovered<P> {
    /// Valid records in file (and seq) order.
    pub records: Vec<WalRecord<P>>,
    /// The file offset of each record's frame, parallel to `records` (what an error about a
    /// record names).
    pub offsets: Vec<u64>,
    /// What recovery found and did.
    pub report: RecoveryReport,
}

/// A WAL open for appending records of payload type `P`.
#[derive(Debug)]
pub struct Wal<P> {
    writer: Arc<LogWriter>,
    // Dropped before `writer` so that its final fsync runs on a live log.
    syncer: Option<Syncer>,
    id: WalId,
    _payload: PhantomData<fn(P) -> P>,
}

/// The problems [`analyze`] can find, in the terms recovery acts on.
enum Damage {
    None,
    ShortHeader,
    Torn { offset: u64, bytes: u64 },
    Corrupted { offset: u64, reason: String },
}

struct Analysis<P> {
    records: Vec<WalRecord<P>>,
    offsets: Vec<u64>,
    docs: u64,
    valid_end: u64,
    damage: Damage,
}

/// Checks a decoded record beyond its encoding (what the caller knows of its meaning); an
/// error is corruption at that record, handled like any other (refused, or salvaged up to it).
pub type RecordCheck<'a, P> = &'a dyn Fn(&WalRecord<P>) -> Result<(), String>;

fn no_check<P>(_: &WalRecord<P>) -> Result<(), String> {
    Ok(())
}

/// Scans and decodes a WAL image. Decoding problems count as corruption at that record.
fn analyze<P: WalPayload>(
    bytes: &[u8],
    zeros: u64,
    expected: WalId,
    check: RecordCheck<'_, P>,
) -> Analysis<P> {
    let scan = reader::scan_with_zero_tail(bytes, zeros);
    let mut damage = match scan.tail {
        Tail::Clean => Damage::None,
        Tail::ShortHeader { .. } => Damage::ShortHeader,
        Tail::Torn { offset, bytes } => Damage::Torn { offset, bytes },
        Tail::Corrupted { offset, reason } => Damage::Corrupted { offset, reason },
    };
    if let Some(id) = scan.id {
        if id != expected {
            return Analysis {
                records: Vec::new(),
                offsets: Vec::new(),
                docs: 0,
                valid_end: 0,
                damage: Damage::Corrupted {
                    offset: 0,
                    reason: format!(
                        "header names segment {} block {}, expected segment {} block {}",
                        id.segment, id.block, expected.segment, expected.block
                    ),
                },
            };
        }
    }
    let mut records: Vec<WalRecord<P>> = Vec::with_capacity(scan.frames.len());
    let mut offsets = Vec::with_capacity(scan.frames.len());
    let mut docs = 0u64;
    let mut valid_end = scan.valid_end;
    for frame in &scan.frames {
        let problem = match envelope::decode_exact::<WalRecord<P>>(&frame.payload) {
            Err(e) => Some(format!("record does not decode: {e}")),
            Ok(r) => match records.last() {
                Some(prev) if r.seq <= prev.seq => Some(format!(
                    "sequence number {} does not follow {}",
                    r.seq, prev.seq
                )),
                _ => match check(&r) {
                    Err(reason) => Some(format!("record seq {}: {reason}", r.seq)),
                    Ok(()) => {
                        docs += r.payload.doc_count() as u64;
                        records.push(r);
                        offsets.push(frame.offset);
                        None
                    }
                },
            },
        };
        if let Some(reason) = problem {
            valid_end = frame.offset;
            damage = Damage::Corrupted {
                offset: frame.offset,
                reason,
            };
            break;
        }
    }
    Analysis {
        records,
        offsets,
        docs,
        valid_end,
        damage,
    }
}

impl<P: WalPayload> Wal<P> {
    /// Creates a new, empty WAL at `path` (replacing any file there) and makes it durable.
    pub fn create(
        storage: Arc<dyn Storage>,
        path: &Path,
        id: WalId,
        next_seq: u64,
        policy: FlushPolicy,
    ) -> Result<Self> {
        let file = storage.create(path)?;
        file.append(&format::encode_header(id))?;
        file.sync()?;
        storage.sync_dir(parent_dir(path))?;
        Self::start(file, id, policy, format::HEADER_LEN as u64, next_seq)
    }

    fn start(
        file: crate::storage::FileRef,
        id: WalId,
        policy: FlushPolicy,
        len: u64,
        next_seq: u64,
    ) -> Result<Self> {
        let writer = Arc::new(LogWriter::new(file, policy, len, next_seq));
        let syncer = match policy {
            FlushPolicy::Interval(period) => Some(Syncer::start(writer.clone(), period)?),
            _ => None,
        };
        Ok(Wal {
            writer,
            syncer,
            id,
            _payload: PhantomData,
        })
    }

    /// Reads a WAL without changing any file: for read-only openers and inspection tools.
    ///
    /// A torn tail is left in place (and reported in `truncated_bytes`); corruption is an
    /// [`Error::Corrupted`].
    pub fn read(storage: &dyn Storage, path: &Path, id: WalId) -> Result<Recovered<P>> {
        Self::read_checked(storage, path, id, &no_check)
    }

    /// [`Wal::read`], with every record also passed through `check`: a record it refuses is
    /// corruption at that record's offset.
    pub fn read_checked(
        storage: &dyn Storage,
        path: &Path,
        id: WalId,
        check: RecordCheck<'_, P>,
    ) -> Result<Recovered<P>> {
        let started = Instant::now();
        let (bytes, zeros) = storage.read_trimmed(path)?;
        let a = analyze::<P>(&bytes, zeros, id, check);
        let (truncated_bytes, short_header) = match a.damage {
            Damage::Corrupted { offset, reason } => {
                return Err(Error::corrupted(path, offset, reason));
            }
            Damage::Torn { bytes, .. } => (bytes, false),
            Damage::ShortHeader => (0, true),
            Damage::None => (0, false),
        };
        Ok(Recovered {
            report: RecoveryReport {
                path: path.to_path_buf(),
                records: a.records.len(),
                docs: a.docs,
                bytes: a.valid_end,
                truncated_bytes,
                short_header,
                salvaged: None,
                duration: started.elapsed(),
            },
            records: a.records,
            offsets: a.offsets,
        })
    }

    /// Opens an existing WAL for appending, after recovering it.
    ///
    /// A torn tail is truncated and a short header rewritten, both durably. Real corruption
    /// fails with [`Error::Corrupted`] naming the file and offset and changes nothing, unless
    /// `options.salvage` is set: then the damaged file is copied to `<path>.corrupt`, the WAL
    /// is replaced by its valid prefix, and the report says so.
    pub fn open(
        storage: Arc<dyn Storage>,
        path: &Path,
        id: WalId,
        options: &WalOpenOptions,
    ) -> Result<(Self, Recovered<P>)> {
        Self::open_checked(storage, path, id, options, &no_check)
    }

    /// [`Wal::open`], with every record also passed through `check`: a record it refuses is
    /// corruption at that record's offset (an error, or with `salvage` the end of the kept
    /// prefix), so a record that decodes but means nothing valid is never replayed.
    pub fn open_checked(
        storage: Arc<dyn Storage>,
        path: &Path,
        id: WalId,
        options: &WalOpenOptions,
        check: RecordCheck<'_, P>,
    ) -> Result<(Self, Recovered<P>)> {
        let started = Instant::now();
        let (bytes, zeros) = storage.read_trimmed(path)?;
        let a = analyze::<P>(&bytes, zeros, id, check);
        let mut truncated_bytes = 0;
        let mut short_header = false;
        let mut salvaged = None;
        let mut valid_end = a.valid_end;
        let file = match a.damage {
            Damage::None => {
                // Records a killed process left in the page cache count as durable from here
                // on, so make them so.
                let file = storage.open(path)?;
                file.sync()?;
                file
            }
            Damage::Torn { offset, bytes } => {
                let file = storage.open(path)?;
                file.set_len(offset)?;
                file.sync()?;
                truncated_bytes = bytes;
                file
            }
            Damage::ShortHeader => {
                let file = storage.create(path)?;
                file.append(&format::encode_header(id))?;
                file.sync()?;
                storage.sync_dir(parent_dir(path))?;
                short_header = true;
                valid_end = format::HEADER_LEN as u64;
                file
            }
            Damage::Corrupted { offset, reason } if options.salvage => {
                let corrupt_path = PathBuf::from(format!("{}.corrupt", path.display()));
                atomic_write(&*storage, &corrupt_path, &bytes)?;
                // The copy kept for inspection leaves out the zero tail (offsets are unchanged).
                let mut prefix = format::encode_header(id).to_vec();
                if valid_end > format::HEADER_LEN as u64 {
                    let end = (valid_end as usize).min(bytes.len());
                    prefix.extend_from_slice(bytes.get(format::HEADER_LEN..end).unwrap_or(&[]));
                    // A last valid record may end in zeros that were not read.
                    prefix.resize(valid_end as usize, 0);
                }
                valid_end = prefix.len() as u64;
                atomic_write(&*storage, path, &prefix)?;
                salvaged = Some(Salvage {
                    offset,
                    reason,
                    corrupt_path,
                });
                storage.open(path)?
            }
            Damage::Corrupted { offset, reason } => {
                return Err(Error::corrupted(
                    path,
                    offset,
                    format!("{reason} (the file was left unchanged; open with salvage to keep the valid prefix)"),
                ));
            }
        };
        let next_seq = a
            .records
            .last()
            .map_or(options.next_seq, |r| options.next_seq.max(r.seq + 1));
        let wal = Self::start(file, id, options.policy, valid_end, next_seq)?;
        let report = RecoveryReport {
            path: path.to_path_buf(),
            records: a.records.len(),
            docs: a.docs,
            bytes: valid_end,
            truncated_bytes,
            short_header,
            salvaged,
            duration: started.elapsed(),
        };
        Ok((
            wal,
            Recovered {
                records: a.records,
                offsets: a.offsets,
                report,
            },
        ))
    }

    /// Appends one record and returns its seq once the flush policy is satisfied.
    ///
    /// An error means the record is not acknowledged; after an I/O error the WAL is poisoned
    /// and every later append fails with [`Error::Poisoned`].
    pub fn append(&self, op: Op, payload: &P) -> Result<u64> {
        let appended = self.write(op, payload)?;
        self.settle(&appended)?;
        Ok(appended.seq)
    }

    /// The first half of [`Wal::append`]: writes the record (to the OS, not fsynced) and
    /// returns its seq. The record is not acknowledged until [`Wal::settle`] returns Ok; a
    /// caller that never settles must treat the record as failed.
    pub fn write(&self, op: Op, payload: &P) -> Result<Appended> {
        self.writer.write(payload.doc_count() as u64, |seq, buf| {
            let record = WalRecordRef { seq, op, payload };
            rmp_serde::encode::write_named(buf, &record)
                .map_err(|e| Error::Serialization(format!("encoding WAL record {seq}: {e}")))
        })
    }

    /// The second half of [`Wal::append`]: returns once `appended` is as durable as the flush
    /// policy promises. Concurrent callers share fsyncs (group commit).
    pub fn settle(&self, appended: &Appended) -> Result<()> {
        self.writer.settle(appended)
    }

    /// Makes every record appended so far durable, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        self.writer.sync()
    }

    /// The seq the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.writer.next_seq()
    }

    /// The file's length, valid records included.
    pub fn len(&self) -> u64 {
        self.writer.len()
    }

    /// Whether the WAL holds no record.
    pub fn is_empty(&self) -> bool {
        self.writer.len() <= format::HEADER_LEN as u64
    }

    /// How many bytes are known durable.
    pub fn durable_len(&self) -> u64 {
        self.writer.durable_len()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    /// The segment and block this WAL belongs to.
    pub fn id(&self) -> WalId {
        self.id
    }

    /// The flush policy.
    pub fn policy(&self) -> FlushPolicy {
        self.writer.policy()
    }

    /// Whether an earlier failure makes this WAL refuse writes.
    pub fn is_poisoned(&self) -> bool {
        self.writer.is_poisoned()
    }
}

impl<P> Drop for Wal<P> {
    fn drop(&mut self) {
        self.syncer.take();
    }
}

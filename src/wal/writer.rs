//! Appending records: one write per record, fsyncs shared by concurrent writers, poisoning.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::format::{seal_frame, FRAME_HEADER_LEN, MAX_RECORD_LEN};
use super::FlushPolicy;
use crate::error::{Error, Result};
use crate::storage::FileRef;

/// What has been appended (guarded by the append lock, which orders records in the file).
#[derive(Debug)]
struct AppendState {
    next_seq: u64,
    bytes: u64,
    docs: u64,
}

/// A record written to the file, and where it ends: what [`LogWriter::settle`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The record's sequence number.
    pub seq: u64,
    end: u64,
    docs_end: u64,
}

/// What is known durable (guarded by the sync lock).
#[derive(Debug)]
struct Durable {
    bytes: u64,
    docs: u64,
    in_progress: bool,
}

#[derive(Debug)]
pub(crate) struct LogWriter {
    file: FileRef,
    path: PathBuf,
    policy: FlushPolicy,
    appended: Mutex<AppendState>,
    durable: Mutex<Durable>,
    /// `appended.bytes`, readable without waiting for an append in progress.
    len: AtomicU64,
    synced: Condvar,
    poison: OnceLock<Arc<io::Error>>,
}

/// A copy of an I/O error that can be handed to every later caller.
fn clone_io(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

impl LogWriter {
    /// `len` is the file's current length (all of it durable); `next_seq` the first seq to give.
    pub(crate) fn new(file: FileRef, policy: FlushPolicy, len: u64, next_seq: u64) -> Self {
        LogWriter {
            path: file.path().to_path_buf(),
            file,
            policy,
            appended: Mutex::new(AppendState {
                next_seq,
                bytes: len,
                docs: 0,
            }),
            len: AtomicU64::new(len),
            durable: Mutex::new(Durable {
                bytes: len,
                docs: 0,
                in_progress: false,
            }),
            synced: Condvar::new(),
            poison: OnceLock::new(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn policy(&self) -> FlushPolicy {
        self.policy
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.appended.lock().next_seq
    }

    pub(crate) fn len(&self) -> u64 {
        self.len.load(AtomicOrdering::Acquire)
    }

    pub(crate) fn durable_len(&self) -> u64 {
        self.durable.lock().bytes
    }

    fn check_poison(&self) -> Result<()> {
        match self.poison.get() {
            Some(cause) => Err(Error::Poisoned {
                path: self.path.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records the failure (only the first one counts) and hands the error back.
    fn poison_with(&self, e: Error) -> Error {
        let cause = match &e {
            Error::Io { source, .. } => clone_io(source),
            other => io::Error::other(other.to_string()),
        };
        let _ = self.poison.set(Arc::new(cause));
        e
    }

    /// Whether an earlier failure poisoned the log.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poison.get().is_some()
    }

    /// Writes one record to the file (to the OS, not yet fsynced) and returns its seq and end.
    pub(crate) fn write(
        &self,
        docs: u64,
        encode: impl FnOnce(u64, &mut Vec<u8>) -> Result<()>,
    ) -> Result<Appended> {
        let mut st = self.appended.lock();
        self.check_poison()?;
        let seq = st.next_seq;
        let mut frame = vec![0u8; FRAME_HEADER_LEN];
        encode(seq, &mut frame)?;
        let payload_len = frame.len() - FRAME_HEADER_LEN;
        if payload_len == 0 || payload_len > MAX_RECORD_LEN {
            return Err(Error::RecordTooLarge {
                len: payload_len,
                max: MAX_RECORD_LEN,
            });
        }
        seal_frame(&mut frame);
        // A failed or partial write leaves at most a torn tail, which recovery truncates;
        // but the file offset is now unknown, so nothing more may be appended.
        self.file.append(&frame).map_err(|e| self.poison_with(e))?;
        st.next_seq += 1;
        st.bytes += frame.len() as u64;
        st.docs += docs;
        self.len.store(st.bytes, AtomicOrdering::Release);
        Ok(Appended {
            seq,
            end: st.bytes,
            docs_end: st.docs,
        })
    }

    /// Returns once the record `appended` is as durable as the policy promises: fsynced (by this
    /// caller or by a concurrent one, group commit) for `Always`, and for `EveryDocs(n)` once n
    /// documents are unsynced.
    pub(crate) fn settle(&self, appended: &Appended) -> Result<()> {
        match self.policy {
            FlushPolicy::Always => self.sync_to(appended.end),
            FlushPolicy::EveryDocs(n) => {
                let durable_docs = self.durable.lock().docs;
                if appended.docs_end.saturating_sub(durable_docs) >= u64::from(n.max(1)) {
                    self.sync_to(appended.end)
                } else {
                    Ok(())
                }
            }
            FlushPolicy::Interval(_) | FlushPolicy::Never => Ok(()),
        }
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&self) -> Result<()> {
        let end = self.appended.lock().bytes;
        self.sync_to(end)
    }

    /// Group commit: returns once the file is durable up to `target`. One caller runs the fsync
    /// for everybody who appended before it started; the others wait for it.
    fn sync_to(&self, target: u64) -> Result<()> {
        let mut st = self.durable.lock();
        loop {
            if st.bytes >= target {
                return Ok(());
            }
            self.check_poison()?;
            if st.in_progress {
                self.synced.wait(&mut st);
                continue;
            }
            st.in_progress = true;
            let (result, upto, docs) = MutexGuard::unlocked(&mut st, || {
                let (upto, docs) = {
                    let a = self.appended.lock();
                    (a.bytes, a.docs)
                };
                (self.file.sync(), upto, docs)
            });
            st.in_progress = false;
            match result {
                Ok(()) => {
                    st.bytes = st.bytes.max(upto);
                    st.docs = st.docs.max(docs);
                    self.synced.notify_all();
                }
                Err(e) => {
                    let e = self.poison_with(e);
                    self.synced.notify_all();
                    return Err(e);
                }
            }
        }
    }
}

/// The background thread of [`FlushPolicy::Interval`]: fsyncs every period, and once more when
/// stopped so that a clean shutdown loses nothing.
#[derive(Debug)]
pub(crate) struct Syncer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Syncer {
    pub(crate) fn start(writer: Arc<LogWriter>, period: Duration) -> Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let handle = std::thread::Builder::new()
            .name("stratavec-wal-sync".into())
            .spawn(move || {
                let (lock, cvar) = &*signal;
                loop {
                    let stopped = {
                        let mut stopped = lock.lock();
                        if !*stopped {
                            cvar.wait_for(&mut stopped, period);
                        }
                        *stopped
                    };
                    // A failure poisons the writer; the next append reports it.
                    let _ = writer.sync();
                    if stopped {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("spawn WAL sync thread for", "<thread>", e))?;
        Ok(Syncer {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

//! The write path: validate, append to the writing segment's WAL under a shared lock, wait for
//! a group fsync, then publish in seq order. And the rotation that hands a full writing
//! segment to the background persist.
//!
//! Writers hold the writer lock *shared* while they append, wait and publish, so that many
//! writers share one fsync; whatever must see no write in flight (creating a WAL, rotating,
//! resolving a delete-by-filter, closing) holds it exclusively, and then every appended record
//! is published.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::thread::Thread;

use parking_lot::{MutexGuard, RwLockWriteGuard};

use super::background::{reply, Job};
use super::state::Sealing;
use super::Inner;
use crate::doc::DocStatus;
use crate::error::Result;
use crate::schema::CollectionSchema;
use crate::segment::{segment_dir, wal_id, wal_path, Batch, Segment};
use crate::wal::{Op, Wal, WalPayload};

/// The writer's side, behind the writer lock.
#[derive(Debug)]
pub(super) struct Writer {
    /// The writing segment's WAL, once created (the segment holds it too).
    pub(super) wal: Option<Arc<Wal<Batch>>>,
    /// The seq the next record gets: carried over from one WAL to the next.
    pub(super) next_seq: u64,
    pub(super) closed: bool,
}

/// Records that are durable but wait for an earlier seq before they can be applied.
#[derive(Debug, Default)]
pub(super) struct Publish {
    /// The next seq to apply.
    pub(super) next: u64,
    /// Durable records waiting for their turn, with the writer thread to wake when it is done.
    ready: BTreeMap<u64, (Op, Batch, Thread)>,
    outcomes: HashMap<u64, Result<Vec<DocStatus>>>,
    /// A record from this seq on failed to become durable: it and every later one are never
    /// applied, and their writers get an error.
    failed_from: Option<u64>,
}

impl Publish {
    pub(super) fn starting_at(next: u64) -> Self {
        Publish {
            next,
            ..Publish::default()
        }
    }
}

impl Inner {
    /// Logs one batch and applies it: the heart of every write. `make` validates the call's
    /// documents against the schema and builds the batch; it runs with the writer lock held
    /// (shared), so no schema change can come between the validation and the append.
    pub(super) fn write(
        &self,
        op: Op,
        make: impl Fn(&CollectionSchema) -> Result<Batch>,
    ) -> Result<Vec<DocStatus>> {
        let statuses = loop {
            let w = self.writer.read();
            self.check_writable(&w)?;
            let schema = self.state.read().schema.clone();
            let batch = make(&schema)?;
            if batch.doc_count() == 0 {
                return Ok(Vec::new());
            }
            if let Some(wal) = w.wal.clone() {
                let statuses = self.log_and_publish(&wal, op, batch);
                drop(w);
                break statuses?;
            }
            // The first write of a segment creates its WAL under the exclusive lock, which
            // would let a schema change in: the batch is built again under the shared one.
            drop(w);
            let mut w = self.writer.write();
            self.check_writable(&w)?;
            self.ensure_wal(&mut w)?;
        };
        self.indexing.notify();
        self.rotate_if_full();
        Ok(statuses)
    }

    /// Creates the writing segment's WAL (and its directory) unless it exists.
    pub(super) fn ensure_wal(&self, w: &mut Writer) -> Result<Arc<Wal<Batch>>> {
        if let Some(wal) = &w.wal {
            return Ok(wal.clone());
        }
        let seg = self.state.read().writing.id;
        let created = (|| {
            self.storage.create_dir_all(&segment_dir(&self.path, seg))?;
            self.storage.sync_dir(&self.path)?;
            Wal::create(
                self.storage.clone(),
                &wal_path(&self.path, seg),
                wal_id(seg),
                w.next_seq,
                self.policy,
            )
        })()
        .map_err(|e| self.poison(e))?;
        let wal = Arc::new(created);
        self.state.write().writing.set_wal(wal.clone());
        w.wal = Some(wal.clone());
        Ok(wal)
    }

    /// Appends the record, waits until the flush policy counts it durable, and applies it in
    /// seq order. The caller holds the writer lock (shared or exclusive).
    pub(super) fn log_and_publish(
        &self,
        wal: &Wal<Batch>,
        op: Op,
        batch: Batch,
    ) -> Result<Vec<DocStatus>> {
        let appended = wal.write(op, &batch).map_err(|e| self.poison(e))?;
        if let Err(e) = wal.settle(&appended) {
            // The record may or may not survive a crash; it is never acknowledged, never
            // visible, and neither is any record after it.
            let e = self.poison(e);
            let mut p = self.publish.lock();
            p.failed_from = Some(p.failed_from.map_or(appended.seq, |f| f.min(appended.seq)));
            for (_, _, waiter) in p.ready.values() {
                waiter.unpark();
            }
            return Err(e);
        }
        self.publish(appended.seq, op, batch)
    }

    /// Applies the durable record `seq` once every earlier one is applied (applying those that
    /// are ready on the way) and returns its statuses. A writer whose turn has not come sleeps
    /// until whoever applies its record wakes it: only that writer, so eight writers do not
    /// wake each other for every record.
    fn publish(&self, seq: u64, op: Op, batch: Batch) -> Result<Vec<DocStatus>> {
        let mut p = self.publish.lock();
        p.ready.insert(seq, (op, batch, std::thread::current()));
        loop {
            while p.failed_from.is_none_or(|f| p.next < f) {
                let next = p.next;
                let Some((op, batch, waiter)) = p.ready.remove(&next) else {
                    break;
                };
                // A record that is logged but cannot be applied leaves memory behind the log:
                // no later write may be acknowledged on top of that.
                let outcome = self.state.write().apply(next, op, batch);
                let outcome = outcome.map_err(|e| self.poison(e));
                p.outcomes.insert(next, outcome);
                p.next += 1;
                if next != seq {
                    waiter.unpark();
                }
            }
            if let Some(outcome) = p.outcomes.remove(&seq) {
                return outcome;
            }
            if p.failed_from.is_some_and(|f| seq >= f) {
                p.ready.remove(&seq);
                return Err(self.poisoned_error());
            }
            // A wake-up may be spurious, or a token left by an earlier one: look again.
            MutexGuard::unlocked(&mut p, std::thread::park);
        }
    }

    /// Rotates the writing segment when it reached the thresholds of the options.
    /// The write that triggers it is durable and visible already: a failed rotation poisons
    /// the collection and surfaces on the next write.
    fn rotate_if_full(&self) {
        let full = |inner: &Inner| {
            let st = inner.state.read();
            st.writing.rows.len() as u64 >= inner.options.max_docs_per_segment.max(1)
                || st.writing.rows.bytes as u64 >= inner.options.max_buffer_bytes
        };
        if !full(self) {
            return;
        }
        let mut w = self.writer.write();
        if !w.closed && self.failure.get().is_none() && full(self) {
            let _ = self.rotate(&mut w, None);
        }
    }

    /// Rotates the writing segment out: it becomes a sealing segment, still served from
    /// memory, persisted by the background worker, and a fresh segment takes the writes.
    /// Holding the writer lock exclusively means every appended record is applied. Returns
    /// whether there was anything to rotate.
    pub(super) fn rotate(
        &self,
        w: &mut RwLockWriteGuard<'_, Writer>,
        reply: Option<super::background::Reply>,
    ) -> Result<bool> {
        let Some(wal) = w.wal.clone() else {
            return Ok(false);
        };
        // Later WALs must never survive a power loss that an earlier one did not: replay needs
        // an unbroken history.
        wal.sync().map_err(|e| self.poison(e))?;
        w.next_seq = wal.next_seq();
        let successor = self.next_segment_id.fetch_add(1, Ordering::SeqCst);
        // No record can be applied meanwhile (the writer lock is ours), so the snapshot taken
        // under the read lock is the state at the rotated segment's last record.
        let (deleted, next_doc_id) = {
            let st = self.state.read();
            (st.ids.deleted.clone(), st.ids.next_doc_id)
        };
        let sealing = {
            let mut st = self.state.write();
            let fresh = self.new_segment(successor, &st.schema);
            let segment = std::mem::replace(&mut st.writing, fresh);
            let sealing = Arc::new(Sealing {
                segment,
                deleted,
                next_doc_id,
                successor,
            });
            st.sealing.push(sealing.clone());
            sealing
        };
        w.wal = None;
        self.submit(Job::Persist(sealing, reply))?;
        Ok(true)
    }

    /// An empty writing segment with room for as many rows as the options let it hold.
    pub(super) fn new_segment(&self, id: u64, schema: &crate::schema::CollectionSchema) -> Segment {
        let mut segment = Segment::new(id, schema);
        segment.reserve(segment_capacity(schema, &self.options));
        segment
    }

    /// Waits until every job queued so far is done; the first error of a failed one (or of an
    /// earlier failure) is returned.
    pub(super) fn barrier(&self) -> Result<()> {
        let (tx, rx) = reply();
        self.submit(Job::Barrier(tx))?;
        self.await_reply(rx)
    }
}

/// How many rows a writing segment can reach before it rotates: its columns are reserved for
/// that many (address space, not memory, until rows arrive), so that no write copies a column
/// while readers wait. Capped, as the thresholds can be set very high.
pub(super) fn segment_capacity(
    schema: &crate::schema::CollectionSchema,
    options: &super::options::StoredOptions,
) -> usize {
    const CAP: u64 = 1 << 20;
    let row_bytes = 48
        + 16 * schema.fields.len() as u64
        + schema
            .vectors
            .iter()
            .map(|v| 4 * v.dimension as u64)
            .sum::<u64>();
    let by_bytes = options.max_buffer_bytes / row_bytes.max(1) + 1;
    options.max_docs_per_segment.min(by_bytes).min(CAP) as usize
}

//! A collection: it composes segments (sealed, sealing, writing), the manifest, the ids and the
//! background work, behind the public API.
//!
//! Concurrency: readers take the state's read lock for one call and never wait for I/O;
//! writers append under a shared writer lock and share fsyncs; a write becomes visible once it
//! is durable under the flush policy, in seq order; persist, merge and graph indexing run on
//! background threads.
//!
//! ```
//! use stratavec::{Collection, CollectionOptions, CollectionSchema, DataType, Doc, DocStatus,
//!                 FieldSchema, SearchOptions, VectorSchema, OpenOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("articles");
//! let schema = CollectionSchema::new("articles")
//!     .field(FieldSchema::new("year", DataType::Int32))
//!     .vector(VectorSchema::new("embedding", 3));
//! let coll = Collection::create(&path, schema, CollectionOptions::default()).unwrap();
//! let statuses = coll.insert(&[
//!     Doc::new("a").set("year", 2024).vector("embedding", vec![1.0, 0.0, 0.0]),
//!     Doc::new("b").set("year", 2020).vector("embedding", vec![0.0, 1.0, 0.0]),
//! ]).unwrap();
//! assert_eq!(statuses, vec![DocStatus::Ok, DocStatus::Ok]);
//! let hits = coll.search("embedding", &[0.9, 0.1, 0.0], &SearchOptions::new().topk(1)).unwrap();
//! assert_eq!(hits[0].pk, "a");
//! coll.close().unwrap();
//!
//! let coll = Collection::open(&path, OpenOptions::default()).unwrap();
//! assert_eq!(coll.stats().doc_count, 2);
//! ```

mod background;
mod commit;
mod ddl;
mod manifest;
mod open;
mod options;
mod persist;
mod policy;
mod read;
mod scan;
mod state;
mod stats;
mod validate;
mod verify;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

pub use crate::segment::GraphLoad;
pub use ddl::{ColumnFill, IndexParam};
pub(crate) use manifest::fuzz_payload as fuzz_manifest;
pub use open::OpenReport;
pub use options::{CollectionOptions, MergePolicy, OpenOptions};
pub use scan::{ScanCursor, ScanOptions, ScanPage};
pub use stats::{CollectionStats, GraphStats, SegmentStats};
pub use validate::{MAX_BATCH, MAX_PK_BYTES};
pub use verify::{Problem, VerifyReport};

use crate::doc::{Doc, DocStatus};
use crate::error::{Error, Result};
use crate::index::throttle::Throttle;
use crate::query::{flat, Filter};
use crate::schema::CollectionSchema;
use crate::segment::Batch;
use crate::storage::{atomic_write, parent_dir, LockGuard, LockMode, Storage};
use crate::wal::{FlushPolicy, Op};
use background::{Job, MergeScope, Workers};
use commit::Committed;
use manifest::Manifest;
use options::StoredOptions;
use state::State;
use writer::{Publish, Writer};

/// What a collection's threads share: the caller's and the background ones.
struct Inner {
    path: PathBuf,
    storage: Arc<dyn Storage>,
    read_only: bool,
    options: StoredOptions,
    policy: FlushPolicy,
    /// Shared by writers while they append; exclusive for rotation and other whole-log steps.
    writer: RwLock<Writer>,
    /// What readers see.
    state: RwLock<State>,
    publish: Mutex<Publish>,
    /// The newest manifest; only the background worker (and open) commit.
    committed: Mutex<Committed>,
    manifest_version: AtomicU64,
    next_segment_id: AtomicU64,
    /// The first failure of a write, fsync, persist or merge: from then on writes are refused.
    failure: OnceLock<Arc<io::Error>>,
    closed: AtomicBool,
    indexing: background::Indexing,
    /// Whether an automatic merge may build on every core (while a caller waits for it).
    throttle: Throttle,
    /// The background threads; `None` for read-only handles and once closed.
    workers: Mutex<Option<Workers>>,
    /// The open's warm-up thread (graph packing, key-index checks): stopped and joined by
    /// `close`, so that nothing reads the collection's files once it is closed.
    warming: Mutex<Option<open::Warming>>,
    report: OpenReport,
}

/// An open collection. `Send + Sync`: share it with `Arc`.
///
/// Reads (`fetch`, `query`, `search`, `group_by_query`, `stats`) never wait for a write's
/// fsync, for graph construction, for a persist or for a merge. Concurrent writes share fsyncs.
/// A write is visible to readers from the moment it is durable as the flush policy promises,
/// and always by the time its call returns.
pub struct Collection {
    inner: Arc<Inner>,
    lock: Mutex<Option<LockGuard>>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("path", &self.inner.path)
            .field("read_only", &self.inner.read_only)
            .finish_non_exhaustive()
    }
}

const LOCK_FILE: &str = "LOCK";

impl Collection {
    /// Creates a collection in a directory that must not exist yet, or be empty (also when an
    /// interrupted `create` left it with only a lock file and temp files).
    pub fn create(
        path: impl AsRef<Path>,
        schema: CollectionSchema,
        options: CollectionOptions,
    ) -> Result<Self> {
        let path = path.as_ref();
        schema.validate()?;
        let stored = StoredOptions {
            flush_policy: options.flush_policy,
            max_buffer_bytes: options.max_buffer_bytes,
            max_docs_per_segment: options.max_docs_per_segment.max(1),
            merge_policy: options.merge_policy,
            min_graph_rows: options.min_graph_rows,
        };
        stored
            .validate()
            .map_err(|reason| Error::InvalidOptions { reason })?;
        let storage = options.storage.clone();
        if storage.exists(path)? && !Self::is_unfinished_create(&*storage, path)? {
            return Err(Error::PathExists(path.to_path_buf()));
        }
        storage.create_dir_all(path)?;
        storage.sync_dir(parent_dir(path))?;
        let lock = storage.lock(&path.join(LOCK_FILE), LockMode::Exclusive)?;
        let manifest = Manifest {
            version: 1,
            schema,
            options: stored,
            segments: Vec::new(),
            writing_segment: 0,
            next_segment_id: 1,
            next_doc_id: 0,
            applied_seq: 0,
            deletes: None,
        };
        atomic_write(
            &*storage,
            &path.join(Manifest::file_name(1)),
            &manifest.encode()?,
        )?;
        let open = OpenOptions::default().storage(storage);
        Self::assemble(path, lock, manifest, &open, Instant::now())
    }

    /// Whether `path` is what an interrupted `create` leaves: a directory holding nothing but
    /// a lock file and temp files (the manifest is the last thing `create` writes). `create`
    /// may reuse such a path; anything else there is refused.
    fn is_unfinished_create(storage: &dyn Storage, path: &Path) -> Result<bool> {
        let Ok(names) = storage.list(path) else {
            return Ok(false);
        };
        Ok(names
            .iter()
            .all(|n| n == LOCK_FILE || n.starts_with(".tmp-")))
    }

    /// Opens an existing collection, recovering the writing segment from its WAL.
    pub fn open(path: impl AsRef<Path>, options: OpenOptions) -> Result<Self> {
        let started = Instant::now();
        let path = path.as_ref();
        let storage = options.storage.clone();
        if !storage.exists(path)? {
            return Err(Error::CollectionNotFound(path.to_path_buf()));
        }
        let mode = if options.read_only {
            LockMode::Shared
        } else {
            LockMode::Exclusive
        };
        let lock = storage.lock(&path.join(LOCK_FILE), mode)?;
        let manifest = Manifest::load_newest(&*storage, path)?;
        Self::assemble(path, lock, manifest, &options, started)
    }

    /// The collection's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema now. A schema change ([`Collection::add_column`] and the other DDL calls)
    /// replaces it; a schema taken before keeps describing the collection as it was.
    pub fn schema(&self) -> Arc<CollectionSchema> {
        self.inner.state.read().schema.clone()
    }

    /// The flush policy in force: the one stored at create, unless the open overrode it.
    pub fn flush_policy(&self) -> FlushPolicy {
        self.inner.policy
    }

    /// What opening found and did (WAL recovery, leftovers removed).
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }

    /// Inserts documents; a primary key that is already live gets [`DocStatus::AlreadyExists`].
    ///
    /// The batch (at most 1024 documents) is validated first: one invalid document rejects the
    /// call and nothing is written. Otherwise the whole batch is one WAL record, durable as the
    /// flush policy says when this returns.
    pub fn insert(&self, docs: &[Doc]) -> Result<Vec<DocStatus>> {
        self.write_rows(Op::Insert, docs)
    }

    /// Inserts or wholly replaces documents (every non-nullable field and vector required).
    pub fn upsert(&self, docs: &[Doc]) -> Result<Vec<DocStatus>> {
        self.write_rows(Op::Upsert, docs)
    }

    /// Merges the given fields and vectors into live documents; others keep their values.
    /// A field set to `Value::Null` is cleared. Missing keys get [`DocStatus::NotFound`].
    pub fn update(&self, docs: &[Doc]) -> Result<Vec<DocStatus>> {
        validate::check_batch_len(docs.len())?;
        self.inner.write(Op::Update, |schema| {
            let patches = docs
                .iter()
                .map(|d| validate::patch(schema, d.clone()))
                .collect::<Result<Vec<_>>>()?;
            Ok(Batch::Patches(patches))
        })
    }

    /// Deletes documents by primary key; missing keys get [`DocStatus::NotFound`].
    pub fn delete<S: AsRef<str>>(&self, pks: &[S]) -> Result<Vec<DocStatus>> {
        validate::check_batch_len(pks.len())?;
        let keys = pks
            .iter()
            .map(|pk| validate::check_pk(pk.as_ref()).map(|()| pk.as_ref().to_string()))
            .collect::<Result<Vec<_>>>()?;
        self.inner
            .write(Op::Delete, |_| Ok(Batch::Keys(keys.clone())))
    }

    /// Deletes every live document matching `expr`, as one atomic WAL record of the keys it
    /// matched (so replay is deterministic); the keys can be inserted again afterwards. Returns
    /// the number deleted. An empty expression is an error: use [`Collection::delete_all`].
    pub fn delete_by_filter(&self, expr: &str) -> Result<usize> {
        self.delete_matching(Some(expr))
    }

    /// Deletes every live document, as one atomic WAL record. Returns the number deleted.
    pub fn delete_all(&self) -> Result<usize> {
        self.delete_matching(None)
    }

    fn delete_matching(&self, expr: Option<&str>) -> Result<usize> {
        // Resolved and logged with the writer lock held exclusively: every earlier write is
        // applied, and no write (or schema change) can slip in between.
        let inner = &*self.inner;
        let mut w = inner.writer.write();
        inner.check_writable(&w)?;
        let keys: Vec<String> = {
            let st = inner.state.read();
            let filter = match expr {
                Some(expr) => Some(Filter::compile(&st.schema, expr)?.ok_or(Error::EmptyFilter)?),
                None => None,
            };
            let filter = filter.as_ref();
            let mut keys = Vec::new();
            for rows in st.rows()? {
                let columns = flat::filter_columns(filter, &rows)?;
                for (i, &id) in rows.doc_ids.iter().enumerate() {
                    if !st.ids.deleted.contains(id) && flat::matches(filter, &columns, i) {
                        keys.push(rows.pk(i).to_string());
                    }
                }
            }
            keys
        };
        let n = keys.len();
        if n > 0 {
            let wal = inner.ensure_wal(&mut w)?;
            inner.log_and_publish(&wal, Op::Delete, Batch::Keys(keys))?;
        }
        Ok(n)
    }

    fn write_rows(&self, op: Op, docs: &[Doc]) -> Result<Vec<DocStatus>> {
        validate::check_batch_len(docs.len())?;
        self.inner.write(op, |schema| {
            let rows = docs
                .iter()
                .map(|d| validate::row(schema, d.clone()))
                .collect::<Result<Vec<_>>>()?;
            Ok(Batch::Rows(rows))
        })
    }

    /// Persists the writing segment (its rows become a sealed segment, its WAL is removed) and
    /// waits until that, and every persist already under way, is committed. A no-op when
    /// nothing was written since the last persist.
    pub fn flush(&self) -> Result<()> {
        let inner = &*self.inner;
        let (tx, rx) = background::reply();
        let rotated = {
            let mut w = inner.writer.write();
            inner.check_writable(&w)?;
            inner.rotate(&mut w, Some(tx))?
        };
        // Persists run in order: the answer for this one means every earlier one is done.
        if rotated {
            inner.await_reply(rx)
        } else {
            inner.barrier()
        }
    }

    /// Makes every acknowledged write durable now, whatever the flush policy.
    pub fn sync(&self) -> Result<()> {
        let inner = &*self.inner;
        let w = inner.writer.read();
        inner.check_writable(&w)?;
        match &w.wal {
            Some(wal) => wal.sync().map_err(|e| inner.poison(e)),
            None => Ok(()),
        }
    }

    /// Persists the writing segment, then merges every sealed segment into one without the
    /// deleted rows, in the background: reads and writes go on meanwhile (rows deleted while
    /// the merge runs stay deleted). Returns when the merge is committed.
    pub fn optimize(&self) -> Result<()> {
        self.flush()?;
        let (tx, rx) = background::reply();
        self.inner.submit(Job::Merge(MergeScope::All, Some(tx)))?;
        self.inner.await_reply(rx)
    }

    /// Waits until the background work queued so far is done, the writing segment's rows
    /// are all in its live graphs, every graph a sealed segment deferred is built (see
    /// [`CollectionOptions::min_graph_rows`]) and every sealed segment's graphs are packed for search
    /// (after an open that happens on a background thread; until then searches walk the
    /// mapped files). Reads never need this (rows not yet in a graph are scored exactly); it is
    /// for measurements and tests. Returns a background failure, if any.
    pub fn wait_idle(&self) -> Result<()> {
        let inner = &*self.inner;
        inner.check_open()?;
        // The segments with the schema they were written for (one snapshot).
        let (schema, sealed) = {
            let st = inner.state.read();
            (st.schema.clone(), st.sealed.clone())
        };
        for segment in sealed {
            // Blocks on a pack the open's background thread is building, or builds it here.
            segment.pack_graphs(&schema);
        }
        if inner.read_only {
            return Ok(());
        }
        // A bulk load's backlog is sealed with the bulk builder rather than fed to hnsw_rs.
        inner.seal_backlog();
        // Also the barrier: jobs run in order.
        let (tx, rx) = background::reply();
        inner.submit(Job::BuildDeferred(tx))?;
        inner.await_reply(rx)?;
        // Index what is there now on this thread too: the indexer may be busy elsewhere.
        let graphs: Vec<_> = {
            let st = inner.state.read();
            st.writing
                .graphs
                .iter()
                .enumerate()
                .filter_map(|(v, g)| {
                    let g = g.clone()?;
                    let col = &st.writing.rows.vectors[v];
                    let from = g.indexed().min(st.writing.rows.len());
                    Some((g, from, col.data[from * col.dim..].to_vec(), col.dim))
                })
                .collect()
        };
        for (g, from, vectors, dim) in graphs {
            g.add_rows(from, &vectors, dim, false);
        }
        Ok(())
    }

    /// Persists the writing segment, waits for background work and releases the lock. Later
    /// calls return [`Error::Closed`]; closing twice is fine. Returns the error of a failed
    /// write, fsync, persist or merge if there was one (acknowledged writes are then in the WAL
    /// and come back on the next open). Dropping a collection closes it too, but only `close`
    /// reports a failure.
    pub fn close(&self) -> Result<()> {
        let inner = &*self.inner;
        let mut result = Ok(());
        {
            let mut w = inner.writer.write();
            if w.closed {
                return Ok(());
            }
            if !inner.read_only && inner.failure.get().is_none() {
                let (tx, rx) = background::reply();
                result = match inner.rotate(&mut w, Some(tx)) {
                    Ok(true) => inner.await_reply(rx),
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            w.closed = true;
            w.wal = None;
            inner.closed.store(true, Ordering::Release);
        }
        if let Some(mut workers) = inner.workers.lock().take() {
            workers.stop(inner);
        }
        if let Some(warming) = inner.warming.lock().take() {
            warming.stop();
        }
        if result.is_ok() && !inner.read_only {
            result = inner.check_not_failed();
        }
        self.lock.lock().take();
        result
    }

    /// Closes the collection and deletes its directory.
    pub fn destroy(self) -> Result<()> {
        let inner = &*self.inner;
        if inner.read_only {
            return Err(Error::ReadOnly);
        }
        {
            let mut w = inner.writer.write();
            w.closed = true;
            w.wal = None;
            inner.closed.store(true, Ordering::Release);
        }
        if let Some(mut workers) = inner.workers.lock().take() {
            workers.stop(inner);
        }
        self.lock.lock().take();
        inner.storage.remove_dir_all(&inner.path)?;
        inner.storage.sync_dir(parent_dir(&inner.path))
    }
}

impl Inner {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn check_writable(&self, w: &Writer) -> Result<()> {
        if w.closed {
            return Err(Error::Closed);
        }
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.check_not_failed()
    }

    fn check_not_failed(&self) -> Result<()> {
        match self.failure.get() {
            Some(_) => Err(self.poisoned_error()),
            None => Ok(()),
        }
    }

    fn poisoned_error(&self) -> Error {
        let cause = self
            .failure
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::new(io::Error::other("an earlier write failed")));
        Error::Poisoned {
            path: self.path.clone(),
            cause,
        }
    }

    /// The one poisoning rule (DESIGN §4): the first failed write, fsync, persist or merge makes
    /// the collection refuse every later write, keeping the original error's kind. Readers go
    /// on reading the last good state. Errors that are not I/O (a bad argument) do not poison.
    fn poison(&self, e: Error) -> Error {
        let cause = match &e {
            Error::Poisoned { cause, .. } => cause.clone(),
            Error::Io { source, .. } => Arc::new(io::Error::new(source.kind(), e.to_string())),
            refused if refused.is_invalid_argument() => return e,
            Error::Serialization(_) => return e,
            other => Arc::new(io::Error::other(other.to_string())),
        };
        let _ = self.failure.set(cause);
        e
    }

    /// Hands a job to the background worker.
    fn submit(&self, job: Job) -> Result<()> {
        match &*self.workers.lock() {
            Some(workers) => workers.submit(job),
            None => Err(Error::Closed),
        }
    }
}

impl Drop for Collection {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

//! A collection: the sealed segments, the writing segment and its WAL, and the manifest that
//! ties them together.
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

mod batch;
mod deletes;
mod graphs;
mod manifest;
mod options;
mod persist;
pub(crate) mod state;
mod validate;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;

pub use graphs::GraphLoad;
pub use options::{CollectionOptions, OpenOptions};
pub(crate) use validate::coerce;
pub use validate::{MAX_BATCH, MAX_PK_BYTES};

use crate::doc::{Doc, DocStatus};
use crate::error::{Error, Result};
use crate::query::{flat, FetchOptions, Filter, Query, SearchOptions, VectorSource, MAX_TOPK};
use crate::schema::CollectionSchema;
use crate::segment::{decode_block, Projection, Segment};
use crate::storage::{atomic_write, parent_dir, LockGuard, LockMode, Storage};
use crate::wal::{FlushPolicy, Op, RecoveryReport, Wal, WalId, WalOpenOptions};
use batch::Batch;
use deletes::DeleteSet;
use manifest::Manifest;
use options::StoredOptions;
use state::State;

/// Counts that describe a collection now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionStats {
    /// Live documents.
    pub doc_count: u64,
    /// Sealed (persisted) segments.
    pub segments: usize,
    /// Rows in the writing segment, in memory and in its WAL.
    pub writing_rows: usize,
    /// Stored rows that are deleted or superseded (dropped by `optimize`).
    pub deleted: u64,
    /// Size of the writing segment's WAL.
    pub wal_bytes: u64,
    /// N of the current `manifest.<N>`.
    pub manifest_version: u64,
    /// Per vector field with an HNSW index, how its graphs stand.
    pub graphs: Vec<GraphStats>,
}

/// How the graphs of one vector field stand.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphStats {
    /// The vector field.
    pub field: String,
    /// Rows reachable through a graph (the rest are scored exactly).
    pub rows_covered: u64,
    /// Sealed-segment graphs memory-mapped from their files.
    pub mapped: usize,
    /// Sealed-segment graphs held in memory (rebuilt by a read-only open).
    pub in_memory: usize,
    /// Graphs rebuilt at open because their file was missing or damaged.
    pub rebuilt_at_open: usize,
    /// Bytes of frozen graph data (adjacency and norms; vectors are not duplicated).
    pub frozen_bytes: u64,
}

/// What opening a collection found and did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenReport {
    /// Recovery of the writing segment's WAL, when there was one.
    pub wal: Option<RecoveryReport>,
    /// WAL records applied to the in-memory state.
    pub replayed_records: usize,
    /// Sealed segments loaded.
    pub segments: usize,
    /// Leftovers of interrupted work removed (temp files, stale WALs, orphan segments).
    pub removed: Vec<String>,
    /// How each sealed segment's graphs were loaded: `(segment, vector field, how)`.
    pub graphs: Vec<(u64, String, GraphLoad)>,
    /// Time the whole open took.
    pub duration: Duration,
}

/// The writer's side: only one write at a time holds it.
struct Writer {
    manifest: Manifest,
    wal: Option<Wal<Batch>>,
    policy: FlushPolicy,
    next_seq: u64,
    /// Set when a persist step failed: the collection then refuses writes.
    failed: Option<Arc<std::io::Error>>,
    closed: bool,
}

/// An open collection. `Send + Sync`: share it with `Arc`. Writes are serialized; searches and
/// fetches run concurrently with them and are blocked only while a write applies its rows.
pub struct Collection {
    path: PathBuf,
    storage: Arc<dyn Storage>,
    read_only: bool,
    schema: Arc<CollectionSchema>,
    writer: Mutex<Writer>,
    state: RwLock<State>,
    lock: Mutex<Option<LockGuard>>,
    report: OpenReport,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

const WAL_BLOCK: u64 = 0;
const LOCK_FILE: &str = "LOCK";

fn wal_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(segment.to_string())
        .join(format!("{WAL_BLOCK}.wal"))
}

fn wal_id(segment: u64) -> WalId {
    WalId {
        segment,
        block: WAL_BLOCK,
    }
}

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
            options: StoredOptions {
                flush_policy: options.flush_policy,
                max_buffer_bytes: options.max_buffer_bytes,
                max_docs_per_segment: options.max_docs_per_segment.max(1),
            },
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

    fn assemble(
        path: &Path,
        lock: LockGuard,
        manifest: Manifest,
        options: &OpenOptions,
        started: Instant,
    ) -> Result<Self> {
        let storage = options.storage.clone();
        let schema = Arc::new(manifest.schema.clone());
        let mut report = OpenReport::default();
        if !options.read_only {
            report.removed = persist::remove_leftovers(&*storage, path, &manifest)?;
        }
        let loaded =
            manifest
                .segments
                .par_iter()
                .map(|meta| {
                    let bytes = meta.file.read(&*storage, path)?;
                    let block = decode_block(&path.join(&meta.file.name), &bytes, &schema)?;
                    let mut graphs = Vec::with_capacity(schema.vectors.len());
                    let mut loads = Vec::new();
                    for (v, vs) in schema.vectors.iter().enumerate() {
                        if matches!(vs.index, crate::schema::IndexKind::Flat) {
                            graphs.push(None);
                            continue;
                        }
                        let name =
                            meta.graphs.get(v).cloned().flatten().unwrap_or_else(|| {
                                graphs::graph_name(meta.id, &vs.name, meta.block)
                            });
                        let (graph, load) =
                            graphs::load(&*storage, path, &name, vs, &block, v, options.read_only)?;
                        loads.push((meta.id, vs.name.clone(), load));
                        graphs.push(Some(graph));
                    }
                    Ok((Arc::new(Segment::new(meta.id, block, graphs)), loads))
                })
                .collect::<Result<Vec<_>>>()?;
        let mut sealed = Vec::with_capacity(loaded.len());
        for (segment, loads) in loaded {
            sealed.push(segment);
            report.graphs.extend(loads);
        }
        report.segments = sealed.len();
        let deleted = match &manifest.deletes {
            Some(file) => DeleteSet::decode(&path.join(&file.name), &file.read(&*storage, path)?)?,
            None => DeleteSet::default(),
        };
        let mut state = State::new(schema.clone(), sealed, deleted, manifest.next_doc_id);

        let policy = options
            .flush_policy
            .unwrap_or(manifest.options.flush_policy);
        let seg = manifest.writing_segment;
        let wal_file = wal_path(path, seg);
        let mut next_seq = manifest.applied_seq + 1;
        let mut wal = None;
        if storage.exists(&wal_file)? {
            let recovered = if options.read_only {
                Wal::<Batch>::read(&*storage, &wal_file, wal_id(seg))?
            } else {
                let opts = WalOpenOptions {
                    policy,
                    salvage: options.salvage,
                    next_seq,
                };
                let (w, recovered) =
                    Wal::<Batch>::open(storage.clone(), &wal_file, wal_id(seg), &opts)?;
                wal = Some(w);
                recovered
            };
            for record in recovered.records {
                next_seq = next_seq.max(record.seq + 1);
                if record.seq <= manifest.applied_seq {
                    continue;
                }
                let seq = record.seq;
                state.apply(record.op, record.payload).map_err(|reason| {
                    Error::corrupted(&wal_file, 0, format!("record seq {seq}: {reason}"))
                })?;
                report.replayed_records += 1;
            }
            report.wal = Some(recovered.report);
        }
        report.duration = started.elapsed();
        Ok(Collection {
            path: path.to_path_buf(),
            storage,
            read_only: options.read_only,
            schema,
            writer: Mutex::new(Writer {
                manifest,
                wal,
                policy,
                next_seq,
                failed: None,
                closed: false,
            }),
            state: RwLock::new(state),
            lock: Mutex::new(Some(lock)),
            report,
        })
    }

    /// The collection's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema.
    pub fn schema(&self) -> &CollectionSchema {
        &self.schema
    }

    /// The flush policy in force: the one stored at create, unless the open overrode it.
    pub fn flush_policy(&self) -> FlushPolicy {
        self.writer.lock().policy
    }

    /// What opening found and did (WAL recovery, leftovers removed).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
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
        let patches = docs
            .iter()
            .map(|d| validate::patch(&self.schema, d.clone()))
            .collect::<Result<Vec<_>>>()?;
        self.write(Op::Update, Batch::Patches(patches))
    }

    /// Deletes documents by primary key; missing keys get [`DocStatus::NotFound`].
    pub fn delete<S: AsRef<str>>(&self, pks: &[S]) -> Result<Vec<DocStatus>> {
        validate::check_batch_len(pks.len())?;
        let keys = pks
            .iter()
            .map(|pk| validate::check_pk(pk.as_ref()).map(|()| pk.as_ref().to_string()))
            .collect::<Result<Vec<_>>>()?;
        self.write(Op::Delete, Batch::Keys(keys))
    }

    /// Deletes every live document matching `expr`, as one atomic WAL record of the keys it
    /// matched (so replay is deterministic); the keys can be inserted again afterwards. Returns
    /// the number deleted. An empty expression is an error: use [`Collection::delete_all`].
    pub fn delete_by_filter(&self, expr: &str) -> Result<usize> {
        let filter = Filter::compile(&self.schema, expr)?.ok_or_else(|| {
            Error::InvalidArgument(
                "delete_by_filter needs a non-empty filter; use delete_all to delete everything"
                    .into(),
            )
        })?;
        self.delete_matching(Some(&filter))
    }

    /// Deletes every live document, as one atomic WAL record. Returns the number deleted.
    pub fn delete_all(&self) -> Result<usize> {
        self.delete_matching(None)
    }

    fn delete_matching(&self, filter: Option<&Filter>) -> Result<usize> {
        // Resolved and logged under one writer lock: no write can slip in between.
        let mut w = self.writer.lock();
        self.check_writable(&w)?;
        let keys: Vec<String> = {
            let st = self.state.read();
            st.blocks()
                .flat_map(|b| (0..b.len()).map(move |i| (b, i)))
                .filter(|(b, i)| {
                    !st.deleted.contains(b.doc_ids[*i]) && flat::matches(filter, b, *i)
                })
                .map(|(b, i)| b.pks[i].clone())
                .collect()
        };
        let n = keys.len();
        self.write_locked(&mut w, Op::Delete, Batch::Keys(keys))?;
        Ok(n)
    }

    fn write_rows(&self, op: Op, docs: &[Doc]) -> Result<Vec<DocStatus>> {
        validate::check_batch_len(docs.len())?;
        let rows = docs
            .iter()
            .map(|d| validate::row(&self.schema, d.clone()))
            .collect::<Result<Vec<_>>>()?;
        self.write(op, Batch::Rows(rows))
    }

    /// Logs one batch, then applies it: the heart of every write.
    fn write(&self, op: Op, batch: Batch) -> Result<Vec<DocStatus>> {
        let mut w = self.writer.lock();
        self.check_writable(&w)?;
        self.write_locked(&mut w, op, batch)
    }

    fn write_locked(&self, w: &mut Writer, op: Op, batch: Batch) -> Result<Vec<DocStatus>> {
        if crate::wal::WalPayload::doc_count(&batch) == 0 {
            return Ok(Vec::new());
        }
        if w.wal.is_none() {
            w.wal = Some(self.create_wal(w)?);
        }
        let Some(wal) = w.wal.as_ref() else {
            return Err(Error::Closed);
        };
        let appended = wal.append(op, &batch);
        // A record whose fsync failed still took its seq: never hand that seq out again.
        w.next_seq = wal.next_seq();
        if let Err(e) = appended {
            return Err(Self::poison(w, e));
        }
        let statuses = self
            .state
            .write()
            .apply(op, batch)
            .map_err(|reason| Error::InvalidArgument(format!("internal: {reason}")))?;
        let (rows, bytes) = {
            let st = self.state.read();
            st.index_new_rows();
            (st.writing.len() as u64, st.writing.bytes as u64)
        };
        let opts = &w.manifest.options;
        if rows >= opts.max_docs_per_segment || bytes >= opts.max_buffer_bytes {
            // The write is durable in the WAL already; a failed persist poisons the collection
            // and surfaces on the next write.
            let _ = self.persist(w);
        }
        Ok(statuses)
    }

    fn check_writable(&self, w: &Writer) -> Result<()> {
        if w.closed {
            return Err(Error::Closed);
        }
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        if let Some(cause) = &w.failed {
            return Err(Error::Poisoned {
                path: self.path.clone(),
                cause: cause.clone(),
            });
        }
        Ok(())
    }

    /// The WAL of the writing segment, created (with its directory) on the first write.
    fn create_wal(&self, w: &Writer) -> Result<Wal<Batch>> {
        let seg = w.manifest.writing_segment;
        let dir = self.path.join(seg.to_string());
        self.storage.create_dir_all(&dir)?;
        self.storage.sync_dir(&self.path)?;
        Wal::create(
            self.storage.clone(),
            &wal_path(&self.path, seg),
            wal_id(seg),
            w.next_seq,
            w.policy,
        )
    }

    /// Returns the live documents with these primary keys, in request order, duplicates and
    /// missing keys left out. Every scalar field and vector is included.
    pub fn fetch<S: AsRef<str>>(&self, pks: &[S]) -> Result<Vec<Doc>> {
        self.fetch_with(pks, &FetchOptions::default())
    }

    /// [`Collection::fetch`] with a choice of fields and vectors.
    pub fn fetch_with<S: AsRef<str>>(&self, pks: &[S], options: &FetchOptions) -> Result<Vec<Doc>> {
        self.check_open()?;
        let projection =
            self.projection(options.output_fields.as_deref(), options.include_vector)?;
        let st = self.state.read();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for pk in pks {
            let pk = pk.as_ref();
            if !seen.insert(pk) {
                continue;
            }
            if let Some((block, i)) = st.live.get(pk).and_then(|&id| st.locate(id)) {
                out.push(block.doc(&self.schema, i, &projection));
            }
        }
        Ok(out)
    }

    /// The `topk` live documents nearest to `query` in vector field `field`, best first, with
    /// zvec's scores (L2: squared distance, ascending; IP: dot product, descending; Cosine:
    /// `1 − cos`, ascending); ties are broken by primary key.
    pub fn search(&self, field: &str, query: &[f32], options: &SearchOptions) -> Result<Vec<Doc>> {
        let mut q = Query::vector(field, query.to_vec()).topk(options.topk);
        q.ef = options.ef;
        q.output_fields = options.output_fields.clone();
        q.include_vector = options.include_vector;
        self.query(&q)
    }

    /// zvec's general query: no vector (live documents in insertion order, score 0), one
    /// vector, the vector of a stored document ([`Query::by_id`]), or several routes merged by
    /// a [`crate::ReRanker`]; with an optional filter.
    pub fn query(&self, query: &Query) -> Result<Vec<Doc>> {
        self.check_open()?;
        if query.topk == 0 || query.topk > MAX_TOPK {
            return Err(Error::InvalidArgument(format!(
                "Invalid query: topk[{}] must be in 1..={MAX_TOPK}",
                query.topk
            )));
        }
        let projection = self.projection(query.output_fields.as_deref(), query.include_vector)?;
        let filter = Filter::compile(&self.schema, query.filter.as_deref().unwrap_or(""))?;
        let filter = filter.as_ref();
        let st = self.state.read();
        match query.vectors.as_slice() {
            [] => Ok(st
                .blocks()
                .flat_map(|b| (0..b.len()).map(move |i| (b, i)))
                .filter(|(b, i)| {
                    !st.deleted.contains(b.doc_ids[*i]) && flat::matches(filter, b, *i)
                })
                .take(query.topk)
                .map(|(b, i)| b.doc(&self.schema, i, &projection))
                .collect()),
            [route] => Ok(self
                .route(&st, route, query.topk, query.ef, filter, &projection)?
                .1),
            routes => {
                let reranker = query.reranker.as_ref().ok_or_else(|| {
                    Error::InvalidArgument(
                        "A reranker is required to merge results from multiple queries".into(),
                    )
                })?;
                if let crate::ReRanker::Weighted { weights } = reranker {
                    if weights.len() != routes.len() {
                        return Err(Error::InvalidArgument(format!(
                            "WeightedReRanker has {} weights for {} queries",
                            weights.len(),
                            routes.len()
                        )));
                    }
                }
                // Like zvec, each route contributes max(topk, 10) candidates.
                let candidates = query.topk.max(10);
                let results = routes
                    .iter()
                    .map(|r| self.route(&st, r, candidates, query.ef, filter, &projection))
                    .collect::<Result<Vec<_>>>()?;
                Ok(crate::query::fuse(results, reranker, query.topk))
            }
        }
    }

    /// The best `k` documents of one vector route, with the route's metric.
    fn route(
        &self,
        st: &State,
        route: &crate::query::VectorQuery,
        k: usize,
        ef: Option<usize>,
        filter: Option<&Filter>,
        projection: &Projection,
    ) -> Result<(crate::Metric, Vec<Doc>)> {
        let v = self.schema.vector_index(&route.field).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "Invalid query: vector field[{}] not found in collection schema",
                route.field
            ))
        })?;
        let vs = &self.schema.vectors[v];
        let by_id;
        let vector: &[f32] = match &route.source {
            VectorSource::Vector(x) => x,
            VectorSource::ById(pk) => {
                let (block, i) =
                    st.live
                        .get(pk)
                        .and_then(|&id| st.locate(id))
                        .ok_or_else(|| {
                            Error::InvalidArgument(format!("Document with id '{pk}' not found"))
                        })?;
                by_id = block.vectors[v].get(i).to_vec();
                &by_id
            }
        };
        if vector.len() != vs.dimension {
            return Err(Error::InvalidArgument(format!(
                "Invalid query: dimension mismatch, expected {} but got {}",
                vs.dimension,
                vector.len()
            )));
        }
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(Error::InvalidArgument(
                "Invalid query: the vector has a NaN or infinite component".into(),
            ));
        }
        let (hits, blocks) = crate::query::plan::search(st, v, vs, vector, k, ef, filter);
        let docs = hits
            .iter()
            .map(|h| {
                let mut doc = blocks[h.block].doc(&self.schema, h.row, projection);
                doc.score = h.score;
                doc
            })
            .collect();
        Ok((vs.metric, docs))
    }

    /// A vector query whose hits are grouped by the value of a scalar field: up to
    /// `group_count` groups, ordered by their best hit, of up to `topk_per_group` hits each.
    /// NULL values form the group `""`. Works the same before and after a reopen (zvec's
    /// returns nothing after a reopen until `optimize`). `query.topk` is ignored.
    pub fn group_by_query(
        &self,
        query: &Query,
        group: &crate::GroupBy,
    ) -> Result<Vec<crate::Group>> {
        let f = self.schema.field_index(&group.field).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "group_by field {} not defined in schema",
                group.field
            ))
        })?;
        if group.group_count == 0 || group.topk_per_group == 0 {
            return Err(Error::InvalidArgument(
                "group_count and topk_per_group must be ≥ 1".into(),
            ));
        }
        let name = &self.schema.fields[f].name;
        let mut q = query.clone();
        // The grouping field must come back, whatever the caller asked to see.
        if let Some(fields) = q.output_fields.as_mut() {
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
        let live = self.state.read().live.len().max(1);
        let mut want = (group.group_count * group.topk_per_group * 4).min(MAX_TOPK);
        loop {
            q.topk = want.min(live).max(1);
            let hits = self.query(&q)?;
            let exhausted = hits.len() < q.topk || q.topk >= live || q.topk >= MAX_TOPK;
            let mut groups: Vec<crate::Group> = Vec::new();
            for mut doc in hits {
                let value = doc.fields.get(name).map_or(String::new(), value_text);
                if query
                    .output_fields
                    .as_ref()
                    .is_some_and(|o| !o.contains(name))
                {
                    doc.fields.remove(name);
                }
                match groups.iter().position(|g| g.value == value) {
                    Some(g) if groups[g].docs.len() < group.topk_per_group => {
                        groups[g].docs.push(doc)
                    }
                    Some(_) => {}
                    None if groups.len() < group.group_count => groups.push(crate::Group {
                        value,
                        docs: vec![doc],
                    }),
                    None => {}
                }
            }
            let full = groups.len() == group.group_count
                && groups.iter().all(|g| g.docs.len() == group.topk_per_group);
            if full || exhausted {
                return Ok(groups);
            }
            want = (want * 4).min(MAX_TOPK);
        }
    }

    fn projection(
        &self,
        output_fields: Option<&[String]>,
        include_vector: bool,
    ) -> Result<Projection> {
        let mut p = Projection::default();
        match output_fields {
            None => p.fields = (0..self.schema.fields.len()).collect(),
            Some(names) => {
                for name in names {
                    if let Some(f) = self.schema.field_index(name) {
                        if !p.fields.contains(&f) {
                            p.fields.push(f);
                        }
                    } else if let Some(v) = self.schema.vector_index(name) {
                        if !p.vectors.contains(&v) {
                            p.vectors.push(v);
                        }
                    } else {
                        return Err(Error::InvalidArgument(format!(
                            "output field {name} not defined in schema"
                        )));
                    }
                }
            }
        }
        if include_vector {
            p.vectors = (0..self.schema.vectors.len()).collect();
        }
        Ok(p)
    }

    fn check_open(&self) -> Result<()> {
        if self.writer.lock().closed {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Persists the writing segment (its rows become a sealed segment, its WAL is removed).
    /// A no-op when nothing was written since the last persist.
    pub fn flush(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.check_writable(&w)?;
        self.persist(&mut w)
    }

    /// Makes every acknowledged write durable now, whatever the flush policy.
    pub fn sync(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.check_writable(&w)?;
        let synced = match &w.wal {
            Some(wal) => wal.sync(),
            None => Ok(()),
        };
        synced.map_err(|e| Self::poison(&mut w, e))
    }

    /// Makes the collection refuse writes after a failed WAL write or fsync (DESIGN §4): the
    /// WAL's own poisoning is not enough, since a flush would start a fresh WAL.
    fn poison(w: &mut Writer, e: Error) -> Error {
        if matches!(e, Error::Io { .. } | Error::Poisoned { .. }) && w.failed.is_none() {
            let cause = match &e {
                Error::Poisoned { cause, .. } => cause.clone(),
                other => Arc::new(std::io::Error::other(other.to_string())),
            };
            w.failed = Some(cause);
        }
        e
    }

    /// Merges all sealed segments into one and drops deleted rows for good.
    pub fn optimize(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.check_writable(&w)?;
        self.persist(&mut w)?;
        self.merge(&mut w)
    }

    /// Counts that describe the collection now.
    pub fn stats(&self) -> CollectionStats {
        let w = self.writer.lock();
        let st = self.state.read();
        let stored: u64 = st.blocks().map(|b| b.len() as u64).sum();
        let graphs = self
            .schema
            .vectors
            .iter()
            .enumerate()
            .filter(|(_, vs)| !matches!(vs.index, crate::schema::IndexKind::Flat))
            .map(|(v, vs)| {
                let frozen: Vec<_> = st
                    .sealed
                    .iter()
                    .filter_map(|s| s.graphs.get(v)?.as_ref().map(|g| (s, g)))
                    .collect();
                GraphStats {
                    field: vs.name.clone(),
                    rows_covered: frozen
                        .iter()
                        .map(|(s, _)| s.block.len() as u64)
                        .sum::<u64>()
                        + st.live_graphs
                            .get(v)
                            .and_then(Option::as_ref)
                            .map_or(0, |l| l.indexed() as u64),
                    mapped: frozen.iter().filter(|(_, g)| g.is_mapped()).count(),
                    in_memory: frozen.iter().filter(|(_, g)| !g.is_mapped()).count(),
                    rebuilt_at_open: self
                        .report
                        .graphs
                        .iter()
                        .filter(|(_, f, load)| {
                            *f == vs.name && matches!(load, GraphLoad::Rebuilt { .. })
                        })
                        .count(),
                    frozen_bytes: frozen.iter().map(|(_, g)| g.byte_len() as u64).sum(),
                }
            })
            .collect();
        CollectionStats {
            graphs,
            doc_count: st.live.len() as u64,
            segments: st.sealed.len(),
            writing_rows: st.writing.len(),
            deleted: stored - st.live.len() as u64,
            // A read-only handle replays the WAL without opening it for writes.
            wal_bytes: w.wal.as_ref().map_or_else(
                || self.report.wal.as_ref().map_or(0, |r| r.bytes),
                |wal| wal.len(),
            ),
            manifest_version: w.manifest.version,
        }
    }

    /// Persists the writing segment and releases the lock. Later calls return
    /// [`Error::Closed`]; closing twice is fine. Dropping a collection closes it too, but only
    /// `close` reports a failure.
    pub fn close(&self) -> Result<()> {
        let mut w = self.writer.lock();
        if w.closed {
            return Ok(());
        }
        let result = if self.read_only || w.failed.is_some() {
            Ok(())
        } else {
            self.persist(&mut w)
        };
        w.closed = true;
        w.wal = None;
        self.lock.lock().take();
        result
    }

    /// Closes the collection and deletes its directory.
    pub fn destroy(self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        {
            let mut w = self.writer.lock();
            w.closed = true;
            w.wal = None;
        }
        self.lock.lock().take();
        self.storage.remove_dir_all(&self.path)?;
        self.storage.sync_dir(parent_dir(&self.path))
    }
}

/// A scalar value as zvec shows a group key.
fn value_text(v: &crate::Value) -> String {
    use crate::Value as V;
    match v {
        V::Null => String::new(),
        V::Bool(x) => x.to_string(),
        V::Int32(x) => x.to_string(),
        V::Int64(x) => x.to_string(),
        V::UInt32(x) => x.to_string(),
        V::UInt64(x) => x.to_string(),
        V::Float(x) => x.to_string(),
        V::Double(x) => x.to_string(),
        V::String(x) => x.clone(),
        other => format!("{other:?}"),
    }
}

impl Drop for Collection {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

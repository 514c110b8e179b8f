//! Schema and index changes (DDL): add, drop and alter columns; create and drop indexes.
//!
//! # How a change is made
//!
//! Every change runs the same way, and is committed through a new manifest like any other:
//!
//! 1. The caller takes the writer lock exclusively (writes wait; reads go on) and checks the
//!    change against the current schema: a refused change touches nothing.
//! 2. The writing segment is sealed (rotated and persisted, as `flush` does), so that the new
//!    schema starts with an empty writing segment and no WAL ever holds records of two
//!    schemas: replay after a crash reads every WAL with the schema of the manifest that
//!    names it.
//! 3. The background worker — which also runs persists and merges, one job at a time, so no
//!    commit races — writes the new files, if the change needs any, and commits
//!    `manifest.<N+1>` with the new schema (temp file, fsync, rename, directory fsync). That
//!    rename is the commit point: a crash before it leaves the old manifest, whose files are
//!    all still there (the open removes the new, unlisted ones); a crash after it leaves the
//!    new manifest with all its files durable.
//! 4. The readers' state swaps the schema and the segments together under its write lock,
//!    for an instant: a reader that took its snapshot before finishes on the old schema and
//!    the old segments (held by `Arc`), a later one sees only the new.
//! 5. The replaced segments' directories are removed, after the commit.
//!
//! # Which changes rewrite files
//!
//! A forward file (`<seg>/0.fwd`) stores one section per scalar field and per vector field *by
//! position in the schema*, each value tagged with its type, and the manifest checks the file
//! by checksum. So:
//!
//! - renaming a column and creating or dropping an inverted index are **manifest-only**: the
//!   files do not name fields, and inverted indexes are built in memory on first use from the
//!   forward file;
//! - adding, dropping or retyping a column changes the sections, and changing a vector field's
//!   index changes its graph files: every sealed segment is **rewritten** as a new segment
//!   (new id, new directory) holding all its rows — deleted ones too, so graph row ids keep
//!   their meaning and unchanged graphs are copied, not rebuilt. Rewriting under new ids
//!   rather than in place is what makes the change atomic: the old manifest's files are never
//!   touched until the new manifest is durable. A per-segment column mapping would avoid the
//!   rewrite but every reader, merge and `verify` would have to apply it; a rewrite costs one
//!   pass over the data, as zvec's own `add_column` does.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::background::{self, Job};
use super::{Collection, Inner};
use crate::doc::{coerce, Value};
use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, DataType, FieldSchema, IndexKind, ScalarIndex};
use crate::segment::{build_graph, rewrite, segment_dir, Block, SealedSegment};

/// The index [`Collection::create_index`] creates.
///
/// `From` conversions let a call pass a [`ScalarIndex`] or an [`IndexKind`] directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexParam {
    /// An inverted index on a scalar field (bool, integer or string).
    Inverted,
    /// A vector field's index: [`IndexKind::Flat`] or [`IndexKind::Hnsw`] with its `m` and
    /// `ef_construction`. The field's metric stays as declared: stored cosine vectors are
    /// normalised, so the metric is part of the data, not of the index.
    Vector(IndexKind),
}

impl From<ScalarIndex> for IndexParam {
    fn from(_: ScalarIndex) -> Self {
        IndexParam::Inverted
    }
}

impl From<IndexKind> for IndexParam {
    fn from(kind: IndexKind) -> Self {
        IndexParam::Vector(kind)
    }
}

/// A requested schema change.
#[derive(Debug, Clone)]
enum Change {
    Add {
        field: FieldSchema,
        default: Option<Value>,
    },
    Drop {
        name: String,
    },
    Alter {
        name: String,
        new_name: Option<String>,
        new_type: Option<DataType>,
    },
    /// `None`: drop the index.
    Index {
        field: String,
        param: Option<IndexParam>,
    },
}

/// Where a field of the new schema takes its values from.
#[derive(Debug, Clone)]
enum Source {
    /// The old field at this position, converted to the new type where it changed.
    Old(usize),
    /// The same value in every existing row.
    Constant(Value),
}

/// A checked change: the new schema and, when files must be rewritten, how.
#[derive(Debug)]
pub(super) struct Plan {
    /// The schema the change was checked against.
    base: Arc<CollectionSchema>,
    schema: CollectionSchema,
    /// Per field of the new schema.
    fields: Vec<Source>,
    /// Per vector field of the new schema: its position in the old one, and whether its graph
    /// is built anew (its index changed).
    vectors: Vec<(usize, bool)>,
    /// Whether sealed segments are rewritten (otherwise only the manifest changes).
    rewrite: bool,
}

fn is_numeric(t: DataType) -> bool {
    matches!(
        t,
        DataType::Int32
            | DataType::Int64
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float
            | DataType::Double
    )
}

/// Whether every value of `from` is a value of `to`.
fn lossless(from: DataType, to: DataType) -> bool {
    use DataType as T;
    from == to
        || matches!(
            (from, to),
            (T::Int32, T::Int64 | T::Double)
                | (T::UInt32, T::UInt64 | T::Int64 | T::Double)
                | (T::Float, T::Double)
        )
}

fn not_found(name: &str) -> Error {
    Error::InvalidSchema {
        reason: format!("'{name}' not found in collection schema"),
    }
}

fn exists(name: &str) -> Error {
    Error::InvalidSchema {
        reason: format!("field[{name}] already exists in collection schema"),
    }
}

/// zvec's refusal of a vector field where a numeric one is required.
fn vector_refused(name: &str) -> Error {
    Error::NotNumericField {
        field: name.to_string(),
        data_type: "VECTOR_FP32".into(),
    }
}

fn not_numeric(f: &FieldSchema) -> Error {
    Error::NotNumericField {
        field: f.name.clone(),
        data_type: f.data_type.name().to_uppercase(),
    }
}

impl Plan {
    fn identity(base: &Arc<CollectionSchema>) -> Self {
        Plan {
            base: base.clone(),
            schema: (**base).clone(),
            fields: (0..base.fields.len()).map(Source::Old).collect(),
            vectors: (0..base.vectors.len()).map(|v| (v, false)).collect(),
            rewrite: false,
        }
    }

    /// Checks `change` against `base`; `None` when it changes nothing (an index that is
    /// already there or already absent, a rename to the same name).
    fn of(base: &Arc<CollectionSchema>, change: &Change) -> Result<Option<Plan>> {
        let mut p = Plan::identity(base);
        let has_name = |n: &str| base.field_index(n).is_some() || base.vector_index(n).is_some();
        match change {
            Change::Add { field, default } => {
                if has_name(&field.name) {
                    return Err(exists(&field.name));
                }
                if !is_numeric(field.data_type) {
                    return Err(not_numeric(field));
                }
                let value = match default.clone().filter(|v| !v.is_null()) {
                    Some(v) => {
                        coerce(v, field.data_type).map_err(|reason| Error::InvalidSchema {
                            reason: format!("default of field[{}]: {reason}", field.name),
                        })?
                    }
                    None if field.nullable => Value::Null,
                    None => {
                        return Err(Error::DefaultRequired {
                            field: field.name.clone(),
                        })
                    }
                };
                p.schema.fields.push(field.clone());
                p.fields.push(Source::Constant(value));
                p.rewrite = true;
            }
            Change::Drop { name } => {
                if base.vector_index(name).is_some() {
                    return Err(vector_refused(name));
                }
                let f = base.field_index(name).ok_or_else(|| not_found(name))?;
                p.schema.fields.remove(f);
                p.fields.remove(f);
                p.rewrite = true;
            }
            Change::Alter {
                name,
                new_name,
                new_type,
            } => {
                if base.vector_index(name).is_some() {
                    return Err(vector_refused(name));
                }
                let f = base.field_index(name).ok_or_else(|| not_found(name))?;
                let old = &base.fields[f];
                let mut changed = false;
                if let Some(t) = new_type.filter(|&t| t != old.data_type) {
                    if !is_numeric(old.data_type) {
                        return Err(not_numeric(old));
                    }
                    if !lossless(old.data_type, t) {
                        return Err(Error::LossyTypeChange {
                            field: old.name.clone(),
                            from: old.data_type,
                            to: t,
                        });
                    }
                    p.schema.fields[f].data_type = t;
                    p.rewrite = true;
                    changed = true;
                }
                if let Some(n) = new_name.as_deref().filter(|n| *n != name) {
                    if has_name(n) {
                        return Err(exists(n));
                    }
                    p.schema.fields[f].name = n.to_string();
                    changed = true;
                }
                if !changed {
                    return Ok(None);
                }
            }
            Change::Index { field, param } => {
                if let Some(f) = base.field_index(field) {
                    let index = match param {
                        Some(IndexParam::Inverted) => Some(ScalarIndex::Inverted),
                        None => None,
                        Some(IndexParam::Vector(_)) => {
                            return Err(Error::InvalidSchema {
                                reason: format!(
                                    "scalar field[{field}] does not support vector index params"
                                ),
                            })
                        }
                    };
                    if base.fields[f].index == index {
                        return Ok(None);
                    }
                    p.schema.fields[f].index = index;
                } else if let Some(v) = base.vector_index(field) {
                    let kind = match param {
                        Some(IndexParam::Vector(kind)) => *kind,
                        // The metric stays: zvec 0.8.0 resets it to IP here, a bug not copied.
                        None => IndexKind::Flat,
                        Some(IndexParam::Inverted) => {
                            return Err(Error::InvalidSchema {
                                reason: format!(
                                    "vector field[{field}] does not support scalar index params"
                                ),
                            })
                        }
                    };
                    if base.vectors[v].index == kind {
                        return Ok(None);
                    }
                    p.schema.vectors[v].index = kind;
                    p.vectors[v].1 = true;
                    p.rewrite = true;
                } else {
                    return Err(not_found(field));
                }
            }
        }
        p.schema.validate()?;
        Ok(Some(p))
    }

    /// The rows of `input` (stored under `base`) as the new schema has them.
    fn block(&self, input: &SealedSegment) -> Result<Block> {
        let rows = input.rows()?;
        let mut block = Block::new(&self.schema);
        block.doc_ids = rows.doc_ids.to_vec();
        block.pks = (0..rows.len()).map(|i| rows.pk(i).to_string()).collect();
        for (f, source) in self.fields.iter().enumerate() {
            let fs = &self.schema.fields[f];
            block.fields[f] = match source {
                Source::Constant(value) => vec![value.clone(); rows.len()],
                Source::Old(old) if self.base.fields[*old].data_type == fs.data_type => {
                    rows.column(*old)?.to_vec()
                }
                Source::Old(old) => rows
                    .column(*old)?
                    .iter()
                    .map(|v| match v {
                        Value::Null => Ok(Value::Null),
                        v => coerce(v.clone(), fs.data_type).map_err(|reason| {
                            Error::InvariantViolated {
                                reason: format!("widening field[{}]: {reason}", fs.name),
                            }
                        }),
                    })
                    .collect::<Result<Vec<_>>>()?,
            };
        }
        for (v, &(old, _)) in self.vectors.iter().enumerate() {
            block.vectors[v].data = rows.vectors(old)?.to_vec();
        }
        Ok(block)
    }
}

impl Collection {
    /// Adds a numeric scalar column (zvec's `add_column`). Documents already stored get
    /// `default`, or NULL when it is `None` (then the field must be nullable:
    /// [`Error::DefaultRequired`]). zvec takes an arithmetic expression over other columns;
    /// stratavec takes a constant. The column is added after the existing ones. Refused: a
    /// name already used ([`Error::InvalidSchema`]), a type that is not numeric
    /// ([`Error::NotNumericField`]), a default that is not a value of the type, a read-only
    /// handle ([`Error::ReadOnly`]).
    ///
    /// Like every schema change, it seals the writing segment, rewrites what it must under new
    /// file names and commits a new manifest: after a crash the collection has either the old
    /// or the new schema, with every acknowledged document. Writes wait while it runs; reads
    /// do not (a read that started before it answers with the old schema).
    ///
    /// ```
    /// use stratavec::{Collection, CollectionOptions, CollectionSchema, DataType, Doc,
    ///                 FieldSchema, IndexKind, Query, Value, VectorSchema};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let schema = CollectionSchema::new("docs").vector(VectorSchema::new("v", 2));
    /// let coll = Collection::create(dir.path().join("c"), schema, CollectionOptions::default())?;
    /// coll.insert(&[Doc::new("a").vector("v", vec![1.0, 0.0])])?;
    ///
    /// coll.add_column(FieldSchema::new("year", DataType::Int32), Some(Value::Int32(2020)))?;
    /// coll.insert(&[Doc::new("b").set("year", 2024).vector("v", vec![0.0, 1.0])])?;
    /// let hits = coll.query(&Query::new().filter("year > 2021"))?;
    /// assert_eq!(hits[0].pk, "b");
    ///
    /// coll.alter_column("year", Some("published"), Some(DataType::Int64))?;
    /// assert_eq!(coll.fetch(&["a"])?[0].fields["published"], Value::Int64(2020));
    ///
    /// coll.create_index("v", IndexKind::Hnsw { m: 16, ef_construction: 100 })?;
    /// coll.drop_index("v")?; // back to flat; the metric stays
    /// coll.drop_column("published")?;
    /// assert!(coll.schema().fields.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_column(&self, field: FieldSchema, default: Option<Value>) -> Result<()> {
        self.change_schema(Change::Add { field, default })
    }

    /// Drops a scalar column, and its inverted index with it. Beyond zvec (numeric columns
    /// only), any scalar column may be dropped; a vector field is refused with zvec's
    /// [`Error::NotNumericField`].
    pub fn drop_column(&self, name: &str) -> Result<()> {
        self.change_schema(Change::Drop {
            name: name.to_string(),
        })
    }

    /// Renames a scalar column and/or changes its type. A type changes only where no value
    /// can be lost: int32 → int64 or double, uint32 → uint64, int64 or double, float → double
    /// ([`Error::LossyTypeChange`]), and only for numeric columns; a rename works for any
    /// scalar column (zvec: numeric only). Nullability is kept, so a nullable column never
    /// becomes non-nullable. Vector fields are refused ([`Error::NotNumericField`]). A rename
    /// changes only the manifest.
    pub fn alter_column(
        &self,
        name: &str,
        new_name: Option<&str>,
        new_type: Option<DataType>,
    ) -> Result<()> {
        self.change_schema(Change::Alter {
            name: name.to_string(),
            new_name: new_name.map(str::to_string),
            new_type,
        })
    }

    /// Creates an index: an inverted index on a scalar field ([`ScalarIndex::Inverted`]; only
    /// the manifest changes, the index is built in memory on first use), or a vector field's
    /// index ([`IndexKind::Flat`] or [`IndexKind::Hnsw`] with new `m` / `ef_construction`):
    /// graphs are built for every sealed segment with the bulk builder before the change
    /// commits. The wrong kind for the field is refused with zvec's message
    /// (`Invalid schema: scalar field[m] does not support vector index params`). Asking for
    /// the index the field has already is a no-op.
    pub fn create_index(&self, field: &str, index: impl Into<IndexParam>) -> Result<()> {
        self.change_schema(Change::Index {
            field: field.to_string(),
            param: Some(index.into()),
        })
    }

    /// Drops a field's index: a scalar field loses its inverted index, a vector field goes back
    /// to flat (exact) search **keeping its metric** — zvec 0.8.0 resets it to IP, which
    /// changes every score; that bug is not copied. A field without an index: no-op.
    pub fn drop_index(&self, field: &str) -> Result<()> {
        self.change_schema(Change::Index {
            field: field.to_string(),
            param: None,
        })
    }

    fn change_schema(&self, change: Change) -> Result<()> {
        let inner = &*self.inner;
        inner.check_open()?;
        // Exclusive: every appended record is applied, and no write comes in until the change
        // is committed (writes validated after it see the new schema).
        let mut w = inner.writer.write();
        inner.check_writable(&w)?;
        let base = inner.state.read().schema.clone();
        let Some(plan) = Plan::of(&base, &change)? else {
            return Ok(());
        };
        let (tx, rx) = background::reply();
        if inner.rotate(&mut w, Some(tx))? {
            rx.recv().map_err(|_| Error::Closed)??;
        }
        // Queued behind every persist and merge asked for so far.
        let (tx, rx) = background::reply();
        inner.submit(Job::Schema(Box::new(plan), tx))?;
        rx.recv().map_err(|_| Error::Closed)?
    }
}

impl Inner {
    /// Runs a checked schema change on the background worker (see the module comment).
    pub(super) fn apply_schema_change(&self, plan: &Plan) -> Result<()> {
        let (sealed, writing) = {
            let st = self.state.read();
            if !Arc::ptr_eq(&st.schema, &plan.base)
                || !st.sealing.is_empty()
                || !st.writing.rows.is_empty()
                || st.writing.wal().is_some()
            {
                return Err(Error::InvariantViolated {
                    reason: "a schema change found the writing segment not sealed".into(),
                });
            }
            (st.sealed.clone(), st.writing.id)
        };
        let mut replaced: Vec<(u64, crate::segment::SegmentMeta, Arc<SealedSegment>)> = Vec::new();
        if plan.rewrite {
            for input in &sealed {
                let block = plan.block(input)?;
                let id = self.next_segment_id.fetch_add(1, Ordering::SeqCst);
                let mut graphs = Vec::with_capacity(plan.schema.vectors.len());
                for (v, vs) in plan.schema.vectors.iter().enumerate() {
                    let (old, rebuild) = plan.vectors[v];
                    let kept = match rebuild {
                        false => input.graph(old, &plan.base.vectors[old])?,
                        true => None,
                    };
                    graphs.push(match kept {
                        Some(g) => Some(g.to_data()),
                        None => build_graph(vs, &block.vectors[v].data),
                    });
                }
                let (meta, segment) =
                    rewrite(&*self.storage, &self.path, &plan.schema, id, &block, |v| {
                        graphs[v].take()
                    })?;
                replaced.push((input.id, meta, Arc::new(segment)));
            }
        }
        {
            let mut c = self.committed.lock();
            let mut next = c.manifest.clone();
            next.version += 1;
            next.schema = plan.schema.clone();
            for (old, meta, _) in &replaced {
                if let Some(m) = next.segments.iter_mut().find(|m| m.id == *old) {
                    *m = meta.clone();
                }
            }
            next.next_segment_id = self.next_segment_id.load(Ordering::SeqCst);
            let deleted = c.deleted.clone();
            c.commit(&*self.storage, &self.path, next, deleted)?;
            self.manifest_version
                .store(c.manifest.version, Ordering::Release);
        }
        {
            let schema = Arc::new(plan.schema.clone());
            let fresh = self.new_segment(writing, &schema);
            let mut st = self.state.write();
            for (old, _, segment) in &replaced {
                if let Some(s) = st.sealed.iter_mut().find(|s| s.id == *old) {
                    *s = segment.clone();
                }
            }
            st.writing = fresh;
            st.schema = schema;
        }
        for (old, _, _) in &replaced {
            self.storage
                .remove_dir_all(&segment_dir(&self.path, *old))?;
        }
        if !replaced.is_empty() {
            self.storage.sync_dir(&self.path)?;
        }
        Ok(())
    }
}

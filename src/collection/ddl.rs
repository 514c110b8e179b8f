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
//!    names it. A column added with an expression is then computed for every live row, in the
//!    caller's thread, and discarded: a row without a value refuses the change here, because
//!    any failure of the background worker's job poisons the collection.
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
use crate::query::filter::arith::{Arith, EvalError, Number};
use crate::schema::{CollectionSchema, DataType, FieldSchema, IndexKind, ScalarIndex};
use crate::segment::{build_graph, rewrite, segment_dir, Block, DeleteSet, SealedSegment};

/// How existing rows get a value for a column added by [`Collection::add_column`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ColumnFill {
    /// NULL (the field must be nullable).
    Null,
    /// The same value in every row, converted to the field's type.
    Value(Value),
    /// Arithmetic over existing numeric columns, evaluated per row (zvec's `expression`):
    /// numbers, numeric scalar fields, `+ - * / %`, unary minus and parentheses, e.g.
    /// `"n * 2"`, `"a + b / 2"`, `"5"`. An operation is integer arithmetic when both its
    /// operands are integers (so `n / 2` truncates), floating-point otherwise; a NULL operand
    /// makes the row's value NULL. An integer field takes only an integer expression.
    Expression(String),
}

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
        fill: ColumnFill,
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
    /// The expression's value in each row, in the new field's type (the new field is the
    /// last one; the expression reads old fields).
    Expression(Box<Arith>),
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
            Change::Add { field, fill } => {
                if has_name(&field.name) {
                    return Err(exists(&field.name));
                }
                if !is_numeric(field.data_type) {
                    return Err(not_numeric(field));
                }
                let source = match fill {
                    ColumnFill::Null => Source::Constant(Value::Null),
                    ColumnFill::Value(v) if v.is_null() => Source::Constant(Value::Null),
                    ColumnFill::Value(v) => {
                        Source::Constant(coerce(v.clone(), field.data_type).map_err(|reason| {
                            Error::InvalidSchema {
                                reason: format!("default of field[{}]: {reason}", field.name),
                            }
                        })?)
                    }
                    ColumnFill::Expression(text) => expression_source(base, field, text)?,
                };
                if matches!(source, Source::Constant(Value::Null)) && !field.nullable {
                    return Err(Error::DefaultRequired {
                        field: field.name.clone(),
                    });
                }
                p.schema.fields.push(field.clone());
                p.fields.push(source);
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

    /// Whether a field is computed per row, which can fail on the rows' values.
    fn evaluates(&self) -> bool {
        self.fields
            .iter()
            .any(|s| matches!(s, Source::Expression(_)))
    }

    /// Computes every per-row value of `segments` and drops it: a value that cannot be
    /// computed refuses the change here, in the caller's thread, because the same failure on
    /// the background worker would poison the collection. The worker then computes the same
    /// values from the same rows (writes wait meanwhile; a merge only drops deleted rows, which
    /// are not computed).
    fn check(&self, segments: &[Arc<SealedSegment>], deleted: &DeleteSet) -> Result<()> {
        for segment in segments {
            let rows = segment.rows()?;
            for (f, source) in self.fields.iter().enumerate() {
                if let Source::Expression(expr) = source {
                    self.computed(&self.schema.fields[f], expr, &rows, deleted)?;
                }
            }
        }
        Ok(())
    }

    /// The value of `expr` for each row, in `field`'s type. Deleted rows get NULL or, in a
    /// non-nullable field, zero without being computed: no reader sees them, and a value
    /// refused there would refuse the change for nothing.
    fn computed(
        &self,
        field: &FieldSchema,
        expr: &Arith,
        rows: &crate::segment::Rows<'_>,
        deleted: &DeleteSet,
    ) -> Result<Vec<Value>> {
        // By old schema position; positions the expression does not read stay empty.
        let mut columns: Vec<&[Value]> = vec![&[]; self.base.fields.len()];
        for &f in expr.fields() {
            let column = rows.column(f)?;
            match columns.get_mut(f) {
                Some(slot) if column.len() == rows.len() => *slot = column,
                // Compiled against `base` and read from its rows: anything else is a bug, and
                // a silent NULL would store a wrong value.
                _ => {
                    return Err(Error::InvariantViolated {
                        reason: format!(
                            "the expression of field[{}] reads field {f}, which the rows do not \
                             hold in full",
                            field.name
                        ),
                    })
                }
            }
        }
        let placeholder = match field.nullable {
            true => Value::Null,
            false => zero(field.data_type),
        };
        (0..rows.len())
            .map(|i| {
                if deleted.contains(rows.doc_ids[i]) {
                    return Ok(placeholder.clone());
                }
                let cell = |f: usize| columns.get(f).and_then(|c| c.get(i)).unwrap_or(&NULL);
                let failed = |reason: String| Error::ExpressionFailed {
                    field: field.name.clone(),
                    pk: rows.pk(i).to_string(),
                    reason,
                };
                match expr.eval(&cell) {
                    Err(EvalError::NotANumber) => Err(Error::InvariantViolated {
                        reason: format!(
                            "a stored value read by the expression of field[{}] is not a number",
                            field.name
                        ),
                    }),
                    Err(e) => Err(failed(e.to_string())),
                    Ok(None) if field.nullable => Ok(Value::Null),
                    Ok(None) => Err(failed(
                        "an operand is NULL and the field is not nullable".into(),
                    )),
                    Ok(Some(n)) => to_field(n, field.data_type).map_err(failed),
                }
            })
            .collect()
    }

    /// The rows of `input` (stored under `base`) as the new schema has them.
    fn block(&self, input: &SealedSegment, deleted: &DeleteSet) -> Result<Block> {
        let rows = input.rows()?;
        let mut block = Block::new(&self.schema);
        block.doc_ids = rows.doc_ids.to_vec();
        block.pks = (0..rows.len()).map(|i| rows.pk(i).to_string()).collect();
        for (f, source) in self.fields.iter().enumerate() {
            let fs = &self.schema.fields[f];
            block.fields[f] = match source {
                Source::Constant(value) => vec![value.clone(); rows.len()],
                Source::Expression(expr) => self.computed(fs, expr, &rows, deleted)?,
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

/// What a position the expression does not read holds (`computed` loads every position it
/// reads); also the row of a constant expression, which reads none.
static NULL: Value = Value::Null;

/// A value of `ty` for rows no reader sees.
fn zero(ty: DataType) -> Value {
    match ty {
        DataType::Int32 => Value::Int32(0),
        DataType::Int64 => Value::Int64(0),
        DataType::UInt32 => Value::UInt32(0),
        DataType::UInt64 => Value::UInt64(0),
        DataType::Float => Value::Float(0.0),
        _ => Value::Double(0.0),
    }
}

/// A computed number in the field's type, or why it does not fit.
fn to_field(n: Number, ty: DataType) -> std::result::Result<Value, String> {
    // A float column holds any integer result, if not exactly: as `n * 1.0` would.
    if let (Number::Int(i), DataType::Float | DataType::Double) = (n, ty) {
        return coerce(Value::Double(i as f64), ty);
    }
    let value = n.to_value().ok_or_else(|| match n {
        Number::Int(i) => format!("value {i} is out of range for {ty}"),
        Number::Float(f) => format!("value {f} is out of range for {ty}"),
    })?;
    coerce(value, ty)
}

/// Compiles `add_column`'s expression for `field` against `base`. A constant (no field read)
/// is computed now, so that `1/0` or a value the type cannot hold is refused whatever the
/// rows.
fn expression_source(base: &CollectionSchema, field: &FieldSchema, text: &str) -> Result<Source> {
    let expr = Arith::compile(base, text)?;
    let invalid = |reason: String| Error::InvalidExpression {
        expr: text.to_string(),
        position: None,
        reason,
    };
    let integer_field = !matches!(field.data_type, DataType::Float | DataType::Double);
    if integer_field && !expr.is_int() {
        // zvec truncates; a silent loss of the fraction is refused here as `alter_column`
        // refuses lossy type changes.
        return Err(invalid(format!(
            "the expression computes a floating-point value and field[{}] is {}: an integer \
             field takes integer arithmetic only",
            field.name, field.data_type
        )));
    }
    if !expr.fields().is_empty() {
        return Ok(Source::Expression(Box::new(expr)));
    }
    match expr.eval(&|_| &NULL) {
        Ok(Some(n)) => Ok(Source::Constant(
            to_field(n, field.data_type).map_err(invalid)?,
        )),
        Ok(None) => Ok(Source::Constant(Value::Null)),
        Err(e) => Err(invalid(e.to_string())),
    }
}

impl Collection {
    /// Adds a numeric scalar column (zvec's `add_column`), after the existing ones. Documents
    /// already stored get what `fill` says: NULL ([`ColumnFill::Null`]; the field must then be
    /// nullable, else [`Error::DefaultRequired`]), one value ([`ColumnFill::Value`]), or an
    /// arithmetic expression over existing numeric columns computed per document
    /// ([`ColumnFill::Expression`], such as `"n * 2"`; NULL where an operand is NULL).
    ///
    /// Refused before anything is written: a name already used ([`Error::InvalidSchema`]), a
    /// type that is not numeric ([`Error::NotNumericField`]), a value that is not one of the
    /// type, an expression that does not parse or computes a float for an integer field
    /// ([`Error::InvalidExpression`]) or names an unknown ([`Error::UnknownField`]) or
    /// non-numeric ([`Error::NotNumericField`]) field, a read-only handle
    /// ([`Error::ReadOnly`]). An expression with no value for some live document — division
    /// by zero, a result out of the field's range (integer steps are exact up to 128 bits),
    /// NULL for a non-nullable field — is [`Error::ExpressionFailed`] naming the document, and the collection is left
    /// as it was (its writing segment sealed, as `flush` does). zvec wraps overflows and
    /// truncates floats into integer fields; stratavec refuses both.
    ///
    /// Like every schema change, it seals the writing segment, rewrites what it must under new
    /// file names and commits a new manifest: after a crash the collection has either the old
    /// or the new schema, with every acknowledged document. Writes wait while it runs; reads
    /// do not (a read that started before it answers with the old schema).
    ///
    /// ```
    /// use stratavec::{Collection, CollectionOptions, CollectionSchema, ColumnFill, DataType,
    ///                 Doc, FieldSchema, IndexKind, Query, Value, VectorSchema};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let schema = CollectionSchema::new("docs")
    ///     .field(FieldSchema::new("price", DataType::Double).nullable())
    ///     .vector(VectorSchema::new("v", 2));
    /// let coll = Collection::create(dir.path().join("c"), schema, CollectionOptions::default())?;
    /// coll.insert(&[
    ///     Doc::new("a").set("price", 10.0).vector("v", vec![1.0, 0.0]),
    ///     Doc::new("z").vector("v", vec![0.5, 0.5]), // no price: NULL
    /// ])?;
    ///
    /// // Every stored document gets its own value; NULL where an operand is NULL.
    /// let gross = FieldSchema::new("gross", DataType::Double).nullable();
    /// coll.add_column(gross, ColumnFill::Expression("price * 1.2 + 1".into()))?;
    /// assert_eq!(coll.fetch(&["a"])?[0].fields["gross"], Value::Double(13.0));
    /// assert_eq!(coll.fetch(&["z"])?[0].fields.get("gross"), None); // NULL: left out
    ///
    /// coll.add_column(FieldSchema::new("year", DataType::Int32), ColumnFill::Value(2020.into()))?;
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
    /// assert_eq!(coll.schema().fields.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_column(&self, field: FieldSchema, fill: ColumnFill) -> Result<()> {
        self.change_schema(Change::Add { field, fill })
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
            inner.await_reply(rx)?;
        } else {
            // Nothing written since an automatic rotation, whose persist may still be queued:
            // wait for it, or its rows would be checked by nobody and fail in the worker.
            inner.barrier()?;
        }
        // After the seal, so that the rows that were in the writing segment are checked too.
        if plan.evaluates() {
            let (sealed, deleted) = {
                let st = inner.state.read();
                (st.sealed.clone(), st.ids.deleted.clone())
            };
            plan.check(&sealed, &deleted)?;
        }
        // Queued behind every persist and merge asked for so far.
        let (tx, rx) = background::reply();
        inner.submit(Job::Schema(Box::new(plan), tx))?;
        inner.await_reply(rx)
    }
}

impl Inner {
    /// Runs a checked schema change on the background worker (see the module comment).
    pub(super) fn apply_schema_change(&self, plan: &Plan) -> Result<()> {
        let (sealed, writing, deleted) = {
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
            (st.sealed.clone(), st.writing.id, st.ids.deleted.clone())
        };
        let mut replaced: Vec<(u64, crate::segment::SegmentMeta, Arc<SealedSegment>)> = Vec::new();
        if plan.rewrite {
            for input in &sealed {
                let block = plan.block(input, &deleted)?;
                let id = self.next_segment_id.fetch_add(1, Ordering::SeqCst);
                let mut graphs = Vec::with_capacity(plan.schema.vectors.len());
                for (v, vs) in plan.schema.vectors.iter().enumerate() {
                    let (old, rebuild) = plan.vectors[v];
                    let kept = match rebuild {
                        false => input.graph(old, &plan.base.vectors[old])?,
                        true => None,
                    };
                    // A deferred graph stays deferred: the idle worker builds it later.
                    let deferred = !rebuild && input.defers_graph(old, &plan.base.vectors[old]);
                    graphs.push(match kept {
                        Some(g) => Some(g.to_data()),
                        None if deferred => None,
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
        for (old, meta, _) in &replaced {
            // A rewrite keeps the keys: the new segment is covered where the old one was.
            self.update_key_filter(|filter, _| filter.replaced(&[*old], Some(meta.id)));
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

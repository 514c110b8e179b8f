//! The rules every stored row obeys, in one place: a write checks its documents with them
//! before anything is logged, and WAL replay checks every logged row with the same functions,
//! so a damaged or crafted log can never put into memory (or hand to hnsw_rs) a row that a
//! write would have refused.

use super::{Batch, Patch, Row};
use crate::doc::Value;
use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, DataType, FieldSchema, VectorSchema};
use crate::wal::Op;

/// The most documents one write call may carry.
pub const MAX_BATCH: usize = 1024;
/// The longest primary key, in bytes.
pub const MAX_PK_BYTES: usize = 1024;

pub(crate) fn invalid(pk: &str, reason: impl Into<String>) -> Error {
    Error::InvalidDoc {
        pk: pk.chars().take(32).collect(),
        reason: reason.into(),
    }
}

pub(crate) fn check_batch_len(n: usize) -> Result<()> {
    if n > MAX_BATCH {
        return Err(Error::BatchTooLarge {
            len: n,
            max: MAX_BATCH,
        });
    }
    Ok(())
}

/// zvec's primary-key rules: 1..=1024 bytes of UTF-8 (guaranteed by `&str`), no NUL, no newline.
pub(crate) fn check_pk(pk: &str) -> Result<()> {
    if pk.is_empty() {
        return Err(invalid(pk, "id must not be empty"));
    }
    if pk.len() > MAX_PK_BYTES {
        return Err(invalid(
            pk,
            format!("id exceeds {MAX_PK_BYTES} bytes (got {})", pk.len()),
        ));
    }
    if pk.contains('\0') {
        return Err(invalid(pk, "id contains a null character"));
    }
    if pk.contains('\n') {
        return Err(invalid(pk, "id contains a newline"));
    }
    Ok(())
}

/// A vector of the field's dimension with finite components only: hnsw_rs panics on a NaN
/// distance, and a NaN vector would be stored yet never found.
pub(crate) fn check_vector(pk: &str, schema: &VectorSchema, v: &[f32]) -> Result<()> {
    if v.len() != schema.dimension {
        return Err(invalid(
            pk,
            format!(
                "field[{}] dimension mismatch, expected {} but got {}",
                schema.name,
                schema.dimension,
                v.len()
            ),
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(invalid(
            pk,
            format!(
                "field[{}] component {i} is {}; vectors must be finite",
                schema.name, v[i]
            ),
        ));
    }
    Ok(())
}

/// Whether a stored value has exactly the representation of `ty` (what coercion produces).
fn has_type(value: &Value, ty: DataType) -> bool {
    matches!(
        (ty, value),
        (DataType::Bool, Value::Bool(_))
            | (DataType::Int32, Value::Int32(_))
            | (DataType::Int64, Value::Int64(_))
            | (DataType::UInt32, Value::UInt32(_))
            | (DataType::UInt64, Value::UInt64(_))
            | (DataType::Float, Value::Float(_))
            | (DataType::Double, Value::Double(_))
            | (DataType::String, Value::String(_))
            | (DataType::ArrayBool, Value::BoolArray(_))
            | (DataType::ArrayInt32, Value::Int32Array(_))
            | (DataType::ArrayInt64, Value::Int64Array(_))
            | (DataType::ArrayUInt32, Value::UInt32Array(_))
            | (DataType::ArrayUInt64, Value::UInt64Array(_))
            | (DataType::ArrayFloat, Value::FloatArray(_))
            | (DataType::ArrayDouble, Value::DoubleArray(_))
            | (DataType::ArrayString, Value::StringArray(_))
    )
}

/// A stored value of field `f`: its exact type, or `Null` for a nullable field.
pub(crate) fn check_value(pk: &str, f: &FieldSchema, value: &Value) -> Result<()> {
    if value.is_null() {
        if f.nullable {
            return Ok(());
        }
        return Err(invalid(
            pk,
            format!("field[{}] expected non-nullable type", f.name),
        ));
    }
    if !has_type(value, f.data_type) {
        return Err(invalid(
            pk,
            format!(
                "field[{}]: expected {}, got {}",
                f.name,
                f.data_type,
                value.kind()
            ),
        ));
    }
    Ok(())
}

/// A complete row (insert, upsert, and what a forward store holds): valid pk, one value of the
/// right type per field, one finite vector of the right dimension per vector field.
pub(crate) fn check_row(schema: &CollectionSchema, row: &Row) -> Result<()> {
    check_pk(&row.pk)?;
    if row.fields.len() != schema.fields.len() || row.vectors.len() != schema.vectors.len() {
        return Err(invalid(
            &row.pk,
            format!(
                "{} fields and {} vectors, the schema has {} and {}",
                row.fields.len(),
                row.vectors.len(),
                schema.fields.len(),
                schema.vectors.len()
            ),
        ));
    }
    for (f, value) in schema.fields.iter().zip(&row.fields) {
        check_value(&row.pk, f, value)?;
    }
    for (vs, v) in schema.vectors.iter().zip(&row.vectors) {
        check_vector(&row.pk, vs, &v.0)?;
    }
    Ok(())
}

/// A partial document (update): valid pk, each named field and vector exists and is valid.
pub(crate) fn check_patch(schema: &CollectionSchema, patch: &Patch) -> Result<()> {
    check_pk(&patch.pk)?;
    for (i, value) in &patch.fields {
        let f = schema
            .fields
            .get(*i as usize)
            .ok_or_else(|| invalid(&patch.pk, format!("names field position {i}")))?;
        check_value(&patch.pk, f, value)?;
    }
    for (i, v) in &patch.vectors {
        let vs = schema
            .vectors
            .get(*i as usize)
            .ok_or_else(|| invalid(&patch.pk, format!("names vector position {i}")))?;
        check_vector(&patch.pk, vs, &v.0)?;
    }
    Ok(())
}

/// A logged write as a whole: 1..=1024 documents of the kind its op takes, each valid. A write
/// never logs an empty batch, so an empty one in a log is damage (a forged length), not a no-op.
///
/// Only replay (and the fuzz entry points) check logged records, and what they refuse is
/// corruption of the file at the record's offset, not a caller's mistake: the answer is the
/// reason alone, for the caller to place.
pub(crate) fn check_batch(
    schema: &CollectionSchema,
    op: Op,
    batch: &Batch,
) -> std::result::Result<(), String> {
    let n = crate::wal::WalPayload::doc_count(batch);
    if n == 0 {
        return Err("an empty batch".into());
    }
    let checked = match (op, batch) {
        (Op::Insert | Op::Upsert, Batch::Rows(rows)) => {
            check_batch_len(n).and_then(|()| rows.iter().try_for_each(|r| check_row(schema, r)))
        }
        (Op::Update, Batch::Patches(patches)) => check_batch_len(n)
            .and_then(|()| patches.iter().try_for_each(|p| check_patch(schema, p))),
        (Op::Delete, Batch::Keys(keys)) => {
            check_batch_len(n).and_then(|()| keys.iter().try_for_each(|k| check_pk(k)))
        }
        (op, _) => return Err(format!("a {op:?} record carries the wrong kind of payload")),
    };
    checked.map_err(|e| e.to_string())
}

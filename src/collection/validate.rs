//! Turning user documents into validated rows, with zvec's rules and messages.

use crate::doc::{coerce, Doc, Value};
use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, FieldSchema, VectorSchema};
use crate::segment::{Row, Vector};

use crate::segment::Patch;

/// The most documents one write call may carry.
pub const MAX_BATCH: usize = 1024;
/// The longest primary key, in bytes.
pub const MAX_PK_BYTES: usize = 1024;

fn invalid(pk: &str, reason: impl Into<String>) -> Error {
    Error::InvalidDoc {
        pk: pk.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn check_batch_len(n: usize) -> Result<()> {
    if n > MAX_BATCH {
        return Err(Error::InvalidArgument(format!(
            "Too many docs: {n} exceeds max write batch size of {MAX_BATCH}"
        )));
    }
    Ok(())
}

/// zvec's primary-key rules: 1..=1024 bytes of UTF-8 (guaranteed by `&str`), no NUL, no newline.
pub(crate) fn check_pk(pk: &str) -> Result<()> {
    let shown: String = pk.chars().take(32).collect();
    if pk.is_empty() {
        return Err(invalid(pk, "id must not be empty"));
    }
    if pk.len() > MAX_PK_BYTES {
        return Err(invalid(
            &shown,
            format!("id exceeds {MAX_PK_BYTES} bytes (got {})", pk.len()),
        ));
    }
    if pk.contains('\0') {
        return Err(invalid(&shown, "id contains a null character"));
    }
    if pk.contains('\n') {
        return Err(invalid(&shown, "id contains a newline"));
    }
    Ok(())
}

fn check_vector(pk: &str, schema: &VectorSchema, v: Vec<f32>) -> Result<Vector> {
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
    Ok(Vector(v))
}

fn field_value(pk: &str, f: &FieldSchema, value: Value) -> Result<Value> {
    if value.is_null() {
        if f.nullable {
            return Ok(Value::Null);
        }
        return Err(invalid(
            pk,
            format!("field[{}] expected non-nullable type", f.name),
        ));
    }
    coerce(value, f.data_type).map_err(|reason| invalid(pk, format!("field[{}]: {reason}", f.name)))
}

fn unknown(pk: &str, name: &str) -> Error {
    invalid(pk, format!("'{name}' not found in collection schema"))
}

/// A complete row for insert or upsert: every non-nullable field and every vector is required.
pub(crate) fn row(schema: &CollectionSchema, doc: Doc) -> Result<Row> {
    check_pk(&doc.pk)?;
    let pk = doc.pk;
    if let Some(name) = doc.fields.keys().find(|n| schema.field_index(n).is_none()) {
        return Err(unknown(&pk, name));
    }
    if let Some(name) = doc
        .vectors
        .keys()
        .find(|n| schema.vector_index(n).is_none())
    {
        return Err(unknown(&pk, name));
    }
    let mut given = doc.fields;
    let mut fields = Vec::with_capacity(schema.fields.len());
    for f in &schema.fields {
        match given.remove(&f.name) {
            Some(v) => fields.push(field_value(&pk, f, v)?),
            None if f.nullable => fields.push(Value::Null),
            None => {
                return Err(invalid(
                    &pk,
                    format!("field[{}] is required but not provided", f.name),
                ))
            }
        }
    }
    let mut given = doc.vectors;
    let mut vectors = Vec::with_capacity(schema.vectors.len());
    for v in &schema.vectors {
        match given.remove(&v.name) {
            Some(x) => vectors.push(check_vector(&pk, v, x)?),
            None => {
                return Err(invalid(
                    &pk,
                    format!("field[{}] is required but not provided", v.name),
                ))
            }
        }
    }
    Ok(Row {
        pk,
        fields,
        vectors,
    })
}

/// A partial document for update: only what is given, each checked.
pub(crate) fn patch(schema: &CollectionSchema, doc: Doc) -> Result<Patch> {
    check_pk(&doc.pk)?;
    let pk = doc.pk;
    let mut fields = Vec::with_capacity(doc.fields.len());
    for (name, value) in doc.fields {
        let i = schema
            .field_index(&name)
            .ok_or_else(|| unknown(&pk, &name))?;
        fields.push((i as u32, field_value(&pk, &schema.fields[i], value)?));
    }
    let mut vectors = Vec::with_capacity(doc.vectors.len());
    for (name, v) in doc.vectors {
        let i = schema
            .vector_index(&name)
            .ok_or_else(|| unknown(&pk, &name))?;
        vectors.push((i as u32, check_vector(&pk, &schema.vectors[i], v)?));
    }
    Ok(Patch {
        pk,
        fields,
        vectors,
    })
}

//! Turning user documents into validated rows, with zvec's rules and messages. Conversion
//! (coercion, required fields, unknown names) happens here; the rules a row must obey live in
//! `segment::rules`, shared with WAL replay so that a replayed row is checked exactly like a
//! written one.

use crate::doc::{coerce, Doc, Value};
use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, FieldSchema};
use crate::segment::rules::{self, invalid};
use crate::segment::{Patch, Row, Vector};

pub(crate) use crate::segment::rules::{check_batch_len, check_pk};
pub use crate::segment::rules::{MAX_BATCH, MAX_PK_BYTES};

fn field_value(pk: &str, f: &FieldSchema, value: Value) -> Result<Value> {
    if value.is_null() {
        return Ok(Value::Null);
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
            Some(x) => vectors.push(Vector(x)),
            None => {
                return Err(invalid(
                    &pk,
                    format!("field[{}] is required but not provided", v.name),
                ))
            }
        }
    }
    let row = Row {
        pk,
        fields,
        vectors,
    };
    rules::check_row(schema, &row)?;
    Ok(row)
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
        vectors.push((i as u32, Vector(v)));
    }
    let patch = Patch {
        pk,
        fields,
        vectors,
    };
    rules::check_patch(schema, &patch)?;
    Ok(patch)
}

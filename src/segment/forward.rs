//! The first forward-store layout (`.fwd` version 1): a [`Block`] in a checksummed envelope,
//! decoded whole. Still read (and converted on open); files are written in version 3
//! (`columns.rs`).
//!
//! The payload is MessagePack, laid out for a fast open: doc ids, primary keys and vectors as
//! raw little-endian byte strings, and each scalar field as one typed column (`Option<i32>`
//! etc.) rather than a tagged value per row. Array fields, which are rare, keep the tagged form.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{rules, Block, VectorColumn};
use crate::doc::Value;
use crate::error::{Error, Result};
use crate::schema::CollectionSchema;
use crate::storage::envelope;

const MAGIC: &[u8; 8] = b"SVFWD\r\n\x1a";

/// One scalar column.
#[derive(Serialize, Deserialize)]
enum Column {
    Bool(Vec<Option<bool>>),
    Int32(Vec<Option<i32>>),
    Int64(Vec<Option<i64>>),
    UInt32(Vec<Option<u32>>),
    UInt64(Vec<Option<u64>>),
    Float(Vec<Option<f32>>),
    Double(Vec<Option<f64>>),
    String(Vec<Option<String>>),
    /// Any other column (arrays), one tagged value per row.
    Values(Vec<Value>),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(with = "serde_bytes")]
    doc_ids: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pk_ends: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pk_bytes: Vec<u8>,
    columns: Vec<Column>,
    vectors: Vec<VectorColumn>,
}

#[cfg(test)]
macro_rules! typed {
    ($values:expr, $variant:ident) => {{
        let mut out = Vec::with_capacity($values.len());
        for v in $values {
            match v {
                Value::$variant(x) => out.push(Some(x.clone())),
                Value::Null => out.push(None),
                _ => return Column::Values($values.to_vec()),
            }
        }
        Column::$variant(out)
    }};
}

#[cfg(test)]
fn column(values: &[Value]) -> Column {
    match values.iter().find(|v| !v.is_null()) {
        Some(Value::Bool(_)) => typed!(values, Bool),
        Some(Value::Int32(_)) => typed!(values, Int32),
        Some(Value::Int64(_)) => typed!(values, Int64),
        Some(Value::UInt32(_)) => typed!(values, UInt32),
        Some(Value::UInt64(_)) => typed!(values, UInt64),
        Some(Value::Float(_)) => typed!(values, Float),
        Some(Value::Double(_)) => typed!(values, Double),
        Some(Value::String(_)) => typed!(values, String),
        _ => Column::Values(values.to_vec()),
    }
}

fn values(column: Column) -> Vec<Value> {
    fn map<T>(c: Vec<Option<T>>, f: impl Fn(T) -> Value) -> Vec<Value> {
        c.into_iter().map(|x| x.map_or(Value::Null, &f)).collect()
    }
    match column {
        Column::Bool(c) => map(c, Value::Bool),
        Column::Int32(c) => map(c, Value::Int32),
        Column::Int64(c) => map(c, Value::Int64),
        Column::UInt32(c) => map(c, Value::UInt32),
        Column::UInt64(c) => map(c, Value::UInt64),
        Column::Float(c) => map(c, Value::Float),
        Column::Double(c) => map(c, Value::Double),
        Column::String(c) => map(c, Value::String),
        Column::Values(c) => c,
    }
}

/// The bytes of a version-1 `.fwd` file holding `block` (tests of the old layout's reader).
#[cfg(test)]
pub(crate) fn encode_block(block: &Block) -> Result<Vec<u8>> {
    let mut pk_ends = Vec::with_capacity(block.pks.len() * 8);
    let mut pk_bytes = Vec::new();
    for pk in &block.pks {
        pk_bytes.extend_from_slice(pk.as_bytes());
        pk_ends.extend_from_slice(&(pk_bytes.len() as u64).to_le_bytes());
    }
    let wire = Wire {
        doc_ids: block
            .doc_ids
            .iter()
            .flat_map(|id| id.to_le_bytes())
            .collect(),
        pk_ends,
        pk_bytes,
        columns: block.fields.iter().map(|c| column(c)).collect(),
        vectors: block.vectors.clone(),
    };
    let payload = rmp_serde::to_vec(&wire)
        .map_err(|e| Error::Serialization(format!("encoding a forward block: {e}")))?;
    Ok(envelope::seal(MAGIC, &payload))
}

fn u64s(bytes: &[u8]) -> Option<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    )
}

/// Decodes and checks a `.fwd` file read from `path`.
pub(crate) fn decode_block(path: &Path, bytes: &[u8], schema: &CollectionSchema) -> Result<Block> {
    let payload = envelope::open(path, MAGIC, bytes)?;
    let bad = |reason: String| Error::corrupted(path, 24, reason);
    let wire: Wire = envelope::decode_exact(payload)
        .map_err(|e| bad(format!("forward block does not decode: {e}")))?;
    let doc_ids =
        u64s(&wire.doc_ids).ok_or_else(|| bad("doc id bytes not a multiple of 8".into()))?;
    // Rows are written in ascending doc-id order; scans and lookups rely on it.
    if let Some(row) = doc_ids.windows(2).position(|w| w[0] >= w[1]) {
        return Err(bad(format!(
            "doc ids are not ascending at row {}: {} then {}",
            row + 1,
            doc_ids[row],
            doc_ids[row + 1]
        )));
    }
    let ends = u64s(&wire.pk_ends).ok_or_else(|| bad("pk offsets not a multiple of 8".into()))?;
    if ends.last().copied().unwrap_or(0) != wire.pk_bytes.len() as u64 {
        return Err(bad(format!(
            "pk offsets end at {:?}, the pk bytes are {} long",
            ends.last(),
            wire.pk_bytes.len()
        )));
    }
    let mut pks = Vec::with_capacity(ends.len());
    let mut start = 0usize;
    for (row, end) in ends.into_iter().enumerate() {
        let end = usize::try_from(end).unwrap_or(usize::MAX);
        let pk = wire
            .pk_bytes
            .get(start..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| {
                bad(format!(
                    "pk offset of row {row} is out of order or not UTF-8"
                ))
            })?;
        // The rules of a write (non-empty, no NUL, ≤ 1024 bytes). A pk may repeat (an upsert
        // supersedes a row of its own segment); that at most one of those rows is live is
        // checked against the delete set when the collection opens.
        rules::check_pk(pk).map_err(|e| bad(format!("row {row}: {e}")))?;
        pks.push(pk.to_string());
        start = end;
    }
    let block = Block {
        doc_ids,
        pks,
        fields: wire.columns.into_iter().map(values).collect(),
        vectors: wire.vectors,
        bytes: bytes.len(),
    };
    block.conforms_to(schema).map_err(bad)?;
    // Every value as a write would have stored it: the right type, no NULL in a non-nullable
    // field, finite vectors (hnsw_rs panics on a NaN distance when it rebuilds a graph).
    for (f, (fs, column)) in schema.fields.iter().zip(&block.fields).enumerate() {
        for (row, value) in column.iter().enumerate() {
            rules::check_value(&block.pks[row], fs, value)
                .map_err(|e| bad(format!("row {row}, field {f}: {e}")))?;
        }
    }
    for (vs, column) in schema.vectors.iter().zip(&block.vectors) {
        if let Some(at) = column.data.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!(
                "row {}: vector field {} holds a non-finite component",
                at / vs.dimension.max(1),
                vs.name
            )));
        }
    }
    Ok(block)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::schema::VectorSchema;
    use crate::segment::block::Row;
    use crate::segment::vector::Vector;

    #[test]
    fn doc_ids_out_of_order_are_refused() {
        let schema = CollectionSchema::new("s").vector(VectorSchema::new("v", 2));
        let mut block = Block::new(&schema);
        for (doc_id, pk) in [(5, "a"), (3, "b")] {
            let row = Row {
                pk: pk.into(),
                fields: Vec::new(),
                vectors: vec![Vector(vec![1.0, 0.0])],
            };
            block.push(doc_id, row);
        }
        let bytes = encode_block(&block).unwrap();
        let err = decode_block(Path::new("0.fwd"), &bytes, &schema).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("0.fwd") && text.contains("not ascending at row 1"),
            "{text}"
        );
    }
}

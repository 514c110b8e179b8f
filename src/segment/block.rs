//! A block of rows in columnar form: the writing segment's memory table and, once persisted,
//! the contents of a `<block>.fwd` file.

use serde::{Deserialize, Serialize};

use super::vector::floats;
use crate::doc::Value;
use crate::schema::CollectionSchema;

/// A complete, validated document in schema order: what inserts and upserts log and store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Row {
    pub(crate) pk: String,
    /// One value per scalar field of the schema, `Null` where absent.
    pub(crate) fields: Vec<Value>,
    /// One vector per vector field of the schema.
    pub(crate) vectors: Vec<super::Vector>,
}

/// All vectors of one field, contiguous: row `i` is `data[i*dim..(i+1)*dim]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct VectorColumn {
    pub(crate) dim: usize,
    #[serde(with = "floats")]
    pub(crate) data: Vec<f32>,
}

impl VectorColumn {
    pub(crate) fn get(&self, row: usize) -> &[f32] {
        &self.data[row * self.dim..(row + 1) * self.dim]
    }
}

/// Rows in ascending doc-id order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Block {
    pub(crate) doc_ids: Vec<u64>,
    pub(crate) pks: Vec<String>,
    /// `fields[f][row]`.
    pub(crate) fields: Vec<Vec<Value>>,
    /// `vectors[v]`: one column per vector field.
    pub(crate) vectors: Vec<VectorColumn>,
    /// Approximate memory footprint, for the automatic persist.
    pub(crate) bytes: usize,
}

fn value_bytes(v: &Value) -> usize {
    16 + match v {
        Value::String(s) => s.len(),
        Value::StringArray(a) => a.iter().map(|s| s.len() + 24).sum(),
        other => other.array_len().unwrap_or(0) * 8,
    }
}

impl Block {
    pub(crate) fn new(schema: &CollectionSchema) -> Self {
        Block {
            fields: vec![Vec::new(); schema.fields.len()],
            vectors: schema
                .vectors
                .iter()
                .map(|v| VectorColumn {
                    dim: v.dimension,
                    data: Vec::new(),
                })
                .collect(),
            ..Block::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.doc_ids.len()
    }

    /// Makes room for `rows` more rows, so that pushing them never reallocates (and copies) a
    /// column. Large reservations cost address space only until rows arrive.
    pub(crate) fn reserve(&mut self, rows: usize) {
        self.doc_ids.reserve(rows);
        self.pks.reserve(rows);
        for col in &mut self.fields {
            col.reserve(rows);
        }
        for col in &mut self.vectors {
            col.data.reserve(rows.saturating_mul(col.dim));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.doc_ids.is_empty()
    }

    /// Whether the block has the shape of `schema` (checked on files read from disk, so that
    /// row access can never go out of bounds).
    pub(crate) fn conforms_to(&self, schema: &CollectionSchema) -> Result<(), String> {
        let n = self.doc_ids.len();
        if self.pks.len() != n {
            return Err(format!("{} pks for {n} rows", self.pks.len()));
        }
        if self.fields.len() != schema.fields.len() || self.vectors.len() != schema.vectors.len() {
            return Err("column count differs from the schema".into());
        }
        if let Some(f) = self.fields.iter().position(|c| c.len() != n) {
            return Err(format!("field column {f} has a wrong length"));
        }
        for (col, vs) in self.vectors.iter().zip(&schema.vectors) {
            if col.dim != vs.dimension || col.data.len() != n * col.dim {
                return Err(format!("vector column {} has a wrong shape", vs.name));
            }
        }
        if self.doc_ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err("doc ids are not strictly increasing".into());
        }
        Ok(())
    }

    pub(crate) fn push(&mut self, doc_id: u64, row: Row) {
        self.bytes += 48 + row.pk.len();
        self.doc_ids.push(doc_id);
        self.pks.push(row.pk);
        for (col, value) in self.fields.iter_mut().zip(row.fields) {
            self.bytes += value_bytes(&value);
            col.push(value);
        }
        for (col, v) in self.vectors.iter_mut().zip(row.vectors) {
            self.bytes += v.0.len() * 4;
            col.data.extend_from_slice(&v.0);
        }
    }

    /// The position of a doc id.
    pub(crate) fn find(&self, doc_id: u64) -> Option<usize> {
        self.doc_ids.binary_search(&doc_id).ok()
    }

    /// The complete row at `i`.
    pub(crate) fn row(&self, i: usize) -> Row {
        Row {
            pk: self.pks[i].clone(),
            fields: self.fields.iter().map(|c| c[i].clone()).collect(),
            vectors: self
                .vectors
                .iter()
                .map(|c| super::Vector(c.get(i).to_vec()))
                .collect(),
        }
    }
}

/// Which columns a read returns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Projection {
    pub(crate) fields: Vec<usize>,
    pub(crate) vectors: Vec<usize>,
}

//! [`Rows`]: one segment's rows as a read sees them, whether they are in memory (the writing
//! segment) or in a mapped forward file (a sealed segment).

use super::columns::{pk_at, ForwardFile};
use super::{Block, Projection, Row, Vector};
use crate::doc::{Doc, Value};
use crate::error::Result;
use crate::schema::CollectionSchema;

/// The rows of one segment: doc ids and pks checked, other columns checked on first use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rows<'a> {
    /// Ascending.
    pub(crate) doc_ids: &'a [u64],
    pks: Pks<'a>,
    source: Source<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Pks<'a> {
    Strings(&'a [String]),
    Packed(&'a [u64], &'a [u8]),
}

#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    Memory(&'a Block),
    File(&'a ForwardFile),
}

static NULL: Value = Value::Null;

impl<'a> Rows<'a> {
    /// The rows of an in-memory block.
    pub(crate) fn of_block(block: &'a Block) -> Self {
        Rows {
            doc_ids: &block.doc_ids,
            pks: Pks::Strings(&block.pks),
            source: Source::Memory(block),
        }
    }

    /// The rows of a forward file; checks its doc ids and pks on first use.
    pub(crate) fn of_file(file: &'a ForwardFile) -> Result<Self> {
        let (ends, bytes) = file.pks()?;
        Ok(Rows {
            doc_ids: file.doc_ids()?,
            pks: Pks::Packed(ends, bytes),
            source: Source::File(file),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.doc_ids.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.doc_ids.is_empty()
    }

    /// The pk of row `i` (< `len()`).
    pub(crate) fn pk(&self, i: usize) -> &'a str {
        match self.pks {
            Pks::Strings(s) => &s[i],
            Pks::Packed(ends, bytes) => pk_at(ends, bytes, i),
        }
    }

    /// The position of a doc id.
    pub(crate) fn find(&self, doc_id: u64) -> Option<usize> {
        self.doc_ids.binary_search(&doc_id).ok()
    }

    /// Every vector of field `v`, contiguous (`dim` floats per row).
    pub(crate) fn vectors(&self, v: usize) -> Result<&'a [f32]> {
        match self.source {
            Source::Memory(b) => Ok(b.vectors.get(v).map_or(&[][..], |c| &c.data)),
            Source::File(f) => f.vectors(v),
        }
    }

    /// The columns of scalar fields `fields` (for a filter), by schema position; other
    /// positions are empty and read as NULL.
    pub(crate) fn columns(&self, fields: &[usize]) -> Result<Columns<'a>> {
        if fields.is_empty() {
            return Ok(Columns(Vec::new()));
        }
        match self.source {
            Source::Memory(b) => Ok(Columns(b.fields.iter().map(Vec::as_slice).collect())),
            Source::File(f) => {
                let mut out: Vec<&'a [Value]> = Vec::new();
                for &field in fields {
                    if out.len() <= field {
                        out.resize(field + 1, &[]);
                    }
                    out[field] = f.field(field)?;
                }
                Ok(Columns(out))
            }
        }
    }

    /// The column of scalar field `f`.
    pub(crate) fn column(&self, f: usize) -> Result<&'a [Value]> {
        match self.source {
            Source::Memory(b) => Ok(b.fields.get(f).map_or(&[][..], Vec::as_slice)),
            Source::File(file) => file.field(f),
        }
    }

    fn value(&self, f: usize, i: usize) -> Result<Value> {
        match self.source {
            Source::Memory(b) => Ok(b.fields[f][i].clone()),
            Source::File(file) => file.value(f, i),
        }
    }

    /// The complete row at `i`.
    pub(crate) fn row(&self, i: usize, schema: &CollectionSchema) -> Result<Row> {
        if let Source::Memory(b) = self.source {
            return Ok(b.row(i));
        }
        let fields = (0..schema.fields.len())
            .map(|f| self.value(f, i))
            .collect::<Result<Vec<_>>>()?;
        let vectors = (0..schema.vectors.len())
            .map(|v| {
                let dim = schema.vectors[v].dimension;
                self.vectors(v)
                    .map(|data| Vector(data[i * dim..(i + 1) * dim].to_vec()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Row {
            pk: self.pk(i).to_string(),
            fields,
            vectors,
        })
    }

    /// The row at `i` as a user-facing document with the requested parts.
    pub(crate) fn doc(&self, schema: &CollectionSchema, i: usize, out: &Projection) -> Result<Doc> {
        let mut doc = Doc::new(self.pk(i).to_string());
        for &f in &out.fields {
            let value = self.value(f, i)?;
            if !value.is_null() {
                doc.fields.insert(schema.fields[f].name.clone(), value);
            }
        }
        for &v in &out.vectors {
            let dim = schema.vectors[v].dimension;
            let data = self.vectors(v)?;
            doc.vectors.insert(
                schema.vectors[v].name.clone(),
                data[i * dim..(i + 1) * dim].to_vec(),
            );
        }
        Ok(doc)
    }
}

/// Scalar columns for filter evaluation.
pub(crate) struct Columns<'a>(Vec<&'a [Value]>);

impl<'a> Columns<'a> {
    /// Field `f` of row `i` (NULL where the column was not loaded).
    pub(crate) fn get(&self, f: usize, i: usize) -> &'a Value {
        self.0.get(f).and_then(|c| c.get(i)).unwrap_or(&NULL)
    }
}

/// A pk's live row, as a fetch reads it: a row of in-memory rows, or a row of a forward file
/// read in place (only the chunks it touches are checked, so a fetch costs the same whatever
/// the segment's size).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LiveRow<'a> {
    Rows(Rows<'a>, usize),
    File(&'a ForwardFile, usize),
}

impl LiveRow<'_> {
    /// The row as a user-facing document with the requested parts.
    pub(crate) fn doc(&self, schema: &CollectionSchema, out: &Projection) -> Result<Doc> {
        let (file, row) = match *self {
            LiveRow::Rows(rows, i) => return rows.doc(schema, i, out),
            LiveRow::File(file, row) => (file, row),
        };
        let mut doc = Doc::new(file.pk(row)?);
        for &f in &out.fields {
            let value = file.value(f, row)?;
            if !value.is_null() {
                doc.fields.insert(schema.fields[f].name.clone(), value);
            }
        }
        for &v in &out.vectors {
            doc.vectors.insert(
                schema.vectors[v].name.clone(),
                file.vector(v, row)?.to_vec(),
            );
        }
        Ok(doc)
    }

    /// The row's vector of field `v` (`dim` floats).
    pub(crate) fn vector(&self, v: usize, dim: usize) -> Result<Vec<f32>> {
        match *self {
            LiveRow::Rows(rows, i) => Ok(rows.vectors(v)?[i * dim..(i + 1) * dim].to_vec()),
            LiveRow::File(file, row) => Ok(file.vector(v, row)?.to_vec()),
        }
    }
}

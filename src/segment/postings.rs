//! Inverted indexes of sealed segments: for a scalar field, the rows holding each value. Built
//! on first use from the (immutable) block and kept for the segment's life.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::Rows;
use crate::doc::Value;
use crate::error::Result;

/// A hashable form of the values an inverted index covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Bool(bool),
    Int(i128),
    Str(String),
}

fn key(v: &Value) -> Option<Key> {
    match v {
        Value::Bool(b) => Some(Key::Bool(*b)),
        Value::String(s) => Some(Key::Str(s.clone())),
        other => other.as_i128().map(Key::Int),
    }
}

/// Rows per value of one field.
#[derive(Debug, Default)]
pub(crate) struct Postings(HashMap<Key, Vec<u32>>);

impl Postings {
    fn build(column: &[Value]) -> Self {
        let mut map: HashMap<Key, Vec<u32>> = HashMap::new();
        for (row, v) in column.iter().enumerate() {
            if let Some(k) = key(v) {
                map.entry(k).or_default().push(row as u32);
            }
        }
        Postings(map)
    }

    /// The rows holding any of `values`, ascending; `None` when a value cannot be looked up.
    pub(crate) fn rows(&self, values: &[Value]) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        for v in values {
            if let Some(rows) = self.0.get(&key(v)?) {
                out.extend_from_slice(rows);
            }
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }
}

/// Lazily built postings, one slot per scalar field.
#[derive(Debug, Default)]
pub(crate) struct InvertedIndexes(Vec<OnceLock<Postings>>);

impl InvertedIndexes {
    pub(crate) fn new(fields: usize) -> Self {
        InvertedIndexes((0..fields).map(|_| OnceLock::new()).collect())
    }

    /// Approximate bytes of the postings built so far.
    pub(crate) fn bytes(&self) -> usize {
        self.0
            .iter()
            .filter_map(OnceLock::get)
            .map(|p| p.0.values().map(|rows| 48 + 4 * rows.len()).sum::<usize>())
            .sum()
    }

    /// The postings of `field` over `rows`, building them on first use.
    pub(crate) fn get(&self, rows: &Rows<'_>, field: usize) -> Result<Option<&Postings>> {
        let Some(slot) = self.0.get(field) else {
            return Ok(None);
        };
        if let Some(done) = slot.get() {
            return Ok(Some(done));
        }
        let column = rows.column(field)?;
        Ok(Some(slot.get_or_init(|| Postings::build(column))))
    }
}

//! What one write call logs: the whole batch, as one WAL record.

use serde::{Deserialize, Serialize};

use super::{Row, Vector};
use crate::doc::Value;
use crate::wal::WalPayload;

/// A partial document for `update`: only the fields and vectors given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Patch {
    pub(crate) pk: String,
    /// (schema position, new value); `Null` clears a nullable field.
    pub(crate) fields: Vec<(u32, Value)>,
    /// (schema position, new vector).
    pub(crate) vectors: Vec<(u32, Vector)>,
}

/// The payload of a collection WAL record. The record's [`crate::wal::Op`] says whether
/// `Rows` are inserted or upserted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Batch {
    /// Complete documents (insert, upsert).
    Rows(Vec<Row>),
    /// Partial documents (update).
    Patches(Vec<Patch>),
    /// Primary keys (delete; delete-by-filter is resolved to keys before logging).
    Keys(Vec<String>),
}

impl WalPayload for Batch {
    fn doc_count(&self) -> usize {
        match self {
            Batch::Rows(r) => r.len(),
            Batch::Patches(p) => p.len(),
            Batch::Keys(k) => k.len(),
        }
    }
}

//! The typed record layer: what one WAL record means.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The kind of write a record logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// New documents; an existing primary key is refused.
    Insert,
    /// Whole-document replacement, inserting when absent.
    Upsert,
    /// Partial merge into existing documents.
    Update,
    /// Removal by primary key.
    Delete,
}

/// One logged write call: a strictly increasing sequence number, the operation and its data.
///
/// Serialized with rmp-serde as a map (field names kept), so fields can be added later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalRecord<P> {
    /// Sequence number; strictly increasing in a WAL and across the WALs of a collection.
    pub seq: u64,
    /// What the record does.
    pub op: Op,
    /// The documents (or keys) the write carries.
    pub payload: P,
}

/// Borrowing twin of [`WalRecord`] with the same encoding, so appends need not clone payloads.
#[derive(Serialize)]
pub(crate) struct WalRecordRef<'a, P> {
    pub(crate) seq: u64,
    pub(crate) op: Op,
    pub(crate) payload: &'a P,
}

/// What a WAL can carry: anything serde can round-trip that knows how many documents it holds
/// (the unit of [`crate::wal::FlushPolicy::EveryDocs`]).
pub trait WalPayload: Serialize + DeserializeOwned {
    /// The number of documents in this payload.
    fn doc_count(&self) -> usize;
}

/// Raw bytes (encoded as one msgpack `bin`) count as one document; handy for tools and tests.
impl WalPayload for serde_bytes::ByteBuf {
    fn doc_count(&self) -> usize {
        1
    }
}

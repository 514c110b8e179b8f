//! Segments: the unit of storage. A sealed segment is immutable (only its rows' delete marks,
//! kept collection-wide, change); the writing segment is a block in memory backed by its WAL.

mod block;
mod forward;
mod postings;
mod vector;

pub(crate) use block::{Block, Projection, Row, VectorColumn};
pub(crate) use forward::{decode_block, encode_block};
pub(crate) use postings::InvertedIndexes;
pub(crate) use vector::Vector;

/// A persisted, immutable segment held in memory.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) id: u64,
    pub(crate) block: Block,
    /// One frozen graph per vector field with an HNSW index (`None` for flat fields).
    pub(crate) graphs: Vec<Option<crate::index::frozen::FrozenGraph>>,
    /// Inverted indexes of the scalar fields that declare one, built on first use.
    pub(crate) inverted: InvertedIndexes,
}

impl Segment {
    pub(crate) fn new(
        id: u64,
        block: Block,
        graphs: Vec<Option<crate::index::frozen::FrozenGraph>>,
    ) -> Self {
        Segment {
            inverted: InvertedIndexes::new(block.fields.len()),
            id,
            block,
            graphs,
        }
    }
}

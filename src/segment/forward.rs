//! The forward-store file `<segment>/<block>.fwd`: a [`Block`] in a checksummed envelope.

use std::path::Path;

use super::Block;
use crate::error::{Error, Result};
use crate::schema::CollectionSchema;
use crate::storage::envelope;

const MAGIC: &[u8; 8] = b"SVFWD\r\n\x1a";

/// The bytes of a `.fwd` file holding `block`.
pub(crate) fn encode_block(block: &Block) -> Result<Vec<u8>> {
    let payload = rmp_serde::to_vec_named(block)
        .map_err(|e| Error::Serialization(format!("encoding a forward block: {e}")))?;
    Ok(envelope::seal(MAGIC, &payload))
}

/// Decodes and checks a `.fwd` file read from `path`.
pub(crate) fn decode_block(path: &Path, bytes: &[u8], schema: &CollectionSchema) -> Result<Block> {
    let payload = envelope::open(path, MAGIC, bytes)?;
    let mut block: Block = rmp_serde::from_slice(payload)
        .map_err(|e| Error::corrupted(path, 24, format!("forward block does not decode: {e}")))?;
    block
        .conforms_to(schema)
        .map_err(|reason| Error::corrupted(path, 24, reason))?;
    block.bytes = bytes.len();
    Ok(block)
}

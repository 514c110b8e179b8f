//! The checksummed envelope around every persisted file other than the WAL.
//!
//! ```text
//! 0  8  magic (names the file kind)
//! 8  4  format version (1)
//! 12 4  crc32c of the payload
//! 16 8  payload length
//! 24 …  payload
//! ```

use std::path::Path;

use crate::error::{Error, Result};

const HEADER: usize = 24;
const VERSION: u32 = 1;

/// Wraps `payload` in a header naming its kind and checksum.
pub fn seal(magic: &[u8; 8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks the envelope of a file read from `path` and returns its payload.
pub fn open<'a>(path: &Path, magic: &[u8; 8], bytes: &'a [u8]) -> Result<&'a [u8]> {
    let bad = |offset: u64, reason: String| Err(Error::corrupted(path, offset, reason));
    if bytes.len() < HEADER {
        return bad(
            0,
            format!("file is {} bytes, shorter than its header", bytes.len()),
        );
    }
    let (head, payload) = bytes.split_at(HEADER);
    if &head[0..8] != magic {
        return bad(
            0,
            format!("bad magic, expected {:?}", String::from_utf8_lossy(magic)),
        );
    }
    let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    if word(8) != VERSION {
        return bad(8, format!("unsupported format version {}", word(8)));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[16..24]);
    let len = u64::from_le_bytes(len);
    if len != payload.len() as u64 {
        return bad(
            16,
            format!(
                "header says {len} payload bytes, the file has {}",
                payload.len()
            ),
        );
    }
    let actual = crc32c::crc32c(payload);
    if actual != word(12) {
        return bad(
            HEADER as u64,
            format!(
                "payload checksum mismatch (stored {:#010x}, computed {actual:#010x})",
                word(12)
            ),
        );
    }
    Ok(payload)
}

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
    seal_version(magic, VERSION, payload)
}

/// [`seal`] with another format version than 1 (a file kind whose payload changed).
pub fn seal_version(magic: &[u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks the envelope of a file read from `path` and returns its payload.
pub fn open<'a>(path: &Path, magic: &[u8; 8], bytes: &'a [u8]) -> Result<&'a [u8]> {
    open_versions(path, magic, bytes, VERSION..=VERSION).map(|(_, payload)| payload)
}

/// [`open`] for a file kind with several format versions: returns the version found (one of
/// `versions`) and the payload. Any other version is refused with a message naming it, never
/// guessed at.
pub fn open_versions<'a>(
    path: &Path,
    magic: &[u8; 8],
    bytes: &'a [u8],
    versions: std::ops::RangeInclusive<u32>,
) -> Result<(u32, &'a [u8])> {
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
    let version = word(8);
    if !versions.contains(&version) {
        return bad(
            8,
            format!(
                "unsupported format version {version} (this build reads {}..={})",
                versions.start(),
                versions.end()
            ),
        );
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
    Ok((version, payload))
}

/// Decodes one MessagePack value that must fill `bytes` exactly.
///
/// rmp-serde's `from_slice` stops after the first value and ignores what follows, so a record
/// whose inner length was forged smaller (a batch of 0 documents followed by the real ones)
/// would decode as something else without a word. Trailing bytes are therefore an error, and
/// nesting is bounded so that a crafted file cannot exhaust the stack. Byte strings are copied
/// only as far as the input holds them, so no allocation exceeds the input's size by more than
/// serde's own bounded pre-allocation.
pub fn decode_exact<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    de.set_max_depth(MAX_DEPTH);
    let value: T = serde::Deserialize::deserialize(&mut de).map_err(|e| e.to_string())?;
    let used = de.position();
    if used != bytes.len() as u64 {
        return Err(format!(
            "{} trailing bytes after the value (at payload offset {used})",
            bytes.len() as u64 - used
        ));
    }
    Ok(value)
}

/// The deepest MessagePack nesting any stratavec structure uses is below 10.
const MAX_DEPTH: usize = 32;

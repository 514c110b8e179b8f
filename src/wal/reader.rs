//! Reading a WAL back and classifying what stops the read.

use super::format::{
    decode_header, frame_crc, read_u32, WalId, FRAME_HEADER_LEN, HEADER_LEN, MAX_RECORD_LEN,
};

/// One checksummed record as found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the frame header in the file.
    pub offset: u64,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// How the valid part of a WAL file ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Every byte after the header belongs to a valid record.
    Clean,
    /// The file is shorter than a header, or the header area is all zeros: a crash while the
    /// file was being created. The WAL is empty.
    ShortHeader {
        /// The file's length.
        len: u64,
    },
    /// The last record is incomplete or the tail is zero-filled, and nothing valid follows: a
    /// write that a crash interrupted. Recovery truncates the file at `offset`.
    Torn {
        /// Where the torn record starts (the end of the valid prefix).
        offset: u64,
        /// How many bytes follow the valid prefix.
        bytes: u64,
    },
    /// Damage that a crash cannot explain: a bad record with a valid one after it, a complete
    /// record with a wrong checksum, or a bad header.
    Corrupted {
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The result of reading a WAL image.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The header's ids, when the header is valid.
    pub id: Option<WalId>,
    /// The valid records, in file order.
    pub frames: Vec<Frame>,
    /// The end of the valid prefix (header included).
    pub valid_end: u64,
    /// How the valid prefix ends.
    pub tail: Tail,
}

/// Why the frame at `off` is unusable, or `None` when it is a valid frame.
fn frame_problem(bytes: &[u8], off: usize) -> Option<(String, bool)> {
    let rest = bytes.len() - off;
    if rest < FRAME_HEADER_LEN {
        return Some((
            format!("incomplete record header ({rest} of {FRAME_HEADER_LEN} bytes)"),
            true,
        ));
    }
    let len = read_u32(bytes, off) as usize;
    let stored = read_u32(bytes, off + 4);
    if len == 0 {
        return Some(("record length is zero".into(), false));
    }
    if len > MAX_RECORD_LEN {
        return Some((format!("record length {len} exceeds the maximum"), false));
    }
    let end = off + FRAME_HEADER_LEN + len;
    if end > bytes.len() {
        return Some((
            format!(
                "record of {len} bytes extends {} bytes past the end of the file",
                end - bytes.len()
            ),
            true,
        ));
    }
    let payload = &bytes[off + FRAME_HEADER_LEN..end];
    let actual = frame_crc(len as u32, payload);
    if actual != stored {
        return Some((
            format!("record checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"),
            false,
        ));
    }
    None
}

/// Whether a valid frame starts anywhere after `from`.
///
/// Cost: one length check per byte offset and a checksum only where the length fits, so it is
/// cheap on zero-filled or short tails.
fn valid_frame_after(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len().saturating_sub(FRAME_HEADER_LEN)).any(|p| {
        let len = read_u32(bytes, p) as usize;
        len != 0
            && len <= MAX_RECORD_LEN
            && p + FRAME_HEADER_LEN + len <= bytes.len()
            && frame_problem(bytes, p).is_none()
    })
}

/// Reads a whole WAL image and classifies how its valid prefix ends. Never fails and never
/// panics, whatever the bytes.
pub fn scan(bytes: &[u8]) -> Scan {
    let len = bytes.len() as u64;
    let empty = |tail| Scan {
        id: None,
        frames: Vec::new(),
        valid_end: 0,
        tail,
    };
    if bytes.len() < HEADER_LEN || bytes[..HEADER_LEN].iter().all(|&b| b == 0) {
        if bytes.iter().all(|&b| b == 0) {
            return empty(Tail::ShortHeader { len });
        }
        if bytes.len() < HEADER_LEN {
            // A prefix of a header we would have written is a crash during creation; anything
            // else is not ours.
            let would_be = super::format::MAGIC;
            let n = bytes.len().min(would_be.len());
            if bytes[..n] == would_be[..n] {
                return empty(Tail::ShortHeader { len });
            }
        }
        return empty(Tail::Corrupted {
            offset: 0,
            reason: "bad or missing header".into(),
        });
    }
    let id = match decode_header(&bytes[..HEADER_LEN]) {
        Ok(id) => id,
        Err(reason) => return empty(Tail::Corrupted { offset: 0, reason }),
    };
    let mut frames = Vec::new();
    let mut off = HEADER_LEN;
    let mut tail = Tail::Clean;
    while off < bytes.len() {
        match frame_problem(bytes, off) {
            None => {
                let plen = read_u32(bytes, off) as usize;
                let start = off + FRAME_HEADER_LEN;
                frames.push(Frame {
                    offset: off as u64,
                    payload: bytes[start..start + plen].to_vec(),
                });
                off = start + plen;
            }
            Some((reason, incomplete)) => {
                let zero_tail = bytes[off..].iter().all(|&b| b == 0);
                tail = if valid_frame_after(bytes, off + 1) || !(incomplete || zero_tail) {
                    Tail::Corrupted {
                        offset: off as u64,
                        reason,
                    }
                } else {
                    Tail::Torn {
                        offset: off as u64,
                        bytes: len - off as u64,
                    }
                };
                break;
            }
        }
    }
    Scan {
        id: Some(id),
        frames,
        valid_end: off as u64,
        tail,
    }
}

//! Reading a WAL back and classifying what stops the read.

use super::format::{
    decode_header, frame_crc, WalId, FRAME_HEADER_LEN, HEADER_LEN, MAX_RECORD_LEN,
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

/// A WAL image: the bytes read, followed by `zeros` zero bytes that were not read (a zero tail,
/// such as a sparse file left by a crash, is never loaded into memory).
struct Image<'a> {
    bytes: &'a [u8],
    zeros: u64,
}

impl Image<'_> {
    fn len(&self) -> u64 {
        self.bytes.len() as u64 + self.zeros
    }

    /// The little-endian u32 at `at` (zero-filled past the bytes read); `at + 4 <= len()`.
    fn u32_at(&self, at: u64) -> u32 {
        let mut w = [0u8; 4];
        for (i, b) in w.iter_mut().enumerate() {
            *b = usize::try_from(at + i as u64)
                .ok()
                .and_then(|p| self.bytes.get(p))
                .copied()
                .unwrap_or(0);
        }
        u32::from_le_bytes(w)
    }

    /// CRC-32C of `len || bytes[start..start + n]`, zero-extended past the bytes read.
    fn frame_crc(&self, len: u32, start: u64, n: u64) -> u32 {
        let have = (self.bytes.len() as u64).saturating_sub(start).min(n);
        let from = start as usize;
        let mut crc = frame_crc(
            len,
            self.bytes.get(from..from + have as usize).unwrap_or(&[]),
        );
        let mut left = n - have;
        const ZEROS: [u8; 4096] = [0; 4096];
        while left > 0 {
            let k = left.min(ZEROS.len() as u64);
            crc = crc32c::crc32c_append(crc, &ZEROS[..k as usize]);
            left -= k;
        }
        crc
    }

    /// `bytes[start..start + n]`, zero-extended; only called for a frame whose checksum
    /// matched, so `n` is at most the record limit.
    fn payload(&self, start: u64, n: u64) -> Vec<u8> {
        let mut out = vec![0u8; n as usize];
        let have = (self.bytes.len() as u64).saturating_sub(start).min(n) as usize;
        if have > 0 {
            out[..have].copy_from_slice(&self.bytes[start as usize..start as usize + have]);
        }
        out
    }

    /// Whether every byte from `off` to the end is zero.
    fn zero_from(&self, off: u64) -> bool {
        let from = usize::try_from(off).unwrap_or(usize::MAX);
        self.bytes
            .get(from..)
            .is_none_or(|b| b.iter().all(|&x| x == 0))
    }
}

/// Why the frame at `off` is unusable, or `None` when it is a valid frame.
fn frame_problem(img: &Image<'_>, off: u64) -> Option<(String, bool)> {
    let rest = img.len() - off;
    if rest < FRAME_HEADER_LEN as u64 {
        return Some((
            format!("incomplete record header ({rest} of {FRAME_HEADER_LEN} bytes)"),
            true,
        ));
    }
    let len = img.u32_at(off);
    let stored = img.u32_at(off + 4);
    if len == 0 {
        return Some(("record length is zero".into(), false));
    }
    if len as usize > MAX_RECORD_LEN {
        return Some((format!("record length {len} exceeds the maximum"), false));
    }
    let end = off + FRAME_HEADER_LEN as u64 + u64::from(len);
    if end > img.len() {
        return Some((
            format!(
                "record of {len} bytes extends {} bytes past the end of the file",
                end - img.len()
            ),
            true,
        ));
    }
    let actual = img.frame_crc(len, off + FRAME_HEADER_LEN as u64, u64::from(len));
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
/// cheap on zero-filled or short tails. Offsets inside the unread zero tail have a zero length
/// and are skipped without looking.
fn valid_frame_after(img: &Image<'_>, from: u64) -> bool {
    let last = img
        .len()
        .saturating_sub(FRAME_HEADER_LEN as u64)
        .min(img.bytes.len() as u64);
    (from..last).any(|p| {
        let len = img.u32_at(p);
        len != 0
            && len as usize <= MAX_RECORD_LEN
            && p + FRAME_HEADER_LEN as u64 + u64::from(len) <= img.len()
            && frame_problem(img, p).is_none()
    })
}

/// Reads a whole WAL image and classifies how its valid prefix ends. Never fails and never
/// panics, whatever the bytes.
pub fn scan(bytes: &[u8]) -> Scan {
    scan_with_zero_tail(bytes, 0)
}

/// [`scan`] of `bytes` followed by `zeros` zero bytes that the caller did not read: a WAL whose
/// tail is zero-filled (up to gigabytes of a sparse file) is classified without holding the
/// tail in memory, exactly as if it had been read.
pub fn scan_with_zero_tail(bytes: &[u8], zeros: u64) -> Scan {
    let img = Image { bytes, zeros };
    let len = img.len();
    let empty = |tail| Scan {
        id: None,
        frames: Vec::new(),
        valid_end: 0,
        tail,
    };
    let mut header = [0u8; HEADER_LEN];
    let have = bytes.len().min(HEADER_LEN);
    header[..have].copy_from_slice(&bytes[..have]);
    if len < HEADER_LEN as u64 || header.iter().all(|&b| b == 0) {
        if img.zero_from(0) {
            return empty(Tail::ShortHeader { len });
        }
        if len < HEADER_LEN as u64 {
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
    let id = match decode_header(&header) {
        Ok(id) => id,
        Err(reason) => return empty(Tail::Corrupted { offset: 0, reason }),
    };
    let mut frames = Vec::new();
    let mut off = HEADER_LEN as u64;
    let mut tail = Tail::Clean;
    while off < len {
        match frame_problem(&img, off) {
            None => {
                let plen = u64::from(img.u32_at(off));
                let start = off + FRAME_HEADER_LEN as u64;
                frames.push(Frame {
                    offset: off,
                    payload: img.payload(start, plen),
                });
                off = start + plen;
            }
            Some((reason, incomplete)) => {
                let zero_tail = img.zero_from(off);
                tail = if valid_frame_after(&img, off + 1) || !(incomplete || zero_tail) {
                    Tail::Corrupted {
                        offset: off,
                        reason,
                    }
                } else {
                    Tail::Torn {
                        offset: off,
                        bytes: len - off,
                    }
                };
                break;
            }
        }
    }
    Scan {
        id: Some(id),
        frames,
        valid_end: off,
        tail,
    }
}

//! The byte layout of a WAL file (documented in `docs/FORMAT.md`).
//!
//! ```text
//! header (40 B): magic "SVWAL\r\n\x1a" | u32 version | u32 0 | u64 segment | u64 block
//!                | u32 0 | u32 crc32c(bytes 0..36)
//! record:        u32 LE len | u32 LE crc32c(len bytes ‖ payload) | payload[len]
//! ```

/// First eight bytes of every WAL file. The `\r\n\x1a` tail catches text-mode mangling.
pub const MAGIC: [u8; 8] = *b"SVWAL\r\n\x1a";
/// The only format version written and read.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the file header.
pub const HEADER_LEN: usize = 40;
/// Size of a record's frame header (length + checksum).
pub const FRAME_HEADER_LEN: usize = 8;
/// The largest payload a record may carry (1 GiB): bounds what a damaged length can claim.
pub const MAX_RECORD_LEN: usize = 1 << 30;

/// Which block of which segment a WAL belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalId {
    /// The segment id.
    pub segment: u64,
    /// The block id within the segment.
    pub block: u64,
}

/// Encodes the file header.
pub fn encode_header(id: WalId) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&id.segment.to_le_bytes());
    h[24..32].copy_from_slice(&id.block.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..36]);
    h[36..40].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a full-length header, or says what is wrong with it.
pub fn decode_header(h: &[u8]) -> Result<WalId, String> {
    if h.len() < HEADER_LEN {
        return Err(format!(
            "header is {} bytes, expected {HEADER_LEN}",
            h.len()
        ));
    }
    if h[0..8] != MAGIC {
        return Err("bad magic: not a stratavec WAL".into());
    }
    let stored = read_u32(h, 36);
    let actual = crc32c::crc32c(&h[0..36]);
    if stored != actual {
        return Err(format!(
            "header checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        ));
    }
    let version = read_u32(h, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "unsupported WAL format version {version} (this build reads {FORMAT_VERSION})"
        ));
    }
    // Reserved bytes are zero in every header this version writes; anything else is a file
    // from a later version or damage, and guessing its meaning could misread it.
    if read_u32(h, 12) != 0 || read_u32(h, 32) != 0 {
        return Err("reserved header bytes are not zero".into());
    }
    Ok(WalId {
        segment: read_u64(h, 16),
        block: read_u64(h, 24),
    })
}

/// The checksum stored in a frame: crc32c over the little-endian length then the payload.
pub fn frame_crc(len: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), payload)
}

/// Fills the first [`FRAME_HEADER_LEN`] bytes of `frame` for the payload that follows them.
///
/// The caller reserves those bytes and has checked the payload length.
pub fn seal_frame(frame: &mut [u8]) {
    let (head, payload) = frame.split_at_mut(FRAME_HEADER_LEN);
    let len = payload.len() as u32;
    let crc = frame_crc(len, payload);
    head[0..4].copy_from_slice(&len.to_le_bytes());
    head[4..8].copy_from_slice(&crc.to_le_bytes());
}

pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

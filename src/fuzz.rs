//! Entry points into the decoders of untrusted files, for the decoder fuzz tests
//! (`tests/decoder_fuzz.rs`) and for `cargo fuzz` targets. Each takes raw bytes, runs the same
//! decoding and validation an open runs, and returns whether they were accepted. None may
//! panic, hang or allocate beyond a bound of its input's size, whatever the bytes: that is what
//! the tests check. Checksums are recomputed where the format has them (see the `reseal_*`
//! helpers), so that mutations reach the code behind the checksum checks.
//!
//! Not a stable API.

use std::path::Path;

use crate::collection::fuzz_manifest;
use crate::index::frozen::FrozenGraph;
use crate::schema::{CollectionSchema, Metric};
use crate::segment::{columns, decode_block, rules, Batch, DeleteSet, ForwardFile};
use crate::storage::{envelope, Mapped};
use crate::wal::{reader, WalRecord};

const PATH: &str = "fuzz-input";

/// A manifest payload (MessagePack, without envelope): decoded and validated as `open` does.
pub fn manifest_payload(payload: &[u8]) -> Result<(), String> {
    fuzz_manifest(payload)
}

/// A whole `del.<N>` file (envelope included).
pub fn delete_file(bytes: &[u8]) -> Result<(), String> {
    DeleteSet::decode(Path::new(PATH), bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A whole `.fwd` file of any layout, checked against `schema`: first every row read in place
/// (pk, doc id, values, vectors and a lookup of its pk, as a fetch reads them: only the chunks
/// touched are checked), then every section completely, as `verify` does.
pub fn forward_file(bytes: &[u8], schema: &CollectionSchema) -> Result<(), String> {
    let path = Path::new(PATH);
    if columns::is_columnar(bytes) {
        return ForwardFile::open(path, Mapped::from_bytes(bytes), schema)
            .and_then(|file| {
                for row in 0..file.len() {
                    let pk = file.pk(row)?;
                    file.doc_id(row)?;
                    for f in 0..schema.fields.len() {
                        file.value(f, row)?;
                    }
                    for v in 0..schema.vectors.len() {
                        file.vector(v, row)?;
                    }
                    // A lookup of every stored pk finds its row.
                    if !file
                        .rows_with_key(&pk, crate::segment::key_hash(&pk))?
                        .contains(&row)
                    {
                        return Err(crate::Error::corrupted(path, 0, "key not found"));
                    }
                }
                file.check_all(schema)
            })
            .map_err(|e| e.to_string());
    }
    decode_block(path, bytes, schema)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Recomputes every checksum of a columnar forward file (version 3: each section's chunk
/// checksums and their crc in the table; version 2: each section's crc; then the table and the
/// header) where the table still locates the sections inside the file.
pub fn reseal_forward(bytes: &mut [u8]) {
    const HEADER: usize = 64;
    const ENTRY: usize = 32;
    const CHUNK: usize = 4096;
    if bytes.len() < HEADER {
        return;
    }
    let word = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let long = |b: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        usize::try_from(u64::from_le_bytes(w)).unwrap_or(usize::MAX)
    };
    let chunked = word(bytes, 8) == 3;
    let sections = (word(bytes, 12) as usize).min(1024);
    let table_end = HEADER + sections * ENTRY;
    if table_end <= bytes.len() {
        for i in 0..sections {
            let e = HEADER + i * ENTRY;
            let (off, len) = (long(bytes, e + 8), long(bytes, e + 16));
            let chunks = if chunked { len.div_ceil(CHUNK) } else { 0 };
            let Some(end) = off.checked_add(len) else {
                continue;
            };
            let Some(crcs_end) = end.checked_add(4 * chunks).filter(|&x| x <= bytes.len()) else {
                continue;
            };
            let crc = if chunked {
                for c in 0..chunks {
                    let chunk = &bytes[off + c * CHUNK..end.min(off + (c + 1) * CHUNK)];
                    let crc = crc32c::crc32c(chunk);
                    bytes[end + 4 * c..end + 4 * c + 4].copy_from_slice(&crc.to_le_bytes());
                }
                crc32c::crc32c(&bytes[end..crcs_end])
            } else {
                crc32c::crc32c(&bytes[off..end])
            };
            bytes[e + 24..e + 28].copy_from_slice(&crc.to_le_bytes());
        }
        let crc = crc32c::crc32c(&bytes[HEADER..table_end]);
        bytes[40..44].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32c::crc32c(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// A whole graph file for a segment of `rows` rows, with sanity checks (degree bounds for `m`,
/// reachability).
pub fn graph_file(bytes: &[u8], metric: Metric, rows: usize, m: usize) -> Result<(), String> {
    let graph = FrozenGraph::open(Mapped::from_bytes(bytes), metric, rows)
        .map_err(|(offset, reason)| format!("{reason} at {offset}"))?;
    match graph.sanity(m).first() {
        Some((offset, reason)) => Err(format!("{reason} at {offset}")),
        None => Ok(()),
    }
}

/// A whole WAL image: every frame decoded and checked with the write rules of `schema`, as
/// replay does. Returns the number of records accepted.
pub fn wal_image(bytes: &[u8], schema: &CollectionSchema) -> Result<usize, String> {
    let scan = reader::scan(bytes);
    for frame in &scan.frames {
        let record: WalRecord<Batch> = envelope::decode_exact(&frame.payload)
            .map_err(|e| format!("{e} at {}", frame.offset))?;
        rules::check_batch(schema, record.op, &record.payload)
            .map_err(|e| format!("{e} at {}", frame.offset))?;
    }
    match scan.tail {
        reader::Tail::Corrupted { offset, reason } => Err(format!("{reason} at {offset}")),
        _ => Ok(scan.frames.len()),
    }
}

/// Recomputes the envelope checksum and length of a manifest, delete or forward file whose
/// payload was edited (bytes from 24 on).
pub fn reseal_envelope(bytes: &mut [u8]) {
    if bytes.len() < 24 {
        return;
    }
    let payload_len = (bytes.len() - 24) as u64;
    let crc = crc32c::crc32c(&bytes[24..]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    bytes[16..24].copy_from_slice(&payload_len.to_le_bytes());
}

/// Recomputes every checksum of a graph file whose header, table or sections were edited,
/// where the table still locates the sections inside the file.
pub fn reseal_graph(bytes: &mut [u8]) {
    const HEADER: usize = 64;
    const ENTRY: usize = 24;
    if bytes.len() < HEADER {
        return;
    }
    let word = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let sections = (word(bytes, 28) as usize).min(1024);
    let table_end = HEADER + sections * ENTRY;
    if table_end <= bytes.len() {
        for i in 0..sections {
            let e = HEADER + i * ENTRY;
            let mut off = [0u8; 8];
            off.copy_from_slice(&bytes[e..e + 8]);
            let mut len = [0u8; 8];
            len.copy_from_slice(&bytes[e + 8..e + 16]);
            let (off, len) = (u64::from_le_bytes(off), u64::from_le_bytes(len));
            let end = off.checked_add(len).filter(|&x| x <= bytes.len() as u64);
            if let Some(end) = end {
                let crc = crc32c::crc32c(&bytes[off as usize..end as usize]);
                bytes[e + 16..e + 20].copy_from_slice(&crc.to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&bytes[HEADER..table_end]);
        bytes[32..36].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32c::crc32c(&bytes[..HEADER - 4]);
    bytes[HEADER - 4..HEADER].copy_from_slice(&crc.to_le_bytes());
}

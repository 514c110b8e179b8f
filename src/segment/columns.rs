//! The forward-store file `<segment>/<block>.fwd`, version 3: columns used in place.
//!
//! The file is memory-mapped on open and never decoded as a whole. Open reads the 64-byte
//! header and the section table (both checksummed, and the manifest records the checksum of
//! that prefix). Every section is followed by one crc32c per 4 KiB chunk of it, and the table
//! holds the crc32c of that list: a point read (a fetch by pk) checks only the chunks it
//! touches, a scan checks the whole section once, and no byte is used before its chunk passed.
//! Layout (little-endian; `docs/FORMAT.md`):
//!
//! ```text
//! 0   8  magic "SVFWD\r\n\x1a"        32  8  largest doc id
//! 8   4  version (3)                  40  4  crc32c of the section table
//! 12  4  section count                44 16  zero
//! 16  8  rows                         60  4  crc32c of bytes 0..60
//! 24  8  smallest doc id
//! 64  …  section table: per section kind u32, index u32, offset u64, length u64, crc32c u32
//!        (of its chunk checksums), zero u32; then the sections, each at a 64-byte aligned
//!        offset, in table order, each followed by its chunk checksums (u32 per 4 KiB)
//! ```
//!
//! Version 2 (still read) is the same without the chunk checksums: the table's crc32c covers
//! the whole section, so any read of a section checks all of it.
//!
//! Sections: doc ids (`u64` per row, ascending), pk ends (`u64` per row: where each pk ends in
//! the pk bytes), pk bytes, the key index (per row `hash u64, row u32, zero u32`, sorted by
//! hash then row), a blocked bloom filter of the key hashes, one section per scalar field (`u64`
//! end per row, then one MessagePack value per row; NULL is empty) and one per vector field
//! (`f32` × dimension per row, contiguous).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::block::Block;
use super::keys::{self, Bloom};
use super::rules;
use crate::doc::Value;
use crate::error::{Error, Result};
use crate::schema::CollectionSchema;
use crate::storage::Mapped;

pub(crate) const MAGIC: &[u8; 8] = b"SVFWD\r\n\x1a";
pub(crate) const VERSION: u32 = 3;
/// The previous layout: one checksum per section.
const VERSION_2: u32 = 2;
/// Bytes of a version-3 section covered by one checksum: a page, so a point read checks about
/// as many bytes as it faults in.
const CHUNK: usize = 4096;
const HEADER: usize = 64;
const ENTRY: usize = 32;
const ALIGN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DocIds = 1,
    PkEnds = 2,
    PkBytes = 3,
    Keys = 4,
    Bloom = 5,
    Field = 6,
    Vector = 7,
}

impl Kind {
    fn of(code: u32) -> Option<Kind> {
        Some(match code {
            1 => Kind::DocIds,
            2 => Kind::PkEnds,
            3 => Kind::PkBytes,
            4 => Kind::Keys,
            5 => Kind::Bloom,
            6 => Kind::Field,
            7 => Kind::Vector,
            _ => return None,
        })
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Whether `bytes` start like a columnar forward file, version 2 or 3 (the version-1 file has
/// the same magic and its version at the same offset).
pub(crate) fn is_columnar(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..8] == MAGIC && matches!(u32_at(bytes, 8), VERSION_2 | VERSION)
}

/// The chunk checksums of `data`, as stored after a version-3 section.
fn chunk_crcs(data: &[u8]) -> Vec<u8> {
    data.chunks(CHUNK)
        .flat_map(|c| crc32c::crc32c(c).to_le_bytes())
        .collect()
}

/// The length of the checksummed prefix (header and section table) of a columnar file, whose
/// crc32c the manifest records; `None` when the header does not say.
pub(crate) fn prefix_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < HEADER {
        return None;
    }
    let sections = u32_at(bytes, 12) as usize;
    Some(HEADER + sections.checked_mul(ENTRY)?)
}

/// The bytes of a version-3 file holding `block`.
pub(crate) fn encode(block: &Block) -> Result<Vec<u8>> {
    let n = block.len();
    let mut sections: Vec<(Kind, u32, Vec<u8>)> = Vec::new();
    sections.push((
        Kind::DocIds,
        0,
        block.doc_ids.iter().flat_map(|d| d.to_le_bytes()).collect(),
    ));
    let mut ends = Vec::with_capacity(8 * n);
    let mut pk_bytes = Vec::new();
    for pk in &block.pks {
        pk_bytes.extend_from_slice(pk.as_bytes());
        ends.extend_from_slice(&(pk_bytes.len() as u64).to_le_bytes());
    }
    sections.push((Kind::PkEnds, 0, ends));
    sections.push((Kind::PkBytes, 0, pk_bytes));
    let hashes: Vec<u64> = block.pks.iter().map(|pk| keys::hash(pk)).collect();
    sections.push((Kind::Keys, 0, keys::encode_index(&hashes)));
    sections.push((Kind::Bloom, 0, Bloom::build(&hashes).into_bytes()));
    for (f, column) in block.fields.iter().enumerate() {
        let mut ends = Vec::with_capacity(8 * n);
        let mut data = Vec::new();
        for value in column {
            if !value.is_null() {
                rmp_serde::encode::write(&mut data, value).map_err(|e| {
                    Error::Serialization(format!("encoding field {f} of a forward block: {e}"))
                })?;
            }
            ends.extend_from_slice(&(data.len() as u64).to_le_bytes());
        }
        ends.extend_from_slice(&data);
        sections.push((Kind::Field, f as u32, ends));
    }
    for (v, column) in block.vectors.iter().enumerate() {
        sections.push((
            Kind::Vector,
            v as u32,
            bytemuck::cast_slice::<f32, u8>(&column.data).to_vec(),
        ));
    }
    let table_end = HEADER + ENTRY * sections.len();
    let mut offset = table_end.next_multiple_of(ALIGN);
    let mut table = Vec::with_capacity(ENTRY * sections.len());
    let mut placed = Vec::with_capacity(sections.len());
    for (kind, index, bytes) in &sections {
        let crcs = chunk_crcs(bytes);
        table.extend_from_slice(&(*kind as u32).to_le_bytes());
        table.extend_from_slice(&index.to_le_bytes());
        table.extend_from_slice(&(offset as u64).to_le_bytes());
        table.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        table.extend_from_slice(&crc32c::crc32c(&crcs).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        placed.push((offset, crcs));
        offset = (offset + bytes.len() + 4 * bytes.len().div_ceil(CHUNK)).next_multiple_of(ALIGN);
    }
    let end = placed
        .last()
        .zip(sections.last())
        .map_or(table_end, |((at, crcs), (_, _, b))| {
            at + b.len() + crcs.len()
        });
    let mut out = Vec::with_capacity(end);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(&block.doc_ids.first().copied().unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&block.doc_ids.last().copied().unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&table).to_le_bytes());
    out.resize(60, 0);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&table);
    for ((_, _, bytes), (at, crcs)) in sections.iter().zip(placed) {
        out.resize(at, 0);
        out.extend_from_slice(bytes);
        out.extend_from_slice(&crcs);
    }
    Ok(out)
}

/// A finding about a section: the file offset and what is wrong there.
type Finding = std::result::Result<(), (u64, String)>;

/// One section of the table.
#[derive(Debug)]
struct Section {
    kind: Kind,
    index: usize,
    range: Range<usize>,
    /// Version 3: the chunk checksums after the data. Version 2: empty (one checksum, `crc`).
    crcs: Range<usize>,
    /// Version 3: crc32c of the chunk checksums. Version 2: crc32c of the data.
    crc: u32,
    /// Set once `crc` was checked (version 3: the chunk list; version 2: the whole data).
    crc_checked: OnceLock<Finding>,
    /// Version 3: one bit per chunk whose checksum passed (a point read checks only its own).
    chunks: Vec<AtomicU64>,
    /// Set once every byte and the structure were checked: `Err` keeps the finding.
    checked: OnceLock<Finding>,
}

/// A mapped columnar forward file (version 2 or 3). Point accessors check the chunks they read,
/// whole-section accessors a section on first use; both return [`Error::Corrupted`] (naming the
/// file and the chunk's or section's offset) when it is damaged.
#[derive(Debug)]
pub(crate) struct ForwardFile {
    path: PathBuf,
    bytes: Mapped,
    rows: usize,
    min_doc_id: u64,
    max_doc_id: u64,
    dims: Vec<usize>,
    /// In the order of the schema: doc ids, pk ends, pk bytes, keys, bloom, fields, vectors.
    sections: Vec<Section>,
    /// Scalar columns decoded and checked on first use (what filters evaluate).
    decoded: Vec<OnceLock<Vec<Value>>>,
    schema: std::sync::Arc<CollectionSchema>,
}

const DOC_IDS: usize = 0;
const PK_ENDS: usize = 1;
const PK_BYTES: usize = 2;
const KEYS: usize = 3;
const BLOOM: usize = 4;
const FIELDS: usize = 5;

impl ForwardFile {
    /// Checks the header and section table of `bytes` (the file at `path`) against `schema`.
    /// Costs O(sections): no section is read.
    pub(crate) fn open(path: &Path, bytes: Mapped, schema: &CollectionSchema) -> Result<Self> {
        let bad = |offset: usize, reason: String| Error::corrupted(path, offset as u64, reason);
        let b: &[u8] = &bytes;
        if b.len() < HEADER {
            return Err(bad(
                0,
                format!("file is {} bytes, shorter than its header", b.len()),
            ));
        }
        if &b[..8] != MAGIC {
            return Err(bad(0, "bad magic, expected a forward-store file".into()));
        }
        let version = u32_at(b, 8);
        if version != VERSION && version != VERSION_2 {
            return Err(bad(
                8,
                format!("forward-store format version {version}, this build reads 1, 2 and 3"),
            ));
        }
        let chunked = version == VERSION;
        if u32_at(b, 60) != crc32c::crc32c(&b[..60]) {
            return Err(bad(60, "header checksum mismatch".into()));
        }
        let count = u32_at(b, 12) as usize;
        let rows = usize::try_from(u64_at(b, 16)).unwrap_or(usize::MAX);
        let table_end = count
            .checked_mul(ENTRY)
            .and_then(|t| t.checked_add(HEADER))
            .filter(|&e| e <= b.len())
            .ok_or_else(|| bad(12, format!("{count} sections do not fit the file")))?;
        let table = &b[HEADER..table_end];
        if crc32c::crc32c(table) != u32_at(b, 40) {
            return Err(bad(HEADER, "section table checksum mismatch".into()));
        }
        let mut sections = Vec::with_capacity(count);
        let mut last_end = table_end;
        for s in 0..count {
            let e = &table[s * ENTRY..(s + 1) * ENTRY];
            let at = HEADER + s * ENTRY;
            let kind = Kind::of(u32_at(e, 0))
                .ok_or_else(|| bad(at, format!("section {s} has unknown kind {}", u32_at(e, 0))))?;
            if chunked && u32_at(e, 28) != 0 {
                return Err(bad(
                    at + 28,
                    format!("section {s}: reserved bytes are not zero"),
                ));
            }
            let offset = usize::try_from(u64_at(e, 8)).unwrap_or(usize::MAX);
            let len = usize::try_from(u64_at(e, 16)).unwrap_or(usize::MAX);
            let chunks = if chunked { len.div_ceil(CHUNK) } else { 0 };
            let end = offset.checked_add(len);
            let crcs_end = end.and_then(|end| end.checked_add(4 * chunks));
            let placed = end.zip(crcs_end).filter(|&(_, crcs_end)| {
                crcs_end <= b.len() && offset >= last_end && offset % ALIGN == 0
            });
            let Some((end, crcs_end)) = placed else {
                return Err(bad(
                    at,
                    format!("section {s} at {offset} of {len} bytes is out of place"),
                ));
            };
            last_end = crcs_end;
            sections.push(Section {
                kind,
                index: u32_at(e, 4) as usize,
                range: offset..end,
                crcs: end..crcs_end,
                crc: u32_at(e, 24),
                crc_checked: OnceLock::new(),
                chunks: (0..chunks.div_ceil(64))
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                checked: OnceLock::new(),
            });
        }
        if last_end != b.len() {
            return Err(bad(
                last_end,
                format!("{} bytes after the last section", b.len() - last_end),
            ));
        }
        // Exactly the sections the schema needs, in the order written, each of its size.
        let fixed = [
            Kind::DocIds,
            Kind::PkEnds,
            Kind::PkBytes,
            Kind::Keys,
            Kind::Bloom,
        ];
        let expected: Vec<(Kind, usize)> = fixed
            .iter()
            .map(|&k| (k, 0))
            .chain((0..schema.fields.len()).map(|f| (Kind::Field, f)))
            .chain((0..schema.vectors.len()).map(|v| (Kind::Vector, v)))
            .collect();
        let found: Vec<(Kind, usize)> = sections.iter().map(|s| (s.kind, s.index)).collect();
        if found != expected {
            return Err(bad(
                HEADER,
                format!("sections {found:?} do not fit the schema (expected {expected:?})"),
            ));
        }
        let dims: Vec<usize> = schema.vectors.iter().map(|v| v.dimension).collect();
        for s in &sections {
            let len = s.range.len();
            let want = match s.kind {
                Kind::DocIds | Kind::PkEnds => rows.checked_mul(8),
                Kind::Keys => rows.checked_mul(16),
                Kind::Vector => rows
                    .checked_mul(dims[s.index])
                    .and_then(|x| x.checked_mul(4)),
                Kind::Field => (len >= rows.saturating_mul(8)).then_some(len),
                Kind::Bloom => (len.is_multiple_of(64) && len >= 64).then_some(len),
                Kind::PkBytes => Some(len),
            };
            if want != Some(len) {
                return Err(bad(
                    s.range.start,
                    format!(
                        "{:?} section of {len} bytes does not fit {rows} rows",
                        s.kind
                    ),
                ));
            }
        }
        let min_doc_id = u64_at(b, 24);
        let max_doc_id = u64_at(b, 32);
        if rows > 0 && min_doc_id > max_doc_id {
            return Err(bad(
                24,
                format!("doc ids from {min_doc_id} to {max_doc_id}"),
            ));
        }
        Ok(ForwardFile {
            path: path.to_path_buf(),
            bytes,
            rows,
            min_doc_id,
            max_doc_id,
            dims,
            sections,
            decoded: (0..schema.fields.len()).map(|_| OnceLock::new()).collect(),
            schema: std::sync::Arc::new(schema.clone()),
        })
    }

    /// Approximate bytes of the scalar columns decoded so far.
    pub(crate) fn resident_bytes(&self) -> usize {
        self.decoded
            .iter()
            .filter_map(OnceLock::get)
            .map(|c| {
                c.len() * std::mem::size_of::<Value>() + c.iter().map(heap_bytes).sum::<usize>()
            })
            .sum()
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Scalar fields stored.
    pub(crate) fn field_count(&self) -> usize {
        self.decoded.len()
    }

    /// Marks every section checked: for a file this process has just written from rows it
    /// holds (its bytes are the page cache's copy of them), as a persist and a merge do.
    pub(crate) fn trusted(self) -> Self {
        for s in &self.sections {
            let _ = s.checked.set(Ok(()));
        }
        self
    }

    /// Checks the sections a key lookup reads (the doc ids, the pks, the key index and the
    /// bloom filter), so that later lookups only probe; the first error found.
    pub(crate) fn check_keys_now(&self) -> Result<()> {
        self.doc_ids()?;
        self.prove_keys()
    }

    /// Rows stored (from the header).
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// The smallest and largest doc id (from the header); `None` for an empty file.
    pub(crate) fn doc_id_range(&self) -> Option<(u64, u64)> {
        (self.rows > 0).then_some((self.min_doc_id, self.max_doc_id))
    }

    /// Bytes of the file (all mapped, none resident until used).
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the bytes are mapped from disk (rather than held in memory).
    pub(crate) fn is_mapped(&self) -> bool {
        self.bytes.is_mapped()
    }

    fn corrupted(&self, offset: usize, reason: String) -> Error {
        Error::corrupted(&self.path, offset as u64, reason)
    }

    /// The bytes of section `s`, once every checksum and `check` (its structure, run once) pass.
    fn section(
        &self,
        s: usize,
        check: impl FnOnce(&Self, &[u8]) -> std::result::Result<(), String>,
    ) -> Result<&[u8]> {
        let section = &self.sections[s];
        let bytes = &self.bytes[section.range.clone()];
        let verdict = section.checked.get_or_init(|| {
            self.crc_checked(section)?;
            let start = section.range.start as u64;
            let bad_chunk = self
                .chunk_crcs(section)
                .zip(bytes.chunks(CHUNK))
                .position(|(crc, chunk)| crc32c::crc32c(chunk) != crc);
            if let Some(c) = bad_chunk {
                return Err(Self::chunk_mismatch(section, c));
            }
            check(self, bytes).map_err(|reason| (start, reason))
        });
        match verdict {
            Ok(()) => Ok(bytes),
            Err((offset, reason)) => Err(Error::corrupted(&self.path, *offset, reason.clone())),
        }
    }

    /// Bytes `within` of section `s` (relative to its start), once the checksums of the chunks
    /// they lie in pass: what a point read uses, without checking the rest of the section.
    /// The section's structure is not checked here; the caller checks what it reads.
    fn part(&self, s: usize, within: Range<usize>) -> Result<&[u8]> {
        let section = &self.sections[s];
        let bytes = &self.bytes[section.range.clone()];
        let Some(part) = bytes.get(within.clone()) else {
            return Err(self.corrupted(
                section.range.start,
                format!(
                    "{:?} section of {} bytes has no bytes {within:?}",
                    section.kind,
                    bytes.len()
                ),
            ));
        };
        // A section found damaged elsewhere still serves the chunks that pass their own
        // checksums: a point read depends on nothing but the bytes it reads.
        if let Some(Ok(())) = section.checked.get() {
            return Ok(part);
        }
        self.crc_checked(section)
            .map_err(|(offset, reason)| Error::corrupted(&self.path, offset, reason))?;
        // Version 2 (no chunk checksums): that checksum covered the whole section.
        if section.crcs.is_empty() || within.is_empty() {
            return Ok(part);
        }
        let crcs = &self.bytes[section.crcs.clone()];
        for c in within.start / CHUNK..=(within.end - 1) / CHUNK {
            let (word, bit) = (&section.chunks[c / 64], 1u64 << (c % 64));
            if word.load(Ordering::Acquire) & bit != 0 {
                continue;
            }
            let chunk = &bytes[c * CHUNK..bytes.len().min((c + 1) * CHUNK)];
            if crc32c::crc32c(chunk) != u32_at(crcs, 4 * c) {
                let (offset, reason) = Self::chunk_mismatch(section, c);
                return Err(Error::corrupted(&self.path, offset, reason));
            }
            word.fetch_or(bit, Ordering::AcqRel);
        }
        Ok(part)
    }

    /// Checks the table's checksum of `section` (version 3: of its chunk checksums; version 2:
    /// of its data), once.
    fn crc_checked(&self, section: &Section) -> Finding {
        section
            .crc_checked
            .get_or_init(|| {
                let covered = if section.crcs.is_empty() {
                    &section.range
                } else {
                    &section.crcs
                };
                if crc32c::crc32c(&self.bytes[covered.clone()]) == section.crc {
                    Ok(())
                } else {
                    Err((
                        covered.start as u64,
                        format!("{:?} section checksum mismatch", section.kind),
                    ))
                }
            })
            .clone()
    }

    /// The stored chunk checksums of a version-3 `section` (none for version 2).
    fn chunk_crcs<'s>(&'s self, section: &Section) -> impl Iterator<Item = u32> + 's {
        let crcs = &self.bytes[section.crcs.clone()];
        (0..crcs.len() / 4).map(move |c| u32_at(crcs, 4 * c))
    }

    fn chunk_mismatch(section: &Section, c: usize) -> (u64, String) {
        (
            (section.range.start + c * CHUNK) as u64,
            format!("{:?} section checksum mismatch in chunk {c}", section.kind),
        )
    }

    /// Doc ids, ascending, within the header's range.
    pub(crate) fn doc_ids(&self) -> Result<&[u64]> {
        let bytes = self.section(DOC_IDS, |file, bytes| {
            let ids: &[u64] = bytemuck::try_cast_slice(bytes).map_err(|e| e.to_string())?;
            if let Some(row) = ids.windows(2).position(|w| w[0] >= w[1]) {
                return Err(format!(
                    "doc ids are not ascending at row {}: {} then {}",
                    row + 1,
                    ids[row],
                    ids[row + 1]
                ));
            }
            if ids.first().copied().zip(ids.last().copied()) != file.doc_id_range() {
                return Err("doc ids differ from the header's range".into());
            }
            Ok(())
        })?;
        bytemuck::try_cast_slice(bytes).map_err(|e| self.corrupted(0, e.to_string()))
    }

    /// Pk ends and bytes, every pk checked with the rules of a write.
    pub(crate) fn pks(&self) -> Result<(&[u64], &[u8])> {
        let data = self.section(PK_BYTES, |_, _| Ok(()))?;
        let ends = self.section(PK_ENDS, |_, bytes| {
            let ends: &[u64] = bytemuck::try_cast_slice(bytes).map_err(|e| e.to_string())?;
            let mut start = 0usize;
            for (row, &end) in ends.iter().enumerate() {
                let end = usize::try_from(end).unwrap_or(usize::MAX);
                let pk = data
                    .get(start..end)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or_else(|| format!("pk of row {row} is out of order or not UTF-8"))?;
                // The rules of a write (non-empty, no NUL, ≤ 1024 bytes). A pk may repeat (an
                // upsert supersedes a row of its own segment); at most one of them is live.
                rules::check_pk(pk).map_err(|e| format!("row {row}: {e}"))?;
                start = end;
            }
            if start != data.len() {
                return Err(format!(
                    "pks end at {start}, the pk bytes are {} long",
                    data.len()
                ));
            }
            Ok(())
        })?;
        let ends = bytemuck::try_cast_slice(ends).map_err(|e| self.corrupted(0, e.to_string()))?;
        Ok((ends, data))
    }

    /// The values of scalar field `f`, each checked against the schema.
    pub(crate) fn field(&self, f: usize) -> Result<&[Value]> {
        if let Some(done) = self.decoded.get(f).and_then(OnceLock::get) {
            return Ok(done);
        }
        let rows = self.rows;
        let s = FIELDS + f;
        if s >= self.sections.len() {
            return Err(self.corrupted(0, format!("no field {f}")));
        }
        self.section(s, |_, bytes| {
            // Value ends ascend and end where the section ends: no byte is unaccounted for.
            let (head, data) = bytes.split_at(8 * rows);
            let value_ends: &[u64] = bytemuck::try_cast_slice(head).map_err(|e| e.to_string())?;
            let mut from = 0u64;
            for (row, &end) in value_ends.iter().enumerate() {
                if end < from || end > data.len() as u64 {
                    return Err(format!("field {f} row {row}: value out of place"));
                }
                from = end;
            }
            if from != data.len() as u64 {
                return Err(format!("field {f}: trailing bytes"));
            }
            Ok(())
        })?;
        let values = (0..self.rows)
            .map(|row| self.value(f, row))
            .collect::<Result<Vec<Value>>>()?;
        let slot = &self.decoded[f];
        Ok(slot.get_or_init(|| values))
    }

    /// The value of scalar field `f` in `row`, checked against the schema. Reads only the
    /// chunks that hold it.
    pub(crate) fn value(&self, f: usize, row: usize) -> Result<Value> {
        if let Some(done) = self.decoded.get(f).and_then(OnceLock::get) {
            return Ok(done.get(row).cloned().unwrap_or(Value::Null));
        }
        let fs = self
            .schema
            .fields
            .get(f)
            .ok_or_else(|| self.corrupted(0, format!("no field {f}")))?;
        let s = FIELDS + f;
        let head = 8 * self.rows;
        let (from, end) = self.span(s, row)?;
        let data_len = self.sections[s].range.len() - head;
        if from > end || end > data_len {
            return Err(self.corrupted(
                self.sections[s].range.start + 8 * row,
                format!("field {} row {row}: value out of place", fs.name),
            ));
        }
        let raw = self.part(s, head + from..head + end)?;
        let at = self.sections[s].range.start + head + from;
        let value = if raw.is_empty() {
            Value::Null
        } else {
            crate::storage::envelope::decode_exact::<Value>(raw)
                .map_err(|e| self.corrupted(at, format!("field {} row {row}: {e}", fs.name)))?
        };
        rules::check_value(self.pk_str(row)?, fs, &value)
            .map_err(|e| self.corrupted(at, format!("row {row}, field {}: {e}", fs.name)))?;
        Ok(value)
    }

    /// Where `row`'s bytes start and end, from the `u64` end offsets at the start of section
    /// `s` (a pk-ends or a field section): the previous row's end, and its own.
    fn span(&self, s: usize, row: usize) -> Result<(usize, usize)> {
        if row >= self.rows {
            return Err(self.corrupted(0, format!("no row {row}")));
        }
        let ends = self.part(s, 8 * row.saturating_sub(1)..8 * row + 8)?;
        let end = |at: usize| usize::try_from(u64_at(ends, at)).unwrap_or(usize::MAX);
        Ok(if row == 0 {
            (0, end(0))
        } else {
            (end(0), end(8))
        })
    }

    /// The pk bytes of `row`, from the chunks that hold them.
    fn pk_bytes(&self, row: usize) -> Result<&[u8]> {
        let (from, end) = self.span(PK_ENDS, row)?;
        if from > end || end > self.sections[PK_BYTES].range.len() {
            return Err(self.corrupted(
                self.sections[PK_ENDS].range.start + 8 * row,
                format!("pk of row {row} is out of place"),
            ));
        }
        self.part(PK_BYTES, from..end)
    }

    /// The pk of `row`, checked with the rules of a write; reads only the chunks that hold it.
    pub(crate) fn pk(&self, row: usize) -> Result<String> {
        self.pk_str(row).map(str::to_string)
    }

    fn pk_str(&self, row: usize) -> Result<&str> {
        let bytes = self.pk_bytes(row)?;
        let offset = self.sections[PK_BYTES].range.start;
        let pk = std::str::from_utf8(bytes)
            .map_err(|e| self.corrupted(offset, format!("pk of row {row}: {e}")))?;
        rules::check_pk(pk).map_err(|e| self.corrupted(offset, format!("row {row}: {e}")))?;
        Ok(pk)
    }

    /// The doc id of `row`, within the header's range; reads only the chunk that holds it.
    pub(crate) fn doc_id(&self, row: usize) -> Result<u64> {
        if row >= self.rows {
            return Err(self.corrupted(0, format!("no row {row}")));
        }
        let id = u64_at(self.part(DOC_IDS, 8 * row..8 * row + 8)?, 0);
        if !(self.min_doc_id..=self.max_doc_id).contains(&id) {
            return Err(self.corrupted(
                self.sections[DOC_IDS].range.start + 8 * row,
                format!("doc id {id} of row {row} is outside the header's range"),
            ));
        }
        Ok(id)
    }

    /// The vector of field `v` in `row`, every component finite; reads only the chunks that
    /// hold it.
    pub(crate) fn vector(&self, v: usize, row: usize) -> Result<&[f32]> {
        let s = self.vector_section(v)?;
        if row >= self.rows {
            return Err(self.corrupted(0, format!("no row {row}")));
        }
        let width = 4 * self.dims[v];
        let bytes = self.part(s, row * width..(row + 1) * width)?;
        let offset = self.sections[s].range.start + row * width;
        let floats: &[f32] =
            bytemuck::try_cast_slice(bytes).map_err(|e| self.corrupted(offset, e.to_string()))?;
        if floats.iter().any(|x| !x.is_finite()) {
            return Err(self.corrupted(
                offset,
                format!("row {row}: vector field {v} holds a non-finite component"),
            ));
        }
        Ok(floats)
    }

    /// The section of vector field `v`.
    fn vector_section(&self, v: usize) -> Result<usize> {
        self.sections
            .len()
            .checked_sub(self.dims.len())
            .map(|first| first + v)
            .filter(|&s| s < self.sections.len() && v < self.dims.len())
            .ok_or_else(|| self.corrupted(0, format!("no vector field {v}")))
    }

    /// The vectors of field `v`, contiguous, every component finite.
    pub(crate) fn vectors(&self, v: usize) -> Result<&[f32]> {
        let s = self.vector_section(v)?;
        let dim = self.dims[v].max(1);
        let bytes = self.section(s, |_, bytes| {
            let floats: &[f32] = bytemuck::try_cast_slice(bytes).map_err(|e| e.to_string())?;
            match floats.iter().position(|x| !x.is_finite()) {
                Some(at) => Err(format!(
                    "row {}: vector field {v} holds a non-finite component",
                    at / dim
                )),
                None => Ok(()),
            }
        })?;
        bytemuck::try_cast_slice(bytes).map_err(|e| self.corrupted(0, e.to_string()))
    }

    /// Starts loading the bloom-filter line a lookup of `hash` reads, when the filter is
    /// checked already (a write probes every segment: the misses then overlap).
    pub(crate) fn prefetch_key(&self, hash: u64) {
        let bloom = &self.sections[BLOOM];
        if matches!(bloom.checked.get(), Some(Ok(()))) {
            let block = Bloom::block_range(bloom.range.len(), hash);
            crate::index::frozen::prefetch(&self.bytes[bloom.range.clone()][block]);
        }
    }

    /// Rows whose pk is `pk`, whose [`keys::hash`] is `hash` (several rows when an upsert
    /// superseded a row of this segment), read in place: only the chunks of the bloom filter,
    /// key index and pks that the lookup touches are checked, and every row found is checked
    /// to hold `pk`, so what is found is right. What is *not* found only proves the pk absent
    /// once [`ForwardFile::prove_keys`] passed (a crafted index could leave a row out).
    pub(crate) fn rows_with_key(&self, pk: &str, hash: u64) -> Result<Vec<usize>> {
        let block = Bloom::block_range(self.sections[BLOOM].range.len(), hash);
        if !Bloom::block_may_contain(self.part(BLOOM, block)?, hash) {
            return Ok(Vec::new());
        }
        let entry = |at: usize| -> Result<(u64, usize)> {
            let e = self.part(KEYS, 16 * at..16 * at + 16)?;
            Ok((u64_at(e, 0), u32_at(e, 8) as usize))
        };
        let entries = self.sections[KEYS].range.len() / 16;
        let (mut lo, mut hi) = keys::bracket(entries, hash, |at| Ok(entry(at)?.0))?;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if entry(mid)?.0 < hash {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        for at in lo..self.sections[KEYS].range.len() / 16 {
            let (h, row) = entry(at)?;
            if h != hash {
                break;
            }
            if row >= self.rows {
                return Err(self.corrupted(
                    self.sections[KEYS].range.start + 16 * at,
                    format!("key entry {at} names row {row} of {}", self.rows),
                ));
            }
            if self.pk_bytes(row)? == pk.as_bytes() {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Proves, once, that the key index lists every row exactly once under the hash of its
    /// pk, sorted, and that the bloom filter holds every hash: after that, a lookup that finds
    /// nothing proves the pk absent. Costs O(rows) the first time.
    pub(crate) fn prove_keys(&self) -> Result<()> {
        if self.keys_proven() {
            return Ok(());
        }
        let bloom = self.section(BLOOM, |_, _| Ok(()))?;
        self.section(KEYS, |file, bytes| file.check_keys(bytes, bloom))
            .map(|_| ())
    }

    /// The key index lists every row once, sorted, under the hash of its pk, and the bloom
    /// filter holds every hash: so a lookup that finds nothing proves the pk absent.
    fn check_keys(&self, index: &[u8], bloom: &[u8]) -> std::result::Result<(), String> {
        let (ends, pk_bytes) = self.pks().map_err(|e| e.to_string())?;
        // Hashed in row order (the pks are read sequentially, not in the index's random order).
        let hashes: Vec<u64> = (0..self.rows)
            .map(|row| keys::hash_bytes(pk_bytes_at(ends, pk_bytes, row)))
            .collect();
        // The index has one entry per row (its length says so); strictly ascending (hash, row)
        // pairs whose hash is their row's cannot name a row twice, so they name every row once.
        let mut last: Option<(u64, usize)> = None;
        for (at, (hash, row)) in keys::entries(index).enumerate() {
            if hashes.get(row) != Some(&hash) {
                return Err(format!(
                    "key entry {at} names row {row} without the hash of its pk"
                ));
            }
            if last.is_some_and(|l| l >= (hash, row)) {
                return Err(format!("key entry {at} is out of order"));
            }
            // Entries ascend by hash and the hash picks the filter's block: a sequential read.
            if !Bloom::may_contain(bloom, hash) {
                return Err(format!("the bloom filter misses the key of row {row}"));
            }
            last = Some((hash, row));
        }
        Ok(())
    }

    /// The pk hash of every row, from the key index once [`ForwardFile::prove_keys`] passed
    /// (so that none is missing).
    pub(crate) fn proven_key_hashes(&self) -> Result<Vec<u64>> {
        // The same checked sections `prove_keys` reads (checked once, then cached).
        let bloom = self.section(BLOOM, |_, _| Ok(()))?;
        let index = self.section(KEYS, |file, bytes| file.check_keys(bytes, bloom))?;
        Ok(keys::entries(index).map(|(hash, _)| hash).collect())
    }

    /// Whether [`ForwardFile::prove_keys`] passed already.
    pub(crate) fn keys_proven(&self) -> bool {
        matches!(self.sections[KEYS].checked.get(), Some(Ok(())))
    }

    /// Checks every section now (what `verify` does): the first error found.
    pub(crate) fn check_all(&self, schema: &CollectionSchema) -> Result<()> {
        self.doc_ids()?;
        self.pks()?;
        self.prove_keys()?;
        for f in 0..schema.fields.len() {
            self.field(f)?;
        }
        for v in 0..self.dims.len() {
            self.vectors(v)?;
        }
        Ok(())
    }
}

/// The bytes of `row`'s pk, from checked pk ends and bytes.
fn pk_bytes_at<'a>(ends: &[u64], bytes: &'a [u8], row: usize) -> &'a [u8] {
    let start = if row == 0 { 0 } else { ends[row - 1] as usize };
    bytes.get(start..ends[row] as usize).unwrap_or(&[])
}

/// The pk of `row` from checked pk ends and bytes.
pub(crate) fn pk_at<'a>(ends: &[u64], bytes: &'a [u8], row: usize) -> &'a str {
    let start = if row == 0 { 0 } else { ends[row - 1] as usize };
    let end = ends[row] as usize;
    bytes
        .get(start..end)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

fn heap_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::StringArray(a) => a.iter().map(|s| s.len() + 24).sum(),
        other => other.array_len().unwrap_or(0) * 8,
    }
}

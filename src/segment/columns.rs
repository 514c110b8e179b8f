//! The forward-store file `<segment>/<block>.fwd`, version 2: columns used in place.
//!
//! The file is memory-mapped on open and never decoded as a whole. Open reads the 64-byte
//! header and the section table (both checksummed, and the manifest records the checksum of
//! that prefix); every section carries its own crc32c, checked the first time the section is
//! used, before any of its bytes is trusted. Layout (little-endian; `docs/FORMAT.md`):
//!
//! ```text
//! 0   8  magic "SVFWD\r\n\x1a"        32  8  largest doc id
//! 8   4  version (2)                  40  4  crc32c of the section table
//! 12  4  section count                44 16  zero
//! 16  8  rows                         60  4  crc32c of bytes 0..60
//! 24  8  smallest doc id
//! 64  …  section table: per section kind u32, index u32, offset u64, length u64, crc32c u32,
//!        zero u32; then the sections, each at a 64-byte aligned offset, in table order
//! ```
//!
//! Sections: doc ids (`u64` per row, ascending), pk ends (`u64` per row: where each pk ends in
//! the pk bytes), pk bytes, the key index (per row `hash u64, row u32, zero u32`, sorted by
//! hash then row), a blocked bloom filter of the key hashes, one section per scalar field (`u64`
//! end per row, then one MessagePack value per row; NULL is empty) and one per vector field
//! (`f32` × dimension per row, contiguous).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::block::Block;
use super::keys::{self, Bloom};
use super::rules;
use crate::doc::Value;
use crate::error::{Error, Result};
use crate::schema::CollectionSchema;
use crate::storage::Mapped;

pub(crate) const MAGIC: &[u8; 8] = b"SVFWD\r\n\x1a";
pub(crate) const VERSION: u32 = 2;
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

/// Whether `bytes` start like a version-2 forward file (the version-1 file has the same magic
/// and its version at the same offset).
pub(crate) fn is_v2(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..8] == MAGIC && u32_at(bytes, 8) == VERSION
}

/// The length of the checksummed prefix (header and section table) of a version-2 file, whose
/// crc32c the manifest records; `None` when the header does not say.
pub(crate) fn prefix_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < HEADER {
        return None;
    }
    let sections = u32_at(bytes, 12) as usize;
    Some(HEADER + sections.checked_mul(ENTRY)?)
}

/// The bytes of a version-2 file holding `block`.
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
        table.extend_from_slice(&(*kind as u32).to_le_bytes());
        table.extend_from_slice(&index.to_le_bytes());
        table.extend_from_slice(&(offset as u64).to_le_bytes());
        table.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        table.extend_from_slice(&crc32c::crc32c(bytes).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        placed.push(offset);
        offset = (offset + bytes.len()).next_multiple_of(ALIGN);
    }
    let end = placed
        .last()
        .zip(sections.last())
        .map_or(table_end, |(at, (_, _, b))| at + b.len());
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
    for ((_, _, bytes), at) in sections.iter().zip(placed) {
        out.resize(at, 0);
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// One section of the table.
#[derive(Debug)]
struct Section {
    kind: Kind,
    index: usize,
    range: Range<usize>,
    crc: u32,
    /// Set once the checksum and structure were checked: `Err` keeps the finding.
    checked: OnceLock<std::result::Result<(), (u64, String)>>,
}

/// A mapped version-2 forward file. Accessors check a section on first use and return
/// [`Error::Corrupted`] (naming the file and the section's offset) when it is damaged.
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
        if version != VERSION {
            return Err(bad(
                8,
                format!("forward-store format version {version}, this build reads 1 and 2"),
            ));
        }
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
            let offset = usize::try_from(u64_at(e, 8)).unwrap_or(usize::MAX);
            let len = usize::try_from(u64_at(e, 16)).unwrap_or(usize::MAX);
            let end = offset
                .checked_add(len)
                .filter(|&end| end <= b.len() && offset >= last_end && offset % ALIGN == 0);
            let Some(end) = end else {
                return Err(bad(
                    at,
                    format!("section {s} at {offset} of {len} bytes is out of place"),
                ));
            };
            last_end = end;
            sections.push(Section {
                kind,
                index: u32_at(e, 4) as usize,
                range: offset..end,
                crc: u32_at(e, 24),
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
        self.rows_with_key("", 0).map(|_| ())
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

    /// The bytes of section `s`, once its checksum and `check` (its structure, run once) pass.
    fn section(
        &self,
        s: usize,
        check: impl FnOnce(&Self, &[u8]) -> std::result::Result<(), String>,
    ) -> Result<&[u8]> {
        let section = &self.sections[s];
        let bytes = &self.bytes[section.range.clone()];
        let verdict = section.checked.get_or_init(|| {
            let start = section.range.start as u64;
            if crc32c::crc32c(bytes) != section.crc {
                return Err((
                    start,
                    format!("{:?} section checksum mismatch", section.kind),
                ));
            }
            check(self, bytes).map_err(|reason| (start, reason))
        });
        match verdict {
            Ok(()) => Ok(bytes),
            Err((offset, reason)) => Err(Error::corrupted(&self.path, *offset, reason.clone())),
        }
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
        let values = (0..self.rows)
            .map(|row| self.value(f, row))
            .collect::<Result<Vec<Value>>>()?;
        let slot = &self.decoded[f];
        Ok(slot.get_or_init(|| values))
    }

    /// The value of scalar field `f` in `row`, checked against the schema.
    pub(crate) fn value(&self, f: usize, row: usize) -> Result<Value> {
        if let Some(done) = self.decoded.get(f).and_then(OnceLock::get) {
            return Ok(done.get(row).cloned().unwrap_or(Value::Null));
        }
        if row >= self.rows {
            return Err(self.corrupted(0, format!("no row {row}")));
        }
        let s = FIELDS + f;
        let fs = self
            .schema
            .fields
            .get(f)
            .ok_or_else(|| self.corrupted(0, format!("no field {f}")))?;
        let (ends, pk_bytes) = self.pks()?;
        let rows = self.rows;
        let bytes = self.section(s, |_, bytes| {
            // Value ends ascend and stay within the section, so a row's slice is in bounds.
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
        let start = self.sections[s].range.start;
        let (head, data) = bytes.split_at(8 * rows);
        let value_ends: &[u64] =
            bytemuck::try_cast_slice(head).map_err(|e| self.corrupted(start, e.to_string()))?;
        let from = if row == 0 {
            0
        } else {
            value_ends[row - 1] as usize
        };
        let end = value_ends[row] as usize;
        let raw = &data[from..end];
        let at = start + 8 * rows + from;
        let value = if raw.is_empty() {
            Value::Null
        } else {
            crate::storage::envelope::decode_exact::<Value>(raw)
                .map_err(|e| self.corrupted(at, format!("field {} row {row}: {e}", fs.name)))?
        };
        rules::check_value(pk_at(ends, pk_bytes, row), fs, &value)
            .map_err(|e| self.corrupted(at, format!("row {row}, field {}: {e}", fs.name)))?;
        Ok(value)
    }

    /// The vectors of field `v`, contiguous, every component finite.
    pub(crate) fn vectors(&self, v: usize) -> Result<&[f32]> {
        let s = self
            .sections
            .len()
            .checked_sub(self.dims.len())
            .map(|first| first + v)
            .filter(|&s| s < self.sections.len())
            .ok_or_else(|| self.corrupted(0, format!("no vector field {v}")))?;
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
            crate::index::frozen::prefetch(Bloom::block_of(&self.bytes[bloom.range.clone()], hash));
        }
    }

    /// Rows whose pk is `pk`, whose [`keys::hash`] is `hash` (several rows when an upsert
    /// superseded a row of this segment).
    pub(crate) fn rows_with_key(&self, pk: &str, hash: u64) -> Result<Vec<usize>> {
        let bloom = self.section(BLOOM, |_, _| Ok(()))?;
        // The index check proves the filter holds every key: only then is a miss trusted.
        let index = self.section(KEYS, |file, bytes| file.check_keys(bytes, bloom))?;
        if !Bloom::may_contain(bloom, hash) {
            return Ok(Vec::new());
        }
        let (ends, pk_bytes) = self.pks()?;
        let mut out = Vec::new();
        for row in keys::lookup(index, hash) {
            if pk_bytes_at(ends, pk_bytes, row) == pk.as_bytes() {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The key index lists every row once, sorted, under the hash of its pk, and the bloom
    /// filter holds every hash: so a lookup that finds nothing proves the pk absent.
    fn check_keys(&self, index: &[u8], bloom: &[u8]) -> std::result::Result<(), String> {
        let (ends, pk_bytes) = self.pks().map_err(|e| e.to_string())?;
        let mut seen = vec![false; self.rows];
        let mut last: Option<(u64, usize)> = None;
        for (at, (hash, row)) in keys::entries(index).enumerate() {
            if row >= self.rows || std::mem::replace(&mut seen[row], true) {
                return Err(format!(
                    "key entry {at} names row {row} out of range or twice"
                ));
            }
            if last.is_some_and(|l| l >= (hash, row)) {
                return Err(format!("key entry {at} is out of order"));
            }
            if keys::hash_bytes(pk_bytes_at(ends, pk_bytes, row)) != hash {
                return Err(format!("key entry {at} has the wrong hash for row {row}"));
            }
            if !Bloom::may_contain(bloom, hash) {
                return Err(format!("the bloom filter misses the key of row {row}"));
            }
            last = Some((hash, row));
        }
        Ok(())
    }

    /// Checks every section now (what `verify` does): the first error found.
    pub(crate) fn check_all(&self, schema: &CollectionSchema) -> Result<()> {
        self.doc_ids()?;
        self.pks()?;
        let bloom = self.section(BLOOM, |_, _| Ok(()))?;
        self.section(KEYS, |file, bytes| file.check_keys(bytes, bloom))?;
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

//! `wal dump` and `wal verify`: read WAL files without changing them.
//!
//! A collection WAL record is `WalRecord { seq, op, payload }` with the crate-private `Batch`
//! enum as payload (`Rows(Vec<Row>)`, `Patches(Vec<Patch>)`, `Keys(Vec<String>)`, msgpack with
//! field names). [`BatchView`] mirrors it with only the primary keys: serde skips the other
//! keys of each row.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use stratavec::storage::StdStorage;
use stratavec::wal::format::{frame_crc, FRAME_HEADER_LEN, HEADER_LEN};
use stratavec::wal::{scan, Op, Tail, Wal, WalId, WalPayload, WalRecord};

use crate::{CliError, Out, Res};

/// A row, patch or anything else with a primary key.
#[derive(Debug, Serialize, Deserialize)]
pub struct PkOnly {
    pk: String,
}

/// The primary keys of a collection WAL record's batch.
#[derive(Debug, Serialize, Deserialize)]
pub enum BatchView {
    /// Complete documents (insert, upsert).
    Rows(Vec<PkOnly>),
    /// Partial documents (update).
    Patches(Vec<PkOnly>),
    /// Deleted keys.
    Keys(Vec<String>),
}

impl BatchView {
    fn pks(&self) -> Vec<&str> {
        match self {
            BatchView::Rows(r) | BatchView::Patches(r) => r.iter().map(|p| p.pk.as_str()).collect(),
            BatchView::Keys(k) => k.iter().map(String::as_str).collect(),
        }
    }
}

impl WalPayload for BatchView {
    fn doc_count(&self) -> usize {
        match self {
            BatchView::Rows(r) | BatchView::Patches(r) => r.len(),
            BatchView::Keys(k) => k.len(),
        }
    }
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// One record line of `wal dump`.
struct RecordLine {
    offset: u64,
    bytes: u64,
    crc_ok: bool,
    decoded: Result<WalRecord<BatchView>, String>,
}

fn record_json(r: &RecordLine) -> serde_json::Value {
    match &r.decoded {
        Ok(rec) => json!({
            "offset": r.offset, "seq": rec.seq, "op": format!("{:?}", rec.op),
            "docs": rec.payload.doc_count(), "pks": rec.payload.pks(),
            "bytes": r.bytes, "crc_ok": r.crc_ok,
        }),
        Err(e) => json!({
            "offset": r.offset, "seq": null, "op": null, "docs": null, "pks": [],
            "bytes": r.bytes, "crc_ok": r.crc_ok, "decode_error": e,
        }),
    }
}

fn record_text(r: &RecordLine) -> String {
    let crc = if r.crc_ok { "ok" } else { "BAD" };
    match &r.decoded {
        Ok(rec) => {
            let pks = rec.payload.pks();
            let mut shown = pks
                .iter()
                .take(5)
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            if pks.len() > 5 {
                shown.push_str(&format!(", … ({} more)", pks.len() - 5));
            }
            format!(
                "{:>10}  {:>6}  {:<7} {:>5}  {:>9}  {:<3}  {shown}",
                r.offset,
                rec.seq,
                format!("{:?}", rec.op),
                rec.payload.doc_count(),
                r.bytes,
                crc
            )
        }
        Err(e) => format!(
            "{:>10}  {:>6}  {:<7} {:>5}  {:>9}  {:<3}  (does not decode: {e})",
            r.offset, "?", "?", "?", r.bytes, crc
        ),
    }
}

/// What the frame at a damaged offset looks like, when enough of it is there to say.
fn damaged_frame(bytes: &[u8], off: u64) -> Option<RecordLine> {
    let off_us = off as usize;
    let len = read_u32(bytes, off_us)? as usize;
    let stored = read_u32(bytes, off_us + 4)?;
    let start = off_us + FRAME_HEADER_LEN;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    if len == 0 {
        return None;
    }
    Some(RecordLine {
        offset: off,
        bytes: (FRAME_HEADER_LEN + len) as u64,
        crc_ok: frame_crc(len as u32, payload) == stored,
        decoded: stratavec::storage::envelope::decode_exact(payload),
    })
}

/// Why a torn tail is torn (the scan says only where).
fn torn_reason(bytes: &[u8], off: u64) -> String {
    let rest = &bytes[(off as usize).min(bytes.len())..];
    if rest.iter().all(|&b| b == 0) {
        return format!("{} zero bytes after the last record", rest.len());
    }
    if rest.len() < FRAME_HEADER_LEN {
        return format!(
            "incomplete record header ({} of {FRAME_HEADER_LEN} bytes)",
            rest.len()
        );
    }
    match read_u32(rest, 0) {
        Some(len) => format!(
            "record of {len} bytes extends {} bytes past the end of the file",
            (FRAME_HEADER_LEN + len as usize).saturating_sub(rest.len())
        ),
        None => "incomplete record".into(),
    }
}

/// `stratavec wal dump`.
pub fn dump(out: &mut Out, json: bool, path: &Path) -> Res {
    let bytes = stratavec::storage::Storage::read(&StdStorage, path)?;
    let s = scan(&bytes);
    let mut records = Vec::new();
    let mut stop: Option<(u64, String, &str)> = None;
    let mut prev_seq = None;
    for frame in &s.frames {
        let decoded =
            stratavec::storage::envelope::decode_exact::<WalRecord<BatchView>>(&frame.payload)
                .map_err(|e| e.to_string());
        let problem = match &decoded {
            Err(e) => Some(format!("record does not decode: {e}")),
            Ok(r) => match prev_seq {
                Some(p) if r.seq <= p => {
                    Some(format!("sequence number {} does not follow {p}", r.seq))
                }
                _ => {
                    prev_seq = Some(r.seq);
                    None
                }
            },
        };
        records.push(RecordLine {
            offset: frame.offset,
            bytes: (FRAME_HEADER_LEN + frame.payload.len()) as u64,
            crc_ok: true,
            decoded,
        });
        if let Some(reason) = problem {
            stop = Some((frame.offset, reason, "corrupted"));
            break;
        }
    }
    if stop.is_none() {
        stop = Some(match &s.tail {
            Tail::Clean => (s.valid_end, "end of file".into(), "clean"),
            Tail::ShortHeader { len } => (
                0,
                format!("the file is {len} bytes, shorter than its {HEADER_LEN}-byte header or all zeros (a crash while it was created): an empty log"),
                "short_header",
            ),
            Tail::Torn { offset, bytes: n } => {
                if let Some(r) = damaged_frame(&bytes, *offset) {
                    records.push(r);
                }
                (
                    *offset,
                    format!("torn tail of {n} bytes ({}); recovery truncates it", torn_reason(&bytes, *offset)),
                    "torn",
                )
            }
            Tail::Corrupted { offset, reason } => {
                if *offset > 0 {
                    if let Some(r) = damaged_frame(&bytes, *offset) {
                        records.push(r);
                    }
                }
                (*offset, reason.clone(), "corrupted")
            }
        });
    }
    let (stop_offset, reason, kind) = stop.unwrap_or((s.valid_end, String::new(), "clean"));
    let valid = records
        .iter()
        .filter(|r| r.crc_ok && r.decoded.is_ok())
        .count();
    let docs: usize = records
        .iter()
        .filter(|r| r.crc_ok)
        .filter_map(|r| r.decoded.as_ref().ok())
        .map(|r| r.payload.doc_count())
        .sum();
    if json {
        for r in &records {
            out.json(&record_json(r))?;
        }
        return out.json(&json!({
            "file": path.display().to_string(),
            "file_bytes": bytes.len(),
            "segment": s.id.map(|id| id.segment),
            "block": s.id.map(|id| id.block),
            "records": valid,
            "docs": docs,
            "stopped": kind,
            "stop_offset": stop_offset,
            "reason": reason,
        }));
    }
    let header = match s.id {
        Some(id) => format!("segment {} block {}", id.segment, id.block),
        None => "no valid header".into(),
    };
    out.line(&format!(
        "{}: {} bytes, {header}",
        path.display(),
        bytes.len()
    ))?;
    out.line(&format!(
        "{:>10}  {:>6}  {:<7} {:>5}  {:>9}  {:<3}  pks",
        "offset", "seq", "op", "docs", "bytes", "crc"
    ))?;
    for r in &records {
        out.line(&record_text(r))?;
    }
    out.line(&format!(
        "{valid} valid records, {docs} docs; reading stopped at offset {stop_offset}: {kind}: {reason}"
    ))
}

/// Every `*/*.wal` under a collection directory, or the file itself.
fn wal_files(path: &Path) -> Res<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| format!("stat {}: {e}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("read dir {}: {e}", path.display()))?;
    for entry in entries {
        let sub = entry
            .map_err(|e| format!("read dir {}: {e}", path.display()))?
            .path();
        if !sub.is_dir() {
            continue;
        }
        let inner =
            std::fs::read_dir(&sub).map_err(|e| format!("read dir {}: {e}", sub.display()))?;
        for f in inner {
            let f = f
                .map_err(|e| format!("read dir {}: {e}", sub.display()))?
                .path();
            if f.extension().is_some_and(|e| e == "wal") && f.is_file() {
                files.push(f);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The segment and block a WAL must belong to: from its path (`<segment>/<block>.wal`) when
/// that parses, else from its own header.
fn expected_id(path: &Path, bytes_id: Option<WalId>) -> WalId {
    let from_path = (|| {
        let block = path.file_stem()?.to_str()?.parse().ok()?;
        let segment = path.parent()?.file_name()?.to_str()?.parse().ok()?;
        Some(WalId { segment, block })
    })();
    from_path.or(bytes_id).unwrap_or(WalId {
        segment: 0,
        block: 0,
    })
}

/// `stratavec wal verify`: the library's read-only recovery on each file.
pub fn verify(out: &mut Out, json: bool, path: &Path) -> Res {
    let files = wal_files(path)?;
    let mut corrupted: Vec<(PathBuf, u64, String)> = Vec::new();
    if files.is_empty() && !json {
        out.line(&format!("no WAL files under {}", path.display()))?;
    }
    for file in &files {
        let bytes = stratavec::storage::Storage::read(&StdStorage, file)?;
        let id = expected_id(file, scan(&bytes).id);
        match Wal::<BatchView>::read(&StdStorage, file, id) {
            Ok(rec) => {
                let r = &rec.report;
                let status = if r.short_header {
                    "empty"
                } else if r.truncated_bytes > 0 {
                    "torn"
                } else {
                    "clean"
                };
                if json {
                    out.json(&json!({
                        "file": file.display().to_string(), "ok": true, "status": status,
                        "records": r.records, "docs": r.docs, "bytes": r.bytes,
                        "truncated_bytes": r.truncated_bytes,
                        "ops": ops(&rec.records),
                    }))?;
                } else {
                    let mut line = format!(
                        "ok  {}: {} records, {} docs, {} bytes",
                        file.display(),
                        r.records,
                        r.docs,
                        r.bytes
                    );
                    if r.truncated_bytes > 0 {
                        line.push_str(&format!(
                            "; torn tail of {} bytes at offset {} (a crash; recovery truncates it)",
                            r.truncated_bytes, r.bytes
                        ));
                    }
                    if r.short_header {
                        line.push_str("; short header (an empty log)");
                    }
                    out.line(&line)?;
                }
            }
            Err(stratavec::Error::Corrupted {
                path: p,
                offset,
                reason,
            }) => {
                if json {
                    out.json(&json!({
                        "file": p.display().to_string(), "ok": false, "status": "corrupted",
                        "offset": offset, "reason": reason,
                    }))?;
                } else {
                    out.line(&format!(
                        "CORRUPTED  {} at offset {offset}: {reason}",
                        p.display()
                    ))?;
                }
                corrupted.push((p, offset, reason));
            }
            Err(e) => return Err(e.into()),
        }
    }
    match corrupted.as_slice() {
        [] => Ok(()),
        [(p, offset, reason)] => Err(CliError {
            code: 2,
            message: Some(format!(
                "corrupted WAL {} at offset {offset}: {reason}",
                p.display()
            )),
        }),
        [(p, offset, reason), ..] => Err(CliError {
            code: 2,
            message: Some(format!(
                "{} corrupted WAL files; first: {} at offset {offset}: {reason}",
                corrupted.len(),
                p.display()
            )),
        }),
    }
}

fn ops(records: &[WalRecord<BatchView>]) -> serde_json::Value {
    let mut counts = serde_json::Map::new();
    for op in [Op::Insert, Op::Upsert, Op::Update, Op::Delete] {
        let n = records.iter().filter(|r| r.op == op).count();
        if n > 0 {
            counts.insert(format!("{op:?}"), json!(n));
        }
    }
    serde_json::Value::Object(counts)
}

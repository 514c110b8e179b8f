//! The collection commands: create, import, upsert, update, query, fetch, delete, export,
//! count, schema, destroy, stats, verify, flush, optimize, and the schema changes (add-column,
//! drop-column, alter-column, create-index, drop-index).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use stratavec::collection::MAX_BATCH;
use stratavec::json::{f32_to_json, fields_to_json, vector_from_json, vectors_to_json};
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, Doc, DocStatus, Error, IndexKind, OpenOptions,
    Query, ScanCursor, ScanOptions, SearchOptions,
};

use crate::vecs::FvecsReader;
use crate::{progress_enabled, schema_file, CliError, Out, Res};

/// `stratavec create`.
pub fn create(
    out: &mut Out,
    json: bool,
    dir: &Path,
    schema_path: &Path,
    policy: Option<FlushPolicy>,
) -> Res {
    let schema = schema_file::load(schema_path)?;
    let policy = policy.unwrap_or_default();
    let options = CollectionOptions::default().flush_policy(policy);
    let coll = Collection::create(dir, schema.clone(), options)?;
    coll.close()?;
    if json {
        out.json(&json!({
            "created": dir.display().to_string(),
            "flush_policy": policy.to_string(),
            "schema": schema_file::to_json(&schema),
        }))
    } else {
        out.line(&format!(
            "created collection {:?} at {} ({} fields, {} vectors, flush policy {policy})",
            schema.name,
            dir.display(),
            schema.fields.len(),
            schema.vectors.len()
        ))
    }
}

/// How a writing command opens the collection.
#[derive(Debug, Default)]
pub struct OpenRw {
    /// Overrides the stored flush policy.
    pub flush_policy: Option<FlushPolicy>,
    /// Keep the valid prefix of a corrupted WAL instead of refusing to open.
    pub salvage: bool,
}

fn open_rw(dir: &Path, o: &OpenRw) -> Res<Collection> {
    let mut options = OpenOptions::default().salvage(o.salvage);
    if let Some(p) = o.flush_policy {
        options = options.flush_policy(p);
    }
    let coll = Collection::open(dir, options)?;
    // A salvage drops records: say so, even though the command goes on and succeeds.
    for wal in &coll.open_report().wals {
        if let Some(s) = &wal.salvaged {
            warn(&format!(
                "salvaged {}: kept {} records ({} documents); damage at offset {}: {}; the damaged file is kept as {}",
                wal.path.display(),
                wal.records,
                wal.docs,
                s.offset,
                s.reason,
                s.corrupt_path.display()
            ));
        }
    }
    Ok(coll)
}

fn open_ro(dir: &Path) -> Res<Collection> {
    Ok(Collection::open(
        dir,
        OpenOptions::default().read_only(true),
    )?)
}

/// One line on stderr about something that did not stop the command.
fn warn(message: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "warning: {}",
        message.replace(['\n', '\r'], " ")
    );
}

/// Where `import` reads documents from.
pub enum Source {
    /// Row r of the file is the document `<id-prefix><r>`.
    Fvecs(PathBuf),
    /// One JSON document per line.
    Jsonl(PathBuf),
}

/// Which write call `import`, `upsert` and `update` make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// `Collection::insert`: keys already live are left as they are.
    Insert,
    /// `Collection::upsert`: documents are inserted or wholly replaced.
    Upsert,
    /// `Collection::update`: the given fields and vectors of live documents change.
    Update,
}

impl WriteMode {
    fn write(self, coll: &Collection, docs: &[Doc]) -> stratavec::Result<Vec<DocStatus>> {
        match self {
            WriteMode::Insert => coll.insert(docs),
            WriteMode::Upsert => coll.upsert(docs),
            WriteMode::Update => coll.update(docs),
        }
    }
}

/// `stratavec import` (and `upsert`, `update`) options.
pub struct ImportOptions {
    pub mode: WriteMode,
    pub dir: PathBuf,
    pub source: Source,
    pub offset: usize,
    pub limit: Option<usize>,
    pub batch: usize,
    pub id_prefix: String,
    pub vector_field: Option<String>,
    pub skip_invalid: bool,
    pub open: OpenRw,
}

/// The only vector field, or the one named.
fn vector_field(schema: &CollectionSchema, named: Option<&str>) -> Res<String> {
    match named {
        Some(name) => {
            if schema.vector_index(name).is_none() {
                return Err(CliError::new(format!(
                    "vector field {name:?} is not in the schema of {:?} (vector fields: {})",
                    schema.name,
                    vector_names(schema)
                )));
            }
            Ok(name.to_string())
        }
        None => match schema.vectors.as_slice() {
            [only] => Ok(only.name.clone()),
            [] => Err(CliError::new(format!(
                "collection {:?} has no vector field",
                schema.name
            ))),
            _ => Err(CliError::new(format!(
                "collection {:?} has several vector fields ({}): choose one",
                schema.name,
                vector_names(schema)
            ))),
        },
    }
}

fn vector_names(schema: &CollectionSchema) -> String {
    schema
        .vectors
        .iter()
        .map(|v| v.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn progress_bar(len: Option<u64>) -> ProgressBar {
    if !progress_enabled() {
        return ProgressBar::hidden();
    }
    match len {
        Some(n) => {
            let pb = ProgressBar::new(n);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} docs  {per_sec}  eta {eta}  {msg}",
            ) {
                pb.set_style(style);
            }
            pb
        }
        None => {
            let pb = ProgressBar::new_spinner();
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {pos} docs  {per_sec}  {msg}")
            {
                pb.set_style(style);
            }
            pb
        }
    }
}

/// Reads documents one at a time from an import source.
enum Reader {
    Fvecs {
        rows: FvecsReader,
        next_row: usize,
        field: String,
        prefix: String,
    },
    Jsonl {
        name: String,
        lines: std::io::Lines<Box<dyn BufRead>>,
        line_no: usize,
    },
}

/// A document read, or why the line could not be one (an error only with --skip-invalid).
type Parsed = Result<Doc, String>;

/// Where a document came from: its line (jsonl, from 1) or row (fvecs, from 0).
type Place = usize;

impl Reader {
    /// The next document and where it came from; `None` at the end. Errors reading the
    /// source end the command; a line that is not a document does not.
    fn next_doc(&mut self, schema: &CollectionSchema) -> Res<Option<(Place, Parsed)>> {
        match self {
            Reader::Fvecs {
                rows,
                next_row,
                field,
                prefix,
            } => {
                let Some(v) = rows.next_row()? else {
                    return Ok(None);
                };
                let doc = Doc::new(format!("{prefix}{next_row}")).vector(field.as_str(), v);
                *next_row += 1;
                Ok(Some((*next_row - 1, Ok(doc))))
            }
            Reader::Jsonl {
                name,
                lines,
                line_no,
            } => loop {
                let Some(line) = lines.next() else {
                    return Ok(None);
                };
                *line_no += 1;
                let line = line.map_err(|e| format!("read {name}: {e}"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let doc = Doc::from_json_str(&line, schema).map_err(|e| e.to_string());
                return Ok(Some((*line_no, doc)));
            },
        }
    }

    /// A place for messages: "FILE line N", "FILE row N".
    fn describe(&self, place: Place) -> String {
        match self {
            Reader::Fvecs { rows, .. } => format!("{} row {place}", rows.path().display()),
            Reader::Jsonl { name, .. } => format!("{name} line {place}"),
        }
    }

    /// Lines (jsonl) or rows (fvecs) consumed so far.
    fn position(&self) -> usize {
        match self {
            Reader::Fvecs { next_row, .. } => *next_row,
            Reader::Jsonl { line_no, .. } => *line_no,
        }
    }
}

/// What an import did so far, for its ack lines and summary.
#[derive(Default)]
struct Tally {
    /// Documents in write calls that returned (whatever their status).
    acked: u64,
    /// Written: inserted, upserted or updated.
    ok: u64,
    /// Insert of a live key (import) or update of a key not live (update).
    other: u64,
    /// Skipped by --skip-invalid.
    failed: u64,
    /// The last document acked.
    last_pk: Option<String>,
}

impl Tally {
    fn add(&mut self, docs: &[Doc], statuses: &[DocStatus]) {
        self.acked += docs.len() as u64;
        for s in statuses {
            match s {
                DocStatus::Ok => self.ok += 1,
                _ => self.other += 1,
            }
        }
        if let Some(d) = docs.last() {
            self.last_pk = Some(d.pk.clone());
        }
    }

    /// The ack line: `acked` and `last_pk` first and unchanged since the first release.
    fn ack(&self, mode: WriteMode) -> serde_json::Value {
        let mut a = json!({"acked": self.acked, "last_pk": self.last_pk});
        match mode {
            WriteMode::Insert => {
                a["inserted"] = json!(self.ok);
                a["existing"] = json!(self.other);
            }
            // An upsert cannot meet a key it refuses: every acked document was written.
            WriteMode::Upsert => a["upserted"] = json!(self.ok),
            WriteMode::Update => {
                a["updated"] = json!(self.ok);
                a["not_found"] = json!(self.other);
            }
        }
        a["failed"] = json!(self.failed);
        a
    }
}

/// Whether a write failed because of a document (skippable), not the collection or the disk.
fn is_doc_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidDoc { .. } | Error::InvalidJson { .. } | Error::InvalidArgument(_)
    )
}

/// `stratavec import`, `upsert` and `update`.
pub fn import(out: &mut Out, json: bool, o: &ImportOptions) -> Res {
    if o.batch == 0 || o.batch > MAX_BATCH {
        return Err(CliError::new(format!(
            "--batch must be in 1..={MAX_BATCH}, got {}",
            o.batch
        )));
    }
    let coll = open_rw(&o.dir, &o.open)?;
    let schema = coll.schema().clone();
    let mut reader = match &o.source {
        Source::Fvecs(path) => {
            let field = vector_field(&schema, o.vector_field.as_deref())?;
            let mut rows = FvecsReader::open(path)?;
            let skipped = rows.skip(o.offset)?;
            Reader::Fvecs {
                rows,
                next_row: skipped,
                field,
                prefix: o.id_prefix.clone(),
            }
        }
        Source::Jsonl(path) => {
            let (name, input): (String, Box<dyn BufRead>) = if path.as_os_str() == "-" {
                ("stdin".into(), Box::new(std::io::stdin().lock()))
            } else {
                let file = std::fs::File::open(path)
                    .map_err(|e| format!("open {}: {e}", path.display()))?;
                (
                    path.display().to_string(),
                    Box::new(std::io::BufReader::new(file)),
                )
            };
            let mut lines = input.lines();
            let mut line_no = 0;
            while line_no < o.offset {
                match lines.next() {
                    Some(line) => {
                        line.map_err(|e| format!("read {name}: {e}"))?;
                        line_no += 1;
                    }
                    None => break,
                }
            }
            Reader::Jsonl {
                name,
                lines,
                line_no,
            }
        }
    };
    let start_pos = reader.position();
    let pb = progress_bar(o.limit.map(|l| l as u64));
    let started = Instant::now();
    let mut tally = Tally::default();
    loop {
        let mut docs = Vec::with_capacity(o.batch);
        let mut origins = Vec::with_capacity(o.batch);
        let failed_before = tally.failed;
        let mut ended = false;
        while docs.len() < o.batch {
            if o.limit.is_some_and(|l| reader.position() - start_pos >= l) {
                ended = true;
                break;
            }
            match reader.next_doc(&schema)? {
                Some((at, Ok(d))) => {
                    docs.push(d);
                    origins.push(at);
                }
                Some((at, Err(e))) if o.skip_invalid => {
                    warn(&format!("skipped {}: {e}", reader.describe(at)));
                    tally.failed += 1;
                }
                Some((at, Err(e))) => {
                    return Err(CliError::new(format!("{}: {e}", reader.describe(at))))
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if pb.length().is_none() {
            if let Reader::Fvecs { rows, .. } = &reader {
                let left = rows.rows_left().unwrap_or(0) + docs.len() as u64;
                pb.set_length(o.limit.map_or(left, |l| left.min(l as u64)));
            }
        }
        if !docs.is_empty() {
            write_batch(&coll, o, &docs, &origins, &reader, &mut tally)?;
        }
        let handled = docs.len() as u64 + tally.failed - failed_before;
        pb.inc(handled);
        if json && handled > 0 {
            out.json(&tally.ack(o.mode))?;
        }
        if ended {
            break;
        }
    }
    coll.close()?;
    pb.finish_and_clear();
    if !json {
        let secs = started.elapsed().as_secs_f64();
        let Tally {
            acked,
            ok,
            other,
            failed,
            ..
        } = tally;
        let last_pk = tally.last_pk.unwrap_or_default();
        let dir = o.dir.display();
        let rate = acked as f64 / secs.max(1e-9);
        let mut line = match o.mode {
            WriteMode::Insert => format!(
                "imported {acked} documents into {dir} in {secs:.2} s ({rate:.0} docs/s): {ok} inserted, {other} already existed"
            ),
            WriteMode::Upsert => format!(
                "upserted {acked} documents into {dir} in {secs:.2} s ({rate:.0} docs/s)"
            ),
            WriteMode::Update => format!(
                "updated {ok} of {acked} documents in {dir} in {secs:.2} s ({rate:.0} docs/s): {other} not found"
            ),
        };
        if failed > 0 {
            line.push_str(&format!(", {failed} skipped as invalid"));
        }
        line.push_str(&format!("; last pk {last_pk:?}"));
        out.line(&line)?;
    }
    Ok(())
}

/// One write call for a batch. With --skip-invalid, a batch the engine refuses because of a
/// document is written again one document at a time, so that only the bad ones are skipped.
fn write_batch(
    coll: &Collection,
    o: &ImportOptions,
    docs: &[Doc],
    origins: &[Place],
    reader: &Reader,
    tally: &mut Tally,
) -> Res {
    match o.mode.write(coll, docs) {
        Ok(statuses) => {
            tally.add(docs, &statuses);
            Ok(())
        }
        Err(e) if o.skip_invalid && is_doc_error(&e) => {
            for (doc, at) in docs.iter().zip(origins) {
                let one = std::slice::from_ref(doc);
                match o.mode.write(coll, one) {
                    Ok(statuses) => tally.add(one, &statuses),
                    Err(e) if is_doc_error(&e) => {
                        warn(&format!("skipped {}: {e}", reader.describe(*at)));
                        tally.failed += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        }
        Err(e) => {
            // The engine names the document by its key (cut to 32 characters): name the line.
            let at = match &e {
                Error::InvalidDoc { pk, .. } => docs
                    .iter()
                    .position(|d| d.pk.chars().take(32).eq(pk.chars()))
                    .and_then(|i| origins.get(i)),
                _ => None,
            };
            Err(match at {
                Some(at) => CliError::new(format!("{}: {e}", reader.describe(*at))),
                None => e.into(),
            })
        }
    }
}

/// `stratavec query` options.
pub struct QueryOptions {
    pub dir: PathBuf,
    pub field: Option<String>,
    pub fvecs: Option<PathBuf>,
    pub row: usize,
    pub vector: Option<String>,
    pub id: Option<String>,
    pub topk: usize,
    pub ef: Option<usize>,
    pub filter: Option<String>,
    pub output_fields: Option<Vec<String>>,
}

/// The vector of `query --vector`: a JSON array, or bare comma-separated numbers.
fn parse_vector(text: &str) -> Res<Vec<f32>> {
    let text = text.trim();
    let v = if text.starts_with('[') {
        let j: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| CliError::new(format!("--vector {text:?}: not a JSON array: {e}")))?;
        vector_from_json(&j).map_err(|e| CliError::new(format!("--vector: {e}")))?
    } else {
        text.split(',')
            .map(|x| {
                x.trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| CliError::new(format!("--vector: {x:?} is not a finite number")))
            })
            .collect::<Res<Vec<f32>>>()?
    };
    if v.is_empty() {
        return Err(CliError::new("--vector: the vector is empty"));
    }
    Ok(v)
}

/// Row `row` of an `.fvecs` file.
pub fn fvecs_row(path: &Path, row: usize) -> Res<Vec<f32>> {
    let mut r = FvecsReader::open(path)?;
    let skipped = r.skip(row)?;
    match r.next_row()? {
        Some(v) => Ok(v),
        None => Err(CliError::new(format!(
            "row {row} is past the end of {} ({skipped} rows)",
            r.path().display()
        ))),
    }
}

/// `stratavec query`.
pub fn query(out: &mut Out, json: bool, o: &QueryOptions) -> Res {
    let coll = open_ro(&o.dir)?;
    let field = || vector_field(&coll.schema(), o.field.as_deref());
    let mut q = if let Some(path) = &o.fvecs {
        Query::vector(field()?, fvecs_row(path, o.row)?)
    } else if let Some(text) = &o.vector {
        Query::vector(field()?, parse_vector(text)?)
    } else if let Some(pk) = &o.id {
        Query::by_id(field()?, pk.clone())
    } else {
        Query::new()
    };
    q = q.topk(o.topk);
    if let Some(ef) = o.ef {
        q = q.ef(ef);
    }
    if let Some(f) = &o.filter {
        q = q.filter(f.clone());
    }
    if let Some(fields) = &o.output_fields {
        q = q.output_fields(fields.iter().map(|f| f.trim()).filter(|f| !f.is_empty()));
    }
    let started = Instant::now();
    let hits = coll.query(&q)?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    for (rank, hit) in hits.iter().enumerate() {
        if json {
            let mut obj = json!({"pk": hit.pk, "score": f32_to_json(hit.score), "fields": fields_to_json(hit)});
            if !hit.vectors.is_empty() {
                obj["vectors"] = vectors_to_json(hit);
            }
            out.json(&obj)?;
        } else {
            let mut line = format!(
                "{:>4}  {}  {:.6}  {}",
                rank + 1,
                hit.pk,
                hit.score,
                fields_to_json(hit)
            );
            if !hit.vectors.is_empty() {
                line.push_str(&format!("  {}", vectors_to_json(hit)));
            }
            out.line(&line)?;
        }
    }
    if !json {
        out.line(&format!("{} hits in {ms:.2} ms", hits.len()))?;
    }
    Ok(())
}

/// `stratavec fetch`.
pub fn fetch(out: &mut Out, json: bool, dir: &Path, pks: &[String]) -> Res {
    let coll = open_ro(dir)?;
    let docs = coll.fetch(pks)?;
    let found: HashMap<&str, &Doc> = docs.iter().map(|d| (d.pk.as_str(), d)).collect();
    let mut seen = HashSet::new();
    let mut missing = Vec::new();
    // Request order, each key once: the found document, or a line saying it was not found.
    for pk in pks {
        if !seen.insert(pk.as_str()) {
            continue;
        }
        let Some(doc) = found.get(pk.as_str()) else {
            if json {
                out.json(&json!({"pk": pk, "found": false}))?;
            }
            missing.push(pk.as_str());
            continue;
        };
        if json {
            out.json(&json!({
                "pk": doc.pk, "found": true,
                "fields": fields_to_json(doc), "vectors": vectors_to_json(doc),
            }))?;
        } else {
            let vectors: Vec<String> = doc
                .vectors
                .iter()
                .map(|(name, v)| {
                    let head: Vec<String> = v.iter().take(4).map(|x| format!("{x}")).collect();
                    let more = if v.len() > 4 { ", …" } else { "" };
                    format!("{name}[{}]=[{}{more}]", v.len(), head.join(", "))
                })
                .collect();
            out.line(&format!(
                "{}  {}  {}",
                doc.pk,
                fields_to_json(doc),
                vectors.join("  ")
            ))?;
        }
    }
    if !json {
        let mut line = format!("{} found, {} not found", docs.len(), missing.len());
        if !missing.is_empty() {
            line.push_str(&format!(": {}", missing.join(", ")));
        }
        out.line(&line)?;
    }
    Ok(())
}

/// `stratavec delete`: by primary key, or by filter.
pub fn delete(
    out: &mut Out,
    json: bool,
    dir: &Path,
    pks: &[String],
    filter: Option<&str>,
    open: &OpenRw,
) -> Res {
    let coll = open_rw(dir, open)?;
    if let Some(expr) = filter {
        let deleted = coll.delete_by_filter(expr)?;
        coll.close()?;
        return if json {
            out.json(&json!({"deleted": deleted, "filter": expr}))
        } else {
            out.line(&format!("deleted {deleted} documents matching {expr:?}"))
        };
    }
    let mut deleted = 0usize;
    let mut missing = Vec::new();
    for chunk in pks.chunks(MAX_BATCH) {
        let statuses = coll.delete(chunk)?;
        for (pk, status) in chunk.iter().zip(statuses) {
            let ok = status == DocStatus::Ok;
            if ok {
                deleted += 1;
            } else {
                missing.push(pk.as_str());
            }
            if json {
                out.json(&json!({"pk": pk, "deleted": ok, "status": if ok { "ok" } else { "not_found" }}))?;
            }
        }
    }
    coll.close()?;
    if !json {
        let mut line = format!("deleted {deleted} of {}", pks.len());
        if !missing.is_empty() {
            line.push_str(&format!("; not found: {}", missing.join(", ")));
        }
        out.line(&line)?;
    }
    Ok(())
}

/// `stratavec export` options.
pub struct ExportOptions {
    pub dir: PathBuf,
    pub out: Option<PathBuf>,
    pub filter: Option<String>,
    /// Scalar fields written (`None`: all).
    pub fields: Option<Vec<String>>,
    /// Vector fields written (`None`: all; empty: none).
    pub vectors: Option<Vec<String>>,
    pub limit: Option<u64>,
    pub after: Option<String>,
}

/// Documents per scan page: one consistent read each, so a page is also the unit a
/// concurrent writer waits behind.
const EXPORT_PAGE: u64 = 1000;

/// The scan options of an export: every field and vector unless narrowed.
fn export_scan_options(schema: &CollectionSchema, o: &ExportOptions) -> Res<ScanOptions> {
    let mut scan = ScanOptions::default();
    if let Some(f) = &o.filter {
        scan = scan.filter(f.clone());
    }
    if o.fields.is_none() && o.vectors.is_none() {
        return Ok(scan);
    }
    // Each list is checked against its own kind: `--fields` naming a vector (which the
    // engine would accept as an output field) is a mistake worth reporting.
    let pick = |given: &Option<Vec<String>>,
                all: Vec<&String>,
                is_kind: &dyn Fn(&str) -> bool,
                what: &str|
     -> Res<Vec<String>> {
        let Some(list) = given else {
            return Ok(all.into_iter().cloned().collect());
        };
        let names = list.iter().map(|n| n.trim()).filter(|n| !n.is_empty());
        names
            .map(|n| match is_kind(n) {
                true => Ok(n.to_string()),
                false => Err(CliError::new(format!(
                    "{n:?} is not a {what} of collection {:?}",
                    schema.name
                ))),
            })
            .collect()
    };
    let mut output = pick(
        &o.fields,
        schema.fields.iter().map(|f| &f.name).collect(),
        &|n| schema.field_index(n).is_some(),
        "scalar field (--fields)",
    )?;
    output.extend(pick(
        &o.vectors,
        schema.vectors.iter().map(|v| &v.name).collect(),
        &|n| schema.vector_index(n).is_some(),
        "vector field (--vectors)",
    )?);
    Ok(scan.output_fields(output).include_vector(false))
}

/// Where exported lines go: standard output, or a temporary file renamed over --out at the
/// end, so that a failed or interrupted export never leaves a partial file under that name.
enum Sink {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    File(std::io::BufWriter<tempfile::NamedTempFile>, PathBuf),
}

impl Sink {
    fn write_line(&mut self, line: &str) -> Res {
        let written = match self {
            Sink::Stdout(w) => writeln!(w, "{line}"),
            Sink::File(w, _) => writeln!(w, "{line}"),
        };
        written.map_err(|e| self.io_error(e))
    }

    fn flush(&mut self) -> Res {
        let flushed = match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File(w, _) => w.flush(),
        };
        flushed.map_err(|e| self.io_error(e))
    }

    fn io_error(&self, e: std::io::Error) -> CliError {
        match self {
            // The reader went away (`export | head`): stop quietly, as every command does.
            Sink::Stdout(_) if e.kind() == std::io::ErrorKind::BrokenPipe => CliError {
                code: 0,
                message: None,
            },
            Sink::Stdout(_) => CliError::new(format!("write stdout: {e}")),
            Sink::File(_, path) => CliError::new(format!("write {}: {e}", path.display())),
        }
    }

    fn finish(self) -> Res {
        if let Sink::File(w, path) = self {
            let tmp = w
                .into_inner()
                .map_err(|e| CliError::new(format!("write {}: {}", path.display(), e.error())))?;
            tmp.as_file()
                .sync_all()
                .map_err(|e| CliError::new(format!("fsync {}: {e}", path.display())))?;
            tmp.persist(&path)
                .map_err(|e| CliError::new(format!("rename to {}: {}", path.display(), e.error)))?;
        }
        Ok(())
    }
}

/// `stratavec export`.
pub fn export(out: &mut Out, json: bool, o: &ExportOptions) -> Res {
    if o.limit == Some(0) {
        return Err(CliError::new("--limit must be at least 1"));
    }
    let mut cursor = o.after.as_deref().map(ScanCursor::from_token).transpose()?;
    let coll = open_ro(&o.dir)?;
    let scan = export_scan_options(&coll.schema(), o)?;
    let mut sink = match &o.out {
        None => Sink::Stdout(std::io::BufWriter::new(std::io::stdout().lock())),
        Some(path) => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let tmp = tempfile::Builder::new()
                .prefix(".stratavec-export-")
                .tempfile_in(parent)
                .map_err(|e| {
                    CliError::new(format!("create a file in {}: {e}", parent.display()))
                })?;
            Sink::File(std::io::BufWriter::new(tmp), path.clone())
        }
    };
    let mut exported = 0u64;
    let next = loop {
        let want = o
            .limit
            .map_or(EXPORT_PAGE, |l| (l - exported).min(EXPORT_PAGE));
        if want == 0 {
            break cursor;
        }
        let page = coll.scan(&scan.clone().limit(want as usize), cursor)?;
        for doc in &page.docs {
            sink.write_line(&doc.to_json().to_string())?;
        }
        exported += page.docs.len() as u64;
        sink.flush()?;
        match page.next {
            Some(c) => cursor = Some(c),
            None => break None,
        }
    };
    sink.finish()?;
    let token = next.map(|c| c.to_token());
    let summary = if json {
        json!({"exported": exported, "next": token}).to_string()
    } else {
        let mut line = format!("exported {exported} documents");
        if let Some(path) = &o.out {
            line.push_str(&format!(" to {}", path.display()));
        }
        if let Some(t) = &token {
            line.push_str(&format!("; more may follow: continue with --after {t}"));
        }
        line
    };
    // Standard output carries the documents unless --out took them.
    if o.out.is_some() {
        out.line(&summary)
    } else {
        let _ = writeln!(std::io::stderr(), "{summary}");
        Ok(())
    }
}

/// `stratavec count`.
pub fn count(out: &mut Out, json: bool, dir: &Path, filter: Option<&str>) -> Res {
    let coll = open_ro(dir)?;
    let n = coll.count(filter)?;
    if json {
        out.json(&json!({"count": n}))
    } else {
        out.line(&n.to_string())
    }
}

/// `stratavec schema`: the form `create --schema` reads; indented unless --json (one line).
pub fn schema(out: &mut Out, json: bool, dir: &Path) -> Res {
    let coll = open_ro(dir)?;
    let schema = schema_file::to_json(&coll.schema());
    if json {
        out.json(&schema)
    } else {
        let text = serde_json::to_string_pretty(&schema)
            .map_err(|e| CliError::new(format!("schema as JSON: {e}")))?;
        out.line(&text)
    }
}

/// Whether `dir` holds a manifest, the file only a finished `create` writes.
fn has_manifest(dir: &Path) -> Res<bool> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::new(format!("list {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| CliError::new(format!("list {}: {e}", dir.display())))?;
        let name = entry.file_name();
        let is_manifest = name
            .to_str()
            .and_then(|n| n.strip_prefix("manifest."))
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        if is_manifest {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `stratavec destroy`.
pub fn destroy(out: &mut Out, json: bool, dir: &Path, yes: bool, salvage: bool) -> Res {
    if !dir.exists() {
        return Err(Error::CollectionNotFound(dir.to_path_buf()).into());
    }
    // Checked before anything is opened: opening writes a lock file, and this command must
    // leave a directory that is not a collection exactly as it was.
    if !dir.is_dir() || !has_manifest(dir)? {
        return Err(CliError::new(format!(
            "{} is not a stratavec collection (no manifest): nothing deleted",
            dir.display()
        )));
    }
    if !yes {
        return Err(CliError::new(format!(
            "destroy deletes {} and every document in it for good: add --yes to confirm",
            dir.display()
        )));
    }
    // Opening read-write proves the manifest is ours and that no other process has the
    // collection open; the lock is held until the directory is gone.
    let coll = open_rw(
        dir,
        &OpenRw {
            flush_policy: None,
            salvage,
        },
    )?;
    let name = coll.schema().name.clone();
    coll.destroy()?;
    if json {
        out.json(&json!({"destroyed": dir.display().to_string(), "name": name}))
    } else {
        out.line(&format!(
            "destroyed collection {name:?} at {}",
            dir.display()
        ))
    }
}

/// `stratavec verify`.
pub fn verify(out: &mut Out, json: bool, dir: &Path) -> Res {
    let report = Collection::verify(dir, &OpenOptions::default())?;
    for p in &report.problems {
        if json {
            out.json(&json!({
                "file": p.path.display().to_string(), "offset": p.offset, "reason": p.reason,
            }))?;
        } else {
            out.line(&format!("PROBLEM  {p}"))?;
        }
    }
    if json {
        out.json(&json!({"ok": report.is_ok(), "files": report.files, "problems": report.problems.len()}))?;
    } else if report.is_ok() {
        out.line(&format!(
            "ok  {}: {} files checked",
            dir.display(),
            report.files
        ))?;
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(CliError {
            code: 2,
            message: Some(format!(
                "{}: {} problem(s) in {} files checked",
                dir.display(),
                report.problems.len(),
                report.files
            )),
        })
    }
}

/// `stratavec stats`.
pub fn stats(out: &mut Out, json: bool, dir: &Path) -> Res {
    // Read-only: stats must not change the collection (a read-write handle persists on close).
    let coll = open_ro(dir)?;
    let s = coll.stats();
    // A read-only handle has no WAL open, so `stats().wal_bytes` is 0; the open report has
    // the size of the valid log it replayed.
    let report = coll.open_report();
    let wal_bytes = s.wal_bytes.max(report.wal.as_ref().map_or(0, |w| w.bytes));
    let schema = coll.schema();
    let graphs: Vec<_> = s
        .graphs
        .iter()
        .map(|g| {
            json!({
                "field": g.field, "rows_covered": g.rows_covered, "mapped": g.mapped,
                "in_memory": g.in_memory, "rebuilt_at_open": g.rebuilt_at_open,
                "frozen_bytes": g.frozen_bytes,
            })
        })
        .collect();
    if json {
        return out.json(&json!({
            "name": schema.name,
            "doc_count": s.doc_count,
            "segments": s.segments,
            "writing_rows": s.writing_rows,
            "deleted": s.deleted,
            "wal_bytes": wal_bytes,
            "wal_records": report.wal.as_ref().map_or(0, |w| w.records),
            "manifest_version": s.manifest_version,
            "graphs": graphs,
            "schema": schema_file::to_json(&schema),
        }));
    }
    let mut lines = vec![
        format!("collection:       {} ({})", schema.name, dir.display()),
        format!("doc_count:        {}", s.doc_count),
        format!("segments:         {}", s.segments),
        format!("writing_rows:     {}", s.writing_rows),
        format!("deleted:          {}", s.deleted),
        format!(
            "wal_bytes:        {wal_bytes} ({} records)",
            report.wal.as_ref().map_or(0, |w| w.records)
        ),
        format!("manifest_version: {}", s.manifest_version),
    ];
    for f in &schema.fields {
        lines.push(format!(
            "field:            {} {}{}{}",
            f.name,
            f.data_type,
            if f.nullable { " nullable" } else { "" },
            if f.index.is_some() { " inverted" } else { "" }
        ));
    }
    for v in &schema.vectors {
        let index = match v.index {
            IndexKind::Flat => "flat".to_string(),
            IndexKind::Hnsw { m, ef_construction } => {
                format!("hnsw m={m} ef_construction={ef_construction}")
            }
        };
        lines.push(format!(
            "vector:           {} dim={} {} {index}",
            v.name,
            v.dimension,
            v.metric.name()
        ));
    }
    for g in &s.graphs {
        lines.push(format!(
            "graph:            {} rows_covered={} mapped={} in_memory={} rebuilt_at_open={} frozen_bytes={}",
            g.field, g.rows_covered, g.mapped, g.in_memory, g.rebuilt_at_open, g.frozen_bytes
        ));
    }
    for l in lines {
        out.line(&l)?;
    }
    Ok(())
}

/// `stratavec flush` and `stratavec optimize`.
pub fn flush(out: &mut Out, json: bool, dir: &Path, optimize: bool, salvage: bool) -> Res {
    let coll = open_rw(
        dir,
        &OpenRw {
            flush_policy: None,
            salvage,
        },
    )?;
    let started = Instant::now();
    if optimize {
        coll.optimize()?;
    } else {
        coll.flush()?;
    }
    let secs = started.elapsed().as_secs_f64();
    let s = coll.stats();
    coll.close()?;
    let what = if optimize { "optimized" } else { "flushed" };
    if json {
        out.json(&json!({
            what: dir.display().to_string(),
            "seconds": secs,
            "doc_count": s.doc_count,
            "segments": s.segments,
            "deleted": s.deleted,
            "wal_bytes": s.wal_bytes,
        }))
    } else {
        out.line(&format!(
            "{what} {} in {secs:.3} s: {} docs in {} segments, {} deleted rows, wal {} bytes",
            dir.display(),
            s.doc_count,
            s.segments,
            s.deleted,
            s.wal_bytes
        ))
    }
}

/// `stratavec bench open`: open read-only and run one query, timed from before the open.
pub fn bench_open(
    out: &mut Out,
    json: bool,
    path: &Path,
    field: &str,
    vector: &str,
    ef: usize,
) -> Res {
    let query = parse_vector(vector)?;
    let started = Instant::now();
    let c = Collection::open(path, OpenOptions::default().read_only(true))?;
    let opened = started.elapsed().as_secs_f64() * 1e3;
    let hits = c.search(field, &query, &SearchOptions::new().topk(10).ef(ef))?;
    let total = started.elapsed().as_secs_f64() * 1e3;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kb = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|x| x.parse().ok())
            .unwrap_or(0)
    };
    let (anon, file) = (rss_kb("RssAnon:"), rss_kb("RssFile:"));
    if json {
        out.line(
            &json!({
                "open_ms": opened, "open_query_ms": total, "hits": hits.len(),
                "rss_anon_bytes": anon * 1024, "rss_file_bytes": file * 1024,
            })
            .to_string(),
        )
    } else {
        out.line(&format!(
            "open {opened:.2} ms, open + first query {total:.2} ms ({} hits); RSS anon {:.1} MB, file {:.1} MB",
            hits.len(),
            anon as f64 / 1024.0,
            file as f64 / 1024.0
        ))
    }
}

/// A schema or index change (`add-column`, `drop-column`, `alter-column`, `create-index`,
/// `drop-index`), as the command line gives it.
#[derive(Debug)]
pub enum SchemaChange {
    /// `add-column <NAME> --type T [--nullable] [--default V | --expression E] [--inverted]`.
    AddColumn {
        name: String,
        data_type: String,
        nullable: bool,
        default: Option<String>,
        expression: Option<String>,
        inverted: bool,
    },
    /// `drop-column <NAME>`.
    DropColumn { name: String },
    /// `alter-column <NAME> [--rename NEW] [--type T]`.
    AlterColumn {
        name: String,
        rename: Option<String>,
        data_type: Option<String>,
    },
    /// `create-index <FIELD> (--inverted | --flat | --hnsw [--m M] [--ef-construction E])`.
    CreateIndex {
        field: String,
        index: stratavec::IndexParam,
    },
    /// `drop-index <FIELD>`.
    DropIndex { field: String },
}

fn data_type(name: &str) -> Res<stratavec::DataType> {
    stratavec::DataType::from_name(name).ok_or_else(|| {
        CliError::new(format!(
            "unknown type {name:?} (expected int32, int64, uint32, uint64, float or double)"
        ))
    })
}

/// `stratavec add-column`, `drop-column`, `alter-column`, `create-index`, `drop-index`: the
/// change is committed (or refused) before the command returns; it prints the new schema.
pub fn change_schema(out: &mut Out, json: bool, dir: &Path, change: SchemaChange) -> Res {
    let coll = open_rw(dir, &OpenRw::default())?;
    let (op, what) = match change {
        SchemaChange::AddColumn {
            name,
            data_type: t,
            nullable,
            default,
            expression,
            inverted,
        } => {
            let t = data_type(&t)?;
            let mut field = stratavec::FieldSchema::new(&name, t);
            if nullable {
                field = field.nullable();
            }
            if inverted {
                field = field.index(stratavec::ScalarIndex::Inverted);
            }
            let fill = match (default, expression) {
                (Some(text), _) => {
                    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                        CliError::new(format!("--default {text:?} is not a JSON value: {e}"))
                    })?;
                    stratavec::ColumnFill::Value(stratavec::Value::from_json(&value, t)?)
                }
                (None, Some(expr)) => stratavec::ColumnFill::Expression(expr),
                (None, None) => stratavec::ColumnFill::Null,
            };
            coll.add_column(field, fill)?;
            ("add-column", format!("added column {name}"))
        }
        SchemaChange::DropColumn { name } => {
            coll.drop_column(&name)?;
            ("drop-column", format!("dropped column {name}"))
        }
        SchemaChange::AlterColumn {
            name,
            rename,
            data_type: t,
        } => {
            let t = t.as_deref().map(data_type).transpose()?;
            coll.alter_column(&name, rename.as_deref(), t)?;
            ("alter-column", format!("altered column {name}"))
        }
        SchemaChange::CreateIndex { field, index } => {
            coll.create_index(&field, index)?;
            ("create-index", format!("indexed {field}"))
        }
        SchemaChange::DropIndex { field } => {
            coll.drop_index(&field)?;
            ("drop-index", format!("dropped the index of {field}"))
        }
    };
    let schema = coll.schema();
    coll.close()?;
    if json {
        out.json(&json!({
            "changed": dir.display().to_string(),
            "op": op,
            "schema": schema_file::to_json(&schema),
        }))
    } else {
        out.line(&format!("{what} in {}", dir.display()))
    }
}

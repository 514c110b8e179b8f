//! The collection commands: create, import, query, fetch, delete, stats, flush, optimize.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use stratavec::collection::MAX_BATCH;
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, Doc, DocStatus, IndexKind, OpenOptions, Query,
};

use crate::convert::{f32_json, fields_json, vectors_json};
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

fn open_rw(dir: &Path, policy: Option<FlushPolicy>) -> Res<Collection> {
    let mut options = OpenOptions::default();
    if let Some(p) = policy {
        options = options.flush_policy(p);
    }
    Ok(Collection::open(dir, options)?)
}

fn open_ro(dir: &Path) -> Res<Collection> {
    Ok(Collection::open(
        dir,
        OpenOptions::default().read_only(true),
    )?)
}

/// Where `import` reads documents from.
pub enum Source {
    /// Row r of the file is the document `<id-prefix><r>`.
    Fvecs(PathBuf),
    /// One JSON document per line.
    Jsonl(PathBuf),
}

/// `stratavec import` options.
pub struct ImportOptions {
    pub dir: PathBuf,
    pub source: Source,
    pub offset: usize,
    pub limit: Option<usize>,
    pub batch: usize,
    pub id_prefix: String,
    pub vector_field: Option<String>,
    pub flush_policy: Option<FlushPolicy>,
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

/// Reads documents batch by batch from an import source.
enum Reader {
    Fvecs {
        rows: FvecsReader,
        next_row: usize,
        field: String,
        prefix: String,
    },
    Jsonl {
        path: PathBuf,
        lines: std::io::Lines<std::io::BufReader<std::fs::File>>,
        line_no: usize,
    },
}

impl Reader {
    fn next_doc(&mut self, schema: &CollectionSchema) -> Res<Option<Doc>> {
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
                Ok(Some(doc))
            }
            Reader::Jsonl {
                path,
                lines,
                line_no,
            } => loop {
                let Some(line) = lines.next() else {
                    return Ok(None);
                };
                *line_no += 1;
                let line = line.map_err(|e| format!("read {}: {e}", path.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                let doc = crate::convert::doc_from_json(schema, &line)
                    .map_err(|e| format!("{} line {line_no}: {e}", path.display()))?;
                return Ok(Some(doc));
            },
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

/// `stratavec import`.
pub fn import(out: &mut Out, json: bool, o: &ImportOptions) -> Res {
    if o.batch == 0 || o.batch > MAX_BATCH {
        return Err(CliError::new(format!(
            "--batch must be in 1..={MAX_BATCH}, got {}",
            o.batch
        )));
    }
    let coll = open_rw(&o.dir, o.flush_policy)?;
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
            let file =
                std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
            let mut lines = std::io::BufReader::new(file).lines();
            let mut line_no = 0;
            while line_no < o.offset {
                match lines.next() {
                    Some(line) => {
                        line.map_err(|e| format!("read {}: {e}", path.display()))?;
                        line_no += 1;
                    }
                    None => break,
                }
            }
            Reader::Jsonl {
                path: path.clone(),
                lines,
                line_no,
            }
        }
    };
    let start_pos = reader.position();
    let pb = progress_bar(o.limit.map(|l| l as u64));
    let started = Instant::now();
    let (mut acked, mut inserted, mut existing) = (0u64, 0u64, 0u64);
    let mut last_pk = String::new();
    loop {
        let mut docs = Vec::with_capacity(o.batch);
        while docs.len() < o.batch {
            if o.limit.is_some_and(|l| reader.position() - start_pos >= l) {
                break;
            }
            match reader.next_doc(&schema)? {
                Some(d) => docs.push(d),
                None => break,
            }
        }
        if pb.length().is_none() {
            if let Reader::Fvecs { rows, .. } = &reader {
                let left = rows.rows_left().unwrap_or(0) + docs.len() as u64;
                pb.set_length(o.limit.map_or(left, |l| left.min(l as u64)));
            }
        }
        let Some(last) = docs.last() else {
            break;
        };
        let pk = last.pk.clone();
        let statuses = coll.insert(&docs)?;
        acked += docs.len() as u64;
        last_pk = pk;
        for s in statuses {
            match s {
                DocStatus::Ok => inserted += 1,
                _ => existing += 1,
            }
        }
        pb.inc(docs.len() as u64);
        if json {
            out.json(&json!({"acked": acked, "last_pk": last_pk}))?;
        }
    }
    coll.close()?;
    pb.finish_and_clear();
    if !json {
        let secs = started.elapsed().as_secs_f64();
        out.line(&format!(
            "imported {acked} documents into {} in {secs:.2} s ({:.0} docs/s): {inserted} inserted, {existing} already existed; last pk {last_pk:?}",
            o.dir.display(),
            acked as f64 / secs.max(1e-9),
        ))?;
    }
    Ok(())
}

/// `stratavec query` options.
pub struct QueryOptions {
    pub dir: PathBuf,
    pub field: Option<String>,
    pub fvecs: Option<PathBuf>,
    pub row: usize,
    pub topk: usize,
    pub ef: Option<usize>,
    pub filter: Option<String>,
    pub output_fields: Option<Vec<String>>,
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
    let mut q = match &o.fvecs {
        Some(path) => {
            let field = vector_field(coll.schema(), o.field.as_deref())?;
            Query::vector(field, fvecs_row(path, o.row)?)
        }
        None => Query::new(),
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
            let mut obj =
                json!({"pk": hit.pk, "score": f32_json(hit.score), "fields": fields_json(hit)});
            if !hit.vectors.is_empty() {
                obj["vectors"] = vectors_json(hit);
            }
            out.json(&obj)?;
        } else {
            let mut line = format!(
                "{:>4}  {}  {:.6}  {}",
                rank + 1,
                hit.pk,
                hit.score,
                fields_json(hit)
            );
            if !hit.vectors.is_empty() {
                line.push_str(&format!("  {}", vectors_json(hit)));
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
    for doc in &docs {
        if json {
            out.json(
                &json!({"pk": doc.pk, "fields": fields_json(doc), "vectors": vectors_json(doc)}),
            )?;
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
                fields_json(doc),
                vectors.join("  ")
            ))?;
        }
    }
    if !json {
        let missing = pks.len() - docs.len();
        out.line(&format!("{} found, {missing} not found", docs.len()))?;
    }
    Ok(())
}

/// `stratavec delete`.
pub fn delete(
    out: &mut Out,
    json: bool,
    dir: &Path,
    pks: &[String],
    policy: Option<FlushPolicy>,
) -> Res {
    let coll = open_rw(dir, policy)?;
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

/// `stratavec stats`.
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
            "schema": schema_file::to_json(schema),
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
            "field:            {} {}{}",
            f.name,
            f.data_type,
            if f.nullable { " nullable" } else { "" }
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
pub fn flush(out: &mut Out, json: bool, dir: &Path, optimize: bool) -> Res {
    let coll = open_rw(dir, None)?;
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

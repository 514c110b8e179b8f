//! `Collection::verify`: every check an open makes, on every file, without stopping at the
//! first problem and without changing anything; plus graph sanity an open does not pay for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::manifest::Manifest;
use super::{Collection, OpenOptions, LOCK_FILE};
use crate::error::{Error, Result};
use crate::index::distance::{dot, Scorer};
use crate::index::frozen::FrozenGraph;
use crate::schema::{IndexKind, VectorSchema};
use crate::segment::{
    graphs_check_norms, open_forward, wal_path, DeleteSet, Elsewhere, IdTracker, RecoverOptions,
    SealedSegment, Segment,
};
use crate::storage::{LockMode, Storage};

/// One problem [`Collection::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The file concerned.
    pub path: PathBuf,
    /// Byte offset of the problem in that file (24, the payload start, for problems inside a
    /// MessagePack payload).
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.path.display(),
            self.offset,
            self.reason
        )
    }
}

/// What [`Collection::verify`] checked and found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Files checked (manifest, delete set, forward stores, graphs, WALs).
    pub files: usize,
    /// Every problem found, in the order the files were checked.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn push(&mut self, e: Error, fallback: &Path) {
        self.problems.push(match e {
            Error::Corrupted {
                path,
                offset,
                reason,
            } => Problem {
                path,
                offset,
                reason,
            },
            Error::Io { ref path, .. } => Problem {
                path: path.clone(),
                offset: 0,
                reason: e.to_string(),
            },
            other => Problem {
                path: fallback.to_path_buf(),
                offset: 0,
                reason: other.to_string(),
            },
        });
    }
}

/// Rows sampled for the graph recall check, and the exact-search budget (rows × dimension)
/// above which it is skipped to keep `verify` fast on large segments.
const RECALL_SAMPLES: usize = 32;
const RECALL_BUDGET: usize = 50_000_000;
/// A sound HNSW graph finds nearly all of a row's 10 nearest neighbours with ef 100; a graph
/// whose links were replaced (a ring, say) finds a fraction.
const MIN_RECALL: f64 = 0.5;

impl Collection {
    /// Checks every file of the collection at `path` as an open would (manifest, delete set,
    /// forward stores, graphs, every WAL that would replay, and the cross-checks between them),
    /// plus graph sanity (every row reachable from the entry point, neighbour counts, recall
    /// of sampled rows), and reports each problem with its file and offset. Nothing is changed
    /// and no graph is rebuilt. Takes the shared lock, like a read-only open.
    ///
    /// Fails only when it cannot run (no collection, or a writer holds the lock); problems in
    /// the files are in the report.
    pub fn verify(path: impl AsRef<Path>, options: &OpenOptions) -> Result<VerifyReport> {
        let path = path.as_ref();
        let storage = options.storage.clone();
        if !storage.exists(path)? {
            return Err(Error::CollectionNotFound(path.to_path_buf()));
        }
        let _lock = storage.lock(&path.join(LOCK_FILE), LockMode::Shared)?;
        let mut report = VerifyReport {
            files: 1,
            ..VerifyReport::default()
        };
        if let Err(e) = super::open::check_segment_dirs(&*storage, path) {
            report.push(e, path);
            return Ok(report);
        }
        let manifest = match Manifest::load_newest(&*storage, path) {
            Ok(m) => m,
            Err(e) => {
                report.push(e, &path.join("manifest"));
                return Ok(report);
            }
        };
        let schema = &manifest.schema;
        let mut sealed = Vec::new();
        // A forward store that cannot be read leaves its rows unknown: the cross-checks and the
        // replay (which may update those rows) cannot run then. A bad graph does not matter to
        // them: an open rebuilds it.
        let mut missing_rows = false;
        for meta in &manifest.segments {
            report.files += 1;
            let fwd = path.join(&meta.file.name);
            let forward = open_forward(&*storage, &fwd, meta, schema)
                .and_then(|file| file.check_all(schema).map(|()| file))
                .and_then(|file| {
                    if file.len() as u64 == meta.rows {
                        Ok(file)
                    } else {
                        Err(Error::corrupted(
                            &fwd,
                            16,
                            format!("{} rows, the manifest says {}", file.len(), meta.rows),
                        ))
                    }
                });
            let forward = match forward {
                Ok(b) => b,
                Err(e) => {
                    report.push(e, &fwd);
                    missing_rows = true;
                    continue;
                }
            };
            for (v, vs) in schema.vectors.iter().enumerate() {
                if let IndexKind::Hnsw { m, .. } = vs.index {
                    // A deferred graph has no file yet (its rows are scored exactly).
                    let Some(gname) = meta.graph_file(v, vs) else {
                        continue;
                    };
                    report.files += 1;
                    let gpath = path.join(gname);
                    let vectors = forward.vectors(v)?;
                    for (offset, reason) in check_graph(&*storage, &gpath, vs, m, vectors) {
                        report.problems.push(Problem {
                            path: gpath.clone(),
                            offset,
                            reason,
                        });
                    }
                }
            }
            let graphs = schema.vectors.iter().map(|_| None).collect();
            sealed.push(Arc::new(SealedSegment::new(meta.id, forward, graphs)));
        }
        let deleted = match &manifest.deletes {
            Some(file) => {
                report.files += 1;
                let dpath = path.join(&file.name);
                match file
                    .read(&*storage, path)
                    .and_then(|b| DeleteSet::decode(&dpath, &b))
                {
                    Ok(d) => d,
                    Err(e) => {
                        report.push(e, &dpath);
                        return Ok(report);
                    }
                }
            }
            None => DeleteSet::default(),
        };
        if missing_rows {
            return Ok(report);
        }
        // What an open leaves to the first use: a pk live in one row only.
        let mut live = hashbrown::HashMap::new();
        for seg in &sealed {
            let rows = seg.rows()?;
            for (i, &id) in rows.doc_ids.iter().enumerate() {
                if deleted.contains(id) {
                    continue;
                }
                if let Some(other) = live.insert(rows.pk(i), id) {
                    report.problems.push(Problem {
                        path: seg.forward.path().to_path_buf(),
                        offset: 0,
                        reason: format!(
                            "pk {:?} is live in doc ids {other} and {id} (segment {})",
                            rows.pk(i),
                            seg.id
                        ),
                    });
                    return Ok(report);
                }
            }
        }
        drop(live);
        let mut ids = match IdTracker::new(&sealed, deleted, manifest.next_doc_id) {
            Ok(ids) => ids,
            Err((_, reason)) => {
                report.problems.push(Problem {
                    path: path.join(Manifest::file_name(manifest.version)),
                    offset: 24,
                    reason,
                });
                return Ok(report);
            }
        };
        // The WALs an open would replay, replayed in memory as a read-only open does.
        let mut dirs: Vec<u64> = storage
            .list(path)?
            .iter()
            .filter_map(|n| n.parse::<u64>().ok())
            .collect();
        dirs.sort_unstable();
        let mut applied = manifest.applied_seq;
        let mut recovered: Vec<Segment> = Vec::new();
        for id in dirs {
            let wal = wal_path(path, id);
            let replays = id >= manifest.writing_segment
                && !manifest.segments.iter().any(|s| s.id == id)
                && storage.exists(&wal).unwrap_or(true);
            if !replays {
                // A WAL left behind by a crash after its segment's commit: an open removes it,
                // which is right only if the manifest covers every record in it.
                if let Err(e) = super::commit::check_stale_wal(&*storage, path, id, &manifest) {
                    report.files += 1;
                    report.push(e, &wal);
                }
                continue;
            }
            report.files += 1;
            let recover = RecoverOptions {
                policy: manifest.options.flush_policy,
                salvage: false,
                read_only: true,
                applied_seq: applied,
            };
            let elsewhere = Elsewhere {
                sealed: &sealed,
                memory: recovered.iter().collect(),
                schema,
                filter: None,
            };
            match Segment::recover(&storage, path, id, schema, &recover, &mut ids, &elsewhere) {
                Ok(r) => {
                    applied = applied.max(r.segment.last_seq);
                    recovered.push(r.segment);
                }
                Err(e) => {
                    report.push(e, &wal);
                    break;
                }
            }
        }
        Ok(report)
    }
}

/// Every problem of one graph file: what an open checks (a failure there means a rebuild at
/// open), then sanity and recall.
fn check_graph(
    storage: &dyn Storage,
    path: &Path,
    vs: &VectorSchema,
    m: usize,
    vectors: &[f32],
) -> Vec<(u64, String)> {
    let rows = vectors.len() / vs.dimension.max(1);
    let mapped = match storage.map(path) {
        Ok(m) => m,
        Err(e) => return vec![(0, format!("{e} (an open rebuilds it)"))],
    };
    let graph = match FrozenGraph::open(mapped, vs.metric, rows)
        .and_then(|g| graphs_check_norms(&g, vectors, vs.dimension).map(|()| g))
    {
        Ok(g) => g,
        Err((offset, reason)) => return vec![(offset, format!("{reason} (an open rebuilds it)"))],
    };
    let mut problems = graph.sanity(m);
    if let Some(recall) = sampled_recall(&graph, vs, vectors) {
        if recall < MIN_RECALL {
            problems.push((
                0,
                format!(
                    "recall@10 of {RECALL_SAMPLES} sampled rows is {recall:.2}, below {MIN_RECALL}: \
                     the links do not lead to near neighbours"
                ),
            ));
        }
    }
    problems
}

/// Mean recall@10 of the graph for sampled rows used as queries, against an exact scan; `None`
/// when the segment is too small to say or too large to scan.
fn sampled_recall(graph: &FrozenGraph, vs: &VectorSchema, vectors: &[f32]) -> Option<f64> {
    let dim = vs.dimension.max(1);
    let n = vectors.len() / dim;
    let get = |r: usize| &vectors[r * dim..(r + 1) * dim];
    if n <= 20 || n.saturating_mul(dim) > RECALL_BUDGET {
        return None;
    }
    let k = 10;
    let mut total = 0.0;
    for s in 0..RECALL_SAMPLES {
        let q = get(s * n / RECALL_SAMPLES);
        if dot(q, q) == 0.0 {
            continue;
        }
        let scorer = Scorer::new(vs.metric, q);
        let mut exact: Vec<(f32, usize)> = (0..n)
            .map(|r| (scorer.rank_key(scorer.score(get(r))), r))
            .collect();
        exact.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        let kth = exact[..k]
            .iter()
            .map(|e| e.0)
            .fold(f32::NEG_INFINITY, f32::max);
        let found = graph.search(vectors, dim, q, k, 100, None);
        // Ties at the k-th distance count: any row at least as close is a right answer.
        let hits = found
            .iter()
            .filter(|(_, r)| scorer.rank_key(scorer.score(get(*r as usize))) <= kth)
            .count();
        total += hits.min(k) as f64 / k as f64;
    }
    Some(total / RECALL_SAMPLES as f64)
}

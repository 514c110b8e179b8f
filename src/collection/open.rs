//! Opening a collection: leftovers removed, sealed segments loaded, every WAL that still
//! replays recovered in order (the last one takes writes, the others are queued for persist),
//! and the background threads started.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;

use super::background::{self, Job, Workers};
use super::commit::{self, Committed};
use super::manifest::Manifest;
use super::state::{Sealing, State};
use super::writer::{self, Publish, Writer};
use super::{Collection, Inner, OpenOptions};
use crate::error::{Error, Result};
use crate::index::throttle::Throttle;
use crate::schema::CollectionSchema;
use crate::segment::{
    fwd_name, wal_path, DeleteSet, Elsewhere, GraphLoad, IdTracker, RecoverOptions, SealedSegment,
    Segment,
};
use crate::storage::LockGuard;
use crate::wal::RecoveryReport;

/// What opening a collection found and did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenReport {
    /// Recovery of the writing segment's WAL, when there was one.
    pub wal: Option<RecoveryReport>,
    /// Recovery of every WAL that replayed, oldest first: segments rotated out but not yet
    /// persisted when the collection was last closed or crashed, then the writing segment.
    pub wals: Vec<RecoveryReport>,
    /// WAL records applied to the in-memory state.
    pub replayed_records: usize,
    /// Sealed segments loaded.
    pub segments: usize,
    /// Leftovers of interrupted work removed (temp files, stale WALs, orphan segments).
    pub removed: Vec<String>,
    /// How each sealed segment's graphs were loaded: `(segment, vector field, how)`.
    pub graphs: Vec<(u64, String, GraphLoad)>,
    /// Time the whole open took.
    pub duration: Duration,
}

impl Collection {
    pub(super) fn assemble(
        path: &Path,
        lock: LockGuard,
        manifest: Manifest,
        options: &OpenOptions,
        started: Instant,
    ) -> Result<Self> {
        let storage = options.storage.clone();
        check_segment_dirs(&*storage, path)?;
        let schema = Arc::new(manifest.schema.clone());
        let mut report = OpenReport::default();
        if !options.read_only {
            report.removed = commit::remove_leftovers(&*storage, path, &manifest)?;
        }
        let loaded = manifest
            .segments
            .par_iter()
            .map(|meta| SealedSegment::load(&*storage, path, meta, &schema, options.read_only))
            .collect::<Result<Vec<_>>>()?;
        let mut sealed = Vec::with_capacity(loaded.len());
        for (segment, loads) in loaded {
            report.graphs.extend(
                loads
                    .into_iter()
                    .map(|(field, load)| (segment.id, field, load)),
            );
            sealed.push(Arc::new(segment));
        }
        report.segments = sealed.len();
        let warming = Warming::start(&sealed, &manifest.schema);
        let deleted = match &manifest.deletes {
            Some(file) => DeleteSet::decode(&path.join(&file.name), &file.read(&*storage, path)?)?,
            None => DeleteSet::default(),
        };
        let mut ids = IdTracker::new(&sealed, deleted.clone(), manifest.next_doc_id).map_err(
            |(segment, reason)| {
                let file = if segment == u64::MAX {
                    manifest
                        .deletes
                        .as_ref()
                        .map_or_else(String::new, |d| d.name.clone())
                } else {
                    fwd_name(segment)
                };
                Error::corrupted(path.join(file), 24, reason)
            },
        )?;
        let policy = options
            .flush_policy
            .unwrap_or(manifest.options.flush_policy);

        // Every segment at or after the manifest's writing segment that has a WAL replays, in
        // order: the last one takes writes, the others were rotated out and wait for persist.
        let mut dirs: Vec<u64> = storage
            .list(path)?
            .iter()
            .filter_map(|n| n.parse::<u64>().ok())
            .collect();
        dirs.sort_unstable();
        let mut next_segment_id = manifest
            .next_segment_id
            .max(manifest.writing_segment + 1)
            .max(dirs.last().map_or(0, |d| d + 1));
        let mut recovered: Vec<Segment> = Vec::new();
        let mut snapshots: Vec<(DeleteSet, u64)> = Vec::new();
        let mut applied = manifest.applied_seq;
        for id in dirs {
            let replays = id >= manifest.writing_segment
                && !manifest.segments.iter().any(|s| s.id == id)
                && storage.exists(&wal_path(path, id))?;
            if !replays {
                continue;
            }
            let recover = RecoverOptions {
                policy,
                salvage: options.salvage,
                read_only: options.read_only,
                applied_seq: applied,
            };
            let elsewhere = Elsewhere {
                sealed: &sealed,
                memory: recovered.iter().collect(),
                schema: &schema,
                filter: None,
            };
            let r = Segment::recover(&storage, path, id, &schema, &recover, &mut ids, &elsewhere)?;
            applied = applied.max(r.segment.last_seq);
            if let Some(wal) = r.segment.wal() {
                applied = applied.max(wal.next_seq() - 1);
            }
            report.replayed_records += r.replayed;
            report.wals.push(r.report);
            snapshots.push((ids.deleted.clone(), ids.next_doc_id));
            recovered.push(r.segment);
        }
        report.wal = report.wals.last().cloned();
        let mut writing = match recovered.pop() {
            Some(segment) => {
                snapshots.pop();
                segment
            }
            None => {
                let id = manifest.writing_segment;
                next_segment_id = next_segment_id.max(id + 1);
                Segment::new(id, &schema)
            }
        };
        if !options.read_only {
            let room = writer::segment_capacity(&schema, &manifest.options)
                .saturating_sub(writing.rows.len());
            writing.reserve(room);
        }
        let mut successors: Vec<u64> = recovered.iter().skip(1).map(|s| s.id).collect();
        successors.push(writing.id);
        let sealing: Vec<Arc<Sealing>> = recovered
            .into_iter()
            .zip(snapshots)
            .zip(successors)
            .map(|((segment, (deleted, next_doc_id)), successor)| {
                Arc::new(Sealing {
                    segment,
                    deleted,
                    next_doc_id,
                    successor,
                })
            })
            .collect();
        let wal = writing.wal().cloned();
        let state = State {
            schema: schema.clone(),
            sealed,
            sealing: sealing.clone(),
            writing,
            ids,
            visible_seq: applied,
            key_filter: None,
        };
        report.duration = started.elapsed();
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            storage,
            read_only: options.read_only,
            options: manifest.options.clone(),
            policy,
            writer: RwLock::new(Writer {
                wal,
                next_seq: applied + 1,
                closed: false,
            }),
            state: RwLock::new(state),
            publish: Mutex::new(Publish::starting_at(applied + 1)),
            manifest_version: AtomicU64::new(manifest.version),
            committed: Mutex::new(Committed { manifest, deleted }),
            next_segment_id: AtomicU64::new(next_segment_id),
            failure: OnceLock::new(),
            closed: AtomicBool::new(false),
            indexing: background::Indexing::default(),
            throttle: Throttle::default(),
            workers: Mutex::new(None),
            warming: Mutex::new(warming),
            report,
        });
        if !options.read_only {
            let workers = Workers::start(&inner)?;
            // First, so that the persists below extend it.
            workers.submit(Job::BuildKeyFilter)?;
            for s in sealing {
                workers.submit(Job::Persist(s, None))?;
            }
            *inner.workers.lock() = Some(workers);
            inner.indexing.notify();
        }
        Ok(Collection {
            inner,
            lock: Mutex::new(Some(lock)),
        })
    }
}

/// Every entry named like a segment must be a directory of the collection itself: a symlink
/// there would make the open read segment files from elsewhere, rebuild graphs into the other
/// directory, or remove its files as leftovers.
pub(super) fn check_segment_dirs(storage: &dyn crate::storage::Storage, path: &Path) -> Result<()> {
    for name in storage.list(path)? {
        if name.parse::<u64>().is_ok() && !storage.is_real_dir(&path.join(&name))? {
            return Err(Error::corrupted(
                path.join(&name),
                0,
                "a segment directory is a symlink or not a directory",
            ));
        }
    }
    Ok(())
}

/// On a low-priority thread: packs every sealed segment's graphs for the walk, then checks the
/// sections a pk lookup needs (open does neither): the first searches, writes and fetches
/// after an open find the work done, or share it (until a graph is packed, searches walk the
/// mapped files). A failed check stays with its section and is reported by the read that
/// needs it.
pub(super) struct Warming {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Warming {
    fn start(sealed: &[Arc<SealedSegment>], schema: &CollectionSchema) -> Option<Self> {
        if sealed.is_empty() {
            return None;
        }
        let segments = sealed.to_vec();
        let schema = schema.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("stratavec-warm".into())
            .spawn(move || {
                super::background::lower_priority();
                let go_on = || !stopped.load(std::sync::atomic::Ordering::Acquire);
                for s in segments.iter().take_while(|_| go_on()) {
                    s.pack_graphs(&schema);
                }
                for s in segments.iter().take_while(|_| go_on()) {
                    let _ = s.forward.check_keys_now();
                }
            })
            // Without the thread, the first search and lookup do the work themselves.
            .ok()?;
        Some(Warming { stop, thread })
    }

    /// Asks the thread to stop after the segment it is on, and waits for it.
    pub(super) fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let _ = self.thread.join();
    }
}

//! Manifest commits, and the removal of what interrupted work leaves behind.
//!
//! A persist (DESIGN: the crash-safe order), each step durable before the next:
//! 1. the rotated segment's files (`<seg>/0.fwd`, graphs): temp file, fsync, rename, fsync dir;
//! 2. `del.<N+1>` then `manifest.<N+1>` (same atomic replacement) — the commit point;
//! 3. only then the segment's WAL, the old manifest and the old delete file are removed.
//!
//! A crash before step 2 leaves the old manifest; the segment's WAL is still there and replays
//! (every WAL of a segment at or after the manifest's writing segment does, oldest first), and
//! the open removes the orphan files. A crash after step 2 leaves a WAL whose records are all
//! covered by the new manifest: the open removes it without replay. A merge commits the same
//! way, and the inputs' directories are removed after its commit.

use std::path::Path;

use super::manifest::Manifest;
use crate::error::{Error, Result};
use crate::segment::{wal_file_name, wal_id, wal_path, Batch, DeleteSet, FileMeta};
use crate::storage::{atomic_write, Storage};
use crate::wal::Wal;

/// What the newest manifest says, and the deletions its `del.<N>` holds (those of records up
/// to its applied seq). Held by the one background worker while it commits.
#[derive(Debug)]
pub(super) struct Committed {
    pub(super) manifest: Manifest,
    pub(super) deleted: DeleteSet,
}

impl Committed {
    /// Writes `del.<N>` (when anything is deleted) and `manifest.<N>` for `next`
    /// (N = `next.version`), then removes the previous ones. The manifest's rename is the
    /// commit point.
    pub(super) fn commit(
        &mut self,
        storage: &dyn Storage,
        dir: &Path,
        mut next: Manifest,
        deleted: DeleteSet,
    ) -> Result<()> {
        next.deletes = if deleted.len() == 0 {
            None
        } else {
            let name = format!("del.{}", next.version);
            let bytes = deleted.encode()?;
            atomic_write(storage, &dir.join(&name), &bytes)?;
            Some(FileMeta::of(name, &bytes))
        };
        atomic_write(
            storage,
            &dir.join(Manifest::file_name(next.version)),
            &next.encode()?,
        )?;
        let old = std::mem::replace(&mut self.manifest, next);
        self.deleted = deleted;
        storage.remove(&dir.join(Manifest::file_name(old.version)))?;
        if let Some(del) = &old.deletes {
            storage.remove(&dir.join(&del.name))?;
        }
        storage.sync_dir(dir)
    }
}

/// Whether a file left in the directory of segment `seg` is worth keeping although the
/// manifest does not list it: the WAL of a segment that still replays, and the damaged WAL a
/// salvage kept aside for inspection.
fn keeps_wal(file: &str, replays: bool) -> bool {
    let wal = wal_file_name();
    file.strip_prefix(wal.as_str())
        .is_some_and(|rest| (rest.is_empty() && replays) || rest == ".corrupt")
}

/// Removes what interrupted work left: temp files, manifests and delete files other than the
/// current ones, files the manifest does not list, and WALs whose records the manifest
/// covers. WALs of segments at or after the manifest's writing segment are kept: they replay.
/// Returns what it removed.
pub(super) fn remove_leftovers(
    storage: &dyn Storage,
    dir: &Path,
    m: &Manifest,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let current_manifest = Manifest::file_name(m.version);
    let current_del = m.deletes.as_ref().map(|d| d.name.clone());
    for name in storage.list(dir)? {
        let path = dir.join(&name);
        if let Ok(seg) = name.parse::<u64>() {
            let listed = m.segments.iter().find(|s| s.id == seg);
            // A replaying segment without a WAL is what an interrupted merge (or a WAL creation
            // that never became durable) leaves: nothing in it counts.
            let replays = listed.is_none()
                && seg >= m.writing_segment
                && storage.exists(&wal_path(dir, seg))?;
            if listed.is_none() && !replays {
                check_stale_wal(storage, dir, seg, m)?;
                storage.remove_dir_all(&path)?;
                removed.push(name);
                continue;
            }
            for file in storage.list(&path)? {
                let rel = format!("{seg}/{file}");
                let keep = keeps_wal(&file, replays)
                    || listed.is_some_and(|meta| {
                        meta.file.name == rel || meta.graphs.iter().flatten().any(|g| *g == rel)
                    });
                if !keep {
                    if file == wal_file_name() {
                        check_stale_wal(storage, dir, seg, m)?;
                    }
                    storage.remove(&path.join(&file))?;
                    removed.push(rel);
                }
            }
            storage.sync_dir(&path)?;
            continue;
        }
        let stale = name.starts_with(".tmp-")
            || (name.starts_with("manifest.") && name != current_manifest)
            || (name.starts_with("del.") && Some(&name) != current_del.as_ref());
        if stale {
            storage.remove(&path)?;
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        storage.sync_dir(dir)?;
    }
    Ok(removed)
}

/// A WAL that no longer replays must hold only records the manifest covers; anything else
/// means the persist protocol was broken, and deleting it would lose writes.
pub(super) fn check_stale_wal(
    storage: &dyn Storage,
    dir: &Path,
    seg: u64,
    m: &Manifest,
) -> Result<()> {
    let path = wal_path(dir, seg);
    if !storage.exists(&path)? {
        return Ok(());
    }
    // An unreadable stale WAL is removed all the same: by the protocol its records are covered.
    if let Ok(rec) = Wal::<Batch>::read(storage, &path, wal_id(seg)) {
        if let Some(r) = rec.records.iter().find(|r| r.seq > m.applied_seq) {
            return Err(Error::corrupted(
                &path,
                0,
                format!(
                    "holds record seq {} after the manifest's applied seq {}, but segment {seg} no longer replays",
                    r.seq, m.applied_seq
                ),
            ));
        }
    }
    Ok(())
}

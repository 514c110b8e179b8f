//! The persist protocol (DESIGN §5), the segment merge of `optimize`, and the removal of what
//! an interrupted persist leaves behind.
//!
//! Order of a persist, each step durable before the next:
//! 1. the block's rows → `<seg>/0.fwd` (temp file, fsync, rename, fsync of the segment dir);
//! 2. `del.<N+1>` then `manifest.<N+1>` (same atomic replacement) — the commit point;
//! 3. only then the WAL, the old manifest and the old delete file are removed.
//!
//! A crash before step 2 leaves the old manifest, whose writing segment still has its WAL: the
//! open replays it and removes the orphan `.fwd`. A crash after step 2 leaves a WAL whose
//! records are all covered by the new manifest: the open removes it without replay.

use std::path::Path;
use std::sync::Arc;

use super::graphs;
use super::manifest::{FileMeta, Manifest, SegmentMeta};
use super::{wal_id, Collection, Writer, WAL_BLOCK};
use crate::error::{Error, Result};
use crate::index::live::LiveGraph;
use crate::segment::{encode_block, Block, Segment};
use crate::storage::{atomic_write, Storage};
use crate::wal::Wal;

use super::batch::Batch;

fn fwd_name(segment: u64) -> String {
    format!("{segment}/{WAL_BLOCK}.fwd")
}

impl Collection {
    /// Runs the persist protocol; any failure poisons the collection.
    pub(super) fn persist(&self, w: &mut Writer) -> Result<()> {
        self.poison_on_error(w, |this, w| this.persist_inner(w))
    }

    /// Runs `optimize`'s merge; any failure poisons the collection.
    pub(super) fn merge(&self, w: &mut Writer) -> Result<()> {
        self.poison_on_error(w, |this, w| this.merge_inner(w))
    }

    fn poison_on_error(
        &self,
        w: &mut Writer,
        f: impl FnOnce(&Self, &mut Writer) -> Result<()>,
    ) -> Result<()> {
        let result = f(self, w);
        if let Err(e) = &result {
            let cause = match e {
                Error::Io { source, .. } => std::io::Error::new(source.kind(), e.to_string()),
                other => std::io::Error::other(other.to_string()),
            };
            w.failed.get_or_insert_with(|| Arc::new(cause));
        }
        result
    }

    fn persist_inner(&self, w: &mut Writer) -> Result<()> {
        let Some(wal) = w.wal.as_ref() else {
            return Ok(());
        };
        if wal.is_empty() {
            return Ok(());
        }
        let seg = w.manifest.writing_segment;
        let applied_seq = wal.next_seq() - 1;
        let mut next = w.manifest.clone();
        next.version += 1;
        // Deleted rows stay in the persisted block (the graph's row ids are block positions);
        // optimize drops them.
        let (segment, deleted, next_doc_id) = {
            let st = self.state.read();
            let segment = if st.writing.is_empty() {
                None
            } else {
                st.index_new_rows();
                let (meta, segment) =
                    self.seal(seg, st.writing.clone(), |v| st.live_graphs[v].as_ref())?;
                next.segments.push(meta);
                Some(segment)
            };
            (segment, st.deleted.clone(), st.next_doc_id)
        };
        next.writing_segment = next.next_segment_id;
        next.next_segment_id += 1;
        next.next_doc_id = next_doc_id;
        next.applied_seq = applied_seq;
        self.commit(w, next, &deleted)?;

        // Committed: the rows now live in the sealed segment, and the WAL is redundant.
        {
            let mut st = self.state.write();
            if let Some(segment) = segment.clone() {
                st.sealed.push(segment);
            }
            st.writing = Block::new(&self.schema);
            st.live_graphs = graphs::new_live_graphs(&self.schema, 0);
        }
        w.wal = None;
        let seg_dir = self.path.join(seg.to_string());
        if segment.is_some() {
            self.storage.remove(&super::wal_path(&self.path, seg))?;
            self.storage.sync_dir(&seg_dir)?;
        } else {
            self.storage.remove_dir_all(&seg_dir)?;
            self.storage.sync_dir(&self.path)?;
        }
        Ok(())
    }

    /// Writes a sealed segment's files: its forward store, then one frozen graph per HNSW
    /// vector field, taken from `graph(v)` (the live graph at persist, a fresh build at merge).
    fn seal<G: std::ops::Deref<Target = LiveGraph>>(
        &self,
        id: u64,
        block: Block,
        graph: impl Fn(usize) -> Option<G>,
    ) -> Result<(SegmentMeta, Arc<Segment>)> {
        let bytes = encode_block(&block)?;
        let name = fwd_name(id);
        atomic_write(&*self.storage, &self.path.join(&name), &bytes)?;
        let mut frozen = Vec::with_capacity(self.schema.vectors.len());
        let mut names = Vec::with_capacity(self.schema.vectors.len());
        for (v, vs) in self.schema.vectors.iter().enumerate() {
            let Some(live) = graph(v) else {
                frozen.push(None);
                names.push(None);
                continue;
            };
            let gname = graphs::graph_name(id, &vs.name, WAL_BLOCK);
            let g = graphs::freeze(&*self.storage, &self.path, &gname, &live, vs, &block, v)?;
            frozen.push(Some(g));
            names.push(Some(gname));
        }
        let meta = SegmentMeta {
            id,
            block: WAL_BLOCK,
            rows: block.len() as u64,
            file: FileMeta::of(name, &bytes),
            graphs: names,
        };
        Ok((meta, Arc::new(Segment::new(id, block, frozen))))
    }

    /// Writes `del.<N>` and `manifest.<N>` for `next` (N = `next.version`), then removes the
    /// previous ones. The manifest's rename is the commit point.
    fn commit(&self, w: &mut Writer, mut next: Manifest, deleted: &super::DeleteSet) -> Result<()> {
        let storage = &*self.storage;
        let old = w.manifest.clone();
        next.deletes = if deleted.len() == 0 {
            None
        } else {
            let name = format!("del.{}", next.version);
            let bytes = deleted.encode()?;
            atomic_write(storage, &self.path.join(&name), &bytes)?;
            Some(FileMeta::of(name, &bytes))
        };
        atomic_write(
            storage,
            &self.path.join(Manifest::file_name(next.version)),
            &next.encode()?,
        )?;
        w.manifest = next;
        storage.remove(&self.path.join(Manifest::file_name(old.version)))?;
        if let Some(del) = &old.deletes {
            storage.remove(&self.path.join(&del.name))?;
        }
        storage.sync_dir(&self.path)
    }

    /// Rewrites every sealed segment into one, without deleted rows. Called right after a
    /// persist, so the writing segment is empty and its WAL gone.
    fn merge_inner(&self, w: &mut Writer) -> Result<()> {
        let (merged, old_ids, deleted, next_doc_id) = {
            let st = self.state.read();
            let needs = st.sealed.len() > 1
                || st
                    .sealed
                    .iter()
                    .any(|s| s.block.doc_ids.iter().any(|&id| st.deleted.contains(id)));
            if !needs {
                return Ok(());
            }
            let mut merged = Block::new(&self.schema);
            for seg in &st.sealed {
                for i in 0..seg.block.len() {
                    let id = seg.block.doc_ids[i];
                    if !st.deleted.contains(id) {
                        merged.push(id, seg.block.row(i));
                    }
                }
            }
            let old: Vec<u64> = st.sealed.iter().map(|s| s.id).collect();
            (merged, old, st.deleted.clone(), st.next_doc_id)
        };
        let mut next = w.manifest.clone();
        next.version += 1;
        next.segments.clear();
        let id = next.next_segment_id;
        next.next_segment_id += 1;
        next.next_doc_id = next_doc_id;
        let segment = if merged.is_empty() {
            None
        } else {
            let dir = self.path.join(id.to_string());
            self.storage.create_dir_all(&dir)?;
            self.storage.sync_dir(&self.path)?;
            let built: Vec<Option<LiveGraph>> = (0..self.schema.vectors.len())
                .map(|v| graphs::build(&self.schema.vectors[v], &merged, v))
                .collect();
            let (meta, segment) = self.seal(id, merged, |v| built[v].as_ref())?;
            next.segments.push(meta);
            Some(segment)
        };
        self.commit(w, next, &deleted)?;
        self.state.write().sealed = segment.into_iter().collect();
        for old in old_ids {
            self.storage
                .remove_dir_all(&self.path.join(old.to_string()))?;
        }
        self.storage.sync_dir(&self.path)
    }
}

/// Removes what interrupted work left: temp files, manifests and delete files other than the
/// current ones, files of segments the manifest does not list, and WALs of segments that are
/// no longer writing (their records are covered by the manifest). Returns what it removed.
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
            if listed.is_none() && seg != m.writing_segment {
                check_stale_wal(storage, dir, seg, m)?;
                storage.remove_dir_all(&path)?;
                removed.push(name);
                continue;
            }
            for file in storage.list(&path)? {
                let rel = format!("{seg}/{file}");
                let keep = match listed {
                    Some(meta) => {
                        meta.file.name == rel || meta.graphs.iter().flatten().any(|g| *g == rel)
                    }
                    None => file == format!("{WAL_BLOCK}.wal"),
                };
                if !keep {
                    if listed.is_some() && file == format!("{WAL_BLOCK}.wal") {
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

/// A WAL outside the writing segment must hold only records the manifest covers; anything
/// else means the persist protocol was broken, and deleting it would lose writes.
fn check_stale_wal(storage: &dyn Storage, dir: &Path, seg: u64, m: &Manifest) -> Result<()> {
    let path = super::wal_path(dir, seg);
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
                    "holds record seq {} after the manifest's applied seq {}, but segment {seg} is not writing",
                    r.seq, m.applied_seq
                ),
            ));
        }
    }
    Ok(())
}

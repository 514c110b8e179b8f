//! The background worker's jobs: persisting a rotated segment and merging sealed ones, each
//! committed through a new manifest while writes and reads go on.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::background::MergeScope;
use super::state::Sealing;
use super::Inner;
use crate::error::{Error, Result};
use crate::index::throttle::Throttle;
use crate::segment::{
    build_deferred, merge, segment_dir, wal_path, KeyFilter, MergeGraphs, SealedSegment,
};

impl Inner {
    /// Persists a rotated segment: its files, then the manifest that lists it (the commit),
    /// then it replaces the in-memory copy for readers, then its WAL goes.
    pub(super) fn persist(&self, s: &Arc<Sealing>) -> Result<()> {
        let seg = &s.segment;
        // A schema change waits for every persist queued before it: the state's schema is the
        // one the rotated segment was written with.
        let schema = self.state.read().schema.clone();
        let sealed = seg.seal(
            &*self.storage,
            &self.path,
            &schema,
            self.options.min_graph_rows,
        )?;
        {
            let mut c = self.committed.lock();
            let mut next = c.manifest.clone();
            next.version += 1;
            if let Some((meta, _)) = &sealed {
                next.segments.push(meta.clone());
            }
            next.writing_segment = s.successor;
            next.next_segment_id = self.next_segment_id.load(Ordering::SeqCst);
            next.next_doc_id = s.next_doc_id;
            next.applied_seq = next.applied_seq.max(seg.last_seq);
            c.commit(&*self.storage, &self.path, next, s.deleted.clone())?;
            self.manifest_version
                .store(c.manifest.version, Ordering::Release);
        }
        let has_rows = sealed.is_some();
        let added = sealed.map(|(_, segment)| Arc::new(segment));
        {
            let mut st = self.state.write();
            st.sealing.retain(|x| !Arc::ptr_eq(x, s));
            if let Some(segment) = &added {
                st.sealed.push(segment.clone());
            }
        }
        if let Some(segment) = added {
            self.update_key_filter(|filter, all| filter.with(&segment, all));
        }
        let dir = segment_dir(&self.path, seg.id);
        if has_rows {
            self.storage.remove(&wal_path(&self.path, seg.id))?;
            self.storage.sync_dir(&dir)
        } else {
            self.storage.remove_dir_all(&dir)?;
            self.storage.sync_dir(&self.path)
        }
    }

    /// Merges sealed segments into one without the rows deleted as of the manifest's applied
    /// seq. Rows deleted later stay in the merged segment, still marked deleted by doc id, so a
    /// power loss that takes the deleting record cannot leave half a write behind.
    pub(super) fn merge(&self, scope: MergeScope) -> Result<()> {
        let dropped = self.committed.lock().deleted.clone();
        let inputs: Vec<Arc<SealedSegment>> = {
            let st = self.state.read();
            match scope {
                MergeScope::All => {
                    let mut worth = st.sealed.len() > 1;
                    for s in &st.sealed {
                        worth = worth || s.deleted_rows(&dropped)? > 0;
                    }
                    if worth {
                        st.sealed.clone()
                    } else {
                        Vec::new()
                    }
                }
                MergeScope::Policy => match self.options.merge_policy {
                    Some(policy) => super::policy::pick(&st.sealed, &dropped, &policy),
                    None => Vec::new(),
                },
            }
        };
        if inputs.is_empty() {
            return self.finish_merge(scope);
        }
        let id = self.next_segment_id.fetch_add(1, Ordering::SeqCst);
        // Merges and schema changes both run on the background worker, one at a time: the
        // schema cannot change under a merge.
        let schema = self.state.read().schema.clone();
        // An automatic merge leaves the caller's threads a core unless a caller waits for it.
        let throttle = (scope == MergeScope::Policy).then_some(&self.throttle);
        // `optimize` asks for the layout that searches fastest: every graph built.
        let min_graph_rows = match scope {
            MergeScope::All => 0,
            MergeScope::Policy => self.options.min_graph_rows,
        };
        let merged = merge(
            &*self.storage,
            &self.path,
            &schema,
            id,
            &inputs,
            &dropped,
            MergeGraphs {
                min_rows: min_graph_rows,
                throttle,
            },
        )?;
        let is_input = |id: u64| inputs.iter().any(|s| s.id == id);
        {
            let mut c = self.committed.lock();
            let mut next = c.manifest.clone();
            next.version += 1;
            let at = next.segments.iter().position(|m| is_input(m.id));
            next.segments.retain(|m| !is_input(m.id));
            if let Some((meta, _)) = &merged {
                next.segments
                    .insert(at.unwrap_or(0).min(next.segments.len()), meta.clone());
            }
            next.next_segment_id = self.next_segment_id.load(Ordering::SeqCst);
            let deleted = c.deleted.clone();
            c.commit(&*self.storage, &self.path, next, deleted)?;
            self.manifest_version
                .store(c.manifest.version, Ordering::Release);
        }
        let output = merged.as_ref().map(|(meta, _)| meta.id);
        {
            let mut st = self.state.write();
            let at = st.sealed.iter().position(|s| is_input(s.id));
            st.sealed.retain(|s| !is_input(s.id));
            if let Some((_, segment)) = merged {
                let at = at.unwrap_or(0).min(st.sealed.len());
                st.sealed.insert(at, Arc::new(segment));
            }
        }
        let input_ids: Vec<u64> = inputs.iter().map(|s| s.id).collect();
        self.update_key_filter(|filter, _| filter.replaced(&input_ids, output));
        for input in &inputs {
            self.storage
                .remove_dir_all(&segment_dir(&self.path, input.id))?;
        }
        self.storage.sync_dir(&self.path)?;
        self.finish_merge(scope)
    }

    /// Builds the key filter over the sealed segments and installs it. Runs on the worker,
    /// which alone changes the sealed segments: none can be added or merged meanwhile.
    pub(super) fn build_key_filter(&self) {
        let sealed = self.state.read().sealed.clone();
        let filter = KeyFilter::build(&sealed);
        self.state.write().key_filter = Some(Arc::new(filter));
    }

    /// Replaces the key filter by `update` of it (given every sealed segment), once the
    /// sealed segments changed. Until then writes use the previous filter, which is right for
    /// them: it covers no segment whose keys it lacks, and an uncovered segment is asked.
    pub(super) fn update_key_filter(
        &self,
        update: impl FnOnce(&KeyFilter, &[Arc<SealedSegment>]) -> KeyFilter,
    ) {
        let (current, sealed) = {
            let st = self.state.read();
            (st.key_filter.clone(), st.sealed.clone())
        };
        // Not built yet: its build, queued first, covers every segment there is then.
        let Some(current) = current else {
            return;
        };
        let next = update(&current, &sealed);
        self.state.write().key_filter = Some(Arc::new(next));
    }

    /// After `optimize`'s merge, the graphs a single remaining segment still defers.
    fn finish_merge(&self, scope: MergeScope) -> Result<()> {
        match scope {
            MergeScope::All => self.build_deferred_graphs(None, &|| false),
            MergeScope::Policy => Ok(()),
        }
    }

    /// Whether a sealed segment defers a graph (see `graphs::seal`).
    pub(super) fn defers_graphs(&self) -> bool {
        let st = self.state.read();
        st.sealed.iter().any(|s| s.defers_any_graph(&st.schema))
    }

    /// Builds the graphs that sealed segments deferred, a segment at a time, each committed
    /// through a new manifest; before each segment, stops if `interrupted` says so. Readers
    /// keep scoring a segment's rows exactly until its graphs are committed.
    pub(super) fn build_deferred_graphs(
        &self,
        throttle: Option<&Throttle>,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<()> {
        while !interrupted() {
            // Schema changes run on this worker too: the schema cannot change meanwhile.
            let (schema, segment) = {
                let st = self.state.read();
                let found = st
                    .sealed
                    .iter()
                    .find(|s| s.defers_any_graph(&st.schema))
                    .cloned();
                (st.schema.clone(), found)
            };
            let Some(segment) = segment else {
                return Ok(());
            };
            let meta = {
                let c = self.committed.lock();
                c.manifest
                    .segments
                    .iter()
                    .find(|m| m.id == segment.id)
                    .cloned()
            };
            let Some(meta) = meta else {
                return Err(Error::InvariantViolated {
                    reason: format!("sealed segment {} is not in the manifest", segment.id),
                });
            };
            let Some((meta, built)) = build_deferred(
                &*self.storage,
                &self.path,
                &schema,
                &meta,
                &segment,
                throttle,
            )?
            else {
                return Ok(());
            };
            {
                let mut c = self.committed.lock();
                let mut next = c.manifest.clone();
                next.version += 1;
                for m in next.segments.iter_mut().filter(|m| m.id == meta.id) {
                    *m = meta.clone();
                }
                let deleted = c.deleted.clone();
                c.commit(&*self.storage, &self.path, next, deleted)?;
                self.manifest_version
                    .store(c.manifest.version, Ordering::Release);
            }
            let mut st = self.state.write();
            if let Some(s) = st.sealed.iter_mut().find(|s| s.id == meta.id) {
                *s = Arc::new(built);
            }
        }
        Ok(())
    }
}

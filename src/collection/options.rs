//! How a collection is created and opened.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::storage::{StdStorage, Storage};
use crate::wal::FlushPolicy;

/// Options fixed at creation and stored in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredOptions {
    pub(crate) flush_policy: FlushPolicy,
    pub(crate) max_buffer_bytes: u64,
    pub(crate) max_docs_per_segment: u64,
    /// Collections created before automatic merges existed get the default policy.
    #[serde(default = "default_merge_policy")]
    pub(crate) merge_policy: Option<MergePolicy>,
    /// Collections created before graphs were deferred get the default threshold.
    #[serde(default = "default_min_graph_rows")]
    pub(crate) min_graph_rows: u64,
}

impl StoredOptions {
    /// The options `create` accepts; a manifest read from disk must hold such options too, so
    /// that a crafted one cannot make a background thread spin (`Interval(0)`) or a merge
    /// policy divide by zero.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.flush_policy {
            FlushPolicy::EveryDocs(0) => {
                return Err("flush policy every:0 (at least one document)".into())
            }
            FlushPolicy::Interval(d) if d < Duration::from_millis(1) || d > MAX_INTERVAL => {
                return Err(format!(
                    "flush policy interval of {d:?} (1 ms to {MAX_INTERVAL:?})"
                ))
            }
            _ => {}
        }
        if self.max_docs_per_segment == 0 {
            return Err("max_docs_per_segment is 0 (at least 1)".into());
        }
        if let Some(p) = self.merge_policy {
            if p.max_segments < 2 {
                return Err(format!(
                    "merge policy max_segments is {} (at least 2)",
                    p.max_segments
                ));
            }
            if !(p.max_deleted_fraction > 0.0 && p.max_deleted_fraction <= 1.0) {
                return Err(format!(
                    "merge policy max_deleted_fraction is {} (in (0, 1])",
                    p.max_deleted_fraction
                ));
            }
        }
        Ok(())
    }
}

/// The longest flush interval accepted: a day.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

fn default_merge_policy() -> Option<MergePolicy> {
    Some(MergePolicy::default())
}

fn default_min_graph_rows() -> u64 {
    DEFAULT_MIN_GRAPH_ROWS
}

/// A bulk load's segments below this size are left without a graph until writes pause or a
/// merge makes them large: ten 10k imports then build their graph rows once, at the merge,
/// instead of once at each seal and again at the merge.
const DEFAULT_MIN_GRAPH_ROWS: u64 = 50_000;

/// When sealed segments are merged in the background without an explicit
/// [`crate::Collection::optimize`].
///
/// ```
/// use stratavec::{CollectionOptions, MergePolicy};
/// let opts = CollectionOptions::default().merge_policy(Some(MergePolicy { max_segments: 4, ..MergePolicy::default() }));
/// let off = CollectionOptions::default().merge_policy(None);
/// # let _ = (opts, off);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MergePolicy {
    /// When more sealed segments than this exist, the smallest ones are merged into one, so
    /// that about half this many remain (default 8; at least 2).
    pub max_segments: usize,
    /// A segment with at least this fraction of deleted rows is rewritten without them
    /// (default 0.3).
    pub max_deleted_fraction: f32,
}

impl Default for MergePolicy {
    fn default() -> Self {
        MergePolicy {
            max_segments: 8,
            max_deleted_fraction: 0.3,
        }
    }
}

/// Options of [`crate::Collection::create`].
#[derive(Debug, Clone)]
pub struct CollectionOptions {
    /// When writes are fsynced; stored, and the default of later opens.
    pub flush_policy: FlushPolicy,
    /// Persist the writing segment when its rows take about this much memory (64 MiB).
    pub max_buffer_bytes: u64,
    /// Persist the writing segment when it holds this many rows (10,000,000).
    pub max_docs_per_segment: u64,
    /// When to merge sealed segments in the background; `None` turns automatic merges off
    /// (`optimize` still merges). Stored, like the flush policy.
    pub merge_policy: Option<MergePolicy>,
    /// A sealed segment with fewer rows than this (50,000) whose rows arrived faster than the
    /// background indexer placed them gets its HNSW graph later: once writes pause for half a
    /// second, at `optimize`, or when a merge makes it this large. Until then its rows are
    /// scored exactly (recall 1, slower per query). `0` builds every graph at persist. Stored.
    pub min_graph_rows: u64,
    /// Where files live; [`StdStorage`] unless a test simulates power loss.
    pub storage: Arc<dyn Storage>,
}

impl Default for CollectionOptions {
    fn default() -> Self {
        CollectionOptions {
            flush_policy: FlushPolicy::Always,
            max_buffer_bytes: 64 << 20,
            max_docs_per_segment: 10_000_000,
            merge_policy: Some(MergePolicy::default()),
            min_graph_rows: DEFAULT_MIN_GRAPH_ROWS,
            storage: Arc::new(StdStorage),
        }
    }
}

impl CollectionOptions {
    /// Sets the flush policy.
    pub fn flush_policy(mut self, policy: FlushPolicy) -> Self {
        self.flush_policy = policy;
        self
    }

    /// Sets the memory size that triggers an automatic persist.
    pub fn max_buffer_bytes(mut self, bytes: u64) -> Self {
        self.max_buffer_bytes = bytes;
        self
    }

    /// Sets the row count that triggers an automatic persist.
    pub fn max_docs_per_segment(mut self, docs: u64) -> Self {
        self.max_docs_per_segment = docs;
        self
    }

    /// Sets (or, with `None`, turns off) the automatic merge policy.
    pub fn merge_policy(mut self, policy: Option<MergePolicy>) -> Self {
        self.merge_policy = policy;
        self
    }

    /// Sets the size below which a bulk-loaded segment's graph waits for a pause or a merge
    /// (see [`CollectionOptions::min_graph_rows`]).
    ///
    /// ```
    /// use stratavec::CollectionOptions;
    /// // Every persisted segment gets its graph at once.
    /// let eager = CollectionOptions::default().min_graph_rows(0);
    /// assert_eq!(eager.min_graph_rows, 0);
    /// ```
    pub fn min_graph_rows(mut self, rows: u64) -> Self {
        self.min_graph_rows = rows;
        self
    }

    /// Sets the storage.
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }
}

/// Options of [`crate::Collection::open`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Open without write access: many read-only openers may share a collection, and nothing
    /// on disk changes (a crashed writer's WAL is replayed in memory only).
    pub read_only: bool,
    /// Overrides the stored flush policy for this handle.
    pub flush_policy: Option<FlushPolicy>,
    /// Recover the valid prefix of a corrupted WAL (keeping it as `.wal.corrupt`) instead of
    /// failing.
    pub salvage: bool,
    /// Where files live.
    pub storage: Arc<dyn Storage>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            read_only: false,
            flush_policy: None,
            salvage: false,
            storage: Arc::new(StdStorage),
        }
    }
}

impl OpenOptions {
    /// Read-only open.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Overrides the flush policy.
    pub fn flush_policy(mut self, policy: FlushPolicy) -> Self {
        self.flush_policy = Some(policy);
        self
    }

    /// Salvage a corrupted WAL.
    pub fn salvage(mut self, salvage: bool) -> Self {
        self.salvage = salvage;
        self
    }

    /// Sets the storage.
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }
}

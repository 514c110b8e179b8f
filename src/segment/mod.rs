//! Segments, the unit of storage. The writing [`Segment`] owns its WAL (`<seg>/0.wal`), its
//! rows in memory and its live graphs, and [`Segment::recover`] rebuilds it from that WAL.
//! Once rotated out it is immutable and persisted by [`Segment::seal`] into a
//! [`SealedSegment`]: a forward store and frozen graphs, shared by `Arc`. Only the
//! collection-wide delete set ([`IdTracker`]) changes what a sealed segment serves.

mod batch;
mod block;
pub(crate) mod columns;
mod deletes;
mod forward;
mod graphs;
mod ids;
mod keyfilter;
mod keys;
mod meta;
mod persist;
mod postings;
mod recover;
mod rows;
pub(crate) mod rules;
mod sealed;
mod vector;
mod writing;

pub(crate) use batch::{Batch, Patch};
pub(crate) use block::{Block, Projection, Row, VectorColumn};
pub(crate) use columns::ForwardFile;
pub(crate) use deletes::DeleteSet;
pub(crate) use forward::decode_block;
pub(crate) use graphs::build as build_graph;
pub(crate) use graphs::check_norms as graphs_check_norms;
pub use graphs::GraphLoad;
pub(crate) use ids::{Elsewhere, IdTracker};
pub(crate) use keyfilter::KeyFilter;
pub(crate) use keys::hash as key_hash;
pub(crate) use meta::{
    fwd_name, graph_name, segment_dir, wal_file_name, wal_id, wal_path, FileMeta, SegmentMeta,
    BLOCK,
};
pub(crate) use persist::{build_deferred, merge, rewrite, MergeGraphs};
pub(crate) use postings::InvertedIndexes;
pub(crate) use recover::RecoverOptions;
pub(crate) use rows::{Columns, LiveRow, Rows};
pub(crate) use sealed::{open_forward, SealedSegment};
pub(crate) use vector::Vector;
pub(crate) use writing::{ApplyError, Segment};

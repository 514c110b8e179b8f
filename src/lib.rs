//! stratavec: an embedded, durable vector database.
//!
//! A [`Collection`] owns segments; every write call is appended as one record to the writing
//! segment's write-ahead log before it touches any in-memory structure, and is acknowledged
//! only as durable as the chosen [`wal::FlushPolicy`] promises. `Collection::open` replays the
//! WAL after a crash; the WAL is removed once its segment is persisted.
//!
//! See `README.md`, `docs/FORMAT.md` and the example on [`Collection`].
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod collection;
pub mod dataset;
mod doc;
mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod index;
#[cfg(feature = "json")]
pub mod json;
pub mod query;
mod schema;
mod segment;
pub mod storage;
pub mod wal;

pub use collection::{
    Collection, CollectionOptions, CollectionStats, GraphLoad, GraphStats, IndexParam, MergePolicy,
    OpenOptions, OpenReport, Problem, ScanCursor, ScanOptions, ScanPage, SegmentStats,
    VerifyReport,
};
pub use doc::{Doc, DocStatus, Value};
pub use error::{Error, FieldUsage, Result};
pub use index::kernel_name;
pub use query::{FetchOptions, Group, GroupBy, Query, ReRanker, SearchOptions};
pub use schema::{
    CollectionSchema, DataType, FieldSchema, IndexKind, Metric, ScalarIndex, VectorSchema,
    MAX_DIMENSION, MAX_EF_CONSTRUCTION, MAX_FIELDS, MAX_HNSW_M, MAX_NAME_BYTES, MAX_VECTOR_FIELDS,
};

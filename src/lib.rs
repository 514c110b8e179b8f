// The README is the crate's front page, so that its samples are compiled and run as doc tests.
#![doc = include_str!("../README.md")]
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
    Collection, CollectionOptions, CollectionStats, ColumnFill, GraphLoad, GraphStats, IndexParam,
    MergePolicy, OpenOptions, OpenReport, Problem, ScanCursor, ScanOptions, ScanPage, SegmentStats,
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

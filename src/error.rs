//! The one error type of the crate.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A specialised `Result` for stratavec operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in stratavec.
///
/// Errors that concern a file always name it; corruption also names the byte offset, so that an
/// operator can inspect the damage (for a WAL, `stratavec wal dump` shows the same offsets).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the engine was doing (`"fsync"`, `"write"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The error reported by the operating system.
        #[source]
        source: io::Error,
    },

    /// A file's contents failed validation (checksum, magic, structure).
    #[error("corrupted file {path} at offset {offset}: {reason}")]
    Corrupted {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset where the damage starts.
        offset: u64,
        /// What was wrong.
        reason: String,
    },

    /// An earlier write or fsync failed, so every later write is refused.
    ///
    /// After a failed fsync the kernel may already have dropped the dirty pages: retrying would
    /// report success for data that is gone. Reopen the collection to continue from the last
    /// durable state.
    #[error("{path} refuses writes after an earlier failure: {cause}")]
    Poisoned {
        /// The file whose write or fsync failed.
        path: PathBuf,
        /// The original failure.
        cause: Arc<io::Error>,
    },

    /// A record could not be encoded or decoded.
    #[error("serialization: {0}")]
    Serialization(String),

    /// An argument refused for a reason no dedicated variant describes.
    ///
    /// The library itself never returns it: every condition it checks has a variant of its own
    /// below. It stays for code built on the crate (the command-line tool, bindings, an
    /// application's own checks) that reports its own argument errors as an [`Error`].
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A JSON value is not a document, a value of the field's type, or a vector
    /// ([`crate::json`]).
    #[error("invalid JSON: {reason}")]
    InvalidJson {
        /// What is wrong, and where.
        reason: String,
    },

    /// A schema breaks zvec's rules (collection name, field names and counts, dimensions, index
    /// parameters); see [`crate::CollectionSchema::validate`].
    #[error("Invalid schema: {reason}")]
    InvalidSchema {
        /// Which rule, naming the field where there is one.
        reason: String,
    },

    /// A collection option is out of range (see [`crate::CollectionOptions`]).
    #[error("Invalid options: {reason}")]
    InvalidOptions {
        /// Which option and why.
        reason: String,
    },

    /// A flush policy's text form does not parse (see [`crate::wal::FlushPolicy`]).
    #[error("flush policy {text:?}: expected always, every:<N> (N ≥ 1), interval:<MS> (MS ≥ 1) or never")]
    InvalidFlushPolicy {
        /// The text as given.
        text: String,
    },

    /// A write call carries more documents than one batch may hold; nothing was written.
    #[error("Too many docs: {len} exceeds max write batch size of {max}")]
    BatchTooLarge {
        /// Documents in the call.
        len: usize,
        /// The most one call may carry ([`crate::collection::MAX_BATCH`]).
        max: usize,
    },

    /// A write call's documents encode to more than one WAL record may hold; nothing was
    /// written. Split the batch.
    #[error("a WAL record must hold 1..={max} bytes, got {len}")]
    RecordTooLarge {
        /// The encoded size of the record, in bytes.
        len: usize,
        /// The largest record, in bytes.
        max: usize,
    },

    /// A query asked for no results or for more than a query may return.
    #[error("Invalid query: topk[{topk}] must be in 1..={max}")]
    TopkOutOfRange {
        /// The `topk` given.
        topk: usize,
        /// The largest allowed ([`crate::query::MAX_TOPK`]).
        max: usize,
    },

    /// A scan page asked for no documents or for more than a page may hold.
    #[error("scan limit {limit} must be in 1..={max}")]
    ScanLimitOutOfRange {
        /// The `limit` given.
        limit: usize,
        /// The largest allowed ([`crate::query::MAX_TOPK`]).
        max: usize,
    },

    /// A grouped query asked for no groups or for no hits per group.
    #[error("group_count and topk_per_group must be ≥ 1")]
    GroupSizeOutOfRange {
        /// The `group_count` given.
        group_count: usize,
        /// The `topk_per_group` given.
        topk_per_group: usize,
    },

    /// A read, or an `add_column` expression, names a field the schema does not have
    /// ([`FieldUsage`] says where). (A document naming an unknown field is
    /// an [`Error::InvalidDoc`], a filter naming one an [`Error::InvalidFilter`].)
    #[error("{}", .usage.message(.field))]
    UnknownField {
        /// The name as given.
        field: String,
        /// Where the read named it.
        usage: FieldUsage,
    },

    /// A query vector's length is not the dimension of the field it searches. (A document's
    /// vector of the wrong length is an [`Error::InvalidDoc`].)
    #[error("Invalid query: dimension mismatch, expected {expected} but got {got}")]
    DimensionMismatch {
        /// The vector field searched.
        field: String,
        /// The field's dimension.
        expected: usize,
        /// The query vector's length.
        got: usize,
    },

    /// A query vector has a NaN or infinite component, which no distance can rank.
    #[error("Invalid query: the vector has a NaN or infinite component")]
    NonFiniteVector {
        /// The vector field searched.
        field: String,
    },

    /// A query by document id ([`crate::Query::by_id`]) names no live document.
    #[error("Document with id '{pk}' not found")]
    DocNotFound {
        /// The primary key given.
        pk: String,
    },

    /// A query with several vector routes has no reranker to merge them.
    #[error("A reranker is required to merge results from multiple queries")]
    RerankerRequired {
        /// The number of routes.
        routes: usize,
    },

    /// A weighted reranker does not have one weight per vector route.
    #[error("WeightedReRanker has {weights} weights for {routes} queries")]
    RerankerWeightsMismatch {
        /// The number of weights.
        weights: usize,
        /// The number of routes.
        routes: usize,
    },

    /// `delete_by_filter` was given an empty expression, which would delete everything; that
    /// is what [`crate::Collection::delete_all`] is for.
    #[error("delete_by_filter needs a non-empty filter; use delete_all to delete everything")]
    EmptyFilter,

    /// A scan cursor's text form does not parse (see [`crate::ScanCursor::from_token`]).
    #[error("scan cursor '{token}' is not valid")]
    InvalidCursor {
        /// The text as given.
        token: String,
    },

    /// The engine could not apply a write it had validated and logged: its own state contradicts
    /// itself. No input can cause it (every write is checked against the same rules before it is
    /// logged); it means a bug. The collection refuses later writes, and reopening it replays the
    /// log, which reports the record as corruption if the contradiction is in the file.
    #[error("stratavec bug, please report: a logged write could not be applied: {reason}")]
    InvariantViolated {
        /// What contradicted what.
        reason: String,
    },

    /// Another handle holds a conflicting lock on the collection.
    #[error("{0}")]
    Locked(String),

    /// A document of a write violates the schema; nothing of the batch was written.
    #[error("Invalid doc[{pk}]: {reason}")]
    InvalidDoc {
        /// The document's primary key (cut to 32 characters).
        pk: String,
        /// What is wrong, naming the field.
        reason: String,
    },

    /// `open` found no collection at the path.
    #[error("collection path{{{}}} not exist.", .0.display())]
    CollectionNotFound(PathBuf),

    /// `create` found something at the path already.
    #[error("path validate failed: path[{}] exists, create expects a path that does not exist", .0.display())]
    PathExists(PathBuf),

    /// A write was attempted on a collection opened read-only.
    #[error("Collection is opened in read-only mode")]
    ReadOnly,

    /// A filter expression does not parse or does not fit the schema.
    #[error("Invalid filter [{expr}]: {reason}{}", .position.map(|p| format!(" (at character {p})")).unwrap_or_default())]
    InvalidFilter {
        /// The expression as given.
        expr: String,
        /// Character offset of the problem, when known.
        position: Option<usize>,
        /// What is wrong, naming the field where there is one.
        reason: String,
    },

    /// The collection was closed or destroyed.
    #[error("collection is closed")]
    Closed,

    /// A schema change names a field of a type the operation does not take: columns are
    /// added and retyped only when numeric, and vector fields are never dropped or altered
    /// (zvec's wording; the type is shown in zvec's spelling, e.g. `STRING`, `VECTOR_FP32`).
    #[error("this operation requires a numeric field; field[{field}] has type {data_type}")]
    NotNumericField {
        /// The field named.
        field: String,
        /// Its type, in zvec's upper-case spelling.
        data_type: String,
    },

    /// `add_column` of a non-nullable field without a value for the documents already stored
    /// ([`crate::ColumnFill::Null`]; zvec's wording).
    #[error("non-nullable field[{field}] requires an expression when added")]
    DefaultRequired {
        /// The field being added.
        field: String,
    },

    /// The expression of `add_column` ([`crate::ColumnFill::Expression`]) does not parse, or
    /// does not fit the new field: a float result for an integer field, a constant the field's
    /// type cannot hold, a constant division by zero. (A name in it that the schema does not
    /// have is an [`Error::UnknownField`], a field that is not numeric a
    /// [`Error::NotNumericField`].) Nothing was changed.
    #[error("parse expression failed:{reason} in [{expr}]{}", .position.map(|p| format!(" (at character {p})")).unwrap_or_default())]
    InvalidExpression {
        /// The expression as given.
        expr: String,
        /// Character offset of the problem, when known.
        position: Option<usize>,
        /// What is wrong.
        reason: String,
    },

    /// The expression of `add_column` has no value the new field can take for a stored
    /// document: division by zero, a result out of the field's range (integer arithmetic runs
    /// in 128 bits, so only the final value or a 128-bit overflow is refused), or NULL (an
    /// operand is NULL) for a non-nullable field. The change is refused before
    /// anything is written; the schema and every document are as they were.
    #[error("evaluate expression failed:{reason} for field[{field}] of doc[{pk}]")]
    ExpressionFailed {
        /// The field being added.
        field: String,
        /// The primary key of the first document found without a value.
        pk: String,
        /// Why (`divide by zero`, `arithmetic overflow`, ...).
        reason: String,
    },

    /// `alter_column` asked for a type that cannot hold every value of the old one (only
    /// int32 → int64/double, uint32 → uint64/int64/double and float → double are allowed).
    #[error("Invalid schema: field[{field}] cannot change type from {from} to {to} without loss")]
    LossyTypeChange {
        /// The field altered.
        field: String,
        /// Its type.
        from: crate::schema::DataType,
        /// The type asked for.
        to: crate::schema::DataType,
    },
}

/// Where a read named a field the schema does not have ([`Error::UnknownField`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldUsage {
    /// As the vector field of a query route.
    QueryVector,
    /// As the field a grouped query groups by.
    GroupBy,
    /// Among the output fields of a fetch, query or scan.
    Output,
    /// In the expression of `add_column` ([`crate::ColumnFill::Expression`]).
    Expression,
}

impl FieldUsage {
    /// zvec's wording for each place.
    fn message(self, field: &str) -> String {
        match self {
            FieldUsage::QueryVector => {
                format!("Invalid query: vector field[{field}] not found in collection schema")
            }
            FieldUsage::GroupBy => format!("group_by field {field} not defined in schema"),
            FieldUsage::Output => format!("output field {field} not defined in schema"),
            FieldUsage::Expression => {
                format!("parse expression failed:Column not found in schema: {field}")
            }
        }
    }
}

impl Error {
    /// Whether the call's own arguments were refused: nothing was written, the handle is
    /// unaffected, and the same call fails again until the arguments change. Everything else
    /// concerns the files, the environment or the state of the handle.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(
            self,
            Error::InvalidArgument(_)
                | Error::InvalidJson { .. }
                | Error::InvalidSchema { .. }
                | Error::InvalidOptions { .. }
                | Error::InvalidFlushPolicy { .. }
                | Error::BatchTooLarge { .. }
                | Error::RecordTooLarge { .. }
                | Error::TopkOutOfRange { .. }
                | Error::ScanLimitOutOfRange { .. }
                | Error::GroupSizeOutOfRange { .. }
                | Error::UnknownField { .. }
                | Error::DimensionMismatch { .. }
                | Error::NonFiniteVector { .. }
                | Error::DocNotFound { .. }
                | Error::RerankerRequired { .. }
                | Error::RerankerWeightsMismatch { .. }
                | Error::EmptyFilter
                | Error::InvalidCursor { .. }
                | Error::InvalidDoc { .. }
                | Error::InvalidFilter { .. }
                | Error::NotNumericField { .. }
                | Error::DefaultRequired { .. }
                | Error::LossyTypeChange { .. }
                | Error::InvalidExpression { .. }
                | Error::ExpressionFailed { .. }
        )
    }

    /// Wraps an [`io::Error`] with the operation and the path it concerned.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Builds a [`Error::Corrupted`].
    pub fn corrupted(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupted {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

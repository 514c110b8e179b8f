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

    /// The caller passed an argument that cannot be accepted.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

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
}

impl Error {
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

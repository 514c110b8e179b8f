//! stratavec: an embedded, durable vector database.
//!
//! Every write is appended to a per-segment write-ahead log before it touches any index, and
//! is acknowledged only as durable as the chosen [`wal::FlushPolicy`] promises. See
//! `README.md` and `docs/FORMAT.md`.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
pub mod storage;
pub mod wal;

pub use error::{Error, Result};

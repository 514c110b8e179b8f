//! Every file operation the engine performs, behind one small trait.
//!
//! The engine never calls `std::fs` directly: it goes through a [`Storage`], so that tests can
//! swap in `SimStorage` (feature `sim`), which models what survives a power loss (only what
//! was made durable by [`StorageFile::sync`] and [`Storage::sync_dir`]) and injects I/O errors
//! at chosen points.

mod atomic;
pub mod envelope;
mod mapped;
#[cfg(feature = "sim")]
mod sim;
mod std_fs;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;

pub use atomic::atomic_write;
pub use mapped::Mapped;
#[cfg(feature = "sim")]
pub use sim::{Counts, Fault, FaultKind, FaultOp, SimStorage};
pub use std_fs::StdStorage;

/// A shared handle to an open file.
pub type FileRef = Arc<dyn StorageFile>;

/// Whether a lock excludes everybody else or only exclusive holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Many shared holders may coexist (read-only openers).
    Shared,
    /// One holder and nobody else (the read-write opener).
    Exclusive,
}

/// A held lock; dropping it releases the lock.
pub struct LockGuard {
    _held: Box<dyn Send + Sync>,
}

impl LockGuard {
    pub(crate) fn new(held: impl Send + Sync + 'static) -> Self {
        LockGuard {
            _held: Box::new(held),
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

/// The directory operations of the engine.
///
/// Paths are used as given; implementations report failures as [`crate::Error::Io`] naming the
/// path. Durability follows POSIX: file contents are durable after [`StorageFile::sync`], a new,
/// renamed or removed directory entry after [`Storage::sync_dir`] on its directory.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates `path` (truncating an existing file) and opens it for appending and reading.
    fn create(&self, path: &Path) -> Result<FileRef>;
    /// Opens an existing file for appending and reading.
    fn open(&self, path: &Path) -> Result<FileRef>;
    /// Creates a new file with a unique temporary name in `dir`; it is left in place until it
    /// is renamed or removed.
    fn create_temp(&self, dir: &Path) -> Result<(PathBuf, FileRef)>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> Result<Vec<u8>>;
    /// Reads a file without its trailing zero bytes: returns the bytes up to the last non-zero
    /// one and how many zero bytes follow. A zero-filled tail (what a crash can leave, up to a
    /// sparse file of any size) is thus never held in memory.
    fn read_trimmed(&self, path: &Path) -> Result<(Vec<u8>, u64)> {
        let mut bytes = self.read(path)?;
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let zeros = (bytes.len() - end) as u64;
        bytes.truncate(end);
        Ok((bytes, zeros))
    }
    /// The length of a file, without reading it (so a size that cannot be right is refused
    /// before any allocation).
    fn size(&self, path: &Path) -> Result<u64> {
        self.read(path).map(|b| b.len() as u64)
    }
    /// Maps a whole file read-only. The engine maps only immutable files.
    fn map(&self, path: &Path) -> Result<Mapped> {
        self.read(path).map(|b| Mapped::from_bytes(&b))
    }
    /// Whether `path` is a directory itself, not a symlink to one (nor a file): a collection
    /// never creates symlinks, and following one would read, rebuild into or clean up a
    /// directory outside the collection.
    fn is_real_dir(&self, path: &Path) -> Result<bool> {
        self.exists(path)
    }
    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> Result<bool>;
    /// Atomically renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> Result<()>;
    /// Lists the names of the entries of `dir`, sorted.
    fn list(&self, dir: &Path) -> Result<Vec<String>>;
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> Result<()>;
    /// Removes a directory and everything below it.
    fn remove_dir_all(&self, dir: &Path) -> Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> Result<()>;
    /// Takes a lock on the file at `path` (creating it) without waiting.
    ///
    /// Fails with [`crate::Error::Locked`] when a conflicting lock is held, in this process or
    /// another one.
    fn lock(&self, path: &Path, mode: LockMode) -> Result<LockGuard>;
}

/// An open file. All methods take `&self` so that one thread can fsync while another appends.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// The path the file was opened under.
    fn path(&self) -> &Path;
    /// Appends `buf` at the end of the file with one write.
    fn append(&self, buf: &[u8]) -> Result<()>;
    /// Fills `buf` from `offset`; fails if the file is shorter.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// The current length in bytes.
    fn len(&self) -> Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> Result<()>;
    /// Makes the file's contents durable (fdatasync).
    fn sync(&self) -> Result<()>;
}

/// The directory part of `path`, or `.` for a bare file name.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The error for a lock held by somebody else: zvec's words, then who holds it, since "can't
/// lock" alone reads like a permission problem.
pub(crate) fn lock_conflict(path: &Path, mode: LockMode) -> crate::Error {
    let (kind, holder) = match mode {
        LockMode::Exclusive => ("read-write", "has the collection open"),
        LockMode::Shared => ("read-only", "has the collection open read-write"),
    };
    crate::Error::Locked(format!(
        "Can't lock {kind} collection: {}: another process (or another handle in this process) \
         {holder}; close it first",
        path.display()
    ))
}

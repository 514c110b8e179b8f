//! Replacing a file so that a crash leaves either the old or the new contents.

use std::path::Path;

use super::{parent_dir, Storage};
use crate::error::Result;

/// Writes `contents` to `path` atomically and durably.
///
/// The bytes go to a temporary file in the same directory, which is fsynced, renamed over
/// `path`, and the directory is fsynced, so that after a crash `path` holds either its old
/// contents or all of `contents`. A temporary file left by a crash starts with `.tmp-`; openers
/// remove such files.
///
/// ```
/// use stratavec::storage::{atomic_write, Storage, StdStorage};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("manifest.1");
/// atomic_write(&StdStorage, &path, b"hello").unwrap();
/// assert_eq!(StdStorage.read(&path).unwrap(), b"hello");
/// ```
pub fn atomic_write(storage: &dyn Storage, path: &Path, contents: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let (temp_path, file) = storage.create_temp(dir)?;
    let written = file
        .append(contents)
        .and_then(|()| file.sync())
        .and_then(|()| storage.rename(&temp_path, path));
    if let Err(e) = written {
        // Best effort: a leftover temp file is also removed by the next open.
        let _ = storage.remove(&temp_path);
        return Err(e);
    }
    storage.sync_dir(dir)
}

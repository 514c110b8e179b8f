//! The real storage: `std::fs`.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{FileRef, LockGuard, LockMode, Storage, StorageFile};
use crate::error::{Error, Result};

/// [`Storage`] over the operating system's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdStorage;

#[derive(Debug)]
struct StdFile {
    path: PathBuf,
    file: File,
}

impl StdFile {
    fn wrap(path: &Path, file: File) -> FileRef {
        Arc::new(StdFile {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl Storage for StdStorage {
    fn create(&self, path: &Path) -> Result<FileRef> {
        // std refuses O_APPEND with O_TRUNC, so truncate first and reopen for appending: every
        // write must land at the end, also after `set_len` shrank the file.
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io("create", path, e))?;
        self.open(path)
    }

    fn open(&self, path: &Path) -> Result<FileRef> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        Ok(StdFile::wrap(path, file))
    }

    fn create_temp(&self, dir: &Path) -> Result<(PathBuf, FileRef)> {
        let (file, path) = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .and_then(|t| t.keep().map_err(|e| e.error))
            .map_err(|e| Error::io("create temp file in", dir, e))?;
        let handle = StdFile::wrap(&path, file);
        Ok((path, handle))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        fs::read(path).map_err(|e| Error::io("read", path, e))
    }

    fn map(&self, path: &Path) -> Result<super::Mapped> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        if len == 0 {
            return Ok(super::Mapped::from_bytes(&[]));
        }
        // SAFETY: the engine maps only files it never modifies after their atomic creation
        // (frozen graphs); a file replaced later is a new inode, so the mapping stays valid.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io("mmap", path, e))?;
        Ok(super::Mapped::from_mmap(map))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        path.try_exists().map_err(|e| Error::io("stat", path, e))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(|e| Error::io("remove", path, e))
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", dir, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))
    }

    fn remove_dir_all(&self, dir: &Path) -> Result<()> {
        fs::remove_dir_all(dir).map_err(|e| Error::io("remove directory", dir, e))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync directory", dir, e))
    }

    fn lock(&self, path: &Path, mode: LockMode) -> Result<LockGuard> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open lock file", path, e))?;
        let attempt = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match attempt {
            Ok(()) => Ok(LockGuard::new(file)),
            Err(TryLockError::WouldBlock) => Err(super::lock_conflict(path, mode)),
            Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
        }
    }
}

impl StorageFile for StdFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, buf: &[u8]) -> Result<()> {
        (&self.file)
            .write_all(buf)
            .map_err(|e| Error::io("write", &self.path, e))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io("read", &self.path, e))
    }

    fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io("stat", &self.path, e))
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io("truncate", &self.path, e))
    }

    fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("fsync", &self.path, e))
    }
}

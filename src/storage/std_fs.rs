//! The real storage: `std::fs`.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
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

/// Opens a collection file, refusing anything but a regular file.
///
/// A collection directory is input: a FIFO in place of a file would block `open(2)` (and every
/// read) forever, a device could be endless, and a symlink could lead outside the collection.
/// `O_NONBLOCK` makes opening a FIFO return at once and `O_NOFOLLOW` refuses a symlink; the
/// type check then refuses whatever is not a regular file. (`O_NONBLOCK` has no effect on
/// regular files.)
fn open_regular(path: &Path, options: &mut OpenOptions, op: &'static str) -> Result<File> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(op, path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::io(
            op,
            path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (a FIFO, device, socket or directory stands in its place)",
            ),
        ));
    }
    Ok(file)
}

/// How much of a zero tail [`StdStorage::read_trimmed`] holds in memory at once.
const TRIM_CHUNK: usize = 1 << 20;

/// The end of the last data extent of `file` (its length when the file system cannot say):
/// everything after it is a hole, which reads as zeros.
fn data_end(file: &File, len: u64) -> u64 {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let mut pos: libc::off_t = 0;
    let mut end: u64 = 0;
    loop {
        // SAFETY: lseek on a file descriptor this function borrows; it changes only the
        // descriptor's offset, which no other code uses (reads are positioned).
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            // ENXIO: no data at or after `pos`. Anything else: no hole support, be exact.
            let nxio = io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO);
            return if nxio { end } else { len };
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        // An error, or data running to the end of the file: nothing to skip.
        if hole < 0 || hole as u64 >= len || hole <= pos {
            return len;
        }
        end = hole as u64;
        pos = hole;
    }
}

impl Storage for StdStorage {
    fn create(&self, path: &Path) -> Result<FileRef> {
        // std refuses O_APPEND with O_TRUNC, so truncate first and reopen for appending: every
        // write must land at the end, also after `set_len` shrank the file.
        open_regular(
            path,
            OpenOptions::new().write(true).create(true).truncate(true),
            "create",
        )?;
        self.open(path)
    }

    fn open(&self, path: &Path) -> Result<FileRef> {
        let file = open_regular(path, OpenOptions::new().read(true).append(true), "open")?;
        Ok(StdFile::wrap(path, file))
    }

    fn size(&self, path: &Path) -> Result<u64> {
        let file = open_regular(path, OpenOptions::new().read(true), "open")?;
        file.metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io("stat", path, e))
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
        let mut file = open_regular(path, OpenOptions::new().read(true), "open")?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        // Sized by the file's real length (never by a number inside it), and read to the end
        // in case it grew meanwhile.
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", path, e))?;
        Ok(bytes)
    }

    fn read_trimmed(&self, path: &Path) -> Result<(Vec<u8>, u64)> {
        let file = open_regular(path, OpenOptions::new().read(true), "open")?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        // Holes read as zeros: skip to the end of the last data extent first (SEEK_DATA and
        // SEEK_HOLE), then walk back over zero bytes in bounded chunks.
        let mut end = data_end(&file, len);
        let mut chunk = vec![0u8; TRIM_CHUNK];
        while end > 0 {
            let n = end.min(TRIM_CHUNK as u64) as usize;
            let buf = &mut chunk[..n];
            file.read_exact_at(buf, end - n as u64)
                .map_err(|e| Error::io("read", path, e))?;
            match buf.iter().rposition(|&b| b != 0) {
                Some(i) => {
                    end = end - n as u64 + i as u64 + 1;
                    break;
                }
                None => end -= n as u64,
            }
        }
        drop(chunk);
        let mut bytes = vec![0u8; usize::try_from(end).unwrap_or(0)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| Error::io("read", path, e))?;
        Ok((bytes, len - end))
    }

    fn map(&self, path: &Path) -> Result<super::Mapped> {
        let file = open_regular(path, OpenOptions::new().read(true), "open")?;
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

    fn is_real_dir(&self, path: &Path) -> Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(m) => Ok(m.file_type().is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("stat", path, e)),
        }
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
        let file = open_regular(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            "open lock file",
        )?;
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

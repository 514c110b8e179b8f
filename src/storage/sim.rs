//! A file system in memory that forgets, on a simulated power loss, whatever was not durable.
//!
//! Each file keeps two images: the live bytes every read sees, and the durable bytes as of its
//! last [`StorageFile::sync`]. Each directory keeps its live entries and the durable entries as
//! of its last [`Storage::sync_dir`]. [`SimStorage::crash`] throws the live state away: files
//! whose entry was never made durable vanish, renames and removals not followed by a directory
//! fsync are undone, and every file falls back to its durable bytes. Directories themselves are
//! durable as soon as they are created, which is the one simplification of the model.
//!
//! Faults: [`SimStorage::inject`] makes the N-th write, fsync or mutating operation from now
//! fail with EIO or ENOSPC, or cut the power (that operation and every later one fail until
//! [`SimStorage::crash`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{lock_conflict, FileRef, LockGuard, LockMode, Storage, StorageFile};
use crate::error::{Error, Result};

/// The class of operations a [`Fault`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// Appends and truncations of file contents.
    Write,
    /// File fsyncs and directory fsyncs.
    Sync,
    /// Every operation that changes state: create, write, truncate, fsync, rename, remove.
    Mutation,
}

/// What happens when a [`Fault`] fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// That one operation fails with EIO and has no effect.
    Eio,
    /// That one operation fails with ENOSPC and has no effect.
    Enospc,
    /// The power goes off: that operation and every later one fail until [`SimStorage::crash`].
    PowerCut,
}

/// A planned failure: the `nth` (1-based) operation of class `op` from now fails as `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Which operations are counted.
    pub op: FaultOp,
    /// Which one fails, counted from the moment of injection, starting at 1.
    pub nth: u64,
    /// How it fails.
    pub kind: FaultKind,
}

#[derive(Debug, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Smallest offset changed since the last sync: `durable[..dirty_from]` equals `live`'s.
    dirty_from: usize,
}

#[derive(Debug, Default, Clone)]
struct Dir {
    live: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    inodes: HashMap<u64, Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    next_id: u64,
    locks: HashMap<PathBuf, (usize, bool)>,
    counts: Counts,
    fault: Option<(Fault, u64)>,
    powered_off: bool,
}

/// How many operations of each class ran since the storage was made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Appends and truncations.
    pub writes: u64,
    /// File and directory fsyncs.
    pub syncs: u64,
    /// Every state-changing operation.
    pub mutations: u64,
}

impl Counts {
    fn of(&self, op: FaultOp) -> u64 {
        match op {
            FaultOp::Write => self.writes,
            FaultOp::Sync => self.syncs,
            FaultOp::Mutation => self.mutations,
        }
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let path = normalize(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string_lossy()
        .into_owned();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((dir, name))
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

impl State {
    /// Counts one operation and fires the planned fault if this is the one.
    fn admit(&mut self, op: Option<FaultOp>) -> io::Result<()> {
        if self.powered_off {
            return Err(io::Error::other("simulated power loss: the machine is off"));
        }
        let Some(op) = op else { return Ok(()) };
        self.counts.mutations += 1;
        match op {
            FaultOp::Write => self.counts.writes += 1,
            FaultOp::Sync => self.counts.syncs += 1,
            FaultOp::Mutation => {}
        }
        if let Some((fault, target)) = self.fault {
            if self.counts.of(fault.op) == target {
                self.fault = None;
                return Err(match fault.kind {
                    FaultKind::Eio => io::Error::from_raw_os_error(EIO),
                    FaultKind::Enospc => io::Error::from_raw_os_error(ENOSPC),
                    FaultKind::PowerCut => {
                        self.powered_off = true;
                        io::Error::other("simulated power loss")
                    }
                });
            }
        }
        Ok(())
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(not_found)
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.dirs
            .get(&dir)
            .and_then(|d| d.live.get(&name).copied())
            .ok_or_else(not_found)
    }

    fn new_inode(&mut self) -> u64 {
        self.next_id += 1;
        self.inodes.insert(self.next_id, Inode::default());
        self.next_id
    }

    fn inode(&mut self, id: u64, generation: u64) -> io::Result<&mut Inode> {
        if generation != self.generation {
            return Err(io::Error::other(
                "stale file handle from before a simulated crash",
            ));
        }
        self.inodes.get_mut(&id).ok_or_else(not_found)
    }
}

/// The power-loss simulator: a [`Storage`] held in memory. Clones share the same file system.
#[derive(Default)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
    /// A clone belongs to the "process" that took it: after a [`SimStorage::crash`] every
    /// operation through it fails, as a killed process does nothing more. Without this, the
    /// background threads of a collection leaked with `mem::forget` (the tests' kill) could
    /// go on renaming and removing files after the simulated power loss. `None` for the
    /// handle made by [`SimStorage::new`], which the test itself keeps.
    fence: Option<u64>,
}

impl Clone for SimStorage {
    /// A handle for one "process": it works until the next crash.
    fn clone(&self) -> Self {
        let generation = self.state.lock().generation;
        SimStorage {
            state: self.state.clone(),
            fence: Some(generation),
        }
    }
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimStorage").finish_non_exhaustive()
    }
}

impl SimStorage {
    /// An empty file system with a root directory `/`.
    pub fn new() -> Self {
        let sim = SimStorage::default();
        sim.state
            .lock()
            .dirs
            .insert(PathBuf::from("/"), Dir::default());
        sim
    }

    /// Plans a fault; it replaces any fault planned before.
    pub fn inject(&self, fault: Fault) {
        let mut st = self.state.lock();
        let target = st.counts.of(fault.op) + fault.nth;
        st.fault = Some((fault, target));
    }

    /// How many operations ran so far (to enumerate crash points of a workload).
    pub fn counts(&self) -> Counts {
        self.state.lock().counts
    }

    /// Whether a [`FaultKind::PowerCut`] fired and [`SimStorage::crash`] was not called yet.
    pub fn is_powered_off(&self) -> bool {
        self.state.lock().powered_off
    }

    /// Simulates a power loss: drops everything not made durable, then powers back on.
    ///
    /// Handles opened before the crash fail from now on; locks are released.
    pub fn crash(&self) {
        self.crash_inner(None);
    }

    /// Like [`SimStorage::crash`], but a file that was only appended to since its last fsync
    /// keeps a random prefix of those appends, as a disk that wrote part of its cache would.
    /// `seed` makes the choice reproducible.
    pub fn crash_torn(&self, seed: u64) {
        self.crash_inner(Some(seed));
    }

    fn crash_inner(&self, seed: Option<u64>) {
        let mut st = self.state.lock();
        st.powered_off = false;
        st.fault = None;
        st.generation += 1;
        st.locks.clear();
        for dir in st.dirs.values_mut() {
            dir.live = dir.durable.clone();
        }
        let referenced: std::collections::HashSet<u64> = st
            .dirs
            .values()
            .flat_map(|d| d.durable.values().copied())
            .collect();
        st.inodes.retain(|id, _| referenced.contains(id));
        let mut rng = seed.map(|s| s ^ 0x9E37_79B9_7F4A_7C15);
        let mut ids: Vec<u64> = st.inodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(inode) = st.inodes.get_mut(&id) else {
                continue;
            };
            let mut image = inode.durable.clone();
            if let Some(r) = rng.as_mut() {
                let appended_only = inode.dirty_from == inode.durable.len();
                if appended_only && inode.live.len() > image.len() {
                    let extra = inode.live.len() - image.len();
                    let keep = (xorshift(r) % (extra as u64 + 1)) as usize;
                    image.extend_from_slice(&inode.live[inode.dirty_from..inode.dirty_from + keep]);
                }
            }
            // What survived the crash is on the disk now: durable.
            inode.durable = image.clone();
            inode.dirty_from = image.len();
            inode.live = image;
        }
    }

    fn file(&self, path: &Path, id: u64) -> FileRef {
        let generation = self.state.lock().generation;
        Arc::new(SimFile {
            state: self.state.clone(),
            id,
            generation,
            path: path.to_path_buf(),
        })
    }

    fn with<T>(
        &self,
        op: &'static str,
        path: &Path,
        class: Option<FaultOp>,
        f: impl FnOnce(&mut State) -> io::Result<T>,
    ) -> Result<T> {
        let mut st = self.state.lock();
        if self.fence.is_some_and(|g| g != st.generation) {
            let gone =
                io::Error::other("simulated crash: the process that held this handle is gone");
            return Err(Error::io(op, path, gone));
        }
        st.admit(class)
            .and_then(|()| f(&mut st))
            .map_err(|e| Error::io(op, path, e))
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

impl Storage for SimStorage {
    fn create(&self, path: &Path) -> Result<FileRef> {
        let id = self.with("create", path, Some(FaultOp::Mutation), |st| {
            let (dir, name) = split(path)?;
            st.dir_mut(&dir)?;
            if let Some(&id) = st.dirs.get(&dir).and_then(|d| d.live.get(&name)) {
                if let Some(inode) = st.inodes.get_mut(&id) {
                    inode.live.clear();
                    inode.dirty_from = 0;
                }
                return Ok(id);
            }
            let id = st.new_inode();
            st.dir_mut(&dir)?.live.insert(name, id);
            Ok(id)
        })?;
        Ok(self.file(path, id))
    }

    fn open(&self, path: &Path) -> Result<FileRef> {
        let id = self.with("open", path, None, |st| st.lookup(path))?;
        Ok(self.file(path, id))
    }

    fn create_temp(&self, dir: &Path) -> Result<(PathBuf, FileRef)> {
        let name = {
            let mut st = self.state.lock();
            st.next_id += 1;
            format!(".tmp-sim{}", st.next_id)
        };
        let path = dir.join(name);
        let file = self.create(&path)?;
        Ok((path, file))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.with("read", path, None, |st| {
            let id = st.lookup(path)?;
            let generation = st.generation;
            Ok(st.inode(id, generation)?.live.clone())
        })
    }

    fn size(&self, path: &Path) -> Result<u64> {
        self.with("stat", path, None, |st| {
            let id = st.lookup(path)?;
            let generation = st.generation;
            Ok(st.inode(id, generation)?.live.len() as u64)
        })
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        self.with("stat", path, None, |st| {
            Ok(st.dirs.contains_key(&normalize(path)) || st.lookup(path).is_ok())
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.with("rename", from, Some(FaultOp::Mutation), |st| {
            let (from_dir, from_name) = split(from)?;
            let (to_dir, to_name) = split(to)?;
            st.dir_mut(&to_dir)?;
            let id = st
                .dir_mut(&from_dir)?
                .live
                .remove(&from_name)
                .ok_or_else(not_found)?;
            st.dir_mut(&to_dir)?.live.insert(to_name, id);
            Ok(())
        })
    }

    fn remove(&self, path: &Path) -> Result<()> {
        self.with("remove", path, Some(FaultOp::Mutation), |st| {
            let (dir, name) = split(path)?;
            st.dir_mut(&dir)?
                .live
                .remove(&name)
                .map(|_| ())
                .ok_or_else(not_found)
        })
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        self.with("list", dir, None, |st| {
            let dir = normalize(dir);
            let mut names: Vec<String> = st
                .dirs
                .get(&dir)
                .ok_or_else(not_found)?
                .live
                .keys()
                .cloned()
                .collect();
            for sub in st.dirs.keys() {
                if sub.parent() == Some(dir.as_path()) && *sub != dir {
                    if let Some(n) = sub.file_name() {
                        names.push(n.to_string_lossy().into_owned());
                    }
                }
            }
            names.sort();
            Ok(names)
        })
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.with("create directory", dir, Some(FaultOp::Mutation), |st| {
            let mut cur = PathBuf::new();
            for c in normalize(dir).components() {
                cur.push(c);
                st.dirs.entry(cur.clone()).or_default();
            }
            Ok(())
        })
    }

    fn remove_dir_all(&self, dir: &Path) -> Result<()> {
        self.with("remove directory", dir, Some(FaultOp::Mutation), |st| {
            let dir = normalize(dir);
            if !st.dirs.contains_key(&dir) {
                return Err(not_found());
            }
            st.dirs.retain(|d, _| !d.starts_with(&dir));
            Ok(())
        })
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.with("fsync directory", dir, Some(FaultOp::Sync), |st| {
            let d = st.dir_mut(&normalize(dir))?;
            d.durable = d.live.clone();
            Ok(())
        })
    }

    fn lock(&self, path: &Path, mode: LockMode) -> Result<LockGuard> {
        let key = normalize(path);
        {
            let mut st = self.state.lock();
            if self.fence.is_some_and(|g| g != st.generation) {
                let gone = io::Error::other("simulated crash: the process is gone");
                return Err(Error::io("lock", path, gone));
            }
            let entry = st.locks.entry(key.clone()).or_default();
            let conflict = match mode {
                LockMode::Shared => entry.1,
                LockMode::Exclusive => entry.1 || entry.0 > 0,
            };
            if conflict {
                return Err(lock_conflict(path, mode));
            }
            match mode {
                LockMode::Shared => entry.0 += 1,
                LockMode::Exclusive => entry.1 = true,
            }
        }
        let generation = self.state.lock().generation;
        Ok(LockGuard::new(SimLock {
            state: self.state.clone(),
            key,
            mode,
            generation,
        }))
    }
}

struct SimLock {
    state: Arc<Mutex<State>>,
    key: PathBuf,
    mode: LockMode,
    generation: u64,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = self.state.lock();
        if st.generation != self.generation {
            return;
        }
        if let Some(entry) = st.locks.get_mut(&self.key) {
            match self.mode {
                LockMode::Shared => entry.0 = entry.0.saturating_sub(1),
                LockMode::Exclusive => entry.1 = false,
            }
        }
    }
}

struct SimFile {
    state: Arc<Mutex<State>>,
    id: u64,
    generation: u64,
    path: PathBuf,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("path", &self.path).finish()
    }
}

impl SimFile {
    fn with<T>(
        &self,
        op: &'static str,
        class: Option<FaultOp>,
        f: impl FnOnce(&mut Inode) -> io::Result<T>,
    ) -> Result<T> {
        let mut st = self.state.lock();
        st.admit(class)
            .and_then(|()| st.inode(self.id, self.generation))
            .and_then(f)
            .map_err(|e| Error::io(op, &self.path, e))
    }
}

impl StorageFile for SimFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, buf: &[u8]) -> Result<()> {
        self.with("write", Some(FaultOp::Write), |inode| {
            inode.dirty_from = inode.dirty_from.min(inode.live.len());
            inode.live.extend_from_slice(buf);
            Ok(())
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.with("read", None, |inode| {
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let src = inode
                .live
                .get(start..start + buf.len())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    fn len(&self) -> Result<u64> {
        self.with("stat", None, |inode| Ok(inode.live.len() as u64))
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.with("truncate", Some(FaultOp::Write), |inode| {
            let len = usize::try_from(len).map_err(io::Error::other)?;
            inode.dirty_from = inode.dirty_from.min(len).min(inode.live.len());
            inode.live.resize(len, 0);
            Ok(())
        })
    }

    fn sync(&self) -> Result<()> {
        self.with("fsync", Some(FaultOp::Sync), |inode| {
            let from = inode.dirty_from.min(inode.durable.len());
            inode.durable.truncate(from);
            inode.durable.extend_from_slice(&inode.live[from..]);
            inode.dirty_from = inode.live.len();
            Ok(())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// What a killed process held stops working at the crash; the test's own handle and
    /// handles taken after it go on.
    #[test]
    fn a_crash_fences_off_the_handles_taken_before_it() {
        let sim = SimStorage::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let before = sim.clone();
        let f = before.create(Path::new("/d/a")).unwrap();
        f.append(b"x").unwrap();
        f.sync().unwrap();
        before.sync_dir(Path::new("/d")).unwrap();
        sim.crash();
        assert!(before.remove(Path::new("/d/a")).is_err());
        assert!(before.rename(Path::new("/d/a"), Path::new("/d/b")).is_err());
        assert!(before
            .lock(Path::new("/d/LOCK"), LockMode::Exclusive)
            .is_err());
        assert_eq!(sim.read(Path::new("/d/a")).unwrap(), b"x");
        let after = sim.clone();
        after.remove(Path::new("/d/a")).unwrap();
        assert!(!sim.exists(Path::new("/d/a")).unwrap());
    }
}

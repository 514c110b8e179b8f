//! Group commit at the collection level: under `FlushPolicy::Always`, concurrent writers share
//! WAL fsyncs, so eight threads inserting one document per call make fewer fsyncs than calls.
//!
//! The fsyncs are counted by a `Storage` that wraps `StdStorage` and counts `StorageFile::sync`
//! on WAL files (`*.wal`). Each of those fsyncs also sleeps 2 ms, as a real disk takes its
//! time, so that writers arriving during an fsync pile up behind it and the next fsync covers
//! them all. Nothing here asserts on time.
//!
//! A writer that held a collection-wide mutex through its WAL fsync would make fsyncs ==
//! writes here: writers must append under a short lock and wait for the fsync outside it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stratavec::storage::{FileRef, LockGuard, LockMode, Mapped, StdStorage, Storage, StorageFile};
use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, FieldSchema, OpenOptions,
    Result, VectorSchema,
};

const THREADS: usize = 8;
const DOCS_PER_THREAD: usize = 200;
/// The time one WAL fsync takes on the modelled disk.
const FSYNC_TIME: Duration = Duration::from_millis(2);

/// `StdStorage`, counting (and slowing down) fsyncs of WAL files.
#[derive(Debug)]
struct CountingStorage {
    inner: StdStorage,
    wal_fsyncs: Arc<AtomicU64>,
}

#[derive(Debug)]
struct CountingFile {
    inner: FileRef,
    wal: bool,
    wal_fsyncs: Arc<AtomicU64>,
}

fn is_wal(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wal")
}

impl CountingStorage {
    fn wrap(&self, path: &Path, inner: FileRef) -> FileRef {
        Arc::new(CountingFile {
            inner,
            wal: is_wal(path),
            wal_fsyncs: self.wal_fsyncs.clone(),
        })
    }
}

impl Storage for CountingStorage {
    fn create(&self, path: &Path) -> Result<FileRef> {
        Ok(self.wrap(path, self.inner.create(path)?))
    }

    fn open(&self, path: &Path) -> Result<FileRef> {
        Ok(self.wrap(path, self.inner.open(path)?))
    }

    fn create_temp(&self, dir: &Path) -> Result<(PathBuf, FileRef)> {
        let (path, file) = self.inner.create_temp(dir)?;
        let file = self.wrap(&path, file);
        Ok((path, file))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn map(&self, path: &Path) -> Result<Mapped> {
        self.inner.map(path)
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> Result<()> {
        self.inner.remove(path)
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn remove_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.remove_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.inner.sync_dir(dir)
    }

    fn lock(&self, path: &Path, mode: LockMode) -> Result<LockGuard> {
        self.inner.lock(path, mode)
    }
}

impl StorageFile for CountingFile {
    fn path(&self) -> &Path {
        self.inner.path()
    }

    fn append(&self, buf: &[u8]) -> Result<()> {
        self.inner.append(buf)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }

    fn len(&self) -> Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.inner.set_len(len)
    }

    fn sync(&self) -> Result<()> {
        if self.wal {
            self.wal_fsyncs.fetch_add(1, SeqCst);
            std::thread::sleep(FSYNC_TIME);
        }
        self.inner.sync()
    }
}

fn schema() -> CollectionSchema {
    CollectionSchema::new("group")
        .field(FieldSchema::new("n", DataType::Int64))
        .vector(VectorSchema::new("v", 4))
}

/// Eight writers under `Always`, batch 1: fewer WAL fsyncs than writes.
#[test]
fn concurrent_writers_share_wal_fsyncs_under_always() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let wal_fsyncs = Arc::new(AtomicU64::new(0));
    let storage: Arc<dyn Storage> = Arc::new(CountingStorage {
        inner: StdStorage,
        wal_fsyncs: wal_fsyncs.clone(),
    });
    let c = Collection::create(
        &path,
        schema(),
        CollectionOptions::default()
            .flush_policy(FlushPolicy::Always)
            .storage(storage.clone()),
    )
    .unwrap();
    let started = Instant::now();
    let before = wal_fsyncs.load(SeqCst);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let c = &c;
            s.spawn(move || {
                for i in 0..DOCS_PER_THREAD {
                    let n = (t * DOCS_PER_THREAD + i) as i64;
                    let doc = Doc::new(format!("t{t}d{i}"))
                        .set("n", n)
                        .vector("v", vec![n as f32, 1.0, 0.0, -1.0]);
                    c.insert(&[doc])
                        .unwrap_or_else(|e| panic!("thread {t}, insert {i}: {e}"));
                }
            });
        }
    });
    let fsyncs = wal_fsyncs.load(SeqCst) - before;
    let writes = (THREADS * DOCS_PER_THREAD) as u64;
    let elapsed = started.elapsed();
    eprintln!(
        "{writes} acknowledged writes from {THREADS} threads made {fsyncs} WAL fsyncs ({:.2} \
         writes per fsync) in {elapsed:.2?}",
        writes as f64 / fsyncs.max(1) as f64
    );
    // Every write was acknowledged under Always, so every one is in the reopened collection.
    assert_eq!(c.stats().doc_count, writes);
    c.close().unwrap();
    let c = Collection::open(&path, OpenOptions::default().storage(storage)).unwrap();
    assert_eq!(c.stats().doc_count, writes, "after reopen");
    assert!(
        fsyncs >= 1,
        "no WAL fsync was counted: does the WAL still end in .wal?"
    );
    assert!(
        fsyncs < writes,
        "{writes} concurrent writes under FlushPolicy::Always made {fsyncs} WAL fsyncs: no two \
         writes shared an fsync (no group commit across writers)"
    );
}

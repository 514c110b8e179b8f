//! Background work: one worker that persists rotated segments and merges sealed ones (in the
//! order they were asked for, so commits never race), and one indexer that feeds the writing
//! segment's live graphs. Both run at a lower CPU priority than the caller's threads, so that a
//! query never queues behind graph construction on a busy machine.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::state::Sealing;
use super::Inner;
use crate::error::{Error, Result};
use crate::index::live::LiveGraph;

/// Rows the indexer copies out of the writing segment per step: small enough that a rotation
/// or a stop is noticed quickly.
const INDEX_CHUNK: usize = 256;

/// A writing segment whose live graphs are this many rows behind is being bulk loaded faster
/// than hnsw_rs inserts (≈ 1,000 rows/s per core): the indexer stops feeding it, as the bulk
/// builder that seals it does the same work several times faster. Rows not yet in a graph are
/// scored exactly meanwhile.
pub(super) const BULK_BACKLOG: usize = 10_000;

/// A bulk load that pauses this long, or whose backlog reaches [`MAX_BACKLOG`], has its
/// writing segment sealed, so that its rows get a graph without waiting for a flush.
const BULK_PAUSE: Duration = Duration::from_millis(500);

/// The most rows a bulk load leaves without a graph (each query scans them exactly).
const MAX_BACKLOG: usize = 200_000;

/// Sealed segments that deferred their graphs (a bulk load's small imports) get them once
/// no write and no job arrived for this long.
const GRAPH_PAUSE: Duration = Duration::from_millis(500);

/// Where a job's outcome goes.
pub(super) type Reply = SyncSender<Result<()>>;

/// Which sealed segments a merge takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MergeScope {
    /// Every sealed segment (`optimize`).
    All,
    /// What the merge policy picks, if anything.
    Policy,
}

/// Work for the background worker.
pub(super) enum Job {
    /// Write a rotated segment's files and commit them.
    Persist(Arc<Sealing>, Option<Reply>),
    /// Merge sealed segments.
    Merge(MergeScope, Option<Reply>),
    /// Answers once every earlier job is done.
    Barrier(Reply),
    /// Builds every graph a sealed segment deferred, then answers.
    BuildDeferred(Reply),
    /// Builds the key filter over the sealed segments (once, after open).
    BuildKeyFilter,
    /// Commit a checked schema change (the writing segment is sealed, writes wait).
    Schema(Box<super::ddl::Plan>, Reply),
}

/// A oneshot channel for a job's outcome.
pub(super) fn reply() -> (Reply, Receiver<Result<()>>) {
    mpsc::sync_channel(1)
}

/// What wakes the indexer.
#[derive(Debug, Default)]
pub(super) struct IndexerSignal {
    work: bool,
    stop: bool,
}

/// The indexer's wake-up call, shared with writers.
#[derive(Debug, Default)]
pub(super) struct Indexing {
    signal: Mutex<IndexerSignal>,
    wake: Condvar,
}

impl Indexing {
    /// Tells the indexer that rows arrived.
    pub(super) fn notify(&self) {
        self.signal.lock().work = true;
        self.wake.notify_one();
    }

    fn stop(&self) {
        self.signal.lock().stop = true;
        self.wake.notify_one();
    }

    /// Waits for work; false once stopped.
    fn wait(&self) -> bool {
        let mut s = self.signal.lock();
        while !s.work && !s.stop {
            self.wake.wait(&mut s);
        }
        s.work = false;
        !s.stop
    }

    /// Waits at most `pause` for work: whether rows arrived meanwhile (or a stop came).
    fn arrived_within(&self, pause: Duration) -> bool {
        let mut s = self.signal.lock();
        if !s.work && !s.stop {
            self.wake.wait_for(&mut s, pause);
        }
        let woken = s.work || s.stop;
        s.work = false;
        woken
    }

    fn stopped(&self) -> bool {
        self.signal.lock().stop
    }
}

/// What one step of the indexer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// It added rows; there may be more.
    More,
    /// Every row is in the live graphs.
    Done,
    /// The backlog is a bulk load's (at least [`BULK_BACKLOG`] rows): nothing was added.
    Bulk(usize),
}

/// The running background threads of a writable collection.
pub(super) struct Workers {
    jobs: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

/// Jobs queued before a caller waits: enough that a burst of rotations never blocks a writer,
/// few enough that rotated segments cannot pile up in memory without bound.
const QUEUE: usize = 64;

/// Asks the OS to run the calling thread after the caller's own threads when both want a core.
/// On Linux, `setpriority` with `who = 0` applies to the calling thread only.
pub(super) fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority reads no memory of ours; a failure only leaves the priority as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

impl Workers {
    /// Starts the worker and the indexer of `inner`.
    pub(super) fn start(inner: &Arc<Inner>) -> Result<Self> {
        // Separate pools: a persist waits for the indexer to finish its current rows (the
        // graph's insert lock), which must never wait for a thread of the same pool. Work that
        // a caller waits for, or that makes rows searchable (a persist, `optimize`), builds
        // graphs on every core; the indexer leaves one to the caller's threads, and so does an
        // automatic merge (its throttle) until a caller waits for it: measured on 2 cores, a
        // merge on both cores made a reader's p99 4.0 ms, on one 0.25 ms (idle: 0.11 ms).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = |name: &'static str, threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads.max(1))
                .thread_name(move |i| format!("stratavec-{name}-{i}"))
                .start_handler(|_| lower_priority())
                .build()
                .map_err(|e| Error::io("start threads", name, std::io::Error::other(e)))
        };
        let builders = pool("build", cores)?;
        let index_pool = pool("index", cores - 1)?;
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    lower_priority();
                    f()
                })
                .map_err(|e| Error::io("spawn", name.to_string(), e))
        };
        let worker = {
            let inner = inner.clone();
            spawn(
                "stratavec-persist",
                Box::new(move || {
                    // Off after a damaged segment stopped the idle graph builds, until the
                    // next job (a merge may replace the segment; reads report it meanwhile).
                    let mut idle_builds = true;
                    loop {
                        let job = if idle_builds && inner.defers_graphs() {
                            let seq = inner.state.read().visible_seq;
                            match rx.recv_timeout(GRAPH_PAUSE) {
                                Ok(job) => job,
                                Err(RecvTimeoutError::Timeout) => {
                                    idle_builds =
                                        builders.install(|| inner.build_graphs_while_idle(seq));
                                    continue;
                                }
                                Err(RecvTimeoutError::Disconnected) => return,
                            }
                        } else {
                            match rx.recv() {
                                Ok(job) => job,
                                Err(_) => return,
                            }
                        };
                        builders.install(|| inner.run(job));
                        idle_builds = true;
                    }
                }),
            )?
        };
        let indexer = {
            let inner = inner.clone();
            let pool = index_pool;
            spawn(
                "stratavec-index",
                Box::new(move || {
                    while inner.indexing.wait() {
                        pool.install(|| inner.index_until_idle());
                    }
                }),
            )?
        };
        Ok(Workers {
            jobs: Some(tx),
            threads: vec![worker, indexer],
        })
    }

    /// Queues a job (waiting when the queue is full).
    pub(super) fn submit(&self, job: Job) -> Result<()> {
        match &self.jobs {
            Some(tx) => tx.send(job).map_err(|_| Error::Closed),
            None => Err(Error::Closed),
        }
    }

    /// Lets queued jobs finish, then stops both threads and waits for them.
    pub(super) fn stop(&mut self, inner: &Inner) {
        let _opened = inner.throttle.open();
        self.jobs = None;
        inner.indexing.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Inner {
    /// Runs one job and hands its outcome to whoever waits for it. After a persist, the merge
    /// policy may ask for a merge: it runs once the persist's waiter has its answer.
    fn run(&self, job: Job) {
        let (result, reply, then_merge) = match job {
            Job::Persist(sealing, reply) => (self.guard(|| self.persist(&sealing)), reply, true),
            Job::Merge(scope, reply) => (self.guard(|| self.merge(scope)), reply, false),
            Job::Barrier(reply) => (self.check_not_failed(), Some(reply), false),
            Job::BuildKeyFilter => {
                self.build_key_filter();
                (Ok(()), None, false)
            }
            Job::BuildDeferred(reply) => (
                self.check_not_failed()
                    .and_then(|()| self.build_deferred_or_poison(None, &|| false)),
                Some(reply),
                false,
            ),
            Job::Schema(plan, reply) => (
                self.guard(|| self.apply_schema_change(&plan)),
                Some(reply),
                false,
            ),
        };
        let persisted = result.is_ok();
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
        if then_merge && persisted && self.options.merge_policy.is_some() {
            // A failure poisons the collection; the next write or close reports it.
            let _ = self.guard(|| self.merge(MergeScope::Policy));
        }
    }

    /// Builds deferred graphs while no write arrives (the last visible seq stays `seq`), on
    /// the core readers leave free unless a caller waits. False when it failed (see
    /// [`Inner::build_deferred_or_poison`]).
    fn build_graphs_while_idle(&self, seq: u64) -> bool {
        if self.check_not_failed().is_err() {
            return false;
        }
        let interrupted = || self.is_closed() || self.state.read().visible_seq != seq;
        self.build_deferred_or_poison(Some(&self.throttle), &interrupted)
            .is_ok()
    }

    /// [`Inner::build_deferred_graphs`], where a damaged segment is an error for the caller
    /// only (reads of the segment report it too; writes go on), and any other failure — a
    /// write or fsync of a graph file or manifest — poisons the collection.
    fn build_deferred_or_poison(
        &self,
        throttle: Option<&crate::index::throttle::Throttle>,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<()> {
        match self.build_deferred_graphs(throttle, interrupted) {
            Err(e @ Error::Corrupted { .. }) => Err(e),
            Err(e) => Err(self.poison(e)),
            Ok(()) => Ok(()),
        }
    }

    /// Waits for a job's outcome; meanwhile an automatic merge queued ahead of the job builds
    /// on every core (the caller's threads are idle: it waits).
    pub(super) fn await_reply(&self, rx: Receiver<Result<()>>) -> Result<()> {
        let _opened = self.throttle.open();
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Runs background work unless an earlier failure stopped all writing; a failure of this
    /// work poisons the collection.
    fn guard(&self, work: impl FnOnce() -> Result<()>) -> Result<()> {
        self.check_not_failed()?;
        work().map_err(|e| self.poison(e))
    }

    /// Feeds the live graphs until every row is in them, or, while a bulk load outruns them,
    /// waits for it to pause (or grow too far behind) and then seals its segment.
    fn index_until_idle(&self) {
        loop {
            match self.index_step() {
                Step::More if !self.is_closed() => {}
                Step::More | Step::Done => return,
                Step::Bulk(backlog) => {
                    if self.indexing.stopped() || self.is_closed() {
                        return;
                    }
                    if backlog < MAX_BACKLOG && self.indexing.arrived_within(BULK_PAUSE) {
                        continue;
                    }
                    self.seal_backlog();
                    return;
                }
            }
        }
    }

    /// Rotates the writing segment if it is still a bulk load's backlog: the background worker
    /// then seals it with a bulk-built graph. A failed rotation poisons the collection and
    /// surfaces on the next write.
    pub(super) fn seal_backlog(&self) {
        let mut w = self.writer.write();
        if w.closed || self.failure.get().is_some() {
            return;
        }
        if self.state.read().writing.unindexed() >= BULK_BACKLOG {
            let _ = self.rotate(&mut w, None);
        }
    }

    /// Adds a chunk of the writing segment's unindexed rows to its live graphs.
    fn index_step(&self) -> Step {
        {
            let backlog = self.state.read().writing.unindexed();
            if backlog >= BULK_BACKLOG {
                return Step::Bulk(backlog);
            }
        }
        let work: Vec<(Arc<LiveGraph>, usize, Vec<f32>, usize)> = {
            let st = self.state.read();
            let rows = &st.writing.rows;
            st.writing
                .graphs
                .iter()
                .enumerate()
                .filter_map(|(v, g)| {
                    let g = g.as_ref()?;
                    let from = g.indexed();
                    let to = rows.len().min(from + INDEX_CHUNK);
                    if from >= to {
                        return None;
                    }
                    let col = &rows.vectors[v];
                    Some((
                        g.clone(),
                        from,
                        col.data[from * col.dim..to * col.dim].to_vec(),
                        col.dim,
                    ))
                })
                .collect()
        };
        for (graph, first, vectors, dim) in &work {
            graph.add_rows(*first, vectors, *dim, false);
        }
        if work.is_empty() {
            Step::Done
        } else {
            Step::More
        }
    }
}

//! How many threads a background graph build may use. An automatic merge builds on one
//! thread, leaving the other cores to the caller's queries, until a caller waits for the
//! background worker (a flush or `optimize` queued behind the merge, `close`): from then until
//! that caller has its answer, every thread of the pool builds.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// How often a held-back thread looks whether its build is done (it is also woken at once
/// when a caller starts waiting).
const POLL: Duration = Duration::from_millis(10);

/// The switch between one building thread and all of them.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Callers waiting for the background worker now.
    waiting: Mutex<usize>,
    wake: Condvar,
}

/// Keeps every thread of a throttled build working until dropped.
#[must_use]
pub(crate) struct Opened<'t>(&'t Throttle);

impl Throttle {
    /// Lets every thread work while the returned guard lives.
    pub(crate) fn open(&self) -> Opened<'_> {
        *self.waiting.lock() += 1;
        self.wake.notify_all();
        Opened(self)
    }

    /// Holds a thread (other than a build's first) back until the throttle opens (`true`) or
    /// `done()` says no work is left (`false`).
    pub(crate) fn admit(&self, done: impl Fn() -> bool) -> bool {
        let mut waiting = self.waiting.lock();
        loop {
            if *waiting > 0 {
                return true;
            }
            if done() {
                return false;
            }
            self.wake.wait_for(&mut waiting, POLL);
        }
    }
}

impl Drop for Opened<'_> {
    fn drop(&mut self) {
        *self.0.waiting.lock() -= 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_closed_throttle_holds_threads_until_done_and_an_open_one_admits_them() {
        let t = Throttle::default();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let held = s.spawn(|| t.admit(|| done.load(Ordering::SeqCst)));
            std::thread::sleep(Duration::from_millis(30));
            assert!(!held.is_finished(), "admitted while closed");
            done.store(true, Ordering::SeqCst);
            assert!(!held.join().unwrap(), "a finished build admits nobody");
        });
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let held = s.spawn(|| t.admit(|| done.load(Ordering::SeqCst)));
            let guard = t.open();
            assert!(held.join().unwrap(), "an open throttle admits");
            drop(guard);
            assert!(
                !t.admit(|| true),
                "closed again once the caller has its answer"
            );
        });
    }
}

//! A visited set reused across searches on the same thread: one byte stamp per row, reset by
//! bumping the generation instead of clearing (cleared for real once every 255 searches). One
//! byte keeps the set of a 100k-row segment (100 KB) in L2 beside the vectors being scored; a
//! `u32` stamp took four times that and its misses showed in the walk's profile.

use std::cell::RefCell;

#[derive(Default)]
pub(crate) struct Visited {
    stamps: Vec<u8>,
    generation: u8,
}

impl Visited {
    /// Marks `row`; returns false if it was already marked in this search.
    #[inline]
    pub(crate) fn insert(&mut self, row: u32) -> bool {
        let slot = &mut self.stamps[row as usize];
        if *slot == self.generation {
            return false;
        }
        *slot = self.generation;
        true
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited { stamps: Vec::new(), generation: 0 }) };
}

/// This thread's visited set, cleared for `rows` rows, taken out of the thread for one search
/// and put back on drop. Taking it instead of lending it to a closure keeps the search one
/// function that the compiler can inline whole into a kernel-specific copy. A search nested on
/// the same thread (not done by the engine) finds the slot empty and starts a fresh set.
pub(crate) struct VisitedGuard(Visited);

impl std::ops::Deref for VisitedGuard {
    type Target = Visited;
    fn deref(&self) -> &Visited {
        &self.0
    }
}

impl std::ops::DerefMut for VisitedGuard {
    fn deref_mut(&mut self) -> &mut Visited {
        &mut self.0
    }
}

impl Drop for VisitedGuard {
    fn drop(&mut self) {
        let set = std::mem::take(&mut self.0);
        // The slot is empty unless a nested search returned its set first: keep the larger.
        let _ = VISITED.try_with(|cell| {
            if let Ok(mut slot) = cell.try_borrow_mut() {
                if slot.stamps.len() < set.stamps.len() {
                    *slot = set;
                }
            }
        });
    }
}

/// Takes this thread's visited set, cleared for `rows` rows.
pub(crate) fn visited_for(rows: usize) -> VisitedGuard {
    let mut v = VISITED
        .try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .map(|mut slot| std::mem::take(&mut *slot))
        })
        .ok()
        .flatten()
        .unwrap_or_default();
    if v.stamps.len() < rows {
        v.stamps.resize(rows, 0);
    }
    v.generation = v.generation.wrapping_add(1);
    if v.generation == 0 {
        v.stamps.iter_mut().for_each(|s| *s = 0);
        v.generation = 1;
    }
    VisitedGuard(v)
}

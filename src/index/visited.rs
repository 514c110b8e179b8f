//! A visited set reused across searches on the same thread: one byte stamp per row, reset by
//! bumping the generation instead of clearing (cleared for real once every 255 searches). One
//! byte keeps the set of a 100k-row segment (100 KB) in L2 beside the vectors being scored; a
//! `u32` stamp took four times that and its misses showed in the walk's profile.

use std::cell::RefCell;

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

/// Runs `f` with a cleared visited set for `rows` rows.
pub(crate) fn with_visited<T>(rows: usize, f: impl FnOnce(&mut Visited) -> T) -> T {
    VISITED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.stamps.len() < rows {
                v.stamps.resize(rows, 0);
            }
            v.generation = v.generation.wrapping_add(1);
            if v.generation == 0 {
                v.stamps.iter_mut().for_each(|s| *s = 0);
                v.generation = 1;
            }
            f(&mut v)
        }
        // Re-entered on the same thread (not done by the engine): use a fresh set.
        Err(_) => f(&mut Visited {
            stamps: vec![0; rows],
            generation: 1,
        }),
    })
}

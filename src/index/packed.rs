//! Layer 0 of a frozen graph packed for the walk: per row, its vector quantised to one byte per
//! dimension and its neighbour list side by side in one cache-line-aligned node, in anonymous
//! memory.
//!
//! The mapped layout keeps a row's vector in the forward file (200 bytes for 50-d), its list
//! in the graph file and (cosine) its inverse norm in a third array: scoring and expanding a
//! row touched three distant places, and the walk spent most of its time waiting on memory
//! (`BENCHMARKS.md`, "Where a query's time goes"). Here a row's codes, squared norm and list
//! are one node of `2·⌈dim/8⌉ + 2 + degree` words rounded up to whole cache lines, and scoring
//! a row reads one line for 50-d vectors instead of four. The allocation asks for huge pages.
//!
//! The codes only steer the walk: its `ef` best rows are re-ranked with the exact vectors of
//! the forward store (which stays the source of truth; a row whose code distance is too far
//! behind for the codes' error bound to bring it into the top k is skipped), so the results
//! equal those of the mapped walk wherever the walk reaches the same rows, and exact search at
//! `ef ≥ rows`.
//! Codes are per-dimension affine (`low[i] + step[i] · code`), built from checked data.

use bytemuck::{Pod, Zeroable};

use super::distance::CodeKernel;

/// One cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u32; 16]);

// SAFETY: `Line` is sixteen `u32`s with the alignment raised to their total size (64 bytes):
// no padding, every bit pattern valid, all zeros valid.
unsafe impl Zeroable for Line {}
// SAFETY: as above; `Copy` and `'static`.
unsafe impl Pod for Line {}

/// Packed layer-0 nodes: `[codes: dim bytes, zero-padded to a multiple of 8][|v|²: f32][count: u32]
/// [neighbours: degree u32][padding to a line]`.
pub(crate) struct PackedLevel0 {
    lines: Vec<Line>,
    /// Words per node, a multiple of 16.
    stride: usize,
    dim: usize,
    code_words: usize,
    degree: usize,
    low: Vec<f32>,
    step: Vec<f32>,
}

/// A query prepared for one packed graph: `dot(query, v) ≈ offset + Σ scaled[i] · code[i]`.
pub(crate) struct PackedQuery {
    scaled: Vec<f32>,
    offset: f32,
    /// How far the approximate inner product can be from the one of the packed vector: each
    /// code is within half a step of its component, so `Σ |scaled[i]| / 2`, plus room for the
    /// rounding of both sums. Lets the re-rank skip rows that cannot reach the top k.
    error: f32,
}

impl PackedQuery {
    /// See the field: the bound on `|dot(query, v) − PackedLevel0::dot(query, row)|`.
    pub(crate) fn error(&self) -> f32 {
        self.error
    }
}

impl std::fmt::Debug for PackedLevel0 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedLevel0")
            .field("bytes", &self.byte_len())
            .field("stride", &self.stride)
            .finish()
    }
}

impl PackedLevel0 {
    /// Packs `rows` nodes: `list(r)` gives row r's layer-0 neighbours, `vector(r, out)` writes
    /// its vector as the walk scores it (normalised for cosine). `None` if a list is longer
    /// than `degree` or the memory cannot be had.
    pub(crate) fn build<'a>(
        rows: usize,
        dim: usize,
        degree: usize,
        list: impl Fn(u32) -> &'a [u32],
        vector: impl Fn(u32, &mut [f32]),
    ) -> Option<Self> {
        let mut v = vec![0f32; dim];
        let mut low = vec![f32::INFINITY; dim];
        let mut high = vec![f32::NEG_INFINITY; dim];
        for r in 0..rows {
            vector(r as u32, &mut v);
            for ((l, h), x) in low.iter_mut().zip(high.iter_mut()).zip(&v) {
                *l = l.min(*x);
                *h = h.max(*x);
            }
        }
        let step: Vec<f32> = low
            .iter()
            .zip(&high)
            .map(|(l, h)| if h > l { (h - l) / 255.0 } else { 0.0 })
            .collect();
        let low: Vec<f32> = low
            .into_iter()
            .map(|l| if l.is_finite() { l } else { 0.0 })
            .collect();

        // Whole groups of eight codes: the kernel's eight-lane loop then has no scalar tail
        // (the query's padding is zero).
        let code_words = dim.div_ceil(8) * 2;
        let stride = (code_words + 2 + degree).div_ceil(16) * 16;
        let mut lines: Vec<Line> = Vec::new();
        lines
            .try_reserve_exact(rows.checked_mul(stride)? / 16)
            .ok()?;
        advise_huge_pages(&lines);
        lines.resize(rows * stride / 16, Line([0; 16]));
        let words: &mut [u32] = bytemuck::cast_slice_mut(&mut lines);
        for (r, node) in words.chunks_exact_mut(stride).enumerate() {
            vector(r as u32, &mut v);
            let (codes, rest) = node.split_at_mut(code_words);
            let codes: &mut [u8] = bytemuck::cast_slice_mut(codes);
            for (i, x) in v.iter().enumerate() {
                // Out-of-range and NaN inputs saturate (`as` on f32 → u8 clamps, NaN → 0).
                codes[i] = if step[i] > 0.0 {
                    ((x - low[i]) / step[i]).round() as u8
                } else {
                    0
                };
            }
            let hood = list(r as u32);
            if hood.len() > degree {
                return None;
            }
            rest[0] = v.iter().map(|x| x * x).sum::<f32>().to_bits();
            rest[1] = hood.len() as u32;
            rest[2..2 + hood.len()].copy_from_slice(hood);
        }
        Some(PackedLevel0 {
            lines,
            stride,
            dim,
            code_words,
            degree,
            low,
            step,
        })
    }

    fn words(&self) -> &[u32] {
        bytemuck::cast_slice(&self.lines)
    }

    /// Prepares `query` (normalised already for cosine) for [`PackedLevel0::dot`].
    pub(crate) fn prepare(&self, query: &[f32]) -> PackedQuery {
        let mut scaled: Vec<f32> = query.iter().zip(&self.step).map(|(q, s)| q * s).collect();
        scaled.resize(self.code_words * 4, 0.0);
        let offset = query.iter().zip(&self.low).map(|(q, l)| q * l).sum();
        let spread: f32 = scaled.iter().map(|s| s.abs()).sum();
        // Bounds `Σ |query[i] · v[i]|`: the f32 sums here and in the exact kernels err by at
        // most a few `dim · ε` of it (a generous multiple is taken).
        let magnitude: f32 = query
            .iter()
            .zip(&self.low)
            .map(|(q, l)| (q * l).abs())
            .sum::<f32>()
            + 255.0 * spread;
        let rounding = (self.dim as f32 + 16.0) * 8.0 * f32::EPSILON * (1.0 + magnitude);
        PackedQuery {
            scaled,
            offset,
            error: spread / 2.0 * 1.001 + rounding,
        }
    }

    /// The approximate inner product of the prepared query with row `row`.
    #[inline(always)]
    pub(crate) fn dot<K: CodeKernel>(&self, query: &PackedQuery, row: u32) -> f32 {
        let at = row as usize * self.stride;
        let codes: &[u8] = bytemuck::cast_slice(&self.words()[at..at + self.code_words]);
        query.offset + K::dot_codes(&query.scaled, codes)
    }

    /// Row `row`'s squared norm (of the vector as packed).
    #[inline]
    pub(crate) fn sq_norm(&self, row: u32) -> f32 {
        f32::from_bits(self.words()[row as usize * self.stride + self.code_words])
    }

    /// Row `row`'s layer-0 neighbours.
    #[inline]
    pub(crate) fn neighbors(&self, row: u32) -> &[u32] {
        let at = row as usize * self.stride + self.code_words + 1;
        let words = self.words();
        let count = (words[at] as usize).min(self.degree);
        &words[at + 1..at + 1 + count]
    }

    /// Starts loading row `row`'s codes and norm.
    #[inline]
    pub(crate) fn prefetch_codes(&self, row: u32) {
        let at = row as usize * self.stride;
        if let Some(node) = self.words().get(at..at + self.code_words + 1) {
            super::frozen::prefetch(node);
        }
    }

    /// Starts loading row `row`'s neighbour list.
    #[inline]
    pub(crate) fn prefetch_neighbors(&self, row: u32) {
        let at = row as usize * self.stride + self.code_words + 1;
        if let Some(list) = self.words().get(at..at + 1 + self.degree) {
            super::frozen::prefetch(list);
        }
    }

    /// Bytes held.
    pub(crate) fn byte_len(&self) -> usize {
        self.lines.len() * 64 + (self.low.len() + self.step.len()) * 4
    }
}

/// Asks the kernel to back the allocation with huge pages: a walk hops across the whole array,
/// and with 4 KiB pages nearly every hop was also a TLB miss.
fn advise_huge_pages(lines: &Vec<Line>) {
    #[cfg(target_os = "linux")]
    {
        let start = lines.as_ptr() as usize;
        let len = lines.capacity() * 64;
        let page = 2 << 20;
        let from = start.next_multiple_of(page);
        let to = (start + len) / page * page;
        if to > from {
            // SAFETY: the range lies inside the vector's allocation; MADV_HUGEPAGE only
            // changes how the kernel backs it, never its contents or validity.
            unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = lines;
}

//! Half-precision copies of the rows a graph is built over. A build is bound by memory, not
//! arithmetic: each insertion scores a few thousand rows scattered over the whole segment, and
//! a 50-d row in `f32` spans four cache lines. In `f16` it spans two, and a 100k-row segment's
//! rows (10 MB) stay in the last-level cache. The construction only ranks rows against each
//! other, which the 11-bit mantissa preserves; searches still score the stored `f32` column.
//!
//! Used where the CPU converts halves in hardware (F16C, beside AVX2 and FMA) and the metric
//! allows it: cosine over unit vectors, and L2 over rows centred on their mean (L2 distances do
//! not change under a translation) and scaled by a power of two (exact) so that the largest
//! component sits just below `f16`'s range. Not under inner product, which a translation
//! changes: with rows far from the origin, `f16` would keep their offset and lose their
//! differences.

// Only x86-64 CPUs with F16C build halves; elsewhere the type exists but is never made.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m128i, __m256, _mm256_castps256_ps128, _mm256_cvtph_ps, _mm256_cvtps_ph,
    _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_sub_ps,
    _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_loadu_si128, _mm_movehl_ps, _mm_shuffle_ps,
    _mm_storeu_si128,
};

use crate::schema::Metric;

/// Components per step of the kernels: rows are padded with zeros to a multiple of this.
const LANES: usize = 8;

/// The rows in `f16`, `stride` components each (the padding zero), in cache-line-aligned
/// storage.
pub(crate) struct Halves {
    lines: Vec<Line>,
    stride: usize,
}

/// One cache line of halves: the storage's unit, so that rows start where lines do.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u16; HALVES_PER_LINE]);

const HALVES_PER_LINE: usize = 32;

// SAFETY: `Line` is 32 `u16`s, 64 bytes with no padding (its alignment equals its size), and
// any bit pattern is a valid `u16`.
unsafe impl bytemuck::Zeroable for Line {}
// SAFETY: as above.
unsafe impl bytemuck::Pod for Line {}

/// Components per stored row: a whole number of [`LANES`], and a size that never straddles a
/// cache line (8, 16 or 32 components, or whole lines). A 50-d row takes 64 (two lines) rather
/// than 56, which would start mid-line three times in four and span three.
fn stride_for(dim: usize) -> usize {
    let lanes = dim.div_ceil(LANES) * LANES;
    if lanes <= HALVES_PER_LINE {
        lanes.next_power_of_two()
    } else {
        lanes.div_ceil(HALVES_PER_LINE) * HALVES_PER_LINE
    }
}

impl Halves {
    /// Half-precision copies of `points` (`dim` floats per row) for a build under `metric`,
    /// or `None` where they would not rank rows as `f32` does: inner product, a CPU without
    /// F16C, AVX2 and FMA, or a row with a non-finite component.
    pub(crate) fn new(metric: Metric, points: &[f32], dim: usize) -> Option<Halves> {
        #[cfg(target_arch = "x86_64")]
        {
            if metric == Metric::Ip || dim == 0 || !available() {
                return None;
            }
            if points.iter().any(|x| !x.is_finite()) {
                return None;
            }
            let (offset, scale) = if metric == Metric::L2 {
                fit_to_range(points, dim)
            } else {
                (vec![0.0; dim], 1.0)
            };
            let stride = stride_for(dim);
            let rows = points.len() / dim;
            let mut lines =
                vec![Line([0; HALVES_PER_LINE]); (rows * stride).div_ceil(HALVES_PER_LINE)];
            let bits: &mut [u16] = bytemuck::cast_slice_mut(&mut lines[..]);
            let mut staged = vec![0f32; stride];
            for (row, out) in points.chunks_exact(dim).zip(bits.chunks_exact_mut(stride)) {
                for ((s, x), o) in staged.iter_mut().zip(row).zip(&offset) {
                    *s = (x - o) * scale;
                    // Finite rows whose centring overflows (components near ±f32::MAX of
                    // both signs) stay in f32.
                    if !s.is_finite() {
                        return None;
                    }
                }
                // SAFETY: `available` checked the CPU for F16C.
                unsafe { narrow(&staged, out) };
            }
            Some(Halves { lines, stride })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (metric, points, dim);
            None
        }
    }

    /// Row `row`'s halves.
    #[inline(always)]
    pub(crate) fn row(&self, row: u32) -> &[u16] {
        let bits: &[u16] = bytemuck::cast_slice(&self.lines[..]);
        let at = row as usize * self.stride;
        &bits[at..at + self.stride]
    }
}

/// Whether this CPU converts halves in hardware and runs the kernels below.
#[cfg(target_arch = "x86_64")]
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("f16c")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
}

/// The per-component offset (the mean) and the power-of-two scale that put L2 rows into
/// `f16`'s range with the most precision: the largest centred component lands in
/// `[2^14, 2^15)`, below `f16`'s largest finite value (65504).
fn fit_to_range(points: &[f32], dim: usize) -> (Vec<f32>, f32) {
    let rows = (points.len() / dim).max(1);
    let mut sums = vec![0f64; dim];
    for row in points.chunks_exact(dim) {
        for (s, &x) in sums.iter_mut().zip(row) {
            *s += f64::from(x);
        }
    }
    let offset: Vec<f32> = sums.iter().map(|s| (s / rows as f64) as f32).collect();
    let largest = points
        .chunks_exact(dim)
        .flat_map(|row| row.iter().zip(&offset).map(|(x, o)| (x - o).abs()))
        .fold(0f32, f32::max);
    if largest == 0.0 || !largest.is_finite() {
        return (offset, 1.0);
    }
    let exponent = 14 - largest.log2().floor() as i32;
    (offset, 2f32.powi(exponent.clamp(-126, 127)))
}

/// Writes `from` (a multiple of [`LANES`] long) into `to` as halves, rounding to nearest.
///
/// # Safety
/// The CPU must support F16C and AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn narrow(from: &[f32], to: &mut [u16]) {
    for (f, t) in from.chunks_exact(LANES).zip(to.chunks_exact_mut(LANES)) {
        let h = _mm256_cvtps_ph::<0>(_mm256_loadu_ps(f.as_ptr()));
        _mm_storeu_si128(t.as_mut_ptr().cast::<__m128i>(), h);
    }
}

/// Writes row `h` (a whole number of [`LANES`]) into `out` as floats.
///
/// # Safety
/// The CPU must support F16C and AVX2, and the caller must be compiled with them: this is
/// inlined into the build's insertion, which is.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn widen(h: &[u16], out: &mut Vec<f32>) {
    out.clear();
    out.resize(h.len(), 0.0);
    for (c, o) in h.chunks_exact(LANES).zip(out.chunks_exact_mut(LANES)) {
        let v = _mm256_cvtph_ps(_mm_loadu_si128(c.as_ptr().cast::<__m128i>()));
        std::arch::x86_64::_mm256_storeu_ps(o.as_mut_ptr(), v);
    }
}

/// `Σ q[i] · h[i]` over a widened query and a row of halves, both a whole number of [`LANES`]
/// long.
///
/// # Safety
/// As [`widen`]; `q` must be at least as long as `h`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn dot(q: &[f32], h: &[u16]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (i, c) in h.chunks_exact(LANES).enumerate() {
        let x = _mm256_loadu_ps(q.as_ptr().add(i * LANES));
        let y = _mm256_cvtph_ps(_mm_loadu_si128(c.as_ptr().cast::<__m128i>()));
        acc = _mm256_fmadd_ps(x, y, acc);
    }
    sum(acc)
}

/// `Σ (q[i] − h[i])²`, as [`dot`].
///
/// # Safety
/// As [`dot`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn l2(q: &[f32], h: &[u16]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (i, c) in h.chunks_exact(LANES).enumerate() {
        let x = _mm256_loadu_ps(q.as_ptr().add(i * LANES));
        let y = _mm256_cvtph_ps(_mm_loadu_si128(c.as_ptr().cast::<__m128i>()));
        let d = _mm256_sub_ps(x, y);
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    sum(acc)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn sum(v: __m256) -> f32 {
    let four = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
    _mm_cvtss_f32(_mm_add_ss(two, _mm_shuffle_ps::<1>(two, two)))
}

#[cfg(all(test, target_arch = "x86_64"))]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn halves_rank_rows_as_floats_do() {
        if !available() {
            return;
        }
        // Rows far from the origin, apart by a little: the centring keeps their differences.
        let dim = 5;
        let points: Vec<f32> = (0..40)
            .flat_map(|r| (0..dim).map(move |c| 10_000.0 + (r * dim + c) as f32 * 0.01))
            .collect();
        let h = Halves::new(Metric::L2, &points, dim).expect("finite rows on an F16C CPU");
        assert_eq!(h.row(0).len(), 8);
        assert_eq!(stride_for(50), 64);
        assert_eq!(stride_for(20), 32);
        assert_eq!(stride_for(100), 128);
        let mut q = Vec::new();
        // SAFETY: `available` said the CPU has F16C, AVX2 and FMA.
        unsafe { widen(h.row(0), &mut q) };
        let exact: Vec<f32> = points
            .chunks_exact(dim)
            .map(|r| {
                r.iter()
                    .zip(&points[..dim])
                    .map(|(a, b)| (a - b).powi(2))
                    .sum()
            })
            .collect();
        // SAFETY: as above.
        let approx: Vec<f32> = (0..40).map(|r| unsafe { l2(&q, h.row(r)) }).collect();
        for r in 1..39 {
            assert!(exact[r] < exact[r + 1]);
            assert!(approx[r] < approx[r + 1], "row {r}: {approx:?}");
        }
        assert!(Halves::new(Metric::Ip, &points, dim).is_none());
        let mut bad = points.clone();
        bad[7] = f32::NAN;
        assert!(Halves::new(Metric::L2, &bad, dim).is_none());
        // Finite, but centring them overflows.
        let extreme = [f32::MAX, f32::MAX, f32::MAX, -f32::MAX];
        assert!(Halves::new(Metric::L2, &extreme, 1).is_none());
    }
}

//! Distance kernels, chosen once at run time: an AVX2+FMA build of the same code on x86-64 CPUs
//! that have it, the portable build elsewhere (SSE2 on x86-64, NEON on aarch64: both baseline).
//! Nothing here needs AVX-512, so no CPU gets SIGILL (a top zvec complaint).

use std::sync::OnceLock;

use crate::schema::Metric;

const LANES: usize = 8;

/// Eight independent accumulators, which the compiler turns into SIMD lanes; `term` folds one
/// pair of components into an accumulator. Every kernel below is this loop.
#[inline(always)]
fn lanes(a: &[f32], b: &[f32], term: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .fold(0.0, |t, (x, y)| term(t, *x, *y));
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] = term(acc[i], x[i], y[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// With fused multiply-add, for targets built with FMA.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot_fused(a: &[f32], b: &[f32]) -> f32 {
    lanes(a, b, |acc, x, y| x.mul_add(y, acc))
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn l2_fused(a: &[f32], b: &[f32]) -> f32 {
    lanes(a, b, |acc, x, y| (x - y).mul_add(x - y, acc))
}

/// `Σ q[i] · c[i]` over one-byte codes: the same eight-lane loop, widening each code to f32.
#[inline(always)]
fn codes_lanes(q: &[f32], c: &[u8], term: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (cq, cc) = (q.chunks_exact(LANES), c.chunks_exact(LANES));
    let tail = cq
        .remainder()
        .iter()
        .zip(cc.remainder())
        .fold(0.0, |t, (x, y)| term(t, *x, f32::from(*y)));
    for (x, y) in cq.zip(cc) {
        for i in 0..LANES {
            acc[i] = term(acc[i], x[i], f32::from(y[i]));
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn codes_fused(q: &[f32], c: &[u8]) -> f32 {
    codes_lanes(q, c, |acc, x, y| x.mul_add(y, acc))
}

#[inline(always)]
fn codes_plain(q: &[f32], c: &[u8]) -> f32 {
    codes_lanes(q, c, |acc, x, y| acc + x * y)
}

/// Scores one-byte codes inside a walk monomorphised for it, so that the kernel is inlined
/// into the walk's loop instead of called through the kernel table once per row (the call,
/// its `vzeroupper` and the table lookup showed in the walk's profile).
pub(crate) trait CodeKernel {
    fn dot_codes(q: &[f32], c: &[u8]) -> f32;
}

/// The portable loop (SSE2 on x86-64, NEON on aarch64).
pub(crate) struct PlainCodes;

impl CodeKernel for PlainCodes {
    #[inline(always)]
    fn dot_codes(q: &[f32], c: &[u8]) -> f32 {
        codes_plain(q, c)
    }
}

/// Fused multiply-add: only for code compiled with AVX2 and FMA enabled (elsewhere `mul_add`
/// is a library call), which [`avx2_fma`] says the CPU has.
#[cfg(target_arch = "x86_64")]
pub(crate) struct FusedCodes;

#[cfg(target_arch = "x86_64")]
impl CodeKernel for FusedCodes {
    #[inline(always)]
    fn dot_codes(q: &[f32], c: &[u8]) -> f32 {
        codes_fused(q, c)
    }
}

/// Whether this CPU runs the AVX2+FMA kernels (only asked on x86-64: elsewhere it is unused,
/// and an unused function fails the lint gate).
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2_fma() -> bool {
    kernels().name == "avx2+fma"
}

/// Without `mul_add`, which is a slow library call where the target has no FMA instruction.
#[inline(always)]
fn dot_plain(a: &[f32], b: &[f32]) -> f32 {
    lanes(a, b, |acc, x, y| acc + x * y)
}

#[inline(always)]
fn l2_plain(a: &[f32], b: &[f32]) -> f32 {
    lanes(a, b, |acc, x, y| acc + (x - y) * (x - y))
}

/// Float kernels for code monomorphised for them (the graph builder), so that a distance is
/// inlined into its caller's loop instead of called through the kernel table: at 50
/// dimensions the call, its `vzeroupper` and the table lookup cost about what the arithmetic
/// does. The results are those of [`dot`] and [`l2_squared`] bit for bit (the same loop).
pub(crate) trait FloatKernel {
    /// `Σ a[i] · b[i]`.
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// `Σ (a[i] − b[i])²`.
    fn l2(a: &[f32], b: &[f32]) -> f32;
}

/// The portable loop.
pub(crate) struct PlainFloats;

impl FloatKernel for PlainFloats {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot_plain(a, b)
    }
    #[inline(always)]
    fn l2(a: &[f32], b: &[f32]) -> f32 {
        l2_plain(a, b)
    }
}

/// Fused multiply-add: only inside code compiled with AVX2 and FMA enabled, which
/// [`avx2_fma`] says the CPU has.
#[cfg(target_arch = "x86_64")]
pub(crate) struct FusedFloats;

#[cfg(target_arch = "x86_64")]
impl FloatKernel for FusedFloats {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot_fused(a, b)
    }
    #[inline(always)]
    fn l2(a: &[f32], b: &[f32]) -> f32 {
        l2_fused(a, b)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_fused(a, b)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn l2(a: &[f32], b: &[f32]) -> f32 {
        super::l2_fused(a, b)
    }

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
}

type Kernel = fn(&[f32], &[f32]) -> f32;

struct Kernels {
    dot: Kernel,
    l2: Kernel,
    name: &'static str,
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            // SAFETY: the CPU was just checked to support AVX2 and FMA.
            return Kernels {
                dot: |a, b| unsafe { avx2::dot(a, b) },
                l2: |a, b| unsafe { avx2::l2(a, b) },
                name: "avx2+fma",
            };
        }
        Kernels {
            dot: dot_plain,
            l2: l2_plain,
            name: if cfg!(target_arch = "aarch64") {
                "neon"
            } else {
                "portable"
            },
        }
    })
}

/// Which kernel set this CPU runs (`avx2+fma`, `neon`, `portable`).
pub fn kernel_name() -> &'static str {
    kernels().name
}

/// Inner product.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// Squared Euclidean distance.
#[inline]
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l2)(a, b)
}

/// `v / |v|`, or `v` unchanged when it is zero.
pub(crate) fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

/// A query prepared for scoring under a metric (its norm computed once).
#[derive(Debug, Clone)]
pub(crate) struct Scorer<'q> {
    metric: Metric,
    query: &'q [f32],
    query_norm: f32,
}

impl<'q> Scorer<'q> {
    pub(crate) fn new(metric: Metric, query: &'q [f32]) -> Self {
        Scorer {
            metric,
            query,
            query_norm: dot(query, query).sqrt(),
        }
    }

    /// zvec's score: L2 squared distance, IP dot product, Cosine `1 − cos` (a zero vector has
    /// cosine distance 1).
    pub(crate) fn score(&self, v: &[f32]) -> f32 {
        match self.metric {
            Metric::L2 => l2_squared(self.query, v),
            Metric::Ip => dot(self.query, v),
            Metric::Cosine => {
                let denom = self.query_norm * dot(v, v).sqrt();
                if denom > 0.0 {
                    1.0 - dot(self.query, v) / denom
                } else {
                    1.0
                }
            }
        }
    }

    /// Orders scores so that smaller is always better.
    pub(crate) fn rank_key(&self, score: f32) -> f32 {
        rank_key(self.metric, score)
    }
}

/// Orders scores of `metric` so that smaller is always better.
pub(crate) fn rank_key(metric: Metric, score: f32) -> f32 {
    if metric.higher_is_better() {
        -score
    } else {
        score
    }
}

/// The distance hnsw_rs builds graphs with: ours, never its stock `DistDot`/`DistCosine`
/// (they assert on rounding and panic). hnsw_rs asserts distances are ≥ 0, so every metric is
/// mapped to a non-negative value with the same order: L2 squared; cosine `1 − dot` of
/// normalised vectors, clamped; inner product through a decreasing positive map of the dot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GraphDistance(pub(crate) Metric);

impl GraphDistance {
    #[inline]
    pub(crate) fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = self.eval_raw(a, b);
        // Finite but huge components can still overflow to inf − inf = NaN, on which hnsw_rs
        // panics ("got a NaN in a distance"): such a pair is simply as far apart as can be.
        if d.is_nan() {
            f32::MAX
        } else {
            d
        }
    }

    #[inline]
    fn eval_raw(&self, a: &[f32], b: &[f32]) -> f32 {
        match self.0 {
            Metric::L2 => l2_squared(a, b),
            Metric::Cosine => (1.0 - dot(a, b)).clamp(0.0, 2.0),
            Metric::Ip => {
                let x = dot(a, b);
                if x >= 0.0 {
                    1.0 / (1.0 + x)
                } else {
                    1.0 - x
                }
            }
        }
    }
}

impl hnsw_rs::prelude::Distance<f32> for GraphDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        GraphDistance::eval(self, va, vb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_plain_arithmetic() {
        for dim in [1usize, 7, 8, 9, 50, 128, 1000] {
            let a: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.11).cos()).collect();
            let d: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let l: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
            assert!(
                (dot(&a, &b) - d).abs() <= 1e-4 * d.abs().max(1.0),
                "dim {dim}"
            );
            assert!(
                (l2_squared(&a, &b) - l).abs() <= 1e-4 * l.max(1.0),
                "dim {dim}"
            );
        }
    }

    #[test]
    fn graph_distances_are_non_negative_and_keep_the_order() {
        let q = [1.0f32, 0.0];
        let ip = GraphDistance(Metric::Ip);
        let dots = [-1e30f32, -5.0, -0.5, 0.0, 0.5, 5.0, 1e30];
        let ds: Vec<f32> = dots.iter().map(|&x| ip.eval(&q, &[x, 0.0])).collect();
        assert!(ds.iter().all(|d| *d >= 0.0));
        assert!(ds.windows(2).all(|w| w[0] > w[1]), "{ds:?}");
        let cos = GraphDistance(Metric::Cosine);
        let u = normalized(&[0.6, 0.8]);
        assert!(cos.eval(&u, &u) >= 0.0);
    }
}

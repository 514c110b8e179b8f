//! Our own HNSW builder for graphs built in bulk (a sealed segment's, a merged segment's, a
//! damaged file's replacement). It writes [`GraphData`], the frozen format, directly.
//!
//! The construction is hnswlib's: layers drawn from a seeded geometric distribution, a beam
//! search of width `ef_construction` per layer, the standard neighbour-selection heuristic
//! (keep a candidate only if it is closer to the new row than to every neighbour kept so far),
//! `m` links per row on upper layers and `2m` on layer 0, and reverse links pruned with the
//! same heuristic when a list is full. Rows are inserted in parallel on the current rayon pool
//! with one lock per row around its neighbour lists; readers copy a list without locking
//! (every slot always holds a valid row id, so a racing read can only see an older list).
//! Adjacency lives in fixed-capacity arrays (no allocation per link), the visited set and the
//! search beam ([`super::beam`]) are reused per thread, and distances are our SIMD kernels,
//! over half-precision copies of the rows where the CPU converts them in hardware (a build
//! waits on memory: see [`super::halves`]).
//!
//! With one thread the result depends only on the input and the seed: the same bytes every
//! time, so tests can compare graphs.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use parking_lot::Mutex;
use rayon::prelude::*;

use super::beam::Beam;
#[cfg(target_arch = "x86_64")]
use super::distance::{avx2_fma, FusedFloats};
use super::distance::{dot, l2_squared, normalized, FloatKernel, PlainFloats};
use super::frozen::{prefetch, prefetch_rows, GraphData, Layer};
use super::halves::{self, Halves};
use super::reach::connect_orphans;
use super::throttle::Throttle;
use super::visited::visited_for;
use crate::schema::Metric;

/// Layers above this are never drawn (1 row in m^16 would reach it).
const MAX_LEVEL: u8 = 15;

/// The seed of every build: graphs are reproducible from their rows alone.
const SEED: u64 = 0x5354_5241_5441_5645;

/// How a graph is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BuildParams {
    pub(crate) metric: Metric,
    /// Links per row on upper layers; layer 0 keeps up to `2m`.
    pub(crate) m: usize,
    /// Beam width while inserting.
    pub(crate) ef_construction: usize,
    /// Insert rows on the current rayon pool (otherwise on this thread, deterministically).
    pub(crate) parallel: bool,
}

/// A graph to start from: an earlier graph over some of the rows, and the row each of its
/// rows becomes (`positions[old] = new`, all distinct and in range). A merge starts from its
/// largest input's graph and inserts only the other rows.
#[derive(Clone, Copy)]
pub(crate) struct Seed<'g> {
    pub(crate) graph: &'g GraphData,
    pub(crate) positions: &'g [u32],
}

/// Builds the graph over `vectors` (`dim` floats per row; row ids are positions).
pub(crate) fn build_graph(params: BuildParams, vectors: &[f32], dim: usize) -> GraphData {
    build_graph_from(params, vectors, dim, None, None)
}

/// Builds the graph over `vectors`, keeping the links of `seed`'s rows and inserting the
/// others into it. A seed that does not fit the rows (wrong length, a position out of range
/// or repeated) is ignored: the graph is then built from nothing. With a `throttle` (and
/// `params.parallel`), only the pool's first thread inserts while the throttle is closed.
pub(crate) fn build_graph_from(
    params: BuildParams,
    vectors: &[f32],
    dim: usize,
    seed: Option<Seed<'_>>,
    throttle: Option<&Throttle>,
) -> GraphData {
    let rows = vectors.len().checked_div(dim).unwrap_or(0);
    let inv_norms = if params.metric == Metric::Cosine {
        vectors.chunks_exact(dim.max(1)).map(inv_norm).collect()
    } else {
        Vec::new()
    };
    if rows == 0 {
        return GraphData {
            metric: params.metric,
            rows: 0,
            entry: 0,
            layers: vec![Layer {
                offsets: vec![0],
                ..Layer::default()
            }],
            inv_norms,
        };
    }
    // Cosine graphs are built over unit vectors, where 1 − dot orders like the cosine distance
    // the frozen search computes from the raw column and the stored norms.
    let unit: Vec<f32>;
    let points = if params.metric == Metric::Cosine {
        unit = vectors.chunks_exact(dim).flat_map(normalized).collect();
        &unit[..]
    } else {
        vectors
    };
    let m = params.m.max(2);
    let mut levels: Vec<u8> = (0..rows as u32).map(|r| draw_level(r, m)).collect();
    let seed = seed.filter(|s| fits(s, rows));
    // Without a seed, row 0 is the first entry point and every other row is inserted after it.
    let mut seeded = vec![false; rows];
    seeded[0] = true;
    if let Some(seed) = seed {
        seeded = vec![false; rows];
        for &p in seed.positions {
            seeded[p as usize] = true;
            levels[p as usize] = 0;
        }
        for (l, layer) in seed.graph.layers.iter().enumerate().skip(1) {
            let l = l.min(usize::from(MAX_LEVEL)) as u8;
            for &old in &layer.members {
                levels[seed.positions[old as usize] as usize] = l;
            }
        }
    }
    let halves = Halves::new(params.metric, points, dim);
    let builder = Builder::new(params, points, dim, levels, halves);
    if let Some(seed) = seed {
        builder.plant(seed);
    }
    let pending: Vec<u32> = (0..rows as u32).filter(|&r| !seeded[r as usize]).collect();
    if let (true, Some(throttle)) = (params.parallel, throttle) {
        insert_throttled(&builder, &pending, throttle);
    } else if params.parallel {
        pending.par_iter().for_each(|&q| builder.insert(q));
    } else {
        pending.iter().for_each(|&q| builder.insert(q));
    }
    builder.finish(inv_norms)
}

/// Rows a throttled thread inserts between two looks at the throttle.
const THROTTLED_CHUNK: usize = 64;

/// Inserts `pending` on every thread of the current pool, drawing chunks from one cursor; the
/// pool's first thread always works, the others only while `throttle` is open.
fn insert_throttled(builder: &Builder<'_>, pending: &[u32], throttle: &Throttle) {
    let next = AtomicUsize::new(0);
    let done = || next.load(Ordering::Relaxed) >= pending.len();
    rayon::broadcast(|ctx| loop {
        if ctx.index() > 0 && !throttle.admit(done) {
            return;
        }
        let from = next.fetch_add(THROTTLED_CHUNK, Ordering::Relaxed);
        if from >= pending.len() {
            return;
        }
        let to = (from + THROTTLED_CHUNK).min(pending.len());
        pending[from..to].iter().for_each(|&q| builder.insert(q));
    });
}

/// Whether `seed` can start a build over `rows` rows: one position per row of its graph,
/// distinct and in range, an entry point among them, and upper layers whose members are rows.
fn fits(seed: &Seed<'_>, rows: usize) -> bool {
    let g = seed.graph;
    let old_rows = g.rows as usize;
    if old_rows == 0 || seed.positions.len() != old_rows || g.entry as usize >= old_rows {
        return false;
    }
    let mut taken = vec![false; rows];
    for &p in seed.positions {
        match taken.get_mut(p as usize) {
            Some(t) if !*t => *t = true,
            _ => return false,
        }
    }
    g.layers
        .iter()
        .skip(1)
        .all(|l| l.members.iter().all(|&r| (r as usize) < old_rows))
}

/// `1/|v|`, or 0 for a zero vector.
pub(crate) fn inv_norm(v: &[f32]) -> f32 {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        1.0 / n
    } else {
        0.0
    }
}

/// Tops `kept`, a heuristic selection from `candidates` (both closest first), up to `target`
/// links with the closest candidates the heuristic pruned, closest first again.
fn top_up(kept: &mut Vec<(f32, u32)>, candidates: &[(f32, u32)], target: usize) {
    let Some(missing) = target.checked_sub(kept.len()).filter(|&n| n > 0) else {
        return;
    };
    let pruned: Vec<(f32, u32)> = candidates
        .iter()
        .filter(|c| kept.iter().all(|k| k.1 != c.1))
        .take(missing)
        .copied()
        .collect();
    kept.extend(pruned);
    kept.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
}

/// The layer of each row: ⌊−ln(u)/ln(m)⌋ for a uniform u drawn from the row id and the seed,
/// so the draw does not depend on insertion order or thread count.
fn draw_level(row: u32, m: usize) -> u8 {
    let mut x = SEED ^ u64::from(row).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64's finalizer
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = -u.ln() / (m.max(2) as f64).ln();
    (level as u64).min(u64::from(MAX_LEVEL)) as u8
}

/// Per-thread buffers of the beam search, kept between insertions.
#[derive(Default)]
struct Scratch {
    beam: Beam,
    hood: Vec<u32>,
    /// The rows of `hood` not yet visited, whose vectors are loaded and scored.
    fresh: Vec<u32>,
    gapped: Vec<(f32, u32)>,
    /// The row being inserted, and a candidate being selected, in the form `R` scores from.
    query: Vec<f32>,
    probe: Vec<f32>,
}

/// How an insertion reads and scores rows, monomorphised into it so that every distance is
/// inlined into the search loops: the `f32` rows with a float kernel, or their halves.
trait Rows: Copy {
    /// Row `row` in the form [`Rows::distance`] scores from (in `buf` where it is converted).
    fn load<'s>(self, row: u32, buf: &'s mut Vec<f32>) -> &'s [f32]
    where
        Self: 's;
    /// From `query` (as loaded) to row `row`, in the order the frozen search ranks by:
    /// smaller is closer.
    fn distance(self, query: &[f32], row: u32) -> f32;
    /// Starts loading `rows` before they are scored.
    fn prefetch(self, rows: &[u32]);
}

/// The rows as given, scored with the float kernel `K`.
struct Floats<'p, K> {
    points: &'p [f32],
    dim: usize,
    metric: Metric,
    kernel: PhantomData<K>,
}

impl<K> Clone for Floats<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Floats<'_, K> {}

impl<'p, K: FloatKernel> Floats<'p, K> {
    fn new(b: &Builder<'p>) -> Self {
        Floats {
            points: b.points,
            dim: b.dim,
            metric: b.metric,
            kernel: PhantomData,
        }
    }
}

impl<'p, K: FloatKernel> Rows for Floats<'p, K> {
    #[inline(always)]
    fn load<'s>(self, row: u32, _: &'s mut Vec<f32>) -> &'s [f32]
    where
        Self: 's,
    {
        let at = row as usize * self.dim;
        &self.points[at..at + self.dim]
    }

    #[inline(always)]
    fn distance(self, query: &[f32], row: u32) -> f32 {
        let at = row as usize * self.dim;
        let b = &self.points[at..at + self.dim];
        match self.metric {
            Metric::L2 => K::l2(query, b),
            Metric::Ip => -K::dot(query, b),
            Metric::Cosine => 1.0 - K::dot(query, b),
        }
    }

    #[inline(always)]
    fn prefetch(self, rows: &[u32]) {
        prefetch_rows(self.points, self.dim, rows);
    }
}

/// The rows' halves: only built where the CPU has F16C, AVX2 and FMA, and only scored inside
/// code compiled with them ([`Builder::insert_half`]).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct HalfRows<'h> {
    halves: &'h Halves,
    metric: Metric,
}

#[cfg(target_arch = "x86_64")]
impl<'h> HalfRows<'h> {
    fn new(halves: &'h Halves, metric: Metric) -> Self {
        HalfRows { halves, metric }
    }
}

#[cfg(target_arch = "x86_64")]
impl Rows for HalfRows<'_> {
    #[inline(always)]
    fn load<'s>(self, row: u32, buf: &'s mut Vec<f32>) -> &'s [f32]
    where
        Self: 's,
    {
        // SAFETY: halves exist only where the CPU has F16C and AVX2, and this is inlined
        // into code compiled with them.
        unsafe { halves::widen(self.halves.row(row), buf) };
        buf
    }

    #[inline(always)]
    fn distance(self, query: &[f32], row: u32) -> f32 {
        let h = self.halves.row(row);
        if query.len() < h.len() {
            return f32::INFINITY;
        }
        // SAFETY: as in `load`; `query` was loaded from a row of the same stride.
        unsafe {
            match self.metric {
                Metric::L2 => halves::l2(query, h),
                Metric::Ip => -halves::dot(query, h),
                Metric::Cosine => 1.0 - halves::dot(query, h),
            }
        }
    }

    #[inline(always)]
    fn prefetch(self, rows: &[u32]) {
        for &r in rows {
            prefetch(self.halves.row(r));
        }
    }
}

/// [`Builder::scored_links`] from the halves, compiled with the features they need.
///
/// # Safety
/// The CPU must have F16C, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn half_gaps(
    rows: HalfRows<'_>,
    row: u32,
    links: &[u32],
    buf: &mut Vec<f32>,
) -> Vec<(f32, u32)> {
    let query = rows.load(row, buf);
    let mut out = Vec::with_capacity(links.len());
    // A loop, not `Iterator::map`: see `Builder::insert`.
    for &l in links {
        out.push((rows.distance(query, l), l));
    }
    out
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

struct Builder<'a> {
    metric: Metric,
    points: &'a [f32],
    dim: usize,
    m: usize,
    ef_construction: usize,
    levels: Vec<u8>,
    /// The rows in half precision, scored instead of `points` where the CPU and the metric
    /// allow.
    halves: Option<Halves>,
    /// Layer 0: `2m + 1` slots per row, the first holding the list's length.
    base: Vec<AtomicU32>,
    /// Upper layers of rows above layer 0: `m + 1` slots per (row, layer), from `upper_at[row]`.
    upper: Vec<AtomicU32>,
    upper_at: Vec<u32>,
    /// The distance from each row to each of its links (`f32` bits), slot for slot beside
    /// `base` and `upper`, so that linking back to a full list costs one distance instead of
    /// one per link. Read and written only under the row's lock.
    base_gaps: Vec<AtomicU32>,
    upper_gaps: Vec<AtomicU32>,
    locks: Vec<Mutex<()>>,
    /// The entry point and its layer.
    entry: Mutex<(u32, u8)>,
}

impl<'a> Builder<'a> {
    /// A builder with no links yet; `levels` is each row's top layer.
    fn new(
        params: BuildParams,
        points: &'a [f32],
        dim: usize,
        levels: Vec<u8>,
        halves: Option<Halves>,
    ) -> Self {
        let m = params.m.max(2);
        let rows = levels.len();
        let mut upper_at = Vec::with_capacity(rows);
        let mut upper_len = 0u32;
        for &l in &levels {
            upper_at.push(upper_len);
            upper_len += u32::from(l) * (m as u32 + 1);
        }
        let atomics = |n: usize| (0..n).map(|_| AtomicU32::new(0)).collect::<Vec<_>>();
        Builder {
            metric: params.metric,
            points,
            dim,
            m,
            ef_construction: params.ef_construction.max(1),
            base: atomics(rows * (2 * m + 1)),
            upper: atomics(upper_len as usize),
            base_gaps: atomics(rows * (2 * m + 1)),
            upper_gaps: atomics(upper_len as usize),
            upper_at,
            locks: (0..rows).map(|_| Mutex::new(())).collect(),
            entry: Mutex::new((0, levels[0])),
            levels,
            halves,
        }
    }

    #[inline]
    fn point(&self, row: u32) -> &[f32] {
        let at = row as usize * self.dim;
        &self.points[at..at + self.dim]
    }

    /// Smaller is closer: the order the frozen search ranks by.
    #[inline]
    fn distance(&self, a: &[f32], b: &[f32]) -> f32 {
        match self.metric {
            Metric::L2 => l2_squared(a, b),
            Metric::Ip => -dot(a, b),
            Metric::Cosine => 1.0 - dot(a, b),
        }
    }

    /// Each of `links` with its distance from `row` as insertion scores it: from the halves
    /// where the build uses them (`row` widened once), so that every distance a list keeps
    /// compares with the others.
    fn scored_links(&self, row: u32, links: &[u32], buf: &mut Vec<f32>) -> Vec<(f32, u32)> {
        #[cfg(target_arch = "x86_64")]
        if let Some(halves) = &self.halves {
            // SAFETY: halves exist only where the CPU has F16C, AVX2 and FMA.
            return unsafe { half_gaps(HalfRows::new(halves, self.metric), row, links, buf) };
        }
        let _ = buf;
        let from = self.point(row);
        links
            .iter()
            .map(|&l| (self.distance(from, self.point(l)), l))
            .collect()
    }

    /// How many links a new row gets: under L2 `m` (hnswlib); under cosine and inner product
    /// as many as it may keep (hnsw_rs). Measured on the GloVe fixture (recall@10 at ef 32):
    /// `m` costs L2 nothing, but cosine fell from 0.948 to 0.933 and inner product, where the
    /// heuristic spreads links badly, from 0.955 to 0.935.
    fn links_of_new_row(&self, layer: usize) -> usize {
        if self.metric == Metric::L2 {
            self.m
        } else {
            self.capacity(layer)
        }
    }

    /// How many links a row keeps on `layer`: `m`, and `2m` on layer 0.
    fn capacity(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// The slots of `row`'s list on `layer`: length first, then the links.
    fn slots(&self, row: u32, layer: usize) -> &[AtomicU32] {
        self.span(&self.base, &self.upper, row, layer)
    }

    /// The distances beside [`Builder::slots`] (the first slot unused).
    fn gaps(&self, row: u32, layer: usize) -> &[AtomicU32] {
        self.span(&self.base_gaps, &self.upper_gaps, row, layer)
    }

    fn span<'s>(
        &self,
        base: &'s [AtomicU32],
        upper: &'s [AtomicU32],
        row: u32,
        layer: usize,
    ) -> &'s [AtomicU32] {
        if layer == 0 {
            let w = 2 * self.m + 1;
            &base[row as usize * w..(row as usize + 1) * w]
        } else {
            let w = self.m + 1;
            let at = self.upper_at[row as usize] as usize + (layer - 1) * w;
            &upper[at..at + w]
        }
    }

    /// Copies `row`'s links on `layer` into `out`.
    fn read_links(&self, row: u32, layer: usize, out: &mut Vec<u32>) {
        let slots = self.slots(row, layer);
        let len = (slots[0].load(Ordering::Acquire) as usize).min(slots.len() - 1);
        out.clear();
        out.extend(slots[1..=len].iter().map(|s| s.load(Ordering::Relaxed)));
    }

    /// Replaces `row`'s links on `layer` with `links`, each with its distance from `row`
    /// (the caller holds `row`'s lock).
    fn write_links(&self, row: u32, layer: usize, links: &[(f32, u32)]) {
        let (slots, gaps) = (self.slots(row, layer), self.gaps(row, layer));
        let len = links.len().min(slots.len() - 1);
        for ((slot, gap), &(d, l)) in slots[1..=len].iter().zip(&gaps[1..=len]).zip(links) {
            slot.store(l, Ordering::Relaxed);
            gap.store(d.to_bits(), Ordering::Relaxed);
        }
        slots[0].store(len as u32, Ordering::Release);
    }

    /// `row`'s links on `layer` with their distances (the caller holds `row`'s lock).
    fn read_gapped(&self, row: u32, layer: usize, out: &mut Vec<(f32, u32)>) {
        let (slots, gaps) = (self.slots(row, layer), self.gaps(row, layer));
        let len = (slots[0].load(Ordering::Acquire) as usize).min(slots.len() - 1);
        out.clear();
        out.extend(slots[1..=len].iter().zip(&gaps[1..=len]).map(|(s, g)| {
            (
                f32::from_bits(g.load(Ordering::Relaxed)),
                s.load(Ordering::Relaxed),
            )
        }));
    }

    /// Copies `seed`'s links (renumbered to their new rows, cut to the lists' capacities) and
    /// takes its entry point. Lists longer than a capacity come from an orphan repair, whose
    /// links are the last ones: `finish` repairs again what cutting them undoes.
    fn plant(&self, seed: Seed<'_>) {
        let (mut renumbered, mut buf) = (Vec::new(), Vec::new());
        let mut renumber = |new: u32, links: &[u32], cap: usize| -> Vec<(f32, u32)> {
            renumbered.clear();
            renumbered.extend(
                links
                    .iter()
                    .filter_map(|&l| seed.positions.get(l as usize).copied())
                    .take(cap),
            );
            self.scored_links(new, &renumbered, &mut buf)
        };
        for (l, layer) in seed.graph.layers.iter().enumerate() {
            if l > usize::from(MAX_LEVEL) {
                break;
            }
            let rows: Box<dyn Iterator<Item = (usize, u32)>> = if l == 0 {
                Box::new((0..seed.positions.len()).map(|old| (old, old as u32)))
            } else {
                Box::new(layer.members.iter().copied().enumerate())
            };
            for (slot, old) in rows {
                let (Some(&a), Some(&b)) = (layer.offsets.get(slot), layer.offsets.get(slot + 1))
                else {
                    continue;
                };
                let links = layer.neighbors.get(a as usize..b as usize).unwrap_or(&[]);
                let new = seed.positions[old as usize];
                self.write_links(new, l, &renumber(new, links, self.capacity(l)));
            }
        }
        let entry = seed.positions[seed.graph.entry as usize];
        *self.entry.lock() = (entry, self.levels[entry as usize]);
    }

    /// Inserts row `q`, with the distance kernels inlined into the search loops. The
    /// thread's scratch is taken here: code that scores must not run inside a closure handed
    /// to a generic function (`LocalKey::with`, `Iterator::all`), which is compiled without
    /// the caller's target features — there, `mul_add` became a library call per component
    /// and the build ran four times slower.
    fn insert(&self, q: u32) {
        SCRATCH.with(|s| {
            let s = &mut *s.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            if let Some(halves) = &self.halves {
                // SAFETY: halves exist only where the CPU has F16C, AVX2 and FMA.
                unsafe { self.insert_half(q, HalfRows::new(halves, self.metric), s) };
                return;
            }
            #[cfg(target_arch = "x86_64")]
            if avx2_fma() {
                // SAFETY: the CPU was checked to support AVX2 and FMA.
                unsafe { self.insert_fused(q, s) };
                return;
            }
            self.insert_with(q, Floats::<PlainFloats>::new(self), s);
        });
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn insert_fused(&self, q: u32, s: &mut Scratch) {
        self.insert_with(q, Floats::<FusedFloats>::new(self), s);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn insert_half(&self, q: u32, rows: HalfRows<'_>, s: &mut Scratch) {
        self.insert_with(q, rows, s);
    }

    #[inline(always)]
    fn insert_with<R: Rows>(&self, q: u32, rows: R, s: &mut Scratch) {
        let level = self.levels[q as usize];
        let (entry, top) = *self.entry.lock();
        let mut loaded = std::mem::take(&mut s.query);
        let query = rows.load(q, &mut loaded);
        let mut cur = entry;
        let mut cur_d = rows.distance(query, cur);
        for layer in (usize::from(level) + 1..=usize::from(top)).rev() {
            (cur, cur_d) = self.greedy(rows, query, cur, cur_d, layer, &mut s.hood);
        }
        // Every list of `q` is written before any row links back to it: a concurrent
        // insertion that reaches `q` must find its lower layers filled, or it would take
        // `q` as a dead end and link only to the few rows around it (seen as clusters of
        // rows inserted together, linked to each other across the space, unfindable by
        // their own vectors). A search for `q` never reads `q`'s own lists, so this order
        // builds the same graph as linking back layer by layer.
        let mut chosen = Vec::with_capacity(usize::from(level.min(top)) + 1);
        for layer in (0..=usize::from(level.min(top))).rev() {
            let found = self.search_layer(rows, query, (cur_d, cur), layer, s);
            if let Some(&(d, r)) = found.first() {
                (cur_d, cur) = (d, r);
            }
            let links = self.select(rows, found, self.links_of_new_row(layer), &mut s.probe);
            chosen.push((layer, links));
        }
        s.query = loaded;
        {
            let _own = self.locks[q as usize].lock();
            for (layer, links) in &chosen {
                self.write_links(q, *layer, links);
            }
        }
        for (layer, links) in &chosen {
            for &(d, nb) in links {
                self.link_back(rows, nb, q, d, *layer, s);
            }
        }
        if level > top {
            let mut e = self.entry.lock();
            if level > e.1 {
                *e = (q, level);
            }
        }
    }

    /// Walks `layer` greedily towards `query`.
    #[inline(always)]
    fn greedy<R: Rows>(
        &self,
        rows: R,
        query: &[f32],
        mut cur: u32,
        mut cur_d: f32,
        layer: usize,
        hood: &mut Vec<u32>,
    ) -> (u32, f32) {
        loop {
            let mut moved = false;
            self.read_links(cur, layer, hood);
            for &nb in hood.iter() {
                let d = rows.distance(query, nb);
                if d < cur_d {
                    (cur, cur_d, moved) = (nb, d, true);
                }
            }
            if !moved {
                return (cur, cur_d);
            }
        }
    }

    /// The `ef_construction` rows closest to `query` on `layer` found from `start`, closest
    /// first.
    #[inline(always)]
    fn search_layer<R: Rows>(
        &self,
        rows: R,
        query: &[f32],
        start: (f32, u32),
        layer: usize,
        s: &mut Scratch,
    ) -> Vec<(f32, u32)> {
        let Scratch {
            beam, hood, fresh, ..
        } = s;
        beam.reset(self.ef_construction);
        let mut visited = visited_for(self.levels.len());
        visited.insert(start.1);
        beam.push(start.0, start.1);
        while let Some(row) = beam.next() {
            // The next candidate's list loads while this one's neighbours are scored.
            if let Some(next) = beam.peek() {
                prefetch(self.slots(next, layer));
            }
            self.read_links(row, layer, hood);
            // Only unvisited rows are loaded: prefetching every neighbour filled the CPU's
            // few line-fill buffers with rows already scored.
            fresh.clear();
            fresh.extend(hood.iter().copied().filter(|&nb| visited.insert(nb)));
            rows.prefetch(fresh);
            for &nb in fresh.iter() {
                beam.push(rows.distance(query, nb), nb);
            }
        }
        beam.found()
    }

    /// The neighbour-selection heuristic over `candidates` (closest first): a candidate is
    /// kept when it is closer to the target than to every row kept before it, which spreads
    /// links over directions instead of spending them all on one cluster.
    #[inline(always)]
    fn select<R: Rows>(
        &self,
        rows: R,
        candidates: Vec<(f32, u32)>,
        max: usize,
        probe: &mut Vec<f32>,
    ) -> Vec<(f32, u32)> {
        if candidates.len() <= max {
            return candidates;
        }
        let mut kept: Vec<(f32, u32)> = Vec::with_capacity(max);
        for (d, c) in candidates {
            if kept.len() >= max {
                break;
            }
            let pc = rows.load(c, probe);
            // A loop, not `Iterator::all`: see `Builder::insert`.
            let mut diverse = true;
            for &(_, k) in &kept {
                if rows.distance(pc, k) < d {
                    diverse = false;
                    break;
                }
            }
            if diverse {
                kept.push((d, c));
            }
        }
        kept
    }

    /// Adds `q` to `row`'s links on `layer`. A full L2 list is re-selected with the heuristic
    /// (hnswlib). A full cosine list too, then topped up to three quarters of its capacity
    /// with the closest rows the heuristic pruned (hnswlib's "keep pruned connections", made
    /// cheaper): the heuristic alone spreads links and lifts recall where it is ≥ 0.95, but
    /// thins the lists and loses at small ef; dropping the farthest row (hnsw_rs) keeps dense
    /// lists that miss whole directions on wider vectors. Measured, recall@10 on GloVe-100
    /// 100k at ef 128: dropping 0.944, heuristic 0.958, topped up 0.958; on the 10k GloVe-50
    /// fixture at ef 32: 0.945 / 0.934 / 0.942. Topping up to the full capacity found a little
    /// more (0.961, 0.945) but re-selects on every later link and cost 40-60 % of the build;
    /// three quarters leaves room for several links before the next re-selection (≈ +10 %,
    /// and GloVe-50 at ef 64 gains ≈ 0.002). A full
    /// inner-product list drops its farthest row: inner product is not a metric, and the
    /// heuristic's triangle argument does not hold there.
    #[inline(always)]
    fn link_back<R: Rows>(&self, rows: R, row: u32, q: u32, d: f32, layer: usize, s: &mut Scratch) {
        let hood = &mut s.gapped;
        let _lock = self.locks[row as usize].lock();
        self.read_gapped(row, layer, hood);
        if hood.iter().any(|&(_, r)| r == q) {
            return;
        }
        let cap = self.capacity(layer);
        if hood.len() < cap {
            hood.push((d, q));
            self.write_links(row, layer, hood);
            return;
        }
        if self.metric != Metric::Ip {
            hood.push((d, q));
            hood.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut kept = self.select(rows, hood.clone(), cap, &mut s.probe);
            if self.metric == Metric::Cosine {
                top_up(&mut kept, hood, cap - cap / 4);
            }
            self.write_links(row, layer, &kept);
            return;
        }
        // Keep the `cap` closest: `q` takes the farthest link's slot if it is closer.
        let order = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        let farthest = hood
            .iter()
            .enumerate()
            .max_by(|a, b| order(a.1, b.1))
            .map(|(i, &far)| (i, far));
        if let Some((i, far)) = farthest {
            if order(&(d, q), &far).is_lt() {
                hood[i] = (d, q);
                self.write_links(row, layer, hood);
            }
        }
    }

    /// The graph in frozen form, with every row made reachable on layer 0.
    fn finish(self, inv_norms: Vec<f32>) -> GraphData {
        let rows = self.levels.len();
        let (entry, top) = *self.entry.lock();
        let mut hood = Vec::new();
        let mut layer0: Vec<Vec<u32>> = (0..rows as u32)
            .map(|r| {
                self.read_links(r, 0, &mut hood);
                hood.clone()
            })
            .collect();
        connect_orphans(&mut layer0, entry as usize, self.capacity(0));
        let mut layers = Vec::with_capacity(usize::from(top) + 1);
        let mut base = Layer {
            offsets: Vec::with_capacity(rows + 1),
            ..Layer::default()
        };
        base.offsets.push(0);
        for links in &layer0 {
            base.neighbors.extend_from_slice(links);
            base.offsets.push(base.neighbors.len() as u32);
        }
        layers.push(base);
        for l in 1..=usize::from(top) {
            let mut layer = Layer {
                offsets: vec![0],
                ..Layer::default()
            };
            for r in 0..rows as u32 {
                if usize::from(self.levels[r as usize]) < l {
                    continue;
                }
                layer.members.push(r);
                self.read_links(r, l, &mut hood);
                layer.neighbors.extend_from_slice(&hood);
                layer.offsets.push(layer.neighbors.len() as u32);
            }
            layers.push(layer);
        }
        GraphData {
            metric: self.metric,
            rows: rows as u32,
            entry,
            layers,
            inv_norms,
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::index::frozen::FrozenGraph;
    use crate::index::live::LiveGraph;
    use crate::storage::Mapped;

    const M: usize = 16;
    const EF_CONSTRUCTION: usize = 100;

    fn fvecs(name: &str) -> (Vec<f32>, usize) {
        let path = format!("{}/data-fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let rows = crate::dataset::read_fvecs(&path).unwrap();
        let dim = rows[0].len();
        (rows.concat(), dim)
    }

    fn open(data: &GraphData, metric: Metric) -> FrozenGraph {
        let bytes = data.encode();
        match FrozenGraph::open(Mapped::from_bytes(&bytes), metric, data.rows as usize) {
            Ok(g) => g,
            Err((at, reason)) => panic!("graph does not open: {reason} at {at}"),
        }
    }

    /// The `k` best rows by brute force, under the frozen search's ranking.
    fn exact(metric: Metric, base: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<u32> {
        let qn = inv_norm(q);
        let mut all: Vec<(f32, u32)> = base
            .chunks_exact(dim)
            .enumerate()
            .map(|(r, v)| {
                let d = match metric {
                    Metric::L2 => l2_squared(q, v),
                    Metric::Ip => -dot(q, v),
                    Metric::Cosine => 1.0 - dot(q, v) * qn * inv_norm(v),
                };
                (d, r as u32)
            })
            .collect();
        all.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
        all.truncate(k);
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.into_iter().map(|(_, r)| r).collect()
    }

    /// Each query with its exact top 10 under `metric`.
    fn exact_top10<'q>(
        metric: Metric,
        base: &[f32],
        dim: usize,
        queries: &'q [f32],
    ) -> Vec<(&'q [f32], Vec<u32>)> {
        queries
            .chunks_exact(dim)
            .map(|q| (q, exact(metric, base, dim, q, 10)))
            .collect()
    }

    /// The tests' build parameters, on one thread (the same graph on every run).
    fn one_thread(metric: Metric) -> BuildParams {
        BuildParams {
            metric,
            m: M,
            ef_construction: EF_CONSTRUCTION,
            parallel: false,
        }
    }

    fn recall(
        g: &FrozenGraph,
        base: &[f32],
        dim: usize,
        truth: &[(&[f32], Vec<u32>)],
        ef: usize,
    ) -> f64 {
        let hits: usize = truth
            .iter()
            .map(|(q, best)| {
                g.search(base, dim, q, 10, ef, None)
                    .iter()
                    .filter(|(_, r)| best.contains(r))
                    .count()
            })
            .sum();
        hits as f64 / (10 * truth.len()) as f64
    }

    /// Rows searched with their own vector whose best match (themselves, or under inner
    /// product their exact best) is not the first hit at ef 64.
    fn self_misses(g: &FrozenGraph, base: &[f32], dim: usize, metric: Metric) -> usize {
        (0..base.len() / dim)
            .filter(|&r| {
                let v = &base[r * dim..(r + 1) * dim];
                let best = match metric {
                    Metric::Ip => exact(metric, base, dim, v, 1)[0],
                    _ => r as u32,
                };
                g.search(base, dim, v, 1, 64, None).first().map(|h| h.1) != Some(best)
            })
            .count()
    }

    /// Rows no layer-0 walk from the entry point reaches.
    fn unreachable(g: &GraphData) -> usize {
        let l0 = &g.layers[0];
        let mut seen = vec![false; g.rows as usize];
        let mut stack = vec![g.entry];
        while let Some(r) = stack.pop() {
            if std::mem::replace(&mut seen[r as usize], true) {
                continue;
            }
            let (a, b) = (
                l0.offsets[r as usize] as usize,
                l0.offsets[r as usize + 1] as usize,
            );
            stack.extend(l0.neighbors[a..b].iter().filter(|&&n| !seen[n as usize]));
        }
        seen.iter().filter(|s| !**s).count()
    }

    /// On the GloVe fixture, for every metric: our graph finds at least what hnsw_rs's finds
    /// with the same m / ef_construction (within 0.005), every row is reachable, and rows
    /// searched with their own vector find their best match about as often.
    #[test]
    fn our_graph_matches_hnsw_rs_recall_and_reaches_every_row() {
        let (base, dim) = fvecs("glove50-10000.base.fvecs");
        let (queries, _) = fvecs("glove50.query.fvecs");
        let rows = base.len() / dim;
        for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
            let truth = exact_top10(metric, &base, dim, &queries);
            let t = Instant::now();
            // One thread: our side of the comparison is the same graph on every run.
            let data = build_graph(one_thread(metric), &base, dim);
            let ours_s = t.elapsed().as_secs_f64();
            assert_eq!(unreachable(&data), 0, "{metric:?}");
            let ours = open(&data, metric);
            assert_eq!(ours.sanity(M), Vec::new(), "{metric:?}");
            let t = Instant::now();
            let live = LiveGraph::new(metric, M, EF_CONSTRUCTION, rows);
            // Sequential insertion: hnsw_rs seeds its layer draws, so both graphs compared are
            // the same on every run and the comparison cannot flake.
            live.add_rows(0, &base, dim, false);
            let hnsw_rs_s = t.elapsed().as_secs_f64();
            let theirs = open(&live.extract(&base, dim), metric);
            assert_eq!(theirs.sanity(M), Vec::new(), "{metric:?} (hnsw_rs)");
            eprintln!("{metric:?}: built in {ours_s:.2} s, hnsw_rs {hnsw_rs_s:.2} s");
            for ef in [32, 64, 128] {
                let (a, b) = (
                    recall(&ours, &base, dim, &truth, ef),
                    recall(&theirs, &base, dim, &truth, ef),
                );
                eprintln!("{metric:?} ef {ef}: recall@10 ours {a:.4}, hnsw_rs {b:.4}");
                assert!(a >= b - 0.005, "{metric:?} ef {ef}: ours {a} < hnsw_rs {b}");
            }
            let (a, b) = (
                self_misses(&ours, &base, dim, metric),
                self_misses(&theirs, &base, dim, metric),
            );
            eprintln!("{metric:?}: rows missing their best match at ef 64: ours {a}, hnsw_rs {b}");
            assert!(
                a <= b + rows / 200,
                "{metric:?}: ours misses {a} rows, hnsw_rs {b}"
            );
        }
    }

    /// The packed walk (quantised codes beside each list, re-ranked exactly) finds what the
    /// mapped walk finds, for every metric: recall within 0.01 at ef 32/64/128, rows find
    /// themselves as often, and at ef ≥ rows the answer is the exact one.
    #[test]
    fn a_packed_walk_finds_what_the_mapped_walk_finds() {
        let (base, dim) = fvecs("glove50-10000.base.fvecs");
        let (queries, _) = fvecs("glove50.query.fvecs");
        let rows = base.len() / dim;
        for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
            let truth = exact_top10(metric, &base, dim, &queries);
            let data = build_graph(one_thread(metric), &base, dim);
            let mapped = open(&data, metric);
            let packed = open(&data, metric);
            packed.pack(&base, dim);
            assert!(packed.packed_bytes() > 0, "{metric:?}: not packed");
            assert_eq!(mapped.packed_bytes(), 0);
            for ef in [32, 64, 128] {
                let (a, b) = (
                    recall(&packed, &base, dim, &truth, ef),
                    recall(&mapped, &base, dim, &truth, ef),
                );
                eprintln!("{metric:?} ef {ef}: recall@10 packed {a:.4}, mapped {b:.4}");
                assert!(a >= b - 0.01, "{metric:?} ef {ef}: packed {a} < mapped {b}");
            }
            let (a, b) = (
                self_misses(&packed, &base, dim, metric),
                self_misses(&mapped, &base, dim, metric),
            );
            assert!(
                a <= b + rows / 200,
                "{metric:?}: packed misses {a}, mapped {b}"
            );
            for (q, best) in truth.iter().take(20) {
                let got: Vec<u32> = packed
                    .search(&base, dim, q, 10, rows, None)
                    .into_iter()
                    .map(|h| h.1)
                    .collect();
                assert_eq!(&got, best, "{metric:?}: ef = rows is not exact");
            }
        }
    }

    /// The re-rank skips rows whose code distance, less the codes' error bound, is past the
    /// k-th exact distance: that must never skip a true neighbour, also where the bound is
    /// dominated by rounding (L2 far from the origin, where `|q|² − 2·dot + |v|²` cancels) and
    /// where the dimension is not a multiple of the kernel's eight lanes (padded codes).
    #[test]
    fn the_packed_re_rank_skips_no_true_neighbour() {
        let (glove, full) = fvecs("glove50-10000.base.fvecs");
        let (queries, _) = fvecs("glove50.query.fvecs");
        let rows = 1500;
        for (dim, offset) in [(50, 0.0f32), (13, 0.0), (50, 1000.0), (13, 1000.0)] {
            let cut = |v: &[f32], n: usize| -> Vec<f32> {
                v.chunks_exact(full)
                    .take(n)
                    .flat_map(|r| r[..dim].iter().map(|x| x + offset))
                    .collect()
            };
            let (base, qs) = (cut(&glove, rows), cut(&queries, 20));
            // Far from the origin only L2 keeps distinct distances (inner products and cosines
            // of nearly parallel vectors tie, and ties may be ordered either way here).
            let metrics: &[Metric] = if offset == 0.0 {
                &[Metric::L2, Metric::Ip, Metric::Cosine]
            } else {
                &[Metric::L2]
            };
            for &metric in metrics {
                let data = build_graph(one_thread(metric), &base, dim);
                let packed = open(&data, metric);
                packed.pack(&base, dim);
                assert!(packed.packed_bytes() > 0);
                for q in qs.chunks_exact(dim) {
                    let got: Vec<u32> = packed
                        .search(&base, dim, q, 10, rows, None)
                        .into_iter()
                        .map(|h| h.1)
                        .collect();
                    let want = exact(metric, &base, dim, q, 10);
                    assert_eq!(got, want, "{metric:?}, {dim}-d, offset {offset}");
                }
            }
        }
    }

    /// One thread, the same rows: the same file, byte for byte.
    #[test]
    fn a_single_thread_build_is_reproducible() {
        let (base, dim) = fvecs("glove50-10000.base.fvecs");
        let base = &base[..2000 * dim];
        for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
            let params = BuildParams {
                metric,
                m: 8,
                ef_construction: 64,
                parallel: false,
            };
            let a = build_graph(params, base, dim).encode();
            let b = build_graph(params, base, dim).encode();
            assert!(a == b, "{metric:?}: two builds differ");
            assert_eq!(unreachable(&build_graph(params, base, dim)), 0);
        }
    }

    /// A build that starts from a graph over 80 % of the rows, placed at scattered new
    /// positions, finds what a build from nothing finds and reaches every row; a seed that
    /// does not fit is ignored.
    #[test]
    fn a_seeded_build_matches_a_build_from_nothing() {
        let (base, dim) = fvecs("glove50-10000.base.fvecs");
        let (queries, _) = fvecs("glove50.query.fvecs");
        let metric = Metric::Cosine;
        let truth = exact_top10(metric, &base, dim, &queries);
        let params = one_thread(metric);
        let kept: Vec<u32> = (0..(base.len() / dim) as u32)
            .filter(|r| r % 5 != 0)
            .collect();
        let subset: Vec<f32> = kept
            .iter()
            .flat_map(|&r| {
                base[r as usize * dim..(r as usize + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect();
        let old = build_graph(params, &subset, dim);
        let seed = Seed {
            graph: &old,
            positions: &kept,
        };
        let seeded = build_graph_from(params, &base, dim, Some(seed), None);
        assert_eq!(unreachable(&seeded), 0);
        let whole = build_graph(params, &base, dim);
        let (a, b) = (open(&seeded, metric), open(&whole, metric));
        assert_eq!(a.sanity(M), Vec::new());
        for ef in [32, 64, 128] {
            let (ra, rb) = (
                recall(&a, &base, dim, &truth, ef),
                recall(&b, &base, dim, &truth, ef),
            );
            eprintln!("ef {ef}: recall@10 seeded {ra:.4}, from nothing {rb:.4}");
            assert!(ra >= rb - 0.01, "ef {ef}: seeded {ra} < from nothing {rb}");
        }
        assert_eq!(self_misses(&a, &base, dim, metric), 0);
        // Positions that repeat, or point past the rows, are not a seed.
        let mut repeated = kept.clone();
        repeated[1] = repeated[0];
        let mut beyond = kept.clone();
        beyond[0] = 10_000;
        for positions in [&repeated, &beyond] {
            let seed = Seed {
                graph: &old,
                positions,
            };
            assert!(build_graph_from(params, &base, dim, Some(seed), None) == whole);
        }
    }

    /// Edge cases: no rows, one row, all rows equal, zero vectors under cosine.
    #[test]
    fn degenerate_inputs_give_valid_graphs() {
        let dim = 4;
        let cases: Vec<(Metric, Vec<f32>)> = vec![
            (Metric::L2, Vec::new()),
            (Metric::L2, vec![1.0; dim]),
            (Metric::L2, vec![0.5; 300 * dim]),
            (Metric::Cosine, vec![0.0; 50 * dim]),
            (Metric::Ip, (0..100 * dim).map(|i| (i % 7) as f32).collect()),
        ];
        for (metric, base) in cases {
            let params = BuildParams {
                metric,
                m: 4,
                ef_construction: 16,
                parallel: true,
            };
            let data = build_graph(params, &base, dim);
            let rows = base.len() / dim;
            let g = open(&data, metric);
            // What `verify` checks: degree bounds and reachability.
            assert_eq!(g.sanity(4), Vec::new(), "{metric:?} {rows} rows");
            if rows > 0 {
                assert_eq!(unreachable(&data), 0, "{metric:?} {rows} rows");
                let hits = g.search(&base, dim, &base[..dim], 10, rows, None);
                assert_eq!(hits.len(), rows.min(10), "{metric:?} {rows} rows");
            }
        }
    }
}

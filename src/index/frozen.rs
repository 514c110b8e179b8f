//! Frozen HNSW graphs: the graph hnsw_rs built, extracted into a compact file we own
//! (`<field>.<block>.graph`, layout in `docs/FORMAT.md`), memory-mapped on open and searched by
//! our own beam search.
//!
//! The file holds only the graph (per-layer CSR adjacency with `u32` row ids, and for cosine
//! the inverse norm of every row): the vectors themselves are the segment's forward-store
//! column, so no vector is kept twice in memory.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::marker::PhantomData;
use std::ops::Range;

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use super::distance::FusedCodes;
use super::distance::{dot, l2_squared, CodeKernel, PlainCodes};
use super::packed::{PackedLevel0, PackedQuery};
use super::visited::visited_for;
use crate::schema::Metric;
use crate::storage::Mapped;

const MAGIC: &[u8; 8] = b"SVGRAPH\x1a";
const VERSION: u32 = 1;
const HEADER: usize = 64;
const ENTRY: usize = 24;
const ALIGN: usize = 64;
/// Rows of the re-rank whose exact vectors are prefetched beyond the k first.
const RERANK_AHEAD: usize = 4;

/// One layer in CSR form. Layer 0 lists every row (`members` empty); upper layers list their
/// member rows, sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Layer {
    pub(crate) members: Vec<u32>,
    pub(crate) offsets: Vec<u32>,
    pub(crate) neighbors: Vec<u32>,
}

/// A graph in owned form, as extracted from hnsw_rs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphData {
    pub(crate) metric: Metric,
    pub(crate) rows: u32,
    pub(crate) entry: u32,
    pub(crate) layers: Vec<Layer>,
    /// `1/|v|` per row (cosine only; 0 for a zero vector).
    pub(crate) inv_norms: Vec<f32>,
}

fn metric_code(m: Metric) -> u32 {
    match m {
        Metric::L2 => 0,
        Metric::Ip => 1,
        Metric::Cosine => 2,
    }
}

fn metric_of(code: u32) -> Option<Metric> {
    [Metric::L2, Metric::Ip, Metric::Cosine]
        .into_iter()
        .find(|&m| metric_code(m) == code)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl GraphData {
    /// The sections in file order.
    fn sections(&self) -> Vec<&[u8]> {
        let mut s: Vec<&[u8]> = vec![bytemuck::cast_slice(&self.inv_norms)];
        for layer in &self.layers {
            s.push(bytemuck::cast_slice(&layer.members));
            s.push(bytemuck::cast_slice(&layer.offsets));
            s.push(bytemuck::cast_slice(&layer.neighbors));
        }
        s
    }

    /// The bytes of a `.graph` file (little-endian; the engine refuses big-endian hosts).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let sections = self.sections();
        let table_len = sections.len() * ENTRY;
        let mut offset = (HEADER + table_len).next_multiple_of(ALIGN);
        let mut table = Vec::with_capacity(table_len);
        let mut placed = Vec::new();
        for s in &sections {
            table.extend_from_slice(&(offset as u64).to_le_bytes());
            table.extend_from_slice(&(s.len() as u64).to_le_bytes());
            put_u32(&mut table, crc32c::crc32c(s));
            put_u32(&mut table, 0);
            placed.push(offset);
            offset = (offset + s.len()).next_multiple_of(ALIGN);
        }
        let mut out = Vec::with_capacity(offset);
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, VERSION);
        put_u32(&mut out, metric_code(self.metric));
        put_u32(&mut out, self.rows);
        put_u32(&mut out, self.layers.len() as u32);
        put_u32(&mut out, self.entry);
        put_u32(&mut out, sections.len() as u32);
        put_u32(&mut out, crc32c::crc32c(&table));
        out.resize(HEADER - 4, 0);
        let crc = crc32c::crc32c(&out);
        put_u32(&mut out, crc);
        out.extend_from_slice(&table);
        for (s, at) in sections.iter().zip(placed) {
            out.resize(at, 0);
            out.extend_from_slice(s);
        }
        out
    }
}

/// Where a layer's three arrays are in the file.
#[derive(Debug, Clone)]
struct LayerRanges {
    members: Range<usize>,
    offsets: Range<usize>,
    neighbors: Range<usize>,
}

/// A checked, memory-mapped graph.
#[derive(Debug)]
pub(crate) struct FrozenGraph {
    bytes: Mapped,
    metric: Metric,
    rows: u32,
    entry: u32,
    inv_norms: Range<usize>,
    layers: Vec<LayerRanges>,
    /// Layer 0 packed for the walk, once [`FrozenGraph::pack`] ran (`None` inside: the lists
    /// did not fit the packed degree, which `open`'s checks make impossible).
    packed: OnceLock<Option<PackedLevel0>>,
}

impl FrozenGraph {
    /// Checks every header field, section checksum and row id, so that search can never index
    /// out of bounds. `Err` says what is wrong, at which offset.
    pub(crate) fn open(bytes: Mapped, metric: Metric, rows: usize) -> Result<Self, (u64, String)> {
        if cfg!(target_endian = "big") {
            return Err((0, "graph files are little-endian; this host is not".into()));
        }
        let b: &[u8] = &bytes;
        if b.len() < HEADER {
            return Err((
                0,
                format!("file is {} bytes, shorter than its header", b.len()),
            ));
        }
        if &b[0..8] != MAGIC {
            return Err((0, "bad magic".into()));
        }
        if get_u32(b, HEADER - 4) != crc32c::crc32c(&b[..HEADER - 4]) {
            return Err((HEADER as u64 - 4, "header checksum mismatch".into()));
        }
        if b[36..HEADER - 4].iter().any(|&x| x != 0) {
            return Err((36, "reserved header bytes are not zero".into()));
        }
        if get_u32(b, 8) != VERSION {
            return Err((
                8,
                format!("unsupported graph format version {}", get_u32(b, 8)),
            ));
        }
        if metric_of(get_u32(b, 12)) != Some(metric) {
            return Err((12, "graph was built for another metric".into()));
        }
        let n = get_u32(b, 16);
        if n as usize != rows {
            return Err((16, format!("graph covers {n} rows, the segment has {rows}")));
        }
        let nlayers = get_u32(b, 20) as usize;
        let entry = get_u32(b, 24);
        let nsections = get_u32(b, 28) as usize;
        if nlayers == 0 || nlayers > 64 || nsections != 1 + 3 * nlayers || (n > 0 && entry >= n) {
            return Err((20, "inconsistent layer, section or entry fields".into()));
        }
        let table = b
            .get(HEADER..HEADER + nsections * ENTRY)
            .ok_or((HEADER as u64, "section table runs past the end".to_string()))?;
        if crc32c::crc32c(table) != get_u32(b, 32) {
            return Err((HEADER as u64, "section table checksum mismatch".into()));
        }
        let mut ranges = Vec::with_capacity(nsections);
        for i in 0..nsections {
            let e = i * ENTRY;
            let (off, len) = (get_u64(table, e) as usize, get_u64(table, e + 8) as usize);
            let at = (HEADER + e) as u64;
            let section = off
                .checked_add(len)
                .and_then(|end| b.get(off..end))
                .ok_or((at, format!("section {i} runs past the end of the file")))?;
            if get_u32(table, e + 20) != 0 {
                return Err((at + 20, format!("section {i}'s reserved word is not zero")));
            }
            if off % ALIGN != 0 || len % 4 != 0 {
                return Err((at, format!("section {i} is misaligned")));
            }
            if crc32c::crc32c(section) != get_u32(table, e + 16) {
                return Err((off as u64, format!("section {i} checksum mismatch")));
            }
            ranges.push(off..off + len);
        }
        // Padding between sections must be zero, so that no byte of the file goes unchecked.
        let mut covered = HEADER + table.len();
        let mut sorted = ranges.clone();
        sorted.sort_by_key(|r| r.start);
        for r in sorted.iter().chain(std::iter::once(&(b.len()..b.len()))) {
            if r.start < covered {
                return Err((r.start as u64, "sections overlap".into()));
            }
            if let Some(at) = b[covered..r.start].iter().position(|&x| x != 0) {
                return Err(((covered + at) as u64, "non-zero padding".into()));
            }
            covered = r.end;
        }
        let words = |r: &Range<usize>| -> &[u32] { bytemuck::cast_slice(&b[r.clone()]) };
        let inv_norms = ranges[0].clone();
        let expected_norms = if metric == Metric::Cosine {
            n as usize * 4
        } else {
            0
        };
        if inv_norms.len() != expected_norms {
            return Err((
                inv_norms.start as u64,
                "norm section has the wrong size".into(),
            ));
        }
        // A non-finite or negative inverse norm passes every checksum of a crafted file yet
        // makes every cosine distance of that row meaningless.
        let norms: &[f32] = bytemuck::cast_slice(&b[inv_norms.clone()]);
        if let Some(r) = norms.iter().position(|x| !x.is_finite() || *x < 0.0) {
            return Err((
                (inv_norms.start + 4 * r) as u64,
                format!("inverse norm of row {r} is {}", norms[r]),
            ));
        }
        let mut layers = Vec::with_capacity(nlayers);
        for l in 0..nlayers {
            let lr = LayerRanges {
                members: ranges[1 + 3 * l].clone(),
                offsets: ranges[2 + 3 * l].clone(),
                neighbors: ranges[3 + 3 * l].clone(),
            };
            let (members, offsets, neighbors) =
                (words(&lr.members), words(&lr.offsets), words(&lr.neighbors));
            let at = lr.offsets.start as u64;
            let count = if l == 0 {
                if !members.is_empty() {
                    return Err((lr.members.start as u64, "layer 0 lists members".into()));
                }
                n as usize
            } else {
                if members.windows(2).any(|w| w[0] >= w[1])
                    || members.last().is_some_and(|&m| m >= n)
                {
                    return Err((
                        lr.members.start as u64,
                        format!("layer {l} members are invalid"),
                    ));
                }
                members.len()
            };
            if offsets.len() != count + 1
                || offsets.first() != Some(&0)
                || offsets.windows(2).any(|w| w[0] > w[1])
                || offsets.last().map(|&o| o as usize) != Some(neighbors.len())
            {
                return Err((at, format!("layer {l} offsets are invalid")));
            }
            if neighbors.iter().any(|&r| r >= n) {
                return Err((
                    lr.neighbors.start as u64,
                    format!("layer {l} names a row out of range"),
                ));
            }
            layers.push(lr);
        }
        if let Some(top) = layers.last().filter(|_| nlayers > 1) {
            if words(&top.members).binary_search(&entry).is_err() {
                return Err((24, "entry point is not on the top layer".into()));
            }
        }
        Ok(FrozenGraph {
            metric,
            rows: n,
            entry,
            inv_norms,
            layers,
            bytes,
            packed: OnceLock::new(),
        })
    }

    /// Structural sanity beyond what `open` checks, for `verify`: every row reachable on
    /// layer 0 from the entry point (a row no walk reaches is never found), and no row with far
    /// more neighbours than HNSW keeps (`2m` on layer 0, `m` above; twice that is allowed, for
    /// the links the freeze adds back to rows hnsw_rs left unreachable). Returns each problem
    /// with its file offset.
    pub(crate) fn sanity(&self, m: usize) -> Vec<(u64, String)> {
        let mut problems = Vec::new();
        for (l, lr) in self.layers.iter().enumerate() {
            let bound = if l == 0 { 4 * m } else { 2 * m };
            let offsets = self.words(&lr.offsets);
            if let Some(i) = offsets
                .windows(2)
                .position(|w| (w[1] - w[0]) as usize > bound)
            {
                problems.push((
                    (lr.offsets.start + 4 * i) as u64,
                    format!(
                        "layer {l}: entry {i} has {} neighbours, more than {bound}",
                        offsets[i + 1] - offsets[i]
                    ),
                ));
            }
        }
        let n = self.rows as usize;
        if n > 0 {
            let mut seen = vec![false; n];
            let mut stack = vec![self.entry];
            seen[self.entry as usize] = true;
            let mut reached = 1usize;
            while let Some(row) = stack.pop() {
                for &nb in self.neighbors(0, row) {
                    if !std::mem::replace(&mut seen[nb as usize], true) {
                        reached += 1;
                        stack.push(nb);
                    }
                }
            }
            if reached < n {
                let first = seen.iter().position(|&s| !s).unwrap_or(0);
                problems.push((
                    self.layers[0].neighbors.start as u64,
                    format!(
                        "{} of {n} rows are unreachable on layer 0 from the entry point (first: row {first})",
                        n - reached
                    ),
                ));
            }
        }
        problems
    }

    /// Whether the graph is mapped from its file (rather than rebuilt in memory).
    pub(crate) fn is_mapped(&self) -> bool {
        self.bytes.is_mapped()
    }

    /// `1/|v|` per row, for cosine graphs.
    pub(crate) fn inv_norms(&self) -> Option<&[f32]> {
        (self.metric == Metric::Cosine)
            .then(|| bytemuck::cast_slice(&self.bytes[self.inv_norms.clone()]))
    }

    /// The graph in owned form: what a merge's build starts from.
    pub(crate) fn to_data(&self) -> GraphData {
        GraphData {
            metric: self.metric,
            rows: self.rows,
            entry: self.entry,
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    members: self.words(&l.members).to_vec(),
                    offsets: self.words(&l.offsets).to_vec(),
                    neighbors: self.words(&l.neighbors).to_vec(),
                })
                .collect(),
            inv_norms: bytemuck::cast_slice(&self.bytes[self.inv_norms.clone()]).to_vec(),
        }
    }

    /// Bytes of graph data (adjacency and norms).
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    fn words(&self, r: &Range<usize>) -> &[u32] {
        bytemuck::cast_slice(&self.bytes[r.clone()])
    }

    fn neighbors(&self, layer: usize, row: u32) -> &[u32] {
        let lr = &self.layers[layer];
        let offsets = self.words(&lr.offsets);
        let slot = if layer == 0 {
            Some(row as usize)
        } else {
            self.words(&lr.members).binary_search(&row).ok()
        };
        match slot {
            Some(i) => &self.words(&lr.neighbors)[offsets[i] as usize..offsets[i + 1] as usize],
            None => &[],
        }
    }

    /// Packs layer 0 for the walk ([`PackedLevel0`]) from `vectors` (the segment's column, `dim`
    /// floats per row), once; later searches use the packed copy. Costs one pass over the
    /// vectors and lists, so it is done off the query path (after open and seal).
    pub(crate) fn pack(&self, vectors: &[f32], dim: usize) {
        let rows = self.rows as usize;
        if rows == 0 || vectors.len() < rows * dim {
            return;
        }
        self.packed.get_or_init(|| {
            let degree = (0..self.rows)
                .map(|r| self.neighbors(0, r).len())
                .max()
                .unwrap_or(0);
            let inv_norms = self.inv_norms();
            PackedLevel0::build(
                rows,
                dim,
                degree,
                |r| self.neighbors(0, r),
                |r, out| {
                    let v = &vectors[r as usize * dim..(r as usize + 1) * dim];
                    let scale = inv_norms.and_then(|n| n.get(r as usize)).copied();
                    for (o, x) in out.iter_mut().zip(v) {
                        *o = scale.map_or(*x, |s| x * s);
                    }
                },
            )
        });
    }

    /// Bytes of the packed layer 0, once built.
    pub(crate) fn packed_bytes(&self) -> usize {
        self.packed
            .get()
            .and_then(Option::as_ref)
            .map_or(0, PackedLevel0::byte_len)
    }

    /// Beam search for the `k` best accepted rows of `vectors` (the segment's column, `dim`
    /// floats per row); `None` accepts every row without a call per candidate. Rejected rows
    /// are traversed (they keep the graph connected) but never returned. Returns
    /// `(distance, row)` best first, where the distance is smaller-is-better (L2: squared
    /// distance, IP: −dot, cosine: 1 − cos).
    pub(crate) fn search(
        &self,
        vectors: &[f32],
        dim: usize,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(f32, u32)> {
        if self.rows == 0 || k == 0 {
            return Vec::new();
        }
        let q_inv = {
            let n = dot(query, query).sqrt();
            if n > 0.0 {
                1.0 / n
            } else {
                0.0
            }
        };
        let mapped = Mapped0 {
            offsets: self.words(&self.layers[0].offsets),
            neighbors: self.words(&self.layers[0].neighbors),
            vectors,
            dim,
            inv_norms: bytemuck::cast_slice(&self.bytes[self.inv_norms.clone()]),
            query,
            q_inv,
            metric: self.metric,
        };
        let Some(nodes) = self.packed.get().and_then(Option::as_ref) else {
            return self.walk(&mapped, k, ef, accept);
        };
        let normalised: Vec<f32>;
        let query = if self.metric == Metric::Cosine {
            normalised = query.iter().map(|x| x * q_inv).collect();
            &normalised
        } else {
            query
        };
        #[cfg(target_arch = "x86_64")]
        if super::distance::avx2_fma() {
            let packed = Packed::<FusedCodes>::new(nodes, query, dim, self.metric);
            // SAFETY: the CPU was just checked to support AVX2 and FMA.
            let found = unsafe { self.walk_fused(&packed, ef.max(k), ef, accept) };
            return rerank(&packed, &mapped, &found, k);
        }
        let packed = Packed::<PlainCodes>::new(nodes, query, dim, self.metric);
        let found = self.walk(&packed, ef.max(k), ef, accept);
        rerank(&packed, &mapped, &found, k)
    }

    /// The walk compiled for AVX2+FMA, with the code kernel inlined into its loop.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn walk_fused(
        &self,
        level0: &Packed<'_, FusedCodes>,
        k: usize,
        ef: usize,
        accept: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(f32, u32)> {
        self.walk(level0, k, ef, accept)
    }

    #[inline(always)]
    fn walk<L: Level0>(
        &self,
        level0: &L,
        k: usize,
        ef: usize,
        accept: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(f32, u32)> {
        let mut cur = self.entry;
        let mut cur_d = level0.distance(cur);
        for layer in (1..self.layers.len()).rev() {
            loop {
                let mut improved = false;
                for &nb in self.neighbors(layer, cur) {
                    let d = level0.distance(nb);
                    if d < cur_d {
                        cur = nb;
                        cur_d = d;
                        improved = true;
                    }
                }
                if !improved {
                    break;
                }
            }
        }
        let ef = ef.max(k);
        let mut visited = visited_for(self.rows as usize);
        let mut heaps = HEAPS.try_with(Cell::take).unwrap_or_default();
        let WalkHeaps {
            candidates,
            results,
            fresh,
        } = &mut heaps;
        let accepts = |row: u32| accept.is_none_or(|a| a(row));
        visited.insert(cur);
        candidates.push(Reverse((Key(cur_d), cur)));
        if accepts(cur) {
            results.push((Key(cur_d), cur));
        }
        while let Some(Reverse((Key(d), row))) = candidates.pop() {
            if results.len() >= ef && results.peek().is_some_and(|w| d > w.0 .0) {
                break;
            }
            // The next candidate's list loads while this one's neighbours are scored.
            if let Some(Reverse((_, next))) = candidates.peek() {
                level0.prefetch_neighbors(*next);
            }
            fresh.clear();
            fresh.extend(
                level0
                    .neighbors(row)
                    .iter()
                    .copied()
                    .filter(|&nb| visited.insert(nb)),
            );
            for &nb in fresh.iter() {
                level0.prefetch_vector(nb);
            }
            // A neighbour closer than every waiting candidate is expanded next: its list
            // loads while the rest of this neighbourhood is scored.
            let mut next_best = candidates.peek().map_or(f32::INFINITY, |c| c.0 .0 .0);
            for &nb in fresh.iter() {
                let dn = level0.distance(nb);
                if dn < next_best {
                    next_best = dn;
                    level0.prefetch_neighbors(nb);
                }
                let worst = results.peek().map_or(f32::INFINITY, |w| w.0 .0);
                if results.len() < ef || dn < worst {
                    candidates.push(Reverse((Key(dn), nb)));
                    if accepts(nb) {
                        // Full: the new row replaces the worst in one sift instead
                        // of a push and a pop.
                        if results.len() < ef {
                            results.push((Key(dn), nb));
                        } else if let Some(mut worst) = results.peek_mut() {
                            *worst = (Key(dn), nb);
                        }
                    }
                }
            }
        }
        let mut out: Vec<(f32, u32)> = results.drain().map(|(Key(d), r)| (d, r)).collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out.truncate(k);
        candidates.clear();
        fresh.clear();
        if candidates.capacity() <= KEEP_HEAP && results.capacity() <= KEEP_HEAP {
            let _ = HEAPS.try_with(|cell| cell.set(heaps));
        }
        out
    }
}

/// A walk's heaps and neighbour buffer, kept per thread between searches: allocating and
/// growing them anew cost every query a few allocations and the page faults of fresh memory.
#[derive(Default)]
struct WalkHeaps {
    /// Rows waiting to be expanded, nearest first.
    candidates: BinaryHeap<Reverse<(Key, u32)>>,
    /// The `ef` best accepted rows so far, worst on top.
    results: BinaryHeap<(Key, u32)>,
    /// Unvisited neighbours of the row being expanded: only these are prefetched and scored
    /// (prefetching the whole list filled the CPU's line-fill buffers with rows already seen,
    /// and the walk stalled on its own prefetches).
    fresh: Vec<u32>,
}

/// Beyond this many entries a heap is not kept for the next search: one query with a huge
/// `ef` should not pin its memory to the thread.
const KEEP_HEAP: usize = 1 << 14;

thread_local! {
    /// Taken for a search and put back after it (empty), rather than lent to a closure: the
    /// walk stays one function, which the compiler inlines whole into its AVX2 copy.
    static HEAPS: Cell<WalkHeaps> = const {
        Cell::new(WalkHeaps {
            candidates: BinaryHeap::new(),
            results: BinaryHeap::new(),
            fresh: Vec::new(),
        })
    };
}

/// The exact top `k` of a packed walk's `found` (best code distance first), re-ranked with the
/// exact vectors. A row whose code distance, less the codes' error bound, is past the k-th
/// exact distance so far cannot enter the top k: it is skipped unread (at ef 64, k 10 most of
/// the list; reading each row's four vector lines was ≈ 9 % of a query). Each row is judged on
/// its own bound, which under L2 grows with the row's norm, so a skip says nothing of the rows
/// after it.
fn rerank<K: CodeKernel>(
    packed: &Packed<'_, K>,
    mapped: &Mapped0<'_>,
    found: &[(f32, u32)],
    k: usize,
) -> Vec<(f32, u32)> {
    let mut best: BinaryHeap<(Key, u32)> = BinaryHeap::with_capacity(k + 1);
    for &(_, row) in found.iter().take(k + RERANK_AHEAD) {
        mapped.prefetch_vector(row);
    }
    for (i, &(approx, row)) in found.iter().enumerate() {
        if best.len() >= k
            && best
                .peek()
                .is_some_and(|w| approx - packed.error_bound(row) > w.0 .0)
        {
            continue;
        }
        if let Some(&(_, ahead)) = found.get(i + k + RERANK_AHEAD) {
            mapped.prefetch_vector(ahead);
        }
        best.push((Key(mapped.distance(row)), row));
        if best.len() > k {
            best.pop();
        }
    }
    let mut out: Vec<(f32, u32)> = best.into_iter().map(|(Key(d), r)| (d, r)).collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    out
}

/// Where a walk reads layer 0 and the vectors it scores.
trait Level0 {
    fn neighbors(&self, row: u32) -> &[u32];
    /// Smaller is better.
    fn distance(&self, row: u32) -> f32;
    fn prefetch_neighbors(&self, row: u32);
    fn prefetch_vector(&self, row: u32);
}

/// Layer 0 as mapped: lists in the graph file, vectors in the forward store's column.
struct Mapped0<'a> {
    offsets: &'a [u32],
    neighbors: &'a [u32],
    vectors: &'a [f32],
    dim: usize,
    inv_norms: &'a [f32],
    query: &'a [f32],
    q_inv: f32,
    metric: Metric,
}

impl Level0 for Mapped0<'_> {
    #[inline]
    fn neighbors(&self, row: u32) -> &[u32] {
        let r = row as usize;
        &self.neighbors[self.offsets[r] as usize..self.offsets[r + 1] as usize]
    }

    #[inline]
    fn distance(&self, row: u32) -> f32 {
        let v = &self.vectors[row as usize * self.dim..(row as usize + 1) * self.dim];
        match self.metric {
            Metric::L2 => l2_squared(self.query, v),
            Metric::Ip => -dot(self.query, v),
            Metric::Cosine => 1.0 - dot(self.query, v) * self.q_inv * self.inv_norms[row as usize],
        }
    }

    #[inline]
    fn prefetch_neighbors(&self, row: u32) {
        // Only the offsets: the list's place is not known until they arrive.
        if let Some(o) = self.offsets.get(row as usize..row as usize + 2) {
            prefetch(o);
        }
    }

    #[inline]
    fn prefetch_vector(&self, row: u32) {
        prefetch_rows(self.vectors, self.dim, &[row]);
        if let Some(inv) = self.inv_norms.get(row as usize) {
            prefetch(std::slice::from_ref(inv));
        }
    }
}

/// Layer 0 packed: a row's quantised vector beside its list; distances are approximate. `K`
/// scores the codes.
struct Packed<'a, K> {
    nodes: &'a PackedLevel0,
    prepared: PackedQuery,
    /// `|query|²` (L2).
    sq_norm: f32,
    dim: usize,
    metric: Metric,
    kernel: PhantomData<K>,
}

impl<'a, K: CodeKernel> Packed<'a, K> {
    /// `query` is normalised already for cosine.
    fn new(nodes: &'a PackedLevel0, query: &[f32], dim: usize, metric: Metric) -> Self {
        Packed {
            nodes,
            prepared: nodes.prepare(query),
            sq_norm: dot(query, query),
            dim,
            metric,
            kernel: PhantomData,
        }
    }

    /// How much smaller than its code distance row `row`'s exact distance can be.
    #[inline]
    fn error_bound(&self, row: u32) -> f32 {
        let e = self.prepared.error();
        match self.metric {
            // `|q|² − 2·dot + |v|²`: the dot's error twice, and the rounding of the two norms,
            // which can dwarf a small distance between vectors far from the origin.
            Metric::L2 => {
                2.0 * e
                    + (self.dim as f32 + 16.0)
                        * 8.0
                        * f32::EPSILON
                        * (self.sq_norm + self.nodes.sq_norm(row))
            }
            Metric::Ip | Metric::Cosine => e,
        }
    }
}

impl<K: CodeKernel> Level0 for Packed<'_, K> {
    #[inline(always)]
    fn neighbors(&self, row: u32) -> &[u32] {
        self.nodes.neighbors(row)
    }

    #[inline(always)]
    fn distance(&self, row: u32) -> f32 {
        let d = self.nodes.dot::<K>(&self.prepared, row);
        match self.metric {
            Metric::L2 => self.sq_norm - 2.0 * d + self.nodes.sq_norm(row),
            Metric::Ip => -d,
            Metric::Cosine => 1.0 - d,
        }
    }

    #[inline(always)]
    fn prefetch_neighbors(&self, row: u32) {
        self.nodes.prefetch_neighbors(row);
    }

    #[inline(always)]
    fn prefetch_vector(&self, row: u32) {
        self.nodes.prefetch_codes(row);
    }
}

/// Asks the CPU to start loading the vectors of a neighbourhood before they are scored.
#[inline]
pub(crate) fn prefetch_rows(vectors: &[f32], dim: usize, rows: &[u32]) {
    for &r in rows {
        if let Some(v) = vectors.get(r as usize * dim..(r as usize + 1) * dim) {
            prefetch(v);
        }
    }
}

/// Asks the CPU to start loading every cache line of `data`. A 50-d vector spans four lines;
/// fetching only the first left the scoring of the other three waiting on memory.
#[inline]
pub(crate) fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = data.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(data);
        for line in (0..bytes).step_by(64) {
            // SAFETY: prefetching is a hint that cannot fault; the address is inside `data`.
            unsafe {
                std::arch::x86_64::_mm_prefetch(start.add(line), std::arch::x86_64::_MM_HINT_T0)
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// A totally ordered f32 for heaps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Key(pub(crate) f32);

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

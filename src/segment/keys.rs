//! The key index of a forward file: a hash of every pk, sorted, and a blocked bloom filter of
//! the same hashes, so that an insert's existence check skips a segment after one cache line
//! and otherwise finds the pk's rows by binary search, without a map in memory.

/// A stable 64-bit hash of a pk (two crc32c with different seeds: hardware-fast, and fixed by
/// the crc32c polynomial, so files written by one build read the same in another).
pub(crate) fn hash(pk: &str) -> u64 {
    hash_bytes(pk.as_bytes())
}

/// [`hash`] of a pk's bytes.
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    (u64::from(crc32c::crc32c(b)) << 32) | u64::from(crc32c::crc32c_append(0x9e37_79b9, b))
}

/// The key index of rows whose pk hashes are `hashes` (row `i` has `hashes[i]`): per row
/// `hash u64, row u32, zero u32`, sorted by hash then row.
pub(crate) fn encode_index(hashes: &[u64]) -> Vec<u8> {
    let mut order: Vec<(u64, u32)> = hashes
        .iter()
        .enumerate()
        .map(|(row, &h)| (h, row as u32))
        .collect();
    order.sort_unstable();
    let mut out = Vec::with_capacity(16 * order.len());
    for (h, row) in order {
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&row.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out
}

fn entry(index: &[u8], at: usize) -> (u64, usize) {
    let e = &index[16 * at..16 * at + 16];
    let mut h = [0u8; 8];
    h.copy_from_slice(&e[..8]);
    let mut r = [0u8; 4];
    r.copy_from_slice(&e[8..12]);
    (u64::from_le_bytes(h), u32::from_le_bytes(r) as usize)
}

/// Every `(hash, row)` of an index, in stored order.
pub(crate) fn entries(index: &[u8]) -> impl Iterator<Item = (u64, usize)> + '_ {
    (0..index.len() / 16).map(move |at| entry(index, at))
}

/// Where in a sorted index of `entries` hashes (`hash_at(i)` the `i`-th) the first entry not
/// below `hash` lies: a range `lo..hi` holding it, for a binary search to finish. The hashes
/// are uniform, so the guess `hash / 2⁶⁴ × entries` is off by about √entries; steps doubling
/// from it bracket the entry in a few reads of one or two pages, where a binary search over
/// the whole index reads ⌈log₂ entries⌉ entries, nearly each on its own page (17 cold reads
/// at 100k rows). Any sorted index gives the right range; a crafted one only costs reads.
pub(crate) fn bracket<E>(
    entries: usize,
    hash: u64,
    mut hash_at: impl FnMut(usize) -> Result<u64, E>,
) -> Result<(usize, usize), E> {
    if entries == 0 {
        return Ok((0, 0));
    }
    let guess = ((u128::from(hash) * entries as u128) >> 64) as usize;
    let mut step = 16;
    if hash_at(guess)? < hash {
        // The answer is past `guess`: widen upwards until an entry is not below `hash`.
        let mut lo = guess + 1;
        loop {
            let probe = lo.saturating_add(step);
            if probe >= entries {
                return Ok((lo, entries));
            }
            if hash_at(probe)? >= hash {
                return Ok((lo, probe));
            }
            lo = probe + 1;
            step *= 2;
        }
    }
    // `guess` is not below `hash`: widen downwards until an entry is.
    let mut hi = guess;
    loop {
        let Some(probe) = hi.checked_sub(step) else {
            return Ok((0, hi));
        };
        if hash_at(probe)? < hash {
            return Ok((probe + 1, hi));
        }
        hi = probe;
        step *= 2;
    }
}

/// A blocked bloom filter: 512-bit blocks, one chosen per hash, 8 bits set in it (≈ 0.1 %
/// false positives at 16 bits per key), so a probe touches one cache line. A reader takes the
/// block count from the filter's length, so filters written at another density (10 bits per
/// key before 2026-12-04, ≈ 1 %) read the same way.
pub(crate) struct Bloom(Vec<u8>);

const BLOCK_BYTES: usize = 64;
/// Measured on 100k pks `doc-000000000`…: 10 bits let 0.7–1.6 % of absent pks through, each
/// then a search of the key index; with ten sealed segments that was one search per ten
/// inserts, and in a profile of inserts into 1M rows those searches took more samples than
/// the ten bloom probes of every insert.
const BITS_PER_KEY: usize = 16;

impl Bloom {
    /// The filter of `hashes`.
    pub(crate) fn build(hashes: &[u64]) -> Self {
        let mut bytes = Self::empty(hashes.len());
        for &h in hashes {
            Self::insert(&mut bytes, h);
        }
        Bloom(bytes)
    }

    /// The bytes of an empty filter sized for `keys` keys.
    pub(crate) fn empty(keys: usize) -> Vec<u8> {
        let blocks = (keys.saturating_mul(BITS_PER_KEY))
            .div_ceil(8 * BLOCK_BYTES)
            .max(1);
        vec![0u8; blocks * BLOCK_BYTES]
    }

    /// Sets `hash`'s bits in the filter `bytes` (a whole number of blocks).
    pub(crate) fn insert(bytes: &mut [u8], hash: u64) {
        let block = Self::block_range(bytes.len(), hash);
        for (byte, bit) in Self::probes(hash) {
            if let Some(b) = bytes.get_mut(block.start + byte) {
                *b |= 1 << bit;
            }
        }
    }

    /// Byte and bit positions of `hash`'s 8 bits within its block: 9-bit slices of a remix of
    /// the hash.
    fn probes(hash: u64) -> impl Iterator<Item = (usize, u32)> {
        let mut x = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (0..8).map(move |_| {
            let bit = (x & 511) as usize;
            x = x.rotate_right(9);
            (bit / 8, (bit % 8) as u32)
        })
    }

    /// The bytes of a filter of `len` bytes that a probe of `hash` reads: the block from the
    /// high half of the hash scaled to the block count (`hi × blocks >> 32`, a multiply instead
    /// of a division); empty for an empty filter.
    pub(crate) fn block_range(len: usize, hash: u64) -> std::ops::Range<usize> {
        let blocks = len / BLOCK_BYTES;
        if blocks == 0 {
            return 0..0;
        }
        let at = ((u128::from(hash >> 32) * blocks as u128) >> 32) as usize * BLOCK_BYTES;
        at..at + BLOCK_BYTES
    }

    /// Whether the block `block` (from [`Bloom::block_range`]) may hold `hash`.
    pub(crate) fn block_may_contain(block: &[u8], hash: u64) -> bool {
        !block.is_empty()
            && Self::probes(hash)
                .all(|(byte, bit)| block.get(byte).is_some_and(|b| b & (1 << bit) != 0))
    }

    /// Whether the filter `bytes` (a whole number of blocks) may hold `hash`.
    pub(crate) fn may_contain(bytes: &[u8], hash: u64) -> bool {
        let block = bytes
            .get(Self::block_range(bytes.len(), hash))
            .unwrap_or(&[]);
        Self::block_may_contain(block, hash)
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_found_and_few_others_pass_the_filter() {
        let pks: Vec<String> = (0..10_000).map(|i| format!("key-{i}")).collect();
        let hashes: Vec<u64> = pks.iter().map(|p| hash(p)).collect();
        let bloom = Bloom::build(&hashes).into_bytes();
        let index = encode_index(&hashes);
        for (row, h) in hashes.iter().enumerate() {
            assert!(Bloom::may_contain(&bloom, *h));
            assert!(entries(&index).any(|e| e == (*h, row)));
        }
        let false_positives = (0..10_000)
            .filter(|i| Bloom::may_contain(&bloom, hash(&format!("other-{i}"))))
            .count();
        assert!(false_positives < 40, "{false_positives} of 10000");
        let absent = hash("absent");
        assert!(!entries(&index).any(|(h, _)| h == absent));
    }

    #[test]
    fn the_bracket_holds_the_first_entry_not_below_the_hash() {
        let uniform: Vec<u64> = {
            let mut h: Vec<u64> = (0..5_000).map(|i| hash(&format!("doc-{i:09}"))).collect();
            h.sort_unstable();
            h
        };
        // Skewed and duplicated hashes (a crafted index) must still be bracketed right.
        let skewed: Vec<u64> = (0..3_000u64).map(|i| (i / 7) * 1_000).collect();
        for sorted in [uniform, skewed, vec![], vec![5], vec![u64::MAX; 40]] {
            let mut probes: Vec<u64> = sorted.clone();
            probes.extend([0, 1, 999, 1_001, u64::MAX / 2, u64::MAX - 1, u64::MAX]);
            probes.extend(sorted.iter().map(|h| h.wrapping_add(1)));
            for &h in &probes {
                let first = sorted.partition_point(|&x| x < h);
                let (lo, hi) = bracket(sorted.len(), h, |at| Ok::<_, ()>(sorted[at])).unwrap();
                assert!(
                    lo <= first && first <= hi && hi <= sorted.len(),
                    "{h}: {lo}..{hi} vs {first}"
                );
            }
        }
    }
}

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

/// A blocked bloom filter: 512-bit blocks, one chosen per hash, 8 bits set in it (≈ 1 %
/// false positives at 10 bits per key), so a probe touches one cache line.
pub(crate) struct Bloom(Vec<u8>);

const BLOCK_BYTES: usize = 64;
const BITS_PER_KEY: usize = 10;

impl Bloom {
    /// The filter of `hashes`.
    pub(crate) fn build(hashes: &[u64]) -> Self {
        let blocks = (hashes.len() * BITS_PER_KEY)
            .div_ceil(8 * BLOCK_BYTES)
            .max(1);
        let mut bytes = vec![0u8; blocks * BLOCK_BYTES];
        for &h in hashes {
            let block = Self::block_range(bytes.len(), h);
            for (byte, bit) in Self::probes(h) {
                bytes[block.start + byte] |= 1 << bit;
            }
        }
        Bloom(bytes)
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
        assert!(false_positives < 300, "{false_positives} of 10000");
        let absent = hash("absent");
        assert!(!entries(&index).any(|(h, _)| h == absent));
    }
}

//! Read-only bytes of a whole file: memory-mapped from disk, or owned (simulated storage).

use std::fmt;
use std::ops::Deref;

/// The bytes of a file opened with [`super::Storage::map`]. Always 8-byte aligned, so
/// sections at aligned offsets can be viewed as `u32`/`f32` slices.
pub struct Mapped(Inner);

enum Inner {
    Map(memmap2::Mmap),
    Owned(Vec<u64>, usize),
}

impl Mapped {
    pub(crate) fn from_mmap(map: memmap2::Mmap) -> Self {
        Mapped(Inner::Map(map))
    }

    /// Copies `bytes` into an aligned buffer.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Mapped(Inner::Owned(words, bytes.len()))
    }

    /// Whether the bytes are mapped from a file (rather than held in memory).
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Inner::Map(_))
    }
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Inner::Map(m) => m,
            Inner::Owned(words, len) => &bytemuck::cast_slice::<u64, u8>(words)[..*len],
        }
    }
}

impl fmt::Debug for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mapped({} bytes, mapped: {})",
            self.len(),
            self.is_mapped()
        )
    }
}

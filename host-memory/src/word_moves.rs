//! What an architecture supplies to [`crate::PoolMemory`]: how it moves runs of aligned
//! 64-bit words between frame-pool memory and Rust buffers, and what a write of pool
//! memory needs afterwards. The defaults move one word per volatile access.

/// Bulk word moves of one architecture. Every aligned 64-bit word of pool memory a move
/// touches must be read or written as one 8-byte access (single-copy atomic), never in
/// parts; the order of the words is free. A move touches exactly the words it is given.
pub trait WordMoves {
    /// Copies `words` 64-bit words from pool memory at `from` to `to`.
    ///
    /// # Safety
    /// `from` is 8-byte aligned and valid for reads of `8 * words` bytes; `to` is valid for
    /// writes of `8 * words` bytes (any alignment); the two do not overlap.
    #[inline]
    unsafe fn read_words(from: *const u64, to: *mut u8, words: usize) {
        for w in 0..words {
            // SAFETY: word `w` lies inside both ranges (the caller's promise); `from` is
            // aligned, `to` is written unaligned.
            unsafe { to.add(8 * w).cast::<u64>().write_unaligned(from.add(w).read_volatile()) };
        }
    }

    /// Copies `words` 64-bit words from `from` to pool memory at `to`.
    ///
    /// # Safety
    /// `from` is valid for reads of `8 * words` bytes (any alignment); `to` is 8-byte
    /// aligned and valid for writes of `8 * words` bytes; the two do not overlap.
    #[inline]
    unsafe fn write_words(from: *const u8, to: *mut u64, words: usize) {
        for w in 0..words {
            // SAFETY: as in `read_words`, the other way round.
            unsafe { to.add(w).write_volatile(from.add(8 * w).cast::<u64>().read_unaligned()) };
        }
    }

    /// Sets `words` 64-bit words of pool memory at `to` to zero.
    ///
    /// # Safety
    /// `to` is 8-byte aligned and valid for writes of `8 * words` bytes.
    #[inline]
    unsafe fn zero_words(to: *mut u64, words: usize) {
        for w in 0..words {
            // SAFETY: word `w` lies inside the range (the caller's promise), aligned.
            unsafe { to.add(w).write_volatile(0) };
        }
    }

    /// Called after `write` or `zero` changed `[base, base + len)` of pool memory: makes
    /// the change visible to what reads memory other than through Keel's caches (a guest
    /// with its caches off). Default: nothing (caches are coherent).
    #[inline]
    fn written(base: usize, len: usize) {
        let _ = (base, len);
    }
}

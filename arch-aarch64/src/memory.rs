//! [`HostMemory`](keel_kernel::arch::HostMemory) of this backend: the shared implementation
//! over identity-mapped frame-pool memory ([`keel_host_memory::PoolMemory`]) with arm64's
//! moves for runs of words: load and store pairs, `DC ZVA`, and writes cleaned to the point
//! of coherency because guests may read memory with their MMU and caches off, unless stage
//! 2 forces their RAM write-back (FEAT_S2FWB, [`cpu::fwb`]).

use crate::{cache, cpu};
use keel_host_memory::{PoolMemory, WordMoves};

/// The [`HostMemory`](keel_kernel::arch::HostMemory) of this backend.
pub type HostRam = PoolMemory<PairMoves>;

/// Runs of words written with load and store pairs (each 64-bit word still written whole,
/// single-copy atomic), zeroed with `DC ZVA` where whole blocks allow, read one word per
/// load (the default).
pub struct PairMoves;

/// Copies `blocks` 64-byte blocks from `from` to `to`, 16 bytes per load and store pair:
/// each 64-bit word is still written whole (single-copy atomic), never torn. The target
/// has strict alignment and Keel is built for size, so plain Rust would copy byte by byte
/// here, or through the stack.
///
/// # Safety
/// Both ranges must be 8-byte aligned, valid, and not overlap; `blocks` is at least 1.
unsafe fn copy_blocks(from: *const u64, to: *mut u64, blocks: usize) {
    // SAFETY: the caller vouches for both ranges; the loop touches exactly them.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldp {a}, {b}, [{src}]",
            "ldp {c}, {d}, [{src}, #16]",
            "ldp {e}, {f}, [{src}, #32]",
            "ldp {g}, {h}, [{src}, #48]",
            "stp {a}, {b}, [{dst}]",
            "stp {c}, {d}, [{dst}, #16]",
            "stp {e}, {f}, [{dst}, #32]",
            "stp {g}, {h}, [{dst}, #48]",
            "add {src}, {src}, #64",
            "add {dst}, {dst}, #64",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            src = inout(reg) from => _,
            dst = inout(reg) to => _,
            n = inout(reg) blocks => _,
            a = out(reg) _, b = out(reg) _, c = out(reg) _, d = out(reg) _,
            e = out(reg) _, f = out(reg) _, g = out(reg) _, h = out(reg) _,
            options(nostack),
        )
    };
}

/// Zeroes `[from, to)` of pool memory a word at a time where aligned, else a byte.
///
/// # Safety
/// The range must be valid for writes.
unsafe fn zero_range(from: usize, to: usize) {
    let mut a = from;
    while a < to {
        if a.is_multiple_of(8) && to - a >= 8 {
            // SAFETY: an aligned word inside the caller's range.
            unsafe { (a as *mut u64).write_volatile(0) };
            a += 8;
        } else {
            // SAFETY: a byte inside the caller's range.
            unsafe { (a as *mut u8).write_volatile(0) };
            a += 1;
        }
    }
}

impl WordMoves for PairMoves {
    unsafe fn write_words(from: *const u8, to: *mut u64, words: usize) {
        let from = from.cast::<u64>();
        let mut w = 0;
        if from.is_aligned() && words >= 8 {
            // A kernel image or a ramdisk: megabytes, aligned on both sides.
            let blocks = words / 8;
            // SAFETY: words `0..8 * blocks` lie inside both ranges (the caller's promise)
            // and are aligned on both sides.
            unsafe { copy_blocks(from, to, blocks) };
            w = 8 * blocks;
        }
        while w < words {
            // SAFETY: word `w` lies inside both ranges; the source is read unaligned.
            unsafe { to.add(w).write_volatile(from.add(w).read_unaligned()) };
            w += 1;
        }
    }

    unsafe fn zero_words(to: *mut u64, words: usize) {
        let (base, len) = (to as usize, 8 * words);
        // Whole blocks with DC ZVA (pool memory is Normal, write-back); the edges by hand.
        let (first, end) = cache::zero_blocks(base, len);
        if first == end {
            // SAFETY: the caller's range.
            unsafe { zero_range(base, base + len) };
        } else {
            // SAFETY: the parts of the caller's range around the zeroed blocks.
            unsafe {
                zero_range(base, first);
                zero_range(end, base + len);
            }
        }
    }

    fn written(base: usize, len: usize) {
        if !cpu::fwb() {
            cache::clean_to_poc(base, len);
        }
    }
}

//! Host physical memory handed out by the frame pool, reached through Keel's identity map.
//!
//! Every access is checked against the pool: anything else is a bug in the core and
//! panics. Copies use aligned 64-bit accesses where possible, so a guest racing on the
//! same words sees old or new values, never torn ones. Writes are cleaned to the point
//! of coherency because guests may read memory with their MMU and caches off, unless
//! stage 2 forces their RAM write-back (FEAT_S2FWB, [`cpu::fwb`]).

use crate::{cache, cpu};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use keel_kernel::arch::HostMemory;
use keel_kernel::mm::PhysAddr;
use keel_kernel::mm::FRAME_POOL;

pub struct HostRam;

fn check(pa: PhysAddr, len: usize, align: u64) -> usize {
    if !FRAME_POOL.contains(pa, len as u64) {
        panic!("host memory access outside the frame pool: {len:#x} bytes at {pa}");
    }
    if !pa.is_aligned(align) {
        panic!("misaligned {align}-byte atomic access at {pa}");
    }
    pa.0 as usize
}

/// Copies `blocks` 64-byte blocks from `from` to `to`, 16 bytes per load and store pair:
/// each 64-bit word is still written whole (single-copy atomic), never torn. The target
/// has strict alignment and Keel is built for size, so plain Rust would copy byte by byte
/// here, or through the stack.
///
/// # Safety
/// Both ranges must be 8-byte aligned, valid, and not overlap.
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

impl HostMemory for HostRam {
    fn read(pa: PhysAddr, dst: &mut [u8]) {
        if dst.is_empty() {
            return;
        }
        let base = check(pa, dst.len(), 1);
        let mut off = 0;
        while off < dst.len() {
            let a = base + off;
            if a.is_multiple_of(8) && dst.len() - off >= 8 {
                // SAFETY: inside the frame pool (checked), identity mapped, aligned.
                let v = unsafe { (a as *const u64).read_volatile() };
                dst[off..off + 8].copy_from_slice(&v.to_ne_bytes());
                off += 8;
            } else {
                // SAFETY: as above.
                dst[off] = unsafe { (a as *const u8).read_volatile() };
                off += 1;
            }
        }
    }

    fn write(pa: PhysAddr, src: &[u8]) {
        if src.is_empty() {
            return;
        }
        let base = check(pa, src.len(), 1);
        // Bytes up to the first aligned word, whole words, then the tail bytes.
        let head = (base.next_multiple_of(8) - base).min(src.len());
        let words = (src.len() - head) / 8;
        let byte = |i: usize| {
            // SAFETY: inside the frame pool (checked), identity mapped; no Rust object
            // lives in pool memory.
            unsafe { ((base + i) as *mut u8).write_volatile(src[i]) };
        };
        (0..head).for_each(byte);
        let (from, to) = (src[head..].as_ptr().cast::<u64>(), (base + head) as *mut u64);
        let mut w = 0;
        if from.is_aligned() && words >= 8 {
            // A kernel image or a ramdisk: megabytes, aligned on both sides.
            let blocks = words / 8;
            // SAFETY: words `0..8 * blocks` lie inside `src` and are aligned; the
            // destination words are inside the checked range, aligned, and pool memory
            // holds no Rust object.
            unsafe { copy_blocks(from, to, blocks) };
            w = 8 * blocks;
        }
        while w < words {
            // SAFETY: word `w` lies inside `src` (`head + 8 * words <= src.len()`), read
            // unaligned; the destination word is as above.
            unsafe { to.add(w).write_volatile(from.add(w).read_unaligned()) };
            w += 1;
        }
        (head + 8 * words..src.len()).for_each(byte);
        if !cpu::fwb() {
            cache::clean_to_poc(base, src.len());
        }
    }

    fn zero(pa: PhysAddr, len: usize) {
        if len == 0 {
            return;
        }
        let base = check(pa, len, 1);
        // Whole blocks with DC ZVA (pool memory is Normal, write-back); the edges by hand.
        let (first, end) = cache::zero_blocks(base, len);
        let zero_words = |from: usize, to: usize| {
            let mut a = from;
            while a < to {
                if a.is_multiple_of(8) && to - a >= 8 {
                    // SAFETY: as in `write`.
                    unsafe { (a as *mut u64).write_volatile(0) };
                    a += 8;
                } else {
                    // SAFETY: as in `write`.
                    unsafe { (a as *mut u8).write_volatile(0) };
                    a += 1;
                }
            }
        };
        if first == end {
            zero_words(base, base + len);
        } else {
            zero_words(base, first);
            zero_words(end, base + len);
        }
        if !cpu::fwb() {
            cache::clean_to_poc(base, len);
        }
    }

    fn load_u64(pa: PhysAddr) -> u64 {
        let a = check(pa, 8, 8);
        // SAFETY: an aligned word inside the frame pool, only ever accessed atomically or
        // by hardware (translation-table walks).
        unsafe { AtomicU64::from_ptr(a as *mut u64) }.load(Ordering::Acquire)
    }

    fn store_u64(pa: PhysAddr, value: u64) {
        let a = check(pa, 8, 8);
        // SAFETY: as in `load_u64`.
        unsafe { AtomicU64::from_ptr(a as *mut u64) }.store(value, Ordering::Release)
    }

    fn compare_exchange_u32(pa: PhysAddr, current: u32, new: u32) -> u32 {
        let a = check(pa, 4, 4);
        // SAFETY: as in `load_u64`, for a 32-bit word.
        let word = unsafe { AtomicU32::from_ptr(a as *mut u32) };
        word.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
    }

    fn compare_exchange_u64(pa: PhysAddr, current: u64, new: u64) -> u64 {
        let a = check(pa, 8, 8);
        // SAFETY: as in `load_u64`.
        let word = unsafe { AtomicU64::from_ptr(a as *mut u64) };
        word.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
    }

    type Frame = PoolPage;

    fn frame(pa: PhysAddr) -> PoolPage {
        PoolPage(check(pa, PAGE, PAGE as u64))
    }

    fn frame_address(frame: PoolPage) -> PhysAddr {
        PhysAddr(frame.0 as u64)
    }

    #[inline]
    fn frame_load_u32(frame: PoolPage, offset: usize) -> u32 {
        // SAFETY: a word inside a checked pool page (`PoolPage::word`), only ever accessed
        // atomically by Keel.
        unsafe { AtomicU32::from_ptr(frame.word::<u32>(offset)) }.load(Ordering::Acquire)
    }

    #[inline]
    fn frame_load_u64(frame: PoolPage, offset: usize) -> u64 {
        // SAFETY: as in `frame_load_u32`.
        unsafe { AtomicU64::from_ptr(frame.word::<u64>(offset)) }.load(Ordering::Acquire)
    }

    #[inline]
    fn frame_compare_exchange_u32(frame: PoolPage, offset: usize, current: u32, new: u32) -> u32 {
        // SAFETY: as in `frame_load_u32`.
        let word = unsafe { AtomicU32::from_ptr(frame.word::<u32>(offset)) };
        word.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
    }

    #[inline]
    fn frame_compare_exchange_u64(frame: PoolPage, offset: usize, current: u64, new: u64) -> u64 {
        // SAFETY: as in `frame_load_u32`.
        let word = unsafe { AtomicU64::from_ptr(frame.word::<u64>(offset)) };
        word.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
    }
}

const PAGE: usize = 4096;

/// [`HostMemory::Frame`] here: the identity-mapped address of a page that [`check`] found
/// in the frame pool when the handle was made. The pool's ranges only grow, so the page
/// stays pool memory; only [`HostRam::frame`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolPage(usize);

impl PoolPage {
    /// The naturally aligned `T` at `offset` in the page; panics for an offset that is
    /// not inside the page or not aligned (a bug in the core).
    #[inline]
    fn word<T>(self, offset: usize) -> *mut T {
        let size = core::mem::size_of::<T>();
        if offset > PAGE - size || !offset.is_multiple_of(size) {
            panic!("a {size}-byte word at {offset:#x} of a page");
        }
        (self.0 + offset) as *mut T
    }
}

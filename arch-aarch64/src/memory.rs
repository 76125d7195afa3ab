//! Host physical memory handed out by the frame pool, reached through Keel's identity map.
//!
//! Every access is checked against the pool: anything else is a bug in the core and
//! panics. Copies use aligned 64-bit accesses where possible, so a guest racing on the
//! same words sees old or new values, never torn ones. Writes are cleaned to the point
//! of coherency because guests may read memory with their MMU and caches off.

use crate::cache;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use keel_kernel::arch::HostMemory;
use keel_kernel::mm::PhysAddr;
use keel_kernel::start::FRAME_POOL;

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
        let mut off = 0;
        while off < src.len() {
            let a = base + off;
            if a.is_multiple_of(8) && src.len() - off >= 8 {
                let mut word = [0u8; 8];
                word.copy_from_slice(&src[off..off + 8]);
                // SAFETY: inside the frame pool (checked), identity mapped, aligned; no Rust
                // object lives in pool memory.
                unsafe { (a as *mut u64).write_volatile(u64::from_ne_bytes(word)) };
                off += 8;
            } else {
                // SAFETY: as above.
                unsafe { (a as *mut u8).write_volatile(src[off]) };
                off += 1;
            }
        }
        cache::clean_to_poc(base, src.len());
    }

    fn zero(pa: PhysAddr, len: usize) {
        if len == 0 {
            return;
        }
        let base = check(pa, len, 1);
        let mut off = 0;
        while off < len {
            let a = base + off;
            if a.is_multiple_of(8) && len - off >= 8 {
                // SAFETY: as in `write`.
                unsafe { (a as *mut u64).write_volatile(0) };
                off += 8;
            } else {
                // SAFETY: as in `write`.
                unsafe { (a as *mut u8).write_volatile(0) };
                off += 1;
            }
        }
        cache::clean_to_poc(base, len);
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
}

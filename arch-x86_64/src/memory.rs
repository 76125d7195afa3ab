//! [`HostMemory`]: pointer accesses to identity-mapped frame-pool memory. Any range outside
//! the frame pool is refused with a panic: the core asked for something it must not touch.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use keel_kernel::arch::HostMemory;
use keel_kernel::mm::PhysAddr;
use keel_kernel::start::FRAME_POOL;

/// The [`HostMemory`] of this backend.
pub struct X86Memory;

fn checked<T>(pa: PhysAddr, len: usize) -> *mut T {
    if len != 0 && !FRAME_POOL.contains(pa, len as u64) {
        panic!("host memory access at {pa} (+{len:#x}) outside the frame pool");
    }
    pa.0 as usize as *mut T
}

fn word<T>(pa: PhysAddr) -> *mut T {
    let size = core::mem::size_of::<T>();
    assert!(pa.0.is_multiple_of(size as u64), "unaligned {size}-byte atomic access at {pa}");
    checked(pa, size)
}

impl HostMemory for X86Memory {
    fn read(pa: PhysAddr, dst: &mut [u8]) {
        let src = checked::<u8>(pa, dst.len());
        // SAFETY: the range is frame-pool memory, identity-mapped, holding no Rust objects.
        unsafe { core::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    }

    fn write(pa: PhysAddr, src: &[u8]) {
        let dst = checked::<u8>(pa, src.len());
        // SAFETY: as in `read`.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    }

    fn zero(pa: PhysAddr, len: usize) {
        let dst = checked::<u8>(pa, len);
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_bytes(dst, 0, len) };
    }

    fn load_u64(pa: PhysAddr) -> u64 {
        // SAFETY: an aligned word of frame-pool memory; all accesses to it are atomic or
        // happen while the owner has exclusive use.
        unsafe { AtomicU64::from_ptr(word(pa)) }.load(Ordering::Acquire)
    }

    fn store_u64(pa: PhysAddr, value: u64) {
        // SAFETY: as in `load_u64`.
        unsafe { AtomicU64::from_ptr(word(pa)) }.store(value, Ordering::Release)
    }

    fn compare_exchange_u32(pa: PhysAddr, current: u32, new: u32) -> u32 {
        // SAFETY: as in `load_u64`.
        let a = unsafe { AtomicU32::from_ptr(word(pa)) };
        a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
    }

    fn compare_exchange_u64(pa: PhysAddr, current: u64, new: u64) -> u64 {
        // SAFETY: as in `load_u64`.
        let a = unsafe { AtomicU64::from_ptr(word(pa)) };
        a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
    }
}

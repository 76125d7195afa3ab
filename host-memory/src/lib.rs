//! Keel's [`HostMemory`]: frame-pool memory reached through Keel's identity map, where a
//! host-physical address is also a valid pointer. Both backends use this one
//! implementation ([`PoolMemory`]); each supplies only how it moves many aligned words at
//! once and what a write needs afterwards ([`WordMoves`]).
//!
//! Every access is checked against the frame pool ([`pool_pages`]): anything else is a bug
//! in the core and panics. Copies move every naturally aligned 64-bit word inside their
//! range as one 8-byte access, so a guest racing on the same words sees old or new values,
//! never torn ones (the contract of [`HostMemory`]).
//!
//! # Safety
//! The users of this crate run with all RAM identity-mapped, so a physical address of the
//! frame pool is a valid pointer; the pool holds no Rust object, so writing it cannot break
//! Keel's own memory. Every dereference here is of an address the pool was asked about.
#![cfg_attr(not(any(test, feature = "test-support")), no_std)]

pub mod pool_pages;
mod word_moves;

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
#[cfg(test)]
mod tests;

use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use keel_kernel::arch::HostMemory;
use keel_kernel::mm::PhysAddr;

pub use word_moves::WordMoves;

const PAGE: usize = 4096;

/// [`HostMemory`] over identity-mapped frame-pool memory, with the bulk word moves `M`.
pub struct PoolMemory<M>(PhantomData<M>);

/// The address of `[pa, pa + len)` as a pointer, after checking that the range lies in
/// the frame pool and `pa` is aligned to `align`; panics otherwise (a bug in the core).
#[inline]
fn check(pa: PhysAddr, len: usize, align: u64) -> usize {
    if !pool_pages::contains(pa, len as u64) {
        panic!("host memory access outside the frame pool: {len:#x} bytes at {pa}");
    }
    if !pa.is_aligned(align) {
        panic!("misaligned {align}-byte access at {pa}");
    }
    pa.0 as usize
}

/// The aligned word of type `T` at `pa`, checked.
#[inline]
fn word<T>(pa: PhysAddr) -> *mut T {
    let size = core::mem::size_of::<T>();
    check(pa, size, size as u64) as *mut T
}

/// The split of `[base, base + len)` into bytes before its first aligned 64-bit word,
/// whole words, and bytes after them: `(head, words)`.
fn split(base: usize, len: usize) -> (usize, usize) {
    let head = (base.next_multiple_of(8) - base).min(len);
    (head, (len - head) / 8)
}

impl<M: WordMoves> HostMemory for PoolMemory<M> {
    fn read(pa: PhysAddr, dst: &mut [u8]) {
        if let Ok(d) = <&mut [u8; 4]>::try_from(&mut *dst) {
            if pa.is_aligned(4) {
                // One naturally aligned word (an event port, a one-field struct): one
                // load, not the byte loops below.
                // SAFETY: an aligned word of checked, identity-mapped pool memory, which
                // holds no Rust object; a guest writing it meanwhile makes the load see
                // the old or the new word, as the contract asks.
                *d = unsafe { AtomicU32::from_ptr(word(pa)) }.load(Ordering::Relaxed).to_le_bytes();
                return;
            }
        } else if let Ok(d) = <&mut [u8; 8]>::try_from(&mut *dst) {
            if pa.is_aligned(8) {
                // SAFETY: as for the 32-bit word above.
                *d = unsafe { AtomicU64::from_ptr(word(pa)) }.load(Ordering::Relaxed).to_le_bytes();
                return;
            }
        }
        if dst.is_empty() {
            return;
        }
        let base = check(pa, dst.len(), 1);
        let (head, words) = split(base, dst.len());
        let tail = head + 8 * words;
        let byte = |i: usize| {
            // SAFETY: inside the checked frame-pool range, identity-mapped, holding no
            // Rust object.
            unsafe { ((base + i) as *const u8).read_volatile() }
        };
        for (i, d) in dst[..head].iter_mut().enumerate() {
            *d = byte(i);
        }
        // SAFETY: `[head, tail)` lies inside both the checked pool range (8-byte aligned
        // there) and `dst`; pool memory never overlaps a Rust buffer.
        unsafe { M::read_words((base + head) as *const u64, dst[head..].as_mut_ptr(), words) };
        for (i, d) in dst.iter_mut().enumerate().skip(tail) {
            *d = byte(i);
        }
    }

    fn write(pa: PhysAddr, src: &[u8]) {
        if src.is_empty() {
            return;
        }
        let base = check(pa, src.len(), 1);
        let (head, words) = split(base, src.len());
        let byte = |i: usize| {
            // SAFETY: as in `read`.
            unsafe { ((base + i) as *mut u8).write_volatile(src[i]) };
        };
        (0..head).for_each(byte);
        // SAFETY: as in `read`, the other way round.
        unsafe { M::write_words(src[head..].as_ptr(), (base + head) as *mut u64, words) };
        (head + 8 * words..src.len()).for_each(byte);
        M::written(base, src.len());
    }

    fn zero(pa: PhysAddr, len: usize) {
        if len == 0 {
            return;
        }
        let base = check(pa, len, 1);
        let (head, words) = split(base, len);
        let byte = |i: usize| {
            // SAFETY: as in `read`.
            unsafe { ((base + i) as *mut u8).write_volatile(0) };
        };
        (0..head).for_each(byte);
        // SAFETY: `[head, head + 8 * words)` lies inside the checked pool range, aligned.
        unsafe { M::zero_words((base + head) as *mut u64, words) };
        (head + 8 * words..len).for_each(byte);
        M::written(base, len);
    }

    fn load_u64(pa: PhysAddr) -> u64 {
        // SAFETY: an aligned word of frame-pool memory, only ever accessed atomically or by
        // hardware (translation-table walks).
        unsafe { AtomicU64::from_ptr(word(pa)) }.load(Ordering::Acquire)
    }

    fn store_u64(pa: PhysAddr, value: u64) {
        // SAFETY: as in `load_u64`.
        unsafe { AtomicU64::from_ptr(word(pa)) }.store(value, Ordering::Release)
    }

    fn compare_exchange_u32(pa: PhysAddr, current: u32, new: u32) -> u32 {
        // SAFETY: as in `load_u64`, for a 32-bit word.
        let a = unsafe { AtomicU32::from_ptr(word(pa)) };
        a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
    }

    fn compare_exchange_u64(pa: PhysAddr, current: u64, new: u64) -> u64 {
        // SAFETY: as in `load_u64`.
        let a = unsafe { AtomicU64::from_ptr(word(pa)) };
        a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
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
        let a = unsafe { AtomicU32::from_ptr(frame.word::<u32>(offset)) };
        a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
    }

    #[inline]
    fn frame_compare_exchange_u64(frame: PoolPage, offset: usize, current: u64, new: u64) -> u64 {
        // SAFETY: as in `frame_load_u32`.
        let a = unsafe { AtomicU64::from_ptr(frame.word::<u64>(offset)) };
        a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|found| found)
    }
}

/// [`HostMemory::Frame`] of [`PoolMemory`]: the identity-mapped address of a page that
/// [`check`] found in the frame pool when the handle was made. The pool's ranges only
/// grow, so the page stays pool memory; only [`PoolMemory::frame`] makes one.
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

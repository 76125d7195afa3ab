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

/// The split of `[base, base + len)` into bytes before its first aligned 64-bit word, whole
/// words, and bytes after them: `(head, words)`.
fn split(base: usize, len: usize) -> (usize, usize) {
    let head = (base.next_multiple_of(8) - base).min(len);
    (head, (len - head) / 8)
}

impl HostMemory for X86Memory {
    // Copies go word by word: every aligned 64-bit word of pool memory is read or written
    // with one `mov`, which x86 performs single-copy atomically, so a guest racing on it
    // sees the old or the new word. `copy_nonoverlapping` promises no access size (string
    // instructions and overlapping unaligned tails may write a word in pieces).
    fn read(pa: PhysAddr, dst: &mut [u8]) {
        let base = checked::<u8>(pa, dst.len()) as usize;
        let (head, words) = split(base, dst.len());
        let byte = |i: usize| {
            // SAFETY: inside the checked frame-pool range, identity-mapped, holding no Rust
            // objects.
            unsafe { ((base + i) as *const u8).read_volatile() }
        };
        let tail = head + 8 * words;
        for (i, d) in dst[..head].iter_mut().enumerate() {
            *d = byte(i);
        }
        for w in 0..words {
            let at = head + 8 * w;
            // SAFETY: an aligned word inside the checked range, as above.
            let v = unsafe { ((base + at) as *const u64).read_volatile() };
            dst[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        }
        for (i, d) in dst.iter_mut().enumerate().skip(tail) {
            *d = byte(i);
        }
    }

    fn write(pa: PhysAddr, src: &[u8]) {
        let base = checked::<u8>(pa, src.len()) as usize;
        let (head, words) = split(base, src.len());
        let byte = |i: usize| {
            // SAFETY: as in `read`.
            unsafe { ((base + i) as *mut u8).write_volatile(src[i]) };
        };
        (0..head).for_each(byte);
        for w in 0..words {
            let at = head + 8 * w;
            let mut v = [0u8; 8];
            v.copy_from_slice(&src[at..at + 8]);
            // SAFETY: as in `read`.
            unsafe { ((base + at) as *mut u64).write_volatile(u64::from_ne_bytes(v)) };
        }
        (head + 8 * words..src.len()).for_each(byte);
    }

    fn zero(pa: PhysAddr, len: usize) {
        let base = checked::<u8>(pa, len) as usize;
        let (head, words) = split(base, len);
        let byte = |i: usize| {
            // SAFETY: as in `read`.
            unsafe { ((base + i) as *mut u8).write_volatile(0) };
        };
        (0..head).for_each(byte);
        for w in 0..words {
            // SAFETY: as in `read`.
            unsafe { ((base + head + 8 * w) as *mut u64).write_volatile(0) };
        }
        (head + 8 * words..len).for_each(byte);
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

#[cfg(test)]
mod tests {
    use super::*;
    use keel_kernel::mm::Region;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Host memory (page aligned, leaked) handed to the frame pool, so that its
    /// identity-mapped accesses reach it.
    fn scratch(pages: usize) -> PhysAddr {
        let bytes: &'static mut [u8] = Vec::leak(vec![0u8; (pages + 1) * 4096]);
        let start = (bytes.as_ptr() as u64).next_multiple_of(4096);
        FRAME_POOL.add(Region::new(start, pages as u64 * 4096));
        PhysAddr(start)
    }

    #[test]
    fn keeps_the_host_memory_contract() {
        keel_kernel::arch::memory::check::<X86Memory>(scratch(1), 4096).unwrap();
    }

    #[test]
    fn racing_copies_never_tear_a_word() {
        let at = scratch(1);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (ones, zeros) = ([0xffu8; 4096], [0u8; 4096]);
                while !stop.load(Ordering::Relaxed) {
                    // Unaligned by one byte: the head and tail are bytes, the rest words.
                    X86Memory::write(PhysAddr(at.0 + 1), &ones[..4094]);
                    X86Memory::write(PhysAddr(at.0 + 1), &zeros[..4094]);
                    X86Memory::zero(PhysAddr(at.0 + 1), 4094);
                }
            })
        };
        let mut buf = [0u8; 4096];
        for _ in 0..2000 {
            X86Memory::read(at, &mut buf);
            for w in buf[8..4088].chunks_exact(8) {
                assert!(w == [0; 8] || w == [0xff; 8], "a torn word: {w:02x?}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
    }
}

//! [`HostMemory`]: pointer accesses to identity-mapped frame-pool memory. Any range outside
//! the frame pool is refused with a panic: the core asked for something it must not touch.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use keel_kernel::arch::HostMemory;
use keel_kernel::mm::PhysAddr;
use keel_kernel::mm::FRAME_POOL;

/// The [`HostMemory`] of this backend.
pub struct X86Memory;

#[inline]
fn checked<T>(pa: PhysAddr, len: usize) -> *mut T {
    if len != 0 && !crate::pool_blocks::contains(pa, len as u64) {
        panic!("host memory access at {pa} (+{len:#x}) outside the frame pool");
    }
    pa.0 as usize as *mut T
}

/// The bytes of a staging block of the frame pool in which the domain builder holds a
/// module (`LoadRequest::staged`), if `region` lies in the pool.
pub fn staged_bytes(region: keel_kernel::mm::Region) -> Option<&'static [u8]> {
    let len = usize::try_from(region.size()).ok().filter(|&n| n != 0)?;
    if !FRAME_POOL.contains(PhysAddr(region.start), region.size()) {
        return None;
    }
    // SAFETY: pool memory is identity-mapped; the builder owns the block for the whole
    // load and nothing else writes it meanwhile.
    Some(unsafe { core::slice::from_raw_parts(region.start as usize as *const u8, len) })
}

#[inline]
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

/// Copies `words` quadwords from `from` to `to` with `rep movsq`: every quadword is one
/// element of the string instruction, one 8-byte load and one 8-byte store.
///
/// # Safety
/// Both ranges must be valid for `8 * words` bytes and not overlap.
unsafe fn move_words(from: *const u8, to: *mut u8, words: usize) {
    // SAFETY: the caller vouches for both ranges; the direction flag is clear (Rust's ABI).
    unsafe {
        core::arch::asm!(
            "rep movsq",
            inout("rcx") words => _,
            inout("rsi") from => _,
            inout("rdi") to => _,
            options(nostack, preserves_flags),
        )
    };
}

/// Stores `words` zero quadwords at `to` with `rep stosq` (as [`move_words`]).
///
/// # Safety
/// The range must be valid for `8 * words` bytes.
unsafe fn zero_words(to: *mut u8, words: usize) {
    // SAFETY: as in `move_words`.
    unsafe {
        core::arch::asm!(
            "rep stosq",
            inout("rcx") words => _,
            inout("rdi") to => _,
            in("rax") 0u64,
            options(nostack, preserves_flags),
        )
    };
}

impl HostMemory for X86Memory {
    // Every aligned 64-bit word of pool memory inside a copy is moved by one quadword
    // element of `rep movsq`/`rep stosq`, which x86 performs as one 8-byte access (atomic
    // when aligned: SDM vol. 3, "Guaranteed Atomic Operations"; fast-string operation may
    // reorder the elements, "Fast-String Operation and Out-of-Order Stores", which the
    // contract allows), so a guest racing on a word sees the old or the new one. `copy_nonoverlapping` and `write_bytes` promise no access size.
    // The string instructions keep bulk copies fast: Linux's RAM and images are
    // megabytes, and emulators run a `rep` as one instruction.
    fn read(pa: PhysAddr, dst: &mut [u8]) {
        let base = checked::<u8>(pa, dst.len()) as usize;
        let (head, words) = split(base, dst.len());
        let tail = head + 8 * words;
        let byte = |i: usize| {
            // SAFETY: inside the checked frame-pool range, identity-mapped, holding no Rust
            // objects.
            unsafe { ((base + i) as *const u8).read_volatile() }
        };
        for (i, d) in dst[..head].iter_mut().enumerate() {
            *d = byte(i);
        }
        // SAFETY: `[head, tail)` lies inside both the checked pool range (aligned) and
        // `dst`; pool memory never overlaps a Rust buffer.
        unsafe { move_words((base + head) as *const u8, dst[head..].as_mut_ptr(), words) };
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
        // SAFETY: as in `read`, the other way round.
        unsafe { move_words(src[head..].as_ptr(), (base + head) as *mut u8, words) };
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
        // SAFETY: `[head, head + 8 * words)` lies inside the checked pool range.
        unsafe { zero_words((base + head) as *mut u8, words) };
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

    type Frame = PoolPage;

    fn frame(pa: PhysAddr) -> PoolPage {
        assert!(pa.0.is_multiple_of(PAGE as u64), "a frame at {pa}, not page aligned");
        PoolPage(checked::<u8>(pa, PAGE) as usize)
    }

    fn frame_address(frame: PoolPage) -> PhysAddr {
        PhysAddr(frame.0 as u64)
    }

    #[inline]
    fn frame_load_u32(frame: PoolPage, offset: usize) -> u32 {
        // SAFETY: a word inside a checked pool page (`PoolPage::word`); all accesses to it
        // are atomic.
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

const PAGE: usize = 4096;

/// [`HostMemory::Frame`] here: the identity-mapped address of a page that was found in
/// the frame pool when the handle was made. The pool's ranges only grow, so the page stays
/// pool memory; only [`X86Memory::frame`] makes one.
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

//! The frame pool: the host memory that guests, translation tables and shared pages
//! are carved from. The hypervisor's own Rust objects live in the heap, never here.

use super::{MemoryMap, PhysAddr, Region, PAGE_SIZE};
use buddy_system_allocator::FrameAllocator;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

/// Counters of a [`FramePool`], in 4 KiB pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub total: usize,
    pub allocated: usize,
}

/// Keel's frames for guests and translation tables: all free RAM the heap did not take
/// (filled at boot by `start::primary`).
pub static FRAME_POOL: FramePool = FramePool::new();

/// A buddy allocator of 4 KiB frames. An allocation of `n` frames is rounded up to a
/// power of two and aligned to its size, so 512 frames make a 2 MiB-aligned block.
pub struct FramePool {
    inner: Mutex<Inner>,
    /// The largest [`PUBLISHED`] ranges the pool manages, readable without the lock (a
    /// sequence lock: `seq` is odd while [`FramePool::add`] changes them; unused entries
    /// are empty). Ranges only ever grow, so a range read here is managed memory for
    /// good: [`FramePool::contains`] checks against them first, and takes the lock only
    /// for addresses outside them.
    seq: AtomicU64,
    published: [[AtomicU64; 2]; PUBLISHED],
}

/// How many of the pool's ranges [`FramePool::contains`] checks without the lock.
const PUBLISHED: usize = 8;

struct Inner {
    frames: FrameAllocator<32>,
    /// Everything handed to the pool, reserved ranges included.
    ranges: MemoryMap,
    /// Ranges taken out for good ([`FramePool::reserve`]): never allocated, never freed.
    reserved: MemoryMap,
    /// Reserved ranges a domain maps now ([`FramePool::claim_reserved`]).
    claimed: MemoryMap,
    total: usize,
    allocated: usize,
}

/// Why [`FramePool::reserve`] refused a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReserveError {
    /// Empty or not page aligned.
    Misaligned,
    /// Not wholly inside memory handed to the pool (Keel's image, a boot module, a hole).
    NotFree,
    /// It overlaps a range reserved before.
    Reserved,
    /// Frames are allocated: reserving is for boot, before anything is built.
    Busy,
}

impl Default for FramePool {
    fn default() -> Self {
        Self::new()
    }
}

impl FramePool {
    pub const fn new() -> Self {
        FramePool {
            inner: Mutex::new(Inner {
                frames: FrameAllocator::new(),
                ranges: MemoryMap::new(),
                reserved: MemoryMap::new(),
                claimed: MemoryMap::new(),
                total: 0,
                allocated: 0,
            }),
            seq: AtomicU64::new(0),
            published: [const { [AtomicU64::new(0), AtomicU64::new(0)] }; PUBLISHED],
        }
    }

    /// Hands the whole pages inside `r` to the pool.
    pub fn add(&self, r: Region) {
        let start = r.start.div_ceil(PAGE_SIZE);
        let end = r.end / PAGE_SIZE;
        if start >= end {
            return;
        }
        let mut inner = self.inner.lock();
        // Frame numbers of a 64-bit address space: on a 32-bit host a region beyond 16 TiB
        // would not fit and is left out.
        if usize::try_from(end).is_err() {
            return;
        }
        let added = Region { start: start * PAGE_SIZE, end: end * PAGE_SIZE };
        inner.ranges.add(added);
        let mut free = MemoryMap::new();
        free.add(added);
        for r in inner.reserved.regions() {
            free.remove(*r);
        }
        for f in free.regions() {
            let (Ok(a), Ok(b)) = (usize::try_from(f.start / PAGE_SIZE), usize::try_from(f.end / PAGE_SIZE)) else {
                continue;
            };
            inner.frames.add_frame(a, b);
            inner.total += b - a;
        }
        // The largest ranges, largest first (no heap: the pool is filled before it exists).
        let mut largest = [Region { start: 0, end: 0 }; PUBLISHED];
        for &r in inner.ranges.regions() {
            if let Some(i) = largest.iter().position(|l| r.size() > l.size()) {
                largest.copy_within(i..PUBLISHED - 1, i + 1);
                largest[i] = r;
            }
        }
        // Under the lock: one writer at a time.
        self.seq.fetch_add(1, Ordering::AcqRel);
        for (p, r) in self.published.iter().zip(largest) {
            p[0].store(r.start, Ordering::Release);
            p[1].store(r.end, Ordering::Release);
        }
        self.seq.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes the pages of `r` out of the pool for good: they are never allocated, and a
    /// [`FramePool::free`] of any of them is ignored. For RAM a domain owns by name
    /// (`xen,static-mem` of a direct-mapped domain). `r` must be page aligned, wholly
    /// inside memory handed to the pool, clear of every range reserved before, and
    /// nothing may be allocated (at boot, before any domain is built): the allocator is
    /// rebuilt from the pool's ranges without the reserved ones. [`FramePool::contains`]
    /// still counts `r` as managed memory.
    pub fn reserve(&self, r: Region) -> Result<(), ReserveError> {
        if r.is_empty() || !r.start.is_multiple_of(PAGE_SIZE) || !r.end.is_multiple_of(PAGE_SIZE) {
            return Err(ReserveError::Misaligned);
        }
        let mut inner = self.inner.lock();
        if !inner.ranges.contains(r) {
            return Err(ReserveError::NotFree);
        }
        if inner.reserved.regions().iter().any(|o| o.start < r.end && r.start < o.end) {
            return Err(ReserveError::Reserved);
        }
        if inner.allocated != 0 {
            return Err(ReserveError::Busy);
        }
        inner.reserved.add(r);
        let mut free = inner.ranges.clone();
        for o in inner.reserved.regions() {
            free.remove(*o);
        }
        inner.frames = FrameAllocator::new();
        inner.total = 0;
        for f in free.regions() {
            let (Ok(a), Ok(b)) = (usize::try_from(f.start / PAGE_SIZE), usize::try_from(f.end / PAGE_SIZE)) else {
                continue;
            };
            inner.frames.add_frame(a, b);
            inner.total += b - a;
        }
        Ok(())
    }

    /// Whether all of `[pa, pa + len)` (not empty) was taken out by [`FramePool::reserve`].
    pub fn is_reserved(&self, pa: PhysAddr, len: u64) -> bool {
        let Some(end) = pa.0.checked_add(len) else { return false };
        len != 0 && self.inner.lock().reserved.contains(Region { start: pa.0, end })
    }

    /// Claims the reserved range `r` for one domain's P2M: `false` unless all of it is
    /// reserved and no part is claimed (by a domain not yet torn down, say the previous
    /// incarnation of a rebooting one, whose grants another domain may still map).
    pub fn claim_reserved(&self, r: Region) -> bool {
        let mut inner = self.inner.lock();
        let free = !r.is_empty()
            && inner.reserved.contains(r)
            && !inner.claimed.regions().iter().any(|o| o.start < r.end && r.start < o.end);
        if free {
            inner.claimed.add(r);
        }
        free
    }

    /// Ends a claim taken with [`FramePool::claim_reserved`] (its domain is torn down);
    /// the range stays reserved.
    pub fn unclaim_reserved(&self, r: Region) {
        self.inner.lock().claimed.remove(r);
    }

    /// Allocates `pages` contiguous frames (rounded up to a power of two, aligned to that
    /// size). The memory is not cleared.
    pub fn alloc(&self, pages: usize) -> Option<PhysAddr> {
        let pages = pages.max(1).next_power_of_two();
        let mut inner = self.inner.lock();
        let frame = inner.frames.alloc(pages)?;
        inner.allocated += pages;
        Some(PhysAddr(frame as u64 * PAGE_SIZE))
    }

    /// Returns frames obtained from [`FramePool::alloc`] with the same `pages`.
    pub fn free(&self, pa: PhysAddr, pages: usize) {
        let pages = pages.max(1).next_power_of_two();
        let mut inner = self.inner.lock();
        let freed = Region::new(pa.0, pages as u64 * PAGE_SIZE);
        if inner.reserved.regions().iter().any(|o| o.start < freed.end && freed.start < o.end) {
            log::error!("frame pool: [{:#x}, {:#x}) is reserved RAM, not freed", freed.start, freed.end);
            return;
        }
        debug_assert!(inner.ranges.contains(freed));
        inner.frames.dealloc((pa.0 / PAGE_SIZE) as usize, pages);
        inner.allocated -= pages;
    }

    /// Whether `[pa, pa + len)` lies inside memory managed by the pool.
    pub fn contains(&self, pa: PhysAddr, len: u64) -> bool {
        let Some(end) = pa.0.checked_add(len) else { return false };
        let seq = self.seq.load(Ordering::Acquire);
        let inside = self.published.iter().any(|p| {
            let (lo, hi) = (p[0].load(Ordering::Acquire), p[1].load(Ordering::Acquire));
            lo <= pa.0 && end <= hi && lo < hi
        });
        if inside && seq.is_multiple_of(2) && self.seq.load(Ordering::Acquire) == seq {
            return true;
        }
        self.inner.lock().ranges.contains(Region { start: pa.0, end })
    }

    pub fn stats(&self) -> PoolStats {
        let inner = self.inner.lock();
        PoolStats { total: inner.total, allocated: inner.allocated }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_is_aligned_and_accounted() {
        let pool = FramePool::new();
        pool.add(Region::new(0x4000_0000, 0x100_0000));
        let a = pool.alloc(512).unwrap();
        assert!(a.is_aligned(0x20_0000));
        let b = pool.alloc(3).unwrap();
        assert!(b.is_aligned(4 * PAGE_SIZE));
        assert_eq!(pool.stats().allocated, 516);
        pool.free(a, 512);
        pool.free(b, 3);
        assert_eq!(pool.stats(), PoolStats { total: 4096, allocated: 0 });
        assert!(pool.contains(PhysAddr(0x4000_0000), 0x100_0000));
        assert!(!pool.contains(PhysAddr(0x40ff_f000), 0x2000));
        assert!(!pool.contains(PhysAddr(u64::MAX - 1), 0x2000));
    }

    #[test]
    fn contains_checks_every_range_not_only_the_largest() {
        let pool = FramePool::new();
        pool.add(Region::new(0x1_0000, 0x1000));
        pool.add(Region::new(0x10_0000, 0x10_0000));
        assert!(pool.contains(PhysAddr(0x10_0000), 0x10_0000), "the largest range");
        assert!(pool.contains(PhysAddr(0x1_0000), 0x1000), "a smaller one");
        for i in 0..PUBLISHED as u64 {
            pool.add(Region::new(0x100_0000 + i * 0x10_0000 + 0x1000, 0x1000));
        }
        assert!(pool.contains(PhysAddr(0x1_0000), 0x1000), "the smallest, beyond those published");
        assert!(!pool.contains(PhysAddr(0x1_1000), 0x1000));
        assert!(!pool.contains(PhysAddr(0x1_0000), 0x1001));
        assert!(!pool.contains(PhysAddr(0xf_f000), 0x2000), "straddling the largest range's start");
        assert!(!pool.contains(PhysAddr(0x1f_f000), 0x2000), "straddling its end");
        pool.add(Region::new(0x20_0000, 0x10_0000));
        assert!(pool.contains(PhysAddr(0x1f_f000), 0x2000), "merged with the adjacent range");
    }

    #[test]
    fn a_reserved_range_is_never_handed_out_nor_taken_back() {
        let pool = FramePool::new();
        pool.add(Region::new(0x4000_0000, 0x40_0000));
        let bank = Region::new(0x4010_0000, 0x20_0000);
        assert_eq!(pool.reserve(bank), Ok(()));
        assert_eq!(pool.stats(), PoolStats { total: 512, allocated: 0 });
        assert!(pool.is_reserved(PhysAddr(0x402f_f000), 0x1000) && !pool.is_reserved(PhysAddr(0x4030_0000), 0x1000));
        assert!(pool.contains(PhysAddr(bank.start), bank.size()), "still memory Keel manages");
        let mut got = alloc::vec::Vec::new();
        while let Some(a) = pool.alloc(1) {
            assert!(!pool.is_reserved(a, PAGE_SIZE), "handed out reserved frame {a:?}");
            got.push(a);
        }
        assert_eq!(got.len(), 512);
        pool.free(PhysAddr(bank.start), 1);
        assert_eq!(pool.stats().allocated, 512, "a free of a reserved frame is ignored");
        assert_eq!(pool.alloc(1), None);
        for a in got {
            pool.free(a, 1);
        }
        assert_eq!(pool.stats(), PoolStats { total: 512, allocated: 0 });
        pool.add(Region::new(0x4040_0000, 0x1000));
        assert_eq!(pool.stats().total, 513, "memory added later is free unless reserved");
    }

    #[test]
    fn reserve_refuses_what_is_not_free_pool_memory() {
        let pool = FramePool::new();
        pool.add(Region::new(0x4000_0000, 0x40_0000));
        assert_eq!(pool.reserve(Region::new(0x3fff_f000, 0x2000)), Err(ReserveError::NotFree));
        assert_eq!(pool.reserve(Region::new(0x4000_0800, 0x1000)), Err(ReserveError::Misaligned));
        assert_eq!(pool.reserve(Region::new(0x4000_0000, 0)), Err(ReserveError::Misaligned));
        assert_eq!(pool.reserve(Region::new(0x4000_0000, 0x2000)), Ok(()));
        assert_eq!(pool.reserve(Region::new(0x4000_1000, 0x2000)), Err(ReserveError::Reserved));
        let a = pool.alloc(1).unwrap();
        assert_eq!(pool.reserve(Region::new(0x4010_0000, 0x1000)), Err(ReserveError::Busy));
        pool.free(a, 1);
        assert_eq!(pool.reserve(Region::new(0x4010_0000, 0x1000)), Ok(()));
        assert_eq!(pool.stats().total, 1024 - 3);
    }

    #[test]
    fn partial_pages_are_ignored() {
        let pool = FramePool::new();
        pool.add(Region::new(0x1800, 0x2000));
        assert_eq!(pool.stats().total, 1);
        assert_eq!(pool.alloc(1), Some(PhysAddr(0x2000)));
        assert_eq!(pool.alloc(1), None);
    }
}

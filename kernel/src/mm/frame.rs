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
    ranges: MemoryMap,
    total: usize,
    allocated: usize,
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
        let (Ok(first), Ok(last)) = (usize::try_from(start), usize::try_from(end)) else { return };
        inner.frames.add_frame(first, last);
        inner.ranges.add(Region { start: start * PAGE_SIZE, end: end * PAGE_SIZE });
        inner.total += last - first;
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
        debug_assert!(inner.ranges.contains(Region::new(pa.0, pages as u64 * PAGE_SIZE)));
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
    fn partial_pages_are_ignored() {
        let pool = FramePool::new();
        pool.add(Region::new(0x1800, 0x2000));
        assert_eq!(pool.stats().total, 1);
        assert_eq!(pool.alloc(1), Some(PhysAddr(0x2000)));
        assert_eq!(pool.alloc(1), None);
    }
}

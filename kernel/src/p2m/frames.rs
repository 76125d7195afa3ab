//! A set of host frames kept as disjoint runs, and freeing runs back to the pool.

use crate::mm::{FramePool, PhysAddr, PAGE_SIZE};
use alloc::collections::BTreeMap;

/// Host frame numbers (`pa / 4096`), stored as runs `start -> end` (exclusive).
#[derive(Default)]
pub struct FrameSet {
    runs: BTreeMap<u64, u64>,
    count: u64,
}

impl FrameSet {
    pub const fn new() -> Self {
        FrameSet { runs: BTreeMap::new(), count: 0 }
    }

    /// Number of frames in the set.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether frame `pfn` is in the set.
    pub fn contains(&self, pfn: u64) -> bool {
        self.runs.range(..=pfn).next_back().is_some_and(|(_, &end)| pfn < end)
    }

    /// Adds `[start, start + len)`, which must not overlap the set.
    pub fn insert(&mut self, start: u64, len: u64) {
        let mut s = start;
        let mut e = start + len;
        if let Some((&ps, &pe)) = self.runs.range(..s).next_back() {
            if pe == s {
                self.runs.remove(&ps);
                s = ps;
            }
        }
        if let Some(ne) = self.runs.remove(&e) {
            e = ne;
        }
        self.runs.insert(s, e);
        self.count += len;
    }

    /// Removes frame `pfn`; returns whether it was there.
    pub fn remove(&mut self, pfn: u64) -> bool {
        let Some((&s, &e)) = self.runs.range(..=pfn).next_back() else { return false };
        if pfn >= e {
            return false;
        }
        self.runs.remove(&s);
        if s < pfn {
            self.runs.insert(s, pfn);
        }
        if pfn + 1 < e {
            self.runs.insert(pfn + 1, e);
        }
        self.count -= 1;
        true
    }

    /// Returns every frame to `pool` and empties the set.
    pub fn free_all(&mut self, pool: &FramePool) {
        for (&s, &e) in &self.runs {
            free_run(pool, s, e);
        }
        self.runs.clear();
        self.count = 0;
    }
}

/// Frees frames `[start, end)` in aligned power-of-two blocks, so the buddy allocator
/// can merge them back whatever sizes they were allocated in.
pub fn free_run(pool: &FramePool, mut start: u64, end: u64) {
    while start < end {
        let align = if start == 0 { 1 << 20 } else { start & start.wrapping_neg() };
        let mut size = align.min(1 << 20);
        while start + size > end {
            size /= 2;
        }
        // `size` is at most 2^20 pages (above).
        pool.free(PhysAddr(start * PAGE_SIZE), usize::try_from(size).unwrap_or(1 << 20));
        start += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::Region;

    #[test]
    fn runs_merge_split_and_free() {
        let mut s = FrameSet::new();
        s.insert(10, 5);
        s.insert(15, 5);
        s.insert(0, 10);
        assert_eq!(s.runs.len(), 1);
        assert!(s.remove(12));
        assert!(!s.remove(12));
        assert!(!s.contains(12) && s.contains(11) && s.contains(13) && !s.contains(20));
        assert_eq!(s.len(), 19);

        let pool = FramePool::new();
        pool.add(Region::new(0x10_0000, 64 * PAGE_SIZE));
        let a = pool.alloc(32).unwrap();
        let mut owned = FrameSet::new();
        owned.insert(a.0 / PAGE_SIZE, 32);
        assert!(owned.remove(a.0 / PAGE_SIZE + 7));
        pool.free(PhysAddr(a.0 + 7 * PAGE_SIZE), 1);
        owned.free_all(&pool);
        assert_eq!(pool.stats().allocated, 0);
        assert!(pool.alloc(64).is_some(), "buddies merged back into one block");
    }
}

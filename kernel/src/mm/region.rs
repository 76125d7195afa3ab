//! The boot memory map: a fixed-capacity list of disjoint address ranges, usable before
//! any allocator exists.

use crate::addr::Region;

/// Disjoint, sorted ranges, at most 64 of them.
#[derive(Clone, Debug)]
pub struct MemoryMap {
    regions: [Region; Self::CAPACITY],
    len: usize,
    /// Whether an operation had to drop a range for lack of room.
    overflowed: bool,
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMap {
    pub const CAPACITY: usize = 64;

    pub const fn new() -> Self {
        MemoryMap { regions: [Region { start: 0, end: 0 }; Self::CAPACITY], len: 0, overflowed: false }
    }

    /// The ranges, sorted by address.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    /// Sum of the sizes of all ranges.
    pub fn total(&self) -> u64 {
        self.regions().iter().map(Region::size).sum()
    }

    /// Whether a range was lost because the map was full.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Adds `r`, merging it with ranges it overlaps or touches.
    pub fn add(&mut self, r: Region) {
        if r.is_empty() {
            return;
        }
        let mut merged = r;
        let mut i = 0;
        while i < self.len {
            let cur = self.regions[i];
            if cur.end >= merged.start && cur.start <= merged.end {
                merged.start = merged.start.min(cur.start);
                merged.end = merged.end.max(cur.end);
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
        let pos = self.regions().iter().position(|x| x.start > merged.start).unwrap_or(self.len);
        self.insert_at(pos, merged);
    }

    /// Removes every address in `r` from the map.
    pub fn remove(&mut self, r: Region) {
        if r.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.len {
            let cur = self.regions[i];
            if cur.end <= r.start || cur.start >= r.end {
                i += 1;
                continue;
            }
            let left = Region { start: cur.start, end: r.start.max(cur.start) };
            let right = Region { start: r.end.min(cur.end), end: cur.end };
            self.remove_at(i);
            if !right.is_empty() {
                self.insert_at(i, right);
            }
            if !left.is_empty() {
                self.insert_at(i, left);
                i += 1;
            }
            if !right.is_empty() {
                i += 1;
            }
        }
    }

    /// Whether `[start, end)` lies entirely inside one range.
    pub fn contains(&self, r: Region) -> bool {
        self.regions().iter().any(|x| x.start <= r.start && r.end <= x.end)
    }

    /// Takes `size` bytes aligned to `align` (a power of two) from the largest range that
    /// can hold them, and removes them from the map.
    pub fn take(&mut self, size: u64, align: u64) -> Option<Region> {
        let mut best: Option<Region> = None;
        for r in self.regions() {
            let start = r.start.checked_add(align - 1)? & !(align - 1);
            if start.checked_add(size).is_some_and(|end| end <= r.end) && best.is_none_or(|b| r.size() > b.size()) {
                best = Some(Region::new(start, size));
            }
        }
        let got = best?;
        self.remove(got);
        Some(got)
    }

    fn remove_at(&mut self, i: usize) {
        self.regions.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }

    fn insert_at(&mut self, i: usize, r: Region) {
        if self.len == Self::CAPACITY {
            self.overflowed = true;
            return;
        }
        self.regions.copy_within(i..self.len, i + 1);
        self.regions[i] = r;
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn add_merges_and_sorts() {
        let mut m = MemoryMap::new();
        m.add(Region::new(0x3000, 0x1000));
        m.add(Region::new(0x1000, 0x1000));
        m.add(Region::new(0x2000, 0x1000));
        assert_eq!(m.regions(), &[Region { start: 0x1000, end: 0x4000 }]);
    }

    #[test]
    fn remove_splits() {
        let mut m = MemoryMap::new();
        m.add(Region::new(0, 0x10000));
        m.remove(Region::new(0x4000, 0x1000));
        assert_eq!(m.regions(), &[Region { start: 0, end: 0x4000 }, Region { start: 0x5000, end: 0x10000 }]);
        assert_eq!(m.total(), 0xf000);
    }

    #[test]
    fn take_uses_largest_and_aligns() {
        let mut m = MemoryMap::new();
        m.add(Region::new(0x1000, 0x3000));
        m.add(Region::new(0x10_0000, 0x40_0000));
        let got = m.take(0x20_0000, 0x20_0000).unwrap();
        assert_eq!(got, Region::new(0x20_0000, 0x20_0000));
        assert!(!m.contains(got));
        assert!(m.take(0x100_0000, 0x1000).is_none());
    }

    proptest! {
        /// The map behaves like a set of addresses (checked on a small page-granular universe).
        #[test]
        fn matches_a_set_model(ops in proptest::collection::vec((any::<bool>(), 0u64..64, 1u64..16), 0..40)) {
            let mut m = MemoryMap::new();
            let mut model = [false; 96];
            for (add, start, len) in ops {
                let r = Region::new(start * 0x1000, len * 0x1000);
                if add { m.add(r) } else { m.remove(r) }
                for p in start..start + len { model[p as usize] = add; }
            }
            for (p, &present) in model.iter().enumerate() {
                let page = Region::new(p as u64 * 0x1000, 0x1000);
                prop_assert_eq!(m.contains(page), present, "page {}", p);
            }
            for w in m.regions().windows(2) {
                prop_assert!(w[0].end < w[1].start, "ranges must be sorted, disjoint, not touching");
            }
        }
    }
}

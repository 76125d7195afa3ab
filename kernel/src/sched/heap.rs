//! A binary min-heap of slot numbers with a position index, so any member can be removed
//! in O(log n). Once its vectors have grown to the run queue's size it never allocates.

const ABSENT: u32 = u32::MAX;

/// Min-heap of `(key, slot)`; each slot appears at most once.
pub(super) struct IndexedHeap<K: Ord + Copy> {
    items: alloc::vec::Vec<(K, u32)>,
    /// `pos[slot]` is the slot's index in `items`, or `ABSENT`.
    pos: alloc::vec::Vec<u32>,
}

impl<K: Ord + Copy> IndexedHeap<K> {
    pub const fn new() -> Self {
        IndexedHeap { items: alloc::vec::Vec::new(), pos: alloc::vec::Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn contains(&self, slot: u32) -> bool {
        self.pos.get(slot as usize).is_some_and(|&p| p != ABSENT)
    }

    /// The smallest entry.
    pub fn peek(&self) -> Option<(K, u32)> {
        self.items.first().copied()
    }

    /// The entries in heap order (the first is the smallest; the rest are unordered).
    pub fn entries(&self) -> &[(K, u32)] {
        &self.items
    }

    /// Adds `slot` with `key`, or re-keys it if present.
    pub fn push(&mut self, slot: u32, key: K) {
        self.remove(slot);
        if self.pos.len() <= slot as usize {
            self.pos.resize(slot as usize + 1, ABSENT);
        }
        let i = self.items.len();
        self.items.push((key, slot));
        self.pos[slot as usize] = index(i);
        self.sift_up(i);
    }

    /// Removes the smallest entry.
    pub fn pop(&mut self) -> Option<(K, u32)> {
        let (_, slot) = self.peek()?;
        self.remove(slot).map(|k| (k, slot))
    }

    /// Removes `slot`, returning its key if it was present.
    pub fn remove(&mut self, slot: u32) -> Option<K> {
        let i = *self.pos.get(slot as usize)?;
        if i == ABSENT {
            return None;
        }
        let i = i as usize;
        let last = self.items.len() - 1;
        self.items.swap(i, last);
        let (key, _) = self.items.pop()?;
        self.pos[slot as usize] = ABSENT;
        if i < self.items.len() {
            self.pos[self.items[i].1 as usize] = index(i);
            self.sift_down(i);
            self.sift_up(i);
        }
        Some(key)
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.items[i].0 >= self.items[parent].0 {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < self.items.len() && self.items[l].0 < self.items[least].0 {
                least = l;
            }
            if r < self.items.len() && self.items[r].0 < self.items[least].0 {
                least = r;
            }
            if least == i {
                break;
            }
            self.swap(i, least);
            i = least;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.items.swap(a, b);
        self.pos[self.items[a].1 as usize] = index(a);
        self.pos[self.items[b].1 as usize] = index(b);
    }
}

/// A heap position as stored in `pos`: the heap holds at most one item per `u32` slot.
fn index(i: usize) -> u32 {
    u32::try_from(i).expect("at most one heap item per u32 slot")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Pushes, removals and pops agree with a sorted model.
        #[test]
        fn behaves_like_a_sorted_set(ops in proptest::collection::vec((0u32..32, 0u64..100, any::<bool>()), 0..200)) {
            let mut heap = IndexedHeap::new();
            let mut model = alloc::collections::BTreeMap::new();
            for (slot, key, add) in ops {
                if add {
                    heap.push(slot, key);
                    model.insert(slot, key);
                } else {
                    prop_assert_eq!(heap.remove(slot), model.remove(&slot));
                }
                prop_assert_eq!(heap.len(), model.len());
                let min = model.iter().map(|(s, k)| (*k, *s)).min();
                prop_assert_eq!(heap.peek().map(|(k, _)| k), min.map(|(k, _)| k));
            }
            let mut last = None;
            while let Some((k, s)) = heap.pop() {
                prop_assert_eq!(model.remove(&s), Some(k));
                prop_assert!(last <= Some(k));
                last = Some(k);
            }
            prop_assert!(model.is_empty());
        }
    }
}

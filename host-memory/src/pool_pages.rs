//! Which pages of physical memory lie in the frame pool, remembered: every host access
//! ([`crate::PoolMemory`]) must lie in the pool, and an event send makes about 37 of them,
//! each a search of the pool's published ranges (30 instructions and more). The pool's
//! ranges only grow (`FramePool::add`; nothing removes one), so a page once found inside
//! stays inside: a direct-mapped table remembers such pages, and an access within one of
//! them needs no search. A page is remembered only after the pool said so for the whole
//! page; an access across pages, or to a page not remembered, asks the pool as before.

use core::sync::atomic::{AtomicU64, Ordering};
use keel_kernel::mm::PhysAddr;
use keel_kernel::mm::FRAME_POOL;

const PAGE_SHIFT: u32 = 12;
const SLOTS: usize = 256;

/// Page number + 1 of a page wholly in the pool, in slot `page % SLOTS`; 0: empty. Each
/// slot is one word, so a reader sees a whole tag or none.
static KNOWN: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

fn slot(page: u64) -> &'static AtomicU64 {
    &KNOWN[(page % SLOTS as u64) as usize]
}

/// Whether `[pa, pa + len)` lies in the frame pool (as `FramePool::contains`).
#[inline]
pub fn contains(pa: PhysAddr, len: u64) -> bool {
    let page = pa.0 >> PAGE_SHIFT;
    let last = len.checked_sub(1).and_then(|l| pa.0.checked_add(l));
    if last.is_some_and(|last| last >> PAGE_SHIFT == page) {
        // A permanent fact, not a publication of other data: relaxed loads suffice.
        if slot(page).load(Ordering::Relaxed) == page + 1 {
            return true;
        }
        return learn(pa, len, page);
    }
    FRAME_POOL.contains(pa, len)
}

/// Asks the pool, and remembers the page if it lies wholly inside.
#[inline(never)]
fn learn(pa: PhysAddr, len: u64, page: u64) -> bool {
    if !FRAME_POOL.contains(pa, len) {
        return false;
    }
    if FRAME_POOL.contains(PhysAddr(page << PAGE_SHIFT), 1 << PAGE_SHIFT) {
        slot(page).store(page + 1, Ordering::Relaxed);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_kernel::mm::Region;

    #[test]
    fn a_remembered_page_answers_for_itself_only() {
        // Host memory, of which the pool gets two pages with a hole between them.
        let bytes: &'static mut [u8] = Vec::leak(vec![0u8; 5 << PAGE_SHIFT]);
        let base = (bytes.as_ptr() as u64).next_multiple_of(1 << PAGE_SHIFT);
        let (first, hole, third) = (base, base + 0x1000, base + 0x2000);
        FRAME_POOL.add(Region::new(first, 0x1000));
        FRAME_POOL.add(Region::new(third, 0x1000));
        for _ in 0..2 {
            // The first time asks the pool, the second finds the page remembered.
            assert!(contains(PhysAddr(first + 0x234), 8));
            assert!(contains(PhysAddr(first), 0x1000));
            assert!(!contains(PhysAddr(first + 0xffc), 8), "across the page's end");
            assert!(!contains(PhysAddr(hole), 8), "the next page is not the pool's");
            assert!(!contains(PhysAddr(first), 0x1001));
            assert!(contains(PhysAddr(third + 8), 8));
        }
        assert_eq!(slot(first >> PAGE_SHIFT).load(Ordering::Relaxed), (first >> PAGE_SHIFT) + 1);
        assert_ne!(slot(hole >> PAGE_SHIFT).load(Ordering::Relaxed), (hole >> PAGE_SHIFT) + 1);
        assert!(!contains(PhysAddr(u64::MAX - 3), 8), "wrapping");
    }
}

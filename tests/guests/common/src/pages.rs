//! Page-sized, page-aligned memory the scenarios give to Keel (shared_info's frame,
//! `vcpu_info`, FIFO control blocks and event arrays, grant frames). Viewed as 32-bit
//! atomics: Keel updates these pages while the guest runs.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// One 4 KiB page.
#[repr(C, align(4096))]
pub struct Page(pub [AtomicU32; 1024]);

impl Page {
    const fn new() -> Self {
        Page([const { AtomicU32::new(0) }; 1024])
    }

    /// The page's virtual address.
    pub fn va(&self) -> usize {
        self as *const Page as usize
    }

    /// The 32-bit word at byte offset `at`.
    pub fn word(&self, at: usize) -> &AtomicU32 {
        &self.0[at / 4]
    }

    /// Reads the 64-bit little-endian value at byte offset `at` (8-aligned).
    pub fn load64(&self, at: usize) -> u64 {
        let lo = self.0[at / 4].load(Ordering::Acquire) as u64;
        lo | (self.0[at / 4 + 1].load(Ordering::Acquire) as u64) << 32
    }

    /// Atomically clears bit `bit` of the bitmap at byte offset `at`; returns whether it
    /// was set.
    pub fn test_and_clear(&self, at: usize, bit: usize) -> bool {
        let w = &self.0[at / 4 + bit / 32];
        w.fetch_and(!(1 << (bit % 32)), Ordering::AcqRel) & (1 << (bit % 32)) != 0
    }

    /// Atomically sets bit `bit` of the bitmap at byte offset `at`.
    pub fn set_bit(&self, at: usize, bit: usize) {
        self.0[at / 4 + bit / 32].fetch_or(1 << (bit % 32), Ordering::AcqRel);
    }

    pub fn test_bit(&self, at: usize, bit: usize) -> bool {
        self.0[at / 4 + bit / 32].load(Ordering::Acquire) & (1 << (bit % 32)) != 0
    }

    /// Writes `bytes` at byte offset `at` (4-aligned), a word at a time.
    pub fn fill(&self, at: usize, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(4).enumerate() {
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0[at / 4 + i].store(u32::from_le_bytes(w), Ordering::Release);
        }
    }

    /// Reads `out.len()` bytes at byte offset `at` (4-aligned).
    pub fn read(&self, at: usize, out: &mut [u8]) {
        for (i, chunk) in out.chunks_mut(4).enumerate() {
            let w = self.0[at / 4 + i].load(Ordering::Acquire).to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

const POOL_PAGES: usize = 40;
static POOL: [Page; POOL_PAGES] = [const { Page::new() }; POOL_PAGES];
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh (zeroed) page, or `None` once the pool is used up.
pub fn alloc() -> Option<&'static Page> {
    let i = NEXT.fetch_add(1, Ordering::AcqRel);
    POOL.get(i)
}

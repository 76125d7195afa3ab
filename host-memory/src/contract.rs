//! The contract tests of [`crate::PoolMemory`], generic over the word moves, so that each
//! backend runs them on its own moves in its host tests (and this crate on the defaults).
//! Each panics with what failed.

use crate::{PoolMemory, WordMoves};
use keel_kernel::arch::HostMemory;
use keel_kernel::mm::{PhysAddr, Region, FRAME_POOL};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `pages` pages of host memory (page aligned, leaked), not handed to the frame pool.
pub fn outside_the_pool(pages: usize) -> PhysAddr {
    let bytes: &'static mut [u8] = Vec::leak(vec![0u8; (pages + 1) * 4096]);
    PhysAddr((bytes.as_ptr() as u64).next_multiple_of(4096))
}

/// `pages` pages of host memory handed to the frame pool, so that identity-mapped
/// accesses reach them.
pub fn scratch(pages: usize) -> PhysAddr {
    let at = outside_the_pool(pages);
    FRAME_POOL.add(Region::new(at.0, pages as u64 * 4096));
    at
}

/// The single-CPU contract (`keel_kernel::arch::memory::check`): copies of every length
/// and alignment, `zero`, the atomics and the frame accesses.
pub fn keeps_the_host_memory_contract<M: WordMoves>() {
    keel_kernel::arch::memory::check::<PoolMemory<M>>(scratch(1), 4096).unwrap();
}

/// A reader never sees a word half old and half new while another thread writes and
/// zeroes the same page, unaligned by one byte (the head and tail are bytes, the rest
/// words): the untorn words of the contract.
pub fn racing_copies_never_tear_a_word<M: WordMoves + 'static>() {
    let at = scratch(1);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (ones, zeros) = ([0xffu8; 4096], [0u8; 4096]);
            while !stop.load(Ordering::Relaxed) {
                PoolMemory::<M>::write(PhysAddr(at.0 + 1), &ones[..4094]);
                PoolMemory::<M>::write(PhysAddr(at.0 + 1), &zeros[..4094]);
                PoolMemory::<M>::zero(PhysAddr(at.0 + 1), 4094);
            }
        })
    };
    let mut buf = [0u8; 4096];
    for _ in 0..2000 {
        PoolMemory::<M>::read(at, &mut buf);
        for w in buf[8..4088].chunks_exact(8) {
            assert!(w == [0; 8] || w == [0xff; 8], "a torn word: {w:02x?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

/// Large copies (a kernel image: many words, both buffers aligned or not) arrive whole.
pub fn large_copies_arrive_whole<M: WordMoves>() {
    let at = scratch(4);
    let pattern: Vec<u8> = (0..4 * 4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    for (off, skew) in [(0u64, 0usize), (8, 1), (3, 0), (5, 7)] {
        let n = pattern.len() - 64;
        PoolMemory::<M>::zero(at, 4 * 4096);
        PoolMemory::<M>::write(PhysAddr(at.0 + off), &pattern[skew..skew + n]);
        let mut back = vec![0u8; n];
        PoolMemory::<M>::read(PhysAddr(at.0 + off), &mut back);
        assert!(back == pattern[skew..skew + n], "a copy of {n:#x} bytes at +{off} (source +{skew}) came back changed");
        PoolMemory::<M>::zero(PhysAddr(at.0 + off), n);
        PoolMemory::<M>::read(PhysAddr(at.0 + off), &mut back);
        assert!(back.iter().all(|&b| b == 0), "zero of {n:#x} bytes at +{off} left bytes set");
    }
}

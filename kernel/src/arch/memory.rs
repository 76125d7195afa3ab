//! Access to host physical memory.

use crate::addr::PhysAddr;

/// Reads and writes host physical memory that the frame pool handed out (guest RAM,
/// translation tables, shared pages). Rust objects never live there, so these safe
/// functions cannot break the hypervisor's own memory; a backend refuses (panics on)
/// any address outside the pool, which would be a bug in the core.
///
/// Word accesses are single-copy atomic, so a guest racing on the same memory sees
/// either the old or the new value, never a torn one: the atomics below, and every
/// naturally aligned 64-bit word inside a `read`, `write` or `zero` range. [`check`] tests
/// an implementation against this contract.
pub trait HostMemory {
    /// Copies `dst.len()` bytes from `pa` into `dst`.
    fn read(pa: PhysAddr, dst: &mut [u8]);
    /// Copies `src` to `pa`.
    fn write(pa: PhysAddr, src: &[u8]);
    /// Sets `len` bytes at `pa` to zero.
    fn zero(pa: PhysAddr, len: usize);
    /// Atomically loads the naturally aligned 64-bit word at `pa`.
    fn load_u64(pa: PhysAddr) -> u64;
    /// Atomically stores the naturally aligned 64-bit word at `pa`.
    fn store_u64(pa: PhysAddr, value: u64);
    /// Atomically compares the naturally aligned 32-bit word at `pa` with `current`
    /// and, if equal, replaces it with `new`. Returns the value found.
    fn compare_exchange_u32(pa: PhysAddr, current: u32, new: u32) -> u32;
    /// Atomically compares the naturally aligned 64-bit word at `pa` with `current`
    /// and, if equal, replaces it with `new`. Returns the value found.
    fn compare_exchange_u64(pa: PhysAddr, current: u64, new: u64) -> u64;

    /// A page of pool memory whose words the core reaches often (a guest's event words,
    /// `vcpu_info`, FIFO control block), checked against the pool once, by
    /// [`HostMemory::frame`]: the `frame_*` accesses through it do no check of their own.
    ///
    /// What the handle guarantees: its page lies in the frame pool, and stays there, since
    /// the pool's ranges only grow; every `frame_*` access stays inside that page. What it
    /// does not: whose page it is. The core keeps a handle on a guest's page only while it
    /// holds a pin on that page ([`crate::p2m::Memory::pin_ram`]) or owns the page itself
    /// (a domain's shared_info), and drops it before it unpins or frees the page; a page
    /// the guest gives back or remaps while pinned stays the guest's until the last unpin,
    /// so it never reaches another domain while a handle on it exists.
    type Frame: Copy + Eq + core::fmt::Debug + Send + Sync + 'static;
    /// The handle of the page at `pa` (page aligned, inside the pool; otherwise the
    /// backend panics, as for any access outside the pool).
    fn frame(pa: PhysAddr) -> Self::Frame;
    /// The host address of the page.
    fn frame_address(frame: Self::Frame) -> PhysAddr;
    /// Atomically loads the naturally aligned 32-bit word at `offset` (below the page
    /// size; otherwise the backend panics) of `frame`.
    fn frame_load_u32(frame: Self::Frame, offset: usize) -> u32;
    /// Atomically loads the naturally aligned 64-bit word at `offset` of `frame`.
    fn frame_load_u64(frame: Self::Frame, offset: usize) -> u64;
    /// [`HostMemory::compare_exchange_u32`] on the word at `offset` of `frame`.
    fn frame_compare_exchange_u32(frame: Self::Frame, offset: usize, current: u32, new: u32) -> u32;
    /// [`HostMemory::compare_exchange_u64`] on the word at `offset` of `frame`.
    fn frame_compare_exchange_u64(frame: Self::Frame, offset: usize, current: u64, new: u64) -> u64;
}

/// The [`HostMemory::Frame`] of architecture `A`.
pub type Frame<A> = <<A as crate::arch::Arch>::Memory as HostMemory>::Frame;

/// Checks `M` against the [`HostMemory`] contract on `len` bytes of pool memory at `at`
/// (page aligned, at least 64 bytes; its contents are destroyed), one CPU at a time: copies
/// of every length and alignment up to 24 bytes round-trip and touch nothing outside their
/// range, `zero` clears exactly its range, and the atomics load, store and compare as
/// documented. Whether racing word accesses tear needs a second CPU: the contract tests of
/// `keel-host-memory` add that. Returns what failed.
pub fn check<M: HostMemory>(at: PhysAddr, len: usize) -> Result<(), &'static str> {
    const SPAN: usize = 64;
    if len < SPAN || !at.is_aligned(4096) {
        return Err("the scratch area is smaller than 64 bytes or not page aligned");
    }
    let mut pattern = [0u8; SPAN];
    for (i, b) in (0u8..).zip(pattern.iter_mut()) {
        *b = i.wrapping_mul(37).wrapping_add(11);
    }
    let mut back = [0u8; SPAN];
    for off in 0..8u64 {
        for n in 0..=24usize {
            let start = usize::try_from(off).unwrap_or(0);
            M::write(at, &[0xa5; SPAN]);
            M::write(PhysAddr(at.0 + off), &pattern[..n]);
            M::read(at, &mut back);
            let inside = &back[start..start + n];
            if inside != &pattern[..n] {
                return Err("a write did not read back");
            }
            if back[..start].iter().chain(&back[start + n..]).any(|&b| b != 0xa5) {
                return Err("a write touched bytes outside its range");
            }
            let mut part = [0u8; 24];
            M::read(PhysAddr(at.0 + off), &mut part[..n]);
            if part[..n] != pattern[..n] {
                return Err("an unaligned read returned other bytes");
            }
            M::zero(PhysAddr(at.0 + off), n);
            M::read(at, &mut back);
            if back[start..start + n].iter().any(|&b| b != 0) {
                return Err("zero left bytes set");
            }
            if back[..start].iter().chain(&back[start + n..]).any(|&b| b != 0xa5) {
                return Err("zero touched bytes outside its range");
            }
        }
    }
    let word = PhysAddr(at.0 + 8);
    M::store_u64(word, 0x1122_3344_5566_7788);
    if M::load_u64(word) != 0x1122_3344_5566_7788 {
        return Err("store_u64 then load_u64 disagree");
    }
    M::read(word, &mut back[..8]);
    if back[..8] != 0x1122_3344_5566_7788u64.to_le_bytes() {
        return Err("words are not little-endian in memory");
    }
    if M::compare_exchange_u64(word, 1, 2) != 0x1122_3344_5566_7788 || M::load_u64(word) != 0x1122_3344_5566_7788 {
        return Err("a failing compare_exchange_u64 changed the word or returned another value");
    }
    if M::compare_exchange_u64(word, 0x1122_3344_5566_7788, 7) != 0x1122_3344_5566_7788 || M::load_u64(word) != 7 {
        return Err("a succeeding compare_exchange_u64 did not store");
    }
    let half = PhysAddr(at.0 + 12);
    M::store_u64(word, 0);
    if M::compare_exchange_u32(half, 0, 0xdead_beef) != 0 || M::load_u64(word) != 0xdead_beef_0000_0000 {
        return Err("compare_exchange_u32 stored elsewhere than its word");
    }
    if M::compare_exchange_u32(half, 0, 1) != 0xdead_beef || M::load_u64(word) != 0xdead_beef_0000_0000 {
        return Err("a failing compare_exchange_u32 changed the word or returned another value");
    }
    let frame = M::frame(at);
    if M::frame_address(frame) != at {
        return Err("a frame's address is not the page it was made from");
    }
    if M::frame_load_u64(frame, 8) != 0xdead_beef_0000_0000 || M::frame_load_u32(frame, 12) != 0xdead_beef {
        return Err("a frame's loads read other words than the plain accesses");
    }
    if M::frame_compare_exchange_u32(frame, 8, 0, 5) != 0 || M::load_u64(word) != 0xdead_beef_0000_0005 {
        return Err("a frame's compare_exchange_u32 stored elsewhere than its word");
    }
    if M::frame_compare_exchange_u64(frame, 8, 1, 2) != 0xdead_beef_0000_0005
        || M::frame_compare_exchange_u64(frame, 8, 0xdead_beef_0000_0005, 9) != 0xdead_beef_0000_0005
        || M::load_u64(word) != 9
    {
        return Err("a frame's compare_exchange_u64 does not compare and store as documented");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockMemory;

    #[test]
    fn the_mock_memory_keeps_the_contract() {
        check::<MockMemory>(PhysAddr(0x4000_0000), 4096).unwrap();
    }

    /// The checker refuses memory that breaks the contract (so it cannot pass by seeing
    /// nothing): a memory whose writes drop their last byte.
    #[test]
    fn a_broken_memory_fails() {
        struct Short;
        impl HostMemory for Short {
            fn read(pa: PhysAddr, dst: &mut [u8]) {
                MockMemory::read(pa, dst)
            }
            fn write(pa: PhysAddr, src: &[u8]) {
                MockMemory::write(pa, &src[..src.len().saturating_sub(1)])
            }
            fn zero(pa: PhysAddr, len: usize) {
                MockMemory::zero(pa, len)
            }
            fn load_u64(pa: PhysAddr) -> u64 {
                MockMemory::load_u64(pa)
            }
            fn store_u64(pa: PhysAddr, value: u64) {
                MockMemory::store_u64(pa, value)
            }
            fn compare_exchange_u32(pa: PhysAddr, current: u32, new: u32) -> u32 {
                MockMemory::compare_exchange_u32(pa, current, new)
            }
            fn compare_exchange_u64(pa: PhysAddr, current: u64, new: u64) -> u64 {
                MockMemory::compare_exchange_u64(pa, current, new)
            }
            type Frame = <MockMemory as HostMemory>::Frame;
            fn frame(pa: PhysAddr) -> Self::Frame {
                MockMemory::frame(pa)
            }
            fn frame_address(frame: Self::Frame) -> PhysAddr {
                MockMemory::frame_address(frame)
            }
            fn frame_load_u32(frame: Self::Frame, offset: usize) -> u32 {
                MockMemory::frame_load_u32(frame, offset)
            }
            fn frame_load_u64(frame: Self::Frame, offset: usize) -> u64 {
                MockMemory::frame_load_u64(frame, offset)
            }
            fn frame_compare_exchange_u32(frame: Self::Frame, offset: usize, current: u32, new: u32) -> u32 {
                MockMemory::frame_compare_exchange_u32(frame, offset, current, new)
            }
            fn frame_compare_exchange_u64(frame: Self::Frame, offset: usize, current: u64, new: u64) -> u64 {
                MockMemory::frame_compare_exchange_u64(frame, offset, current, new)
            }
        }
        assert!(check::<Short>(PhysAddr(0x4001_0000), 4096).is_err());
    }
}

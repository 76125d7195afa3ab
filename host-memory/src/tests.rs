//! [`PoolMemory`] with the default word moves against the contract, and its refusals:
//! every access outside the pool, misaligned atomic or frame, and frame word outside its
//! page panics.

use crate::contract::{outside_the_pool, scratch};
use crate::{contract, PoolMemory, WordMoves};
use keel_kernel::arch::HostMemory;
use keel_kernel::mm::PhysAddr;

/// The default moves: one volatile access per word.
struct Plain;
impl WordMoves for Plain {}
type Memory = PoolMemory<Plain>;

#[test]
fn keeps_the_host_memory_contract() {
    contract::keeps_the_host_memory_contract::<Plain>();
}

#[test]
fn racing_copies_never_tear_a_word() {
    contract::racing_copies_never_tear_a_word::<Plain>();
}

#[test]
fn large_copies_arrive_whole() {
    contract::large_copies_arrive_whole::<Plain>();
}

#[test]
fn empty_copies_touch_nothing_and_are_not_checked() {
    let nowhere = outside_the_pool(1);
    Memory::read(nowhere, &mut []);
    Memory::write(nowhere, &[]);
    Memory::zero(nowhere, 0);
}

#[test]
#[should_panic(expected = "outside the frame pool")]
fn a_read_outside_the_pool_panics() {
    Memory::read(outside_the_pool(1), &mut [0; 8]);
}

#[test]
#[should_panic(expected = "outside the frame pool")]
fn a_write_past_the_end_of_the_pool_panics() {
    let at = scratch(1);
    Memory::write(PhysAddr(at.0 + 4090), &[0; 8]);
}

#[test]
#[should_panic(expected = "outside the frame pool")]
fn a_zero_wrapping_the_address_space_panics() {
    Memory::zero(PhysAddr(u64::MAX - 3), 8);
}

#[test]
#[should_panic(expected = "outside the frame pool")]
fn an_atomic_outside_the_pool_panics() {
    Memory::store_u64(outside_the_pool(1), 1);
}

#[test]
#[should_panic(expected = "misaligned 8-byte access")]
fn a_misaligned_atomic_panics() {
    let at = scratch(1);
    Memory::compare_exchange_u64(PhysAddr(at.0 + 4), 0, 1);
}

#[test]
#[should_panic(expected = "misaligned 4-byte access")]
fn a_misaligned_32_bit_atomic_panics() {
    let at = scratch(1);
    Memory::compare_exchange_u32(PhysAddr(at.0 + 2), 0, 1);
}

#[test]
#[should_panic(expected = "misaligned 4096-byte access")]
fn a_frame_not_page_aligned_panics() {
    let at = scratch(2);
    Memory::frame(PhysAddr(at.0 + 8));
}

#[test]
#[should_panic(expected = "outside the frame pool")]
fn a_frame_outside_the_pool_panics() {
    Memory::frame(outside_the_pool(1));
}

#[test]
#[should_panic(expected = "a 8-byte word at 0xffc of a page")]
fn a_frame_word_across_the_page_end_panics() {
    let frame = Memory::frame(scratch(1));
    Memory::frame_load_u64(frame, 0xffc);
}

#[test]
#[should_panic(expected = "a 4-byte word at 0x1000 of a page")]
fn a_frame_word_beyond_the_page_panics() {
    let frame = Memory::frame(scratch(1));
    Memory::frame_load_u32(frame, 0x1000);
}

#[test]
#[should_panic(expected = "a 4-byte word at 0x6 of a page")]
fn a_misaligned_frame_word_panics() {
    let frame = Memory::frame(scratch(1));
    Memory::frame_compare_exchange_u32(frame, 6, 0, 1);
}

/// The contract tests fail moves that break it (so they cannot pass by seeing nothing):
/// moves that drop the last word of every write.
#[test]
#[should_panic(expected = "called `Result::unwrap()` on an `Err` value: \"a write")]
fn moves_that_drop_a_word_fail_the_contract() {
    struct Short;
    impl WordMoves for Short {
        unsafe fn write_words(from: *const u8, to: *mut u64, words: usize) {
            // SAFETY: fewer words than the caller vouched for.
            unsafe { Plain::write_words(from, to, words.saturating_sub(1)) }
        }
    }
    contract::keeps_the_host_memory_contract::<Short>();
}

//! x86 scenarios of guests that cannot go on (`keel.test=triple-fault`, `garbage`): Keel
//! must end each domain alone, with the others running on.

use crate::traps;
use keel_test_guest::{say, Outcome, Platform};

/// An exception with an empty IDT: #GP on delivery, then #DF, then a triple fault, which
/// Keel turns into the domain's crash.
pub fn triple_fault(p: &impl Platform) -> Outcome {
    say!(p, "triple-fault: IDT limit 0, then int3");
    p.disable_interrupts();
    traps::empty_idt();
    // SAFETY: the guest gives up: the breakpoint cannot be delivered.
    unsafe { core::arch::asm!("int3", options(nomem, nostack, noreturn)) }
}

/// 4 KiB of pseudo-random bytes (a fixed seed) executed with interrupts masked and an
/// empty IDT: whatever the bytes do, the domain ends in a triple fault, a halt or a loop
/// that `keel.timeout` ends, or a shutdown it asks for.
pub fn garbage(p: &impl Platform) -> Outcome {
    let Some(page) = keel_test_guest::pages::alloc() else { keel_test_guest::fail!("out of guest pages") };
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: [u8; 4096] = core::array::from_fn(|_| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    });
    page.fill(0, &bytes);
    say!(p, "garbage: executing 4096 pseudo-random bytes at {:#x} with no IDT", page.va());
    p.disable_interrupts();
    traps::empty_idt();
    // SAFETY: the guest gives up: it jumps into bytes that are not code.
    unsafe { core::arch::asm!("jmp {}", in(reg) page.va(), options(noreturn)) }
}

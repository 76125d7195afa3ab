//! Interrupts a backend holds for its vCPUs (the x86 local APIC's IPIs and timer, on the
//! mock: doorbells and a device timer): a halted vCPU wakes for them, none is lost.

use super::programs::Image;
use super::world::{describe, lines_of, Guest, World};
use crate::mock::{Cond, Insn, Op, PlatformCall};
use alloc::vec::Vec;

/// Waits (halting) until this vCPU's doorbell rang or its timer expired.
fn take(a: &mut crate::mock::Asm) {
    let (wait, got) = (a.here(), a.label());
    a.i(Insn::Platform(PlatformCall::Doorbell)).br(Cond::Ne, 0, 6, got).i(Insn::Halt).jmp(wait).bind(got);
}

/// Arms the device timer `period` ns ahead and halts until it fires, `k` times; fails if
/// it woke early; prints the count.
fn device_timer(k: u64, period: u64) -> Vec<u8> {
    let mut img = Image::new();
    let fail = img.fail;
    let a = &mut img.a;
    a.set(8, 0).set(9, k).set(10, 1).set(11, period);
    let again = a.here();
    a.i(Insn::Time(12)).alu(Op::Add, 1, 12, 11).i(Insn::Platform(PlatformCall::Timer)).i(Insn::Mov(13, 1));
    take(a);
    a.i(Insn::Time(12)).set(0, 0xea71).br(Cond::Ltu, 12, 13, fail);
    a.alu(Op::Add, 8, 8, 10).br(Cond::Ltu, 8, 9, again);
    img.print_hex("fired=", 8);
    img.a.i(Insn::Platform(PlatformCall::SystemOff));
    img.finish()
}

#[test]
fn a_halted_vcpu_wakes_at_its_device_deadline() {
    let mut w = World::new(2);
    let built = w.boot(&describe(&[Guest::new("timer", device_timer(20, 1_000_000))]));
    assert_eq!(built[0].result, Ok(1));
    let start = w.elapsed();
    let ends = w.run(1_000_000_000);
    assert!(ends[0].is_clean(), "{ends:?} {:?}", lines_of(1));
    assert_eq!(lines_of(1), ["fired=0000000000000014"]);
    let took = w.elapsed() - start;
    assert!((20_000_000..25_000_000).contains(&took), "20 periods of 1 ms took {took} ns");
}

/// Rings its own doorbell, then halts `n` times: each halt must end at once, since the
/// interrupt is already pending when the vCPU blocks.
fn ring_self_then_halt(n: u64) -> Vec<u8> {
    let mut img = Image::new();
    let fail = img.fail;
    let a = &mut img.a;
    a.set(8, 0).set(9, n).set(10, 1);
    let again = a.here();
    a.set(1, 1).i(Insn::Platform(PlatformCall::Kick)).i(Insn::Halt);
    a.i(Insn::Platform(PlatformCall::Doorbell)).set(15, 0x5e1f).br(Cond::Eq, 0, 6, fail);
    a.alu(Op::Add, 8, 8, 10).br(Cond::Ltu, 8, 9, again);
    img.print_hex("halts=", 8);
    img.a.i(Insn::Platform(PlatformCall::SystemOff));
    img.finish()
}

#[test]
fn a_halt_with_an_interrupt_already_pending_does_not_block() {
    let mut w = World::new(1);
    let built = w.boot(&describe(&[Guest::new("self", ring_self_then_halt(50))]));
    assert_eq!(built[0].result, Ok(1));
    let ends = w.run(100_000_000);
    assert_eq!(ends.len(), 1, "the vCPU blocked with its doorbell rung");
    assert!(ends[0].is_clean(), "{ends:?}");
    assert_eq!(lines_of(1), ["halts=0000000000000032"]);
}

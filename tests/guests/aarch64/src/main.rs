//! Keel's arm64 test guest: a Linux arm64 Image that boots at EL1 on Keel, turns its MMU
//! on (an identity map plus an alias of RAM), reads its device tree and runs the
//! portable scenario its command line names (`keel-test-guest`), or, with
//! `keel.program=xenstored`, Keel's xenstore domain (`keel-xenstored`).
#![no_std]
#![no_main]
// Scenario failures carry their message inline (no allocator).
#![allow(clippy::result_large_err)]

mod board;
mod firmware;
mod gic;
mod heap;
mod mmio_probe;
mod mmu;
mod owned;
mod platform;
mod psci;
mod regs;
mod uart;
mod virtio_rng;

use core::mem::{offset_of, size_of};
use keel_test_guest::hcall::Hv;
use platform::ARM;

/// Stack of each CPU.
const STACK_SIZE: usize = 32 * 1024;
/// Most CPUs this guest runs on.
pub const MAX_CPUS: usize = keel_test_guest::irq::MAX_CPUS;

/// Registers saved by the exception vectors (`entry.S`).
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

core::arch::global_asm!(
    include_str!("entry.S"),
    R_AARCH64_RELATIVE = const 1027,
    STACK_SIZE = const STACK_SIZE,
    MAX_CPUS = const MAX_CPUS,
    FRAME_SIZE = const size_of::<Frame>(),
    FRAME_ELR = const offset_of!(Frame, elr),
);

const _: () = assert!(size_of::<Frame>().is_multiple_of(16));

extern "C" {
    static guest_probe_insn: u8;
    static guest_probe_resume: u8;
    static guest_probe_hvc1_insn: u8;
    static guest_probe_write_insn: u8;
    static guest_probe_read32_insn: u8;
    static guest_refuse_0_insn: u8;
    static guest_refuse_1_insn: u8;
    static guest_refuse_2_insn: u8;
    static guest_refuse_3_insn: u8;
    static guest_refuse_4_insn: u8;
    static guest_refuse_5_insn: u8;
}

/// Where the instructions of `guest_refuse_<n>` are.
fn refused_instruction(pc: u64) -> bool {
    [
        &raw const guest_refuse_0_insn,
        &raw const guest_refuse_1_insn,
        &raw const guest_refuse_2_insn,
        &raw const guest_refuse_3_insn,
        &raw const guest_refuse_4_insn,
        &raw const guest_refuse_5_insn,
        &raw const guest_probe_hvc1_insn,
    ]
    .iter()
    .any(|&a| a as u64 == pc)
}

/// The boot CPU, on its stack with the MMU off.
#[no_mangle]
extern "C" fn guest_primary(dtb: usize) -> ! {
    mmu::build_tables();
    mmu::enable();
    board::read(dtb);
    if keel_test_guest::cmdline::get(keel_test_guest::Platform::cmdline(&ARM), "keel.program") == Some("xenstored") {
        heap::init();
        keel_xenstored::serve(&ARM)
    }
    keel_test_guest::run(&ARM)
}

/// A CPU started with PSCI `CPU_ON`, on its stack with the MMU off.
#[no_mangle]
extern "C" fn guest_secondary(cpu: u64) -> ! {
    mmu::enable();
    platform::set_cpu(cpu as u32);
    keel_test_guest::secondary(&ARM)
}

/// Exception class of a data abort taken without a change in exception level.
const EC_DABT_CUR: u64 = 0x25;

/// Every exception taken to EL1: interrupts go to the GIC driver, an expected fault in
/// `guest_probe_read` resumes after it, anything else fails the scenario.
#[no_mangle]
extern "C" fn guest_exception(frame: &mut Frame, kind: u64) {
    match kind % 4 {
        1 => return gic::handle_irq(&ARM),
        0 => {}
        _ => fatal(frame, kind, regs::esr()),
    }
    let esr = regs::esr();
    // An instruction Keel refuses, made undefined: return from it with the syndrome.
    if esr >> 26 == 0 && refused_instruction(frame.elr) {
        frame.x[0] = esr;
        frame.elr += 4;
        return;
    }
    let probe = &raw const guest_probe_insn as u64;
    let probe_write = &raw const guest_probe_write_insn as u64;
    let probe32 = &raw const guest_probe_read32_insn as u64;
    if esr >> 26 == EC_DABT_CUR && (frame.elr == probe || frame.elr == probe_write || frame.elr == probe32) {
        frame.x[0] = 0;
        platform::record_probe_fault(esr);
        frame.elr = &raw const guest_probe_resume as u64;
        return;
    }
    // A foreign mapping Keel revoked under the xenstore domain: skip the access.
    if esr >> 26 == EC_DABT_CUR && platform::tolerated_hole_fault(regs::far()) {
        frame.elr += 4;
        return;
    }
    fatal(frame, kind, esr)
}

fn fatal(frame: &Frame, kind: u64, esr: u64) -> ! {
    let far = regs::far();
    keel_test_guest::say!(
        &ARM,
        "FAIL unexpected exception (vector {kind}): ESR {esr:#x} FAR {far:#x} ELR {:#x}",
        frame.elr
    );
    let _ = Hv(&ARM).shutdown(keel_abi::sched::SHUTDOWN_CRASH);
    loop {
        regs::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    keel_test_guest::say!(&ARM, "FAIL panic: {info}");
    let _ = Hv(&ARM).shutdown(keel_abi::sched::SHUTDOWN_CRASH);
    loop {
        regs::wfi();
    }
}

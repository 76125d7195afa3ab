//! Exceptions taken at EL2 from Keel itself.
//!
//! A few instructions may fault by design: semihosting's `hlt #0xf000` where no debugger
//! answers, and PSCI's `smc #0`/`hvc #0` where no firmware does. Those are skipped with
//! x0 = -1. Anything else is a bug: the full register state goes to the console and the
//! machine powers off with a failure status. Guest exits use the same vector table but
//! never reach this module (see `vcpu`).

use crate::cpu::{self, Cpu};
use crate::dt::MAX_CPUS;
use crate::{console, power, firmware_psci, semihosting, vcpu};
use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HPFAR_EL2};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use keel_kernel::arch::{CpuOps, ExitStatus};
use tock_registers::interfaces::Readable;

/// Registers of the interrupted EL2 code, as `el2_trap_common` saves them.
#[repr(C)]
pub struct TrapFrame {
    pub x: [u64; 31],
    /// SP at the time of the exception.
    pub sp: u64,
    pub elr: u64,
    pub spsr: u64,
}

core::arch::global_asm!(
    include_str!("asm/vectors.S"),
    TRAP_FRAME_SIZE = const size_of::<TrapFrame>(),
    TF_ELR = const offset_of!(TrapFrame, elr),
    HOST_FRAME_SIZE = const HOST_FRAME_SIZE,
    GR_PC = const offset_of!(vcpu::GuestRegs, pc),
    ESR_HYPERCALL_LO = const crate::syndrome::ESR_HYPERCALL & 0xffff,
    ESR_HYPERCALL_HI = const crate::syndrome::ESR_HYPERCALL >> 16,
    EC_SYSREG = const crate::syndrome::EC_SYSREG,
    EC_DABT_LOW = const crate::syndrome::EC_DABT_LOW,
);

/// What `keel_guest_enter` keeps on the stack while a guest runs: the `GuestRegs` and
/// `FastCtx` pointers and Keel's callee-saved x19-x30.
const HOST_FRAME_SIZE: usize = 16 + 12 * 8;

const _: () = assert!(size_of::<TrapFrame>().is_multiple_of(16) && offset_of!(TrapFrame, sp) == 248);

/// Instructions that may raise an undefined-instruction exception on purpose.
const GUARDED: [u32; 3] = [semihosting::HLT_SEMIHOSTING, firmware_psci::SMC_0, firmware_psci::HVC_0];

const EC_UNKNOWN: u64 = 0x00;
const EC_HVC64: u64 = 0x16;

/// Nesting depth of unexpected exceptions per CPU: a fault while reporting a fault must
/// not recurse forever.
static REPORTING: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

const SLOT_NAMES: [&str; 8] = [
    "synchronous exception on SP_EL0",
    "IRQ on SP_EL0",
    "FIQ on SP_EL0",
    "SError on SP_EL0",
    "synchronous exception",
    "IRQ",
    "FIQ",
    "SError",
];

/// Called by the vectors for every exception from EL2 (slots 0-7).
#[no_mangle]
extern "C" fn keel_el2_trap(frame: &mut TrapFrame, slot: u64) {
    let esr = ESR_EL2.get();
    let ec = (esr >> 26) & 0x3f;
    if slot == 4 && fix_up(frame, ec) {
        return;
    }
    report(frame, slot, esr);
}

fn fix_up(frame: &mut TrapFrame, ec: u64) -> bool {
    let guarded = |pc: u64| {
        // SAFETY: the instruction at `pc` was just fetched (it raised the exception or
        // precedes the return address of an HVC), so the address is readable code.
        let insn = unsafe { (pc as *const u32).read_volatile() };
        GUARDED.contains(&insn)
    };
    let skip = match ec {
        EC_UNKNOWN if guarded(frame.elr) => 4,
        // An HVC at EL2 is taken to EL2 with the return address after it.
        EC_HVC64 if guarded(frame.elr.wrapping_sub(4)) => 0,
        _ => return false,
    };
    frame.elr += skip;
    frame.x[0] = u64::MAX;
    true
}

fn report(frame: &TrapFrame, slot: u64, esr: u64) -> ! {
    let cpu = Cpu::current();
    let depth = REPORTING.get(cpu.0 as usize).map_or(0, |d| {
        let n = d.load(Relaxed);
        d.store(n + 1, Relaxed);
        n
    });
    if depth > 0 {
        console::emergency(format_args!("[PANIC {cpu}] another exception while reporting one; halting"));
        cpu::park();
    }
    let ec = (esr >> 26) & 0x3f;
    let p = |args: core::fmt::Arguments<'_>| console::emergency(format_args!("[PANIC {cpu}] {args}"));
    p(format_args!("unexpected {} at EL2", SLOT_NAMES[slot as usize % 8]));
    p(format_args!(
        "ESR_EL2 {esr:#018x}: EC {ec:#04x} ({}), IL {}, ISS {:#x}",
        ec_name(ec),
        (esr >> 25) & 1,
        esr & 0x1ff_ffff
    ));
    p(format_args!(
        "ELR_EL2 {:#018x}  SPSR_EL2 {:#018x}  FAR_EL2 {:#018x}  HPFAR_EL2 {:#018x}",
        frame.elr,
        frame.spsr,
        FAR_EL2.get(),
        HPFAR_EL2.get()
    ));
    let x = &frame.x;
    for r in (0..28).step_by(4) {
        p(format_args!(
            "x{:<2} {:#018x}  x{:<2} {:#018x}  x{:<2} {:#018x}  x{:<2} {:#018x}",
            r,
            x[r],
            r + 1,
            x[r + 1],
            r + 2,
            x[r + 2],
            r + 3,
            x[r + 3]
        ));
    }
    p(format_args!("x28 {:#018x}  x29 {:#018x}  x30 {:#018x}  sp  {:#018x}", x[28], x[29], x[30], frame.sp));
    power::power_off(keel_kernel::start::options().power_off, ExitStatus::Failure)
}

/// A short name for an exception class.
pub fn ec_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason / undefined instruction",
        0x01 => "WFI/WFE",
        0x07 => "SVE/SIMD/FP access",
        0x0e => "illegal execution state",
        0x12 => "HVC (AArch32)",
        0x13 => "SMC (AArch32)",
        0x15 => "SVC",
        0x16 => "HVC",
        0x17 => "SMC",
        0x18 => "MSR/MRS/system instruction",
        0x19 => "SVE access",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort at EL2",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort at EL2",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x3c => "BRK instruction",
        _ => "other",
    }
}

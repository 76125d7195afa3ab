//! The local APIC, in x2APIC mode (MSRs) when the CPU has it, else xAPIC mode (MMIO).
//! Intel SDM vol. 3, chapter 11 (APIC).

use crate::regs::{self, msr};
use spin::Once;

/// How this machine's local APICs are accessed (the same on every CPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    X2Apic,
    XApic { base: u64 },
}

static MODE: Once<Mode> = Once::new();

/// Register offsets in the xAPIC page; x2APIC MSR = 0x800 + offset / 16.
mod reg {
    pub const ID: u32 = 0x20;
    pub const TPR: u32 = 0x80;
    pub const EOI: u32 = 0xb0;
    pub const SVR: u32 = 0xf0;
    pub const ESR: u32 = 0x280;
    pub const ICR_LOW: u32 = 0x300;
    pub const ICR_HIGH: u32 = 0x310;
    pub const LVT_TIMER: u32 = 0x320;
    pub const LVT_THERMAL: u32 = 0x330;
    pub const LVT_PERF: u32 = 0x340;
    pub const LVT_LINT0: u32 = 0x350;
    pub const LVT_LINT1: u32 = 0x360;
    pub const LVT_ERROR: u32 = 0x370;
    pub const TIMER_INITIAL: u32 = 0x380;
    pub const TIMER_CURRENT: u32 = 0x390;
    pub const TIMER_DIVIDE: u32 = 0x3e0;
}

const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const APIC_BASE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_DELIVERY_NMI: u32 = 0b100 << 8;
const LVT_TIMER_TSC_DEADLINE: u32 = 0b10 << 17;
const TIMER_DIVIDE_BY_1: u32 = 0b1011;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
const ICR_INIT: u32 = 0b101 << 8;
const ICR_STARTUP: u32 = 0b110 << 8;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_TRIGGER_LEVEL: u32 = 1 << 15;

/// Chooses the mode from CPUID and IA32_APIC_BASE; returns it and the xAPIC MMIO page
/// (which the caller maps uncached).
pub fn select_mode(x2apic: bool) -> Mode {
    *MODE.call_once(|| {
        // SAFETY: IA32_APIC_BASE exists on every CPU with a local APIC (all x86_64 CPUs).
        let base = unsafe { regs::rdmsr(msr::IA32_APIC_BASE) };
        if x2apic {
            Mode::X2Apic
        } else {
            Mode::XApic { base: base & APIC_BASE_ADDR_MASK }
        }
    })
}

pub fn mode() -> Mode {
    *MODE.get().expect("local APIC used before its mode was chosen")
}

fn read(offset: u32) -> u32 {
    match mode() {
        // SAFETY: x2APIC registers are MSRs 0x800.. while the APIC is in x2APIC mode.
        Mode::X2Apic => unsafe { regs::rdmsr(msr::X2APIC_BASE + (offset >> 4)) as u32 },
        // SAFETY: the xAPIC page is mapped uncached (memory set-up) and `offset` is a register.
        Mode::XApic { base } => unsafe { core::ptr::read_volatile((base + offset as u64) as *const u32) },
    }
}

fn write(offset: u32, value: u32) {
    match mode() {
        // SAFETY: as in `read`; the registers written here accept these values.
        Mode::X2Apic => unsafe { regs::wrmsr(msr::X2APIC_BASE + (offset >> 4), value as u64) },
        // SAFETY: as in `read`.
        Mode::XApic { base } => unsafe { core::ptr::write_volatile((base + offset as u64) as *mut u32, value) },
    }
}

/// Enables the calling CPU's local APIC in the chosen mode with every local interrupt
/// masked except LINT1 (NMI). Idempotent.
pub fn init_cpu(spurious_vector: u8, error_vector: u8, timer_vector: u8, tsc_deadline: bool) {
    // SAFETY: IA32_APIC_BASE exists; setting EN (and then EXTD) enables the APIC in the
    // mode CPUID allows. x2APIC can only be entered from enabled xAPIC mode, hence two steps.
    unsafe {
        let base = regs::rdmsr(msr::IA32_APIC_BASE);
        if base & APIC_BASE_ENABLE == 0 {
            regs::wrmsr(msr::IA32_APIC_BASE, base | APIC_BASE_ENABLE);
        }
        if mode() == Mode::X2Apic && base & APIC_BASE_X2APIC == 0 {
            regs::wrmsr(msr::IA32_APIC_BASE, base | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
        }
    }
    write(reg::TPR, 0);
    write(reg::SVR, SVR_ENABLE | spurious_vector as u32);
    let mode = if tsc_deadline { LVT_TIMER_TSC_DEADLINE } else { 0 };
    write(reg::LVT_TIMER, LVT_MASKED | mode | timer_vector as u32);
    write(reg::LVT_THERMAL, LVT_MASKED);
    write(reg::LVT_PERF, LVT_MASKED);
    write(reg::LVT_LINT0, LVT_MASKED);
    write(reg::LVT_LINT1, LVT_DELIVERY_NMI);
    write(reg::LVT_ERROR, LVT_MASKED | error_vector as u32);
    write(reg::ESR, 0);
    write(reg::ESR, 0);
    write(reg::TIMER_DIVIDE, TIMER_DIVIDE_BY_1);
}

/// The calling CPU's APIC id.
pub fn id() -> u32 {
    match mode() {
        Mode::X2Apic => read(reg::ID),
        Mode::XApic { .. } => read(reg::ID) >> 24,
    }
}

pub fn end_of_interrupt() {
    write(reg::EOI, 0);
}

fn send(dest: u32, low: u32) {
    match mode() {
        // SAFETY: the x2APIC ICR is one 64-bit MSR (0x830): destination in the high half.
        Mode::X2Apic => unsafe {
            regs::wrmsr(msr::X2APIC_BASE + (reg::ICR_LOW >> 4), (dest as u64) << 32 | low as u64)
        },
        Mode::XApic { .. } => {
            write(reg::ICR_HIGH, dest << 24);
            write(reg::ICR_LOW, low);
            for _ in 0..1_000_000 {
                if read(reg::ICR_LOW) & ICR_DELIVERY_PENDING == 0 {
                    break;
                }
                core::hint::spin_loop();
            }
        }
    }
}

/// Sends a fixed interrupt `vector` to the CPU with APIC id `dest`.
pub fn send_fixed(dest: u32, vector: u8) {
    send(dest, vector as u32);
}

/// Sends INIT to `dest` (and, in xAPIC mode, the INIT level de-assert older CPUs need).
pub fn send_init(dest: u32) {
    send(dest, ICR_INIT | ICR_LEVEL_ASSERT | ICR_TRIGGER_LEVEL);
    if matches!(mode(), Mode::XApic { .. }) {
        send(dest, ICR_INIT | ICR_TRIGGER_LEVEL);
    }
}

/// Sends a start-up IPI: `dest` starts in real mode at `page * 4096`.
pub fn send_startup(dest: u32, page: u8) {
    send(dest, ICR_STARTUP | ICR_LEVEL_ASSERT | page as u32);
}

/// Masks or unmasks the timer's local vector table entry.
pub fn set_timer_masked(masked: bool) {
    let lvt = read(reg::LVT_TIMER);
    write(reg::LVT_TIMER, if masked { lvt | LVT_MASKED } else { lvt & !LVT_MASKED });
}

/// Starts the one-shot timer with `count` bus-clock ticks (0 stops it).
pub fn start_one_shot(count: u32) {
    write(reg::TIMER_INITIAL, count);
}

/// The one-shot timer's remaining count.
pub fn timer_current() -> u32 {
    read(reg::TIMER_CURRENT)
}

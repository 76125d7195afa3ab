//! The hypervisor timer: the TSC as the counter, the local APIC timer for deadlines
//! (TSC-deadline mode when the CPU has it, else one-shot mode scaled from TSC ticks).
//!
//! The TSC frequency comes from CPUID leaf 0x15 (crystal ratio) or 0x16 (base MHz) when
//! the CPU reports them, else it is measured against the ACPI PM timer or the PIT.

use crate::cpu;
use crate::irq::lapic;
use crate::regs::{self, cpuid, inb, inl, outb, rdtsc};
use core::sync::atomic::{AtomicU64, Ordering};
use keel_kernel::arch::{IrqNumber, Timer};
use spin::Once;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static LAPIC_TIMER_HZ: AtomicU64 = AtomicU64::new(0);
/// Per CPU: the TSC deadline the timer is armed for (0: none).
static ARMED: [AtomicU64; crate::cpu::MAX_CPUS] = [const { AtomicU64::new(0) }; crate::cpu::MAX_CPUS];

/// The TSC deadline this CPU's timer is armed for, 0 if none.
pub fn armed_deadline() -> u64 {
    ARMED.get(crate::cpu::current_index() as usize).map_or(0, |a| a.load(Ordering::Relaxed))
}

fn set_armed(ticks: u64) {
    if let Some(a) = ARMED.get(crate::cpu::current_index() as usize) {
        a.store(ticks, Ordering::Relaxed);
    }
}
static SOURCE: Once<&'static str> = Once::new();

const PM_TIMER_HZ: u64 = 3_579_545;
const PIT_HZ: u64 = 1_193_182;
/// Calibration interval: 10 ms.
const CALIBRATION_DIVISOR: u64 = 100;
/// Polls before a reference clock that does not tick is given up on.
const MAX_POLLS: u64 = 50_000_000;

/// How the TSC frequency was found (the `tsc-calibration` fact).
pub fn source() -> &'static str {
    SOURCE.get().copied().unwrap_or("none")
}

pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Finds the TSC frequency (and, without TSC-deadline mode, the LAPIC timer's).
pub fn init(pm_timer: Option<(u16, bool)>) {
    let f = cpu::features();
    let measured = || {
        pm_timer
            .and_then(|(port, wide)| against_pm_timer(port, wide))
            .map(|hz| (hz, "acpi-pm-timer"))
            .or_else(|| against_pit().map(|hz| (hz, "pit")))
    };
    let (hz, source) = from_cpuid(f.max_leaf)
        .map(|(claimed, leaf)| match measured() {
            // Emulators report a nominal frequency whatever rate their TSC really has.
            Some((hz, clock)) if hz.abs_diff(claimed) > claimed / 8 => {
                log::info!(
                    "TSC: {} MHz against the {clock}, not the {} MHz of {leaf}; using the measurement",
                    hz / 1_000_000,
                    claimed / 1_000_000
                );
                (hz, clock)
            }
            _ => (claimed, leaf),
        })
        .or_else(measured)
        .unwrap_or_else(|| {
            log::warn!("TSC frequency unknown (no CPUID leaf, PM timer or PIT answered): assuming 1 GHz");
            (1_000_000_000, "assumed")
        });
    TSC_HZ.store(hz, Ordering::Relaxed);
    SOURCE.call_once(|| source);
    if !f.tsc_deadline {
        LAPIC_TIMER_HZ.store(measure_lapic_timer(hz), Ordering::Relaxed);
    }
    log::debug!(
        "timer: TSC {} kHz ({source}), deadlines via {}",
        hz / 1000,
        if f.tsc_deadline { "TSC-deadline mode" } else { "LAPIC one-shot mode" }
    );
}

fn from_cpuid(max_leaf: u32) -> Option<(u64, &'static str)> {
    if max_leaf >= 0x15 {
        let l = cpuid(0x15, 0);
        if l.eax != 0 && l.ebx != 0 && l.ecx != 0 {
            return Some((l.ecx as u64 * l.ebx as u64 / l.eax as u64, "cpuid-0x15"));
        }
    }
    if max_leaf >= 0x16 {
        let mhz = cpuid(0x16, 0).eax & 0xffff;
        if mhz != 0 {
            return Some((mhz as u64 * 1_000_000, "cpuid-0x16"));
        }
    }
    None
}

fn against_pm_timer(port: u16, wide: bool) -> Option<u64> {
    let mask: u32 = if wide { u32::MAX } else { 0x00ff_ffff };
    let target = (PM_TIMER_HZ / CALIBRATION_DIVISOR) as u32;
    let (pm0, tsc0) = (inl(port) & mask, rdtsc());
    for _ in 0..MAX_POLLS {
        let elapsed = (inl(port) & mask).wrapping_sub(pm0) & mask;
        if elapsed >= target {
            return Some((rdtsc() - tsc0) * PM_TIMER_HZ / elapsed as u64);
        }
    }
    None
}

/// Counts 10 ms on PIT channel 2 (gated through port 0x61, output read back in bit 5).
fn against_pit() -> Option<u64> {
    const PORT_B: u16 = 0x61;
    const GATE2: u8 = 1 << 0;
    const SPEAKER: u8 = 1 << 1;
    const OUT2: u8 = 1 << 5;
    let count = (PIT_HZ / CALIBRATION_DIVISOR) as u16;
    // SAFETY: PIT channel 2 and its gate only drive the PC speaker, which stays off.
    unsafe {
        outb(PORT_B, (inb(PORT_B) & !SPEAKER) | GATE2);
        outb(0x43, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        outb(0x42, count as u8);
        outb(0x42, (count >> 8) as u8);
    }
    let tsc0 = rdtsc();
    for _ in 0..MAX_POLLS {
        if inb(PORT_B) & OUT2 != 0 {
            return Some((rdtsc() - tsc0) * CALIBRATION_DIVISOR);
        }
    }
    None
}

/// The LAPIC timer's input frequency, measured over 10 ms of TSC time.
fn measure_lapic_timer(tsc_hz: u64) -> u64 {
    lapic::start_one_shot(u32::MAX);
    let end = rdtsc() + tsc_hz / CALIBRATION_DIVISOR;
    while rdtsc() < end {
        core::hint::spin_loop();
    }
    let elapsed = u32::MAX - lapic::timer_current();
    lapic::start_one_shot(0);
    elapsed as u64 * CALIBRATION_DIVISOR
}

/// Busy-waits `us` microseconds.
pub fn delay_us(us: u64) {
    let end = rdtsc() + tsc_hz() / 1_000_000 * us;
    while rdtsc() < end {
        core::hint::spin_loop();
    }
}

/// Without TSC-deadline mode, the longest one-shot count: 4 ms (the scheduler's slice).
const ONE_SHOT_SPANS_PER_SECOND: u64 = 250;

/// The [`Timer`] of this backend.
pub struct X86Timer;

/// The TSC (calibrated at boot, `[fact] tsc-calibration`) and the local APIC timer
/// (TSC-deadline mode where the CPU has it), interrupting on vector 0xf0.
impl Timer for X86Timer {
    fn now() -> u64 {
        rdtsc()
    }

    fn frequency() -> u64 {
        tsc_hz()
    }

    fn set_deadline(ticks: u64) {
        set_armed(ticks.max(1));
        if cpu::features().tsc_deadline {
            // SAFETY: IA32_TSC_DEADLINE exists when CPUID says TSC-deadline; the LVT is in
            // that mode. Zero would disarm, so the earliest deadline is 1.
            unsafe { regs::wrmsr(regs::msr::IA32_TSC_DEADLINE, ticks.max(1)) };
        } else {
            // The count is scaled by a rate measured over 10 ms, whose error grows with
            // the distance: a deadline seconds away came milliseconds late (Bochs Ryzen:
            // keel.timeout armed about 20 s ahead acted 12.9 ms late). At most one slice
            // is counted at a time; an interrupt before the deadline makes the loop find
            // nothing due and arm the timer again, closer.
            let delta = ticks.saturating_sub(rdtsc()).min(tsc_hz() / ONE_SHOT_SPANS_PER_SECOND) as u128;
            let count = delta * LAPIC_TIMER_HZ.load(Ordering::Relaxed) as u128 / tsc_hz().max(1) as u128;
            lapic::start_one_shot(count.clamp(1, u32::MAX as u128) as u32);
        }
    }

    fn cancel() {
        set_armed(0);
        if cpu::features().tsc_deadline {
            // SAFETY: as in `set_deadline`; zero disarms the timer.
            unsafe { regs::wrmsr(regs::msr::IA32_TSC_DEADLINE, 0) };
        } else {
            lapic::start_one_shot(0);
        }
    }

    fn irq() -> IrqNumber {
        IrqNumber(crate::irq::VECTOR_TIMER as u32)
    }
}

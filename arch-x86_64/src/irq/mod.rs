//! The host's interrupt controllers: the local APIC of each CPU (EOI, IPIs, the timer),
//! with the legacy PIC and the I/O APICs masked.
//!
//! x86 has no acknowledge register: an interrupt is taken through the IDT. The vector
//! stubs record it as pending on the taking CPU; [`InterruptController::acknowledge`]
//! briefly opens the interrupt window so the LAPIC can deliver what it holds, then hands
//! out the highest pending enabled vector. The EOI is the core's, as on a GIC.

pub mod ioapic;
pub mod lapic;
pub mod pic;

use crate::cpu;
use core::sync::atomic::{AtomicU64, Ordering};
use keel_kernel::arch::{CpuId, InterruptController, IrqNumber};

/// Where the remapped legacy PIC would deliver (all its inputs are masked).
pub const VECTOR_PIC_BASE: u8 = 0x20;
/// The console UART's receive interrupt (COM1 through the I/O APIC).
pub const VECTOR_CONSOLE: u8 = 0x30;
/// The hypervisor timer (LAPIC timer, TSC-deadline or one-shot).
pub const VECTOR_TIMER: u8 = 0xf0;
/// The hypervisor's wake-up IPI.
pub const VECTOR_WAKEUP: u8 = 0xf1;
/// LAPIC internal errors (masked).
pub const VECTOR_ERROR: u8 = 0xfe;
/// The LAPIC's spurious vector: never acknowledged, never EOI'd.
pub const VECTOR_SPURIOUS: u8 = 0xff;

/// One CPU's interrupt bookkeeping (256 vectors, one bit each).
pub struct CpuIrq {
    pending: [AtomicU64; 4],
    enabled: [AtomicU64; 4],
}

impl CpuIrq {
    pub const fn new() -> CpuIrq {
        CpuIrq { pending: [const { AtomicU64::new(0) }; 4], enabled: [const { AtomicU64::new(0) }; 4] }
    }

    fn set(words: &[AtomicU64; 4], vector: u8, on: bool) {
        let (w, bit) = (vector as usize / 64, 1u64 << (vector % 64));
        if on {
            words[w].fetch_or(bit, Ordering::AcqRel);
        } else {
            words[w].fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// Removes and returns the highest vector that is pending and enabled.
    fn take_highest(&self) -> Option<u8> {
        for w in (0..4).rev() {
            let ready = self.pending[w].load(Ordering::Acquire) & self.enabled[w].load(Ordering::Acquire);
            if ready != 0 {
                let bit = 63 - ready.leading_zeros();
                self.pending[w].fetch_and(!(1u64 << bit), Ordering::AcqRel);
                return Some((w as u32 * 64 + bit) as u8);
            }
        }
        None
    }
}

impl Default for CpuIrq {
    fn default() -> Self {
        Self::new()
    }
}

/// Called from the IDT for vectors 32..=255.
pub fn on_interrupt(vector: u8) {
    if vector == VECTOR_SPURIOUS {
        return;
    }
    CpuIrq::set(&cpu::this_cpu().irq.pending, vector, true);
}

/// Sets up the boot CPU's interrupt hardware: PIC remapped and masked, every I/O APIC
/// line masked, local APIC enabled.
pub fn init_boot_cpu(ioapics: impl Iterator<Item = u64>, legacy_pic: bool) {
    if legacy_pic {
        pic::remap_and_mask(VECTOR_PIC_BASE);
    }
    for base in ioapics {
        let lines = ioapic::mask_all(base);
        log::debug!("I/O APIC at {base:#x}: {lines} lines masked");
    }
    X86Irq::init_cpu();
}

/// The [`InterruptController`] of this backend.
pub struct X86Irq;

/// The local APIC (x2APIC where present, else xAPIC) and the I/O APIC; `send_ipi` raises
/// vector 0xf1.
impl InterruptController for X86Irq {
    fn init_cpu() {
        let tsc_deadline = cpu::features().tsc_deadline;
        lapic::init_cpu(VECTOR_SPURIOUS, VECTOR_ERROR, VECTOR_TIMER, tsc_deadline);
        cpu::this_cpu().set_apic_id(lapic::id());
    }

    fn enable(irq: IrqNumber) {
        let Ok(vector) = u8::try_from(irq.0) else { return };
        CpuIrq::set(&cpu::this_cpu().irq.enabled, vector, true);
        if vector == VECTOR_TIMER {
            lapic::set_timer_masked(false);
        }
    }

    fn disable(irq: IrqNumber) {
        let Ok(vector) = u8::try_from(irq.0) else { return };
        CpuIrq::set(&cpu::this_cpu().irq.enabled, vector, false);
        if vector == VECTOR_TIMER {
            lapic::set_timer_masked(true);
        }
    }

    fn acknowledge() -> Option<IrqNumber> {
        if !x86_64::instructions::interrupts::are_enabled() {
            // STI holds interrupts off for one more instruction: the NOP is the window.
            x86_64::instructions::interrupts::enable();
            x86_64::instructions::nop();
            x86_64::instructions::interrupts::disable();
        }
        cpu::this_cpu().irq.take_highest().map(|v| IrqNumber(v as u32))
    }

    fn end_of_interrupt(irq: IrqNumber) {
        if irq.0 != VECTOR_SPURIOUS as u32 {
            lapic::end_of_interrupt();
        }
    }

    fn send_ipi(target: CpuId) {
        match cpu::cpu(target.0) {
            Some(c) => lapic::send_fixed(c.apic_id(), VECTOR_WAKEUP),
            None => log::warn!("IPI to cpu{target}, which is not online"),
        }
    }

    fn ipi_irq() -> IrqNumber {
        IrqNumber(VECTOR_WAKEUP as u32)
    }
}

//! The host's interrupt controllers: the local APIC of each CPU (EOI, IPIs, the timer),
//! with the legacy PIC and the I/O APICs masked.
//!
//! x86 has no acknowledge register: an interrupt is taken through the IDT. The vector
//! stubs record it as pending on the taking CPU; [`InterruptController::acknowledge`]
//! briefly opens the interrupt window so the LAPIC can deliver what it holds, then hands
//! out the highest pending enabled vector. The EOI is the core's, as on a GIC.

pub mod ioapic;
pub mod lapic;
pub mod per_cpu;
pub mod pic;

pub use per_cpu::CpuIrq;

use crate::cpu;
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

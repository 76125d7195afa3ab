//! The generic timer: the system counter (CNTPCT_EL0, CNTFRQ_EL0) and the EL2 physical
//! timer (CNTHP_*) as Keel's per-CPU deadline.
//!
//! With VHE, the EL0 physical-timer names (CNTP_*_EL0) executed at EL2 reach CNTHP_*_EL2
//! and the guest's timers are reached as CNTP_*_EL02/CNTV_*_EL02; Keel always names
//! CNTHP_* directly, which is the same register in both modes.

use crate::regs::CnthpCvalEl2;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTHP_CTL_EL2, CNTPCT_EL0};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use keel_kernel::arch::{IrqNumber, Timer};
use tock_registers::interfaces::{Readable, Writeable};

/// INTID of the EL2 physical timer (PPI 10 = INTID 26 unless the device tree says else).
static HYP_TIMER_IRQ: AtomicU32 = AtomicU32::new(26);

pub fn set_irq(intid: u32) {
    HYP_TIMER_IRQ.store(intid, Relaxed);
}

/// The interrupt the deadline raises.
pub fn irq() -> u32 {
    HYP_TIMER_IRQ.load(Relaxed)
}

pub struct GenericTimer;

/// The EL2 physical timer (`CNTHP_*`); its interrupt is the PPI the device tree names
/// (INTID 26 by default).
impl Timer for GenericTimer {
    fn now() -> u64 {
        // Keep the counter read from being hoisted above earlier instructions.
        barrier::isb(barrier::SY);
        CNTPCT_EL0.get()
    }

    fn frequency() -> u64 {
        CNTFRQ_EL0.get()
    }

    fn set_deadline(ticks: u64) {
        CnthpCvalEl2.set(ticks);
        CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
        barrier::isb(barrier::SY);
    }

    fn cancel() {
        CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR);
        barrier::isb(barrier::SY);
    }

    fn irq() -> IrqNumber {
        IrqNumber(irq())
    }
}

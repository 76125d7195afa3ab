//! Interrupts into the guest, decided before every entry for both vendors:
//!
//! 1. Xen's callback vector (`HVM_PARAM_CALLBACK_IRQ` type 2) while the event upcall is
//!    pending: injected directly, bypassing the local APIC (no request or in-service
//!    bit, no EOI), level-like as Xen's: while the level the core set holds, every entry
//!    the guest can take it reads `evtchn_upcall_pending` afresh and injects the vector
//!    if it is set; once it reads clear, the level is dropped until the core sets it
//!    again (it does when it marks an event for the vCPU: the level is latched,
//!    `Vcpu::latches_upcall`).
//! 2. The per-vCPU upcall vector (`HVMOP_set_evtchn_upcall_vector`): requested in the
//!    virtual local APIC while the level is set and the vector is neither requested nor
//!    in service; the guest EOIs it, which makes Keel report `UpcallAck` so the core
//!    reads the level again.
//! 3. The local APIC's highest deliverable vector (IPIs, its timer, self-IPIs).
//!
//! An interrupt is injected only while the guest can take it (RFLAGS.IF, no STI or MOV
//! SS shadow, no other event being delivered); otherwise the vendor's interrupt window
//! makes the guest exit as soon as it can.
//!
//! The local APIC's registers are reached through [`msr`]: IPIs set bits in the target
//! vCPUs' request registers and make Keel report `Kick` for them, so the core wakes and
//! interrupts them; timer changes are reported as `DeviceTimer` deadlines. A vCPU
//! publishes its priority and timer before it enters or halts, which the core's
//! `GuestDomain::interrupt_pending` reads when it blocks it.

use super::common::Common;
use super::guest_cpu::GuestCpu;
use crate::vlapic::icr::{self, Icr};
use crate::vlapic::Effects;
use keel_kernel::arch::{UpcallRoute, VmExit};
use keel_kernel::mm::GuestPhysAddr;

const RFLAGS_IF: u64 = 1 << 9;

/// TSC ticks as system time (the core's clock counts the TSC), rounded up.
fn tsc_to_ns(tsc: u64) -> u64 {
    let hz = crate::timer::tsc_hz().max(1) as u128;
    ((tsc as u128 * 1_000_000_000).div_ceil(hz)).min(u64::MAX as u128) as u64
}

/// Reports the local APIC timer's deadline to the core.
pub fn report_timer(common: &mut Common) {
    let deadline_ns = common.vlapic.timer.deadline().map(tsc_to_ns);
    common.reports.push_back(VmExit::DeviceTimer { deadline_ns });
}

/// Publishes the APIC's priority and timer for other CPUs.
fn publish(common: &Common) {
    if let Some(shared) = common.domain.lapic(common.vcpu_id) {
        common.vlapic.publish(shared);
    }
}

/// Sets up the next entry's interrupt (see the module documentation). The local APIC is
/// evaluated only when something that decides it changed or the event upcall is pending
/// (`Vlapic::begin_entry`); otherwise the last evaluation stands: nothing to inject, the
/// interrupt window closed, the published priority and deadline current.
///
/// Inlined into each vendor's run loop up to that decision; the evaluation is [`evaluate`].
#[inline(always)]
pub fn prepare_entry<C: GuestCpu + ?Sized>(cpu: &mut C, common: &mut Common) {
    if let Some(cr8) = cpu.cr8() {
        // SVM keeps the guest's CR8 in V_TPR; the APIC's TPR follows it.
        if cr8 != common.vlapic.tpr() >> 4 {
            common.vlapic.set_tpr(cr8 << 4);
        }
    }
    let irr = common.domain.irr(common.vcpu_id).expect("own IRR");
    if let Some(timer) = common.vlapic.begin_entry(irr, crate::regs::rdtsc(), common.upcall.0) {
        evaluate(cpu, common, timer);
    }
}

/// The entry's interrupt, evaluated: `timer` says the local APIC timer's deadline
/// changed (reported to the core).
#[inline(never)]
fn evaluate<C: GuestCpu + ?Sized>(cpu: &mut C, common: &mut Common, timer: bool) {
    if timer {
        report_timer(common);
    }
    let (pending, route) = common.upcall;
    if cpu.event_queued() {
        common.vlapic.unsettled();
        return;
    }
    let irr = common.domain.irr(common.vcpu_id).expect("own IRR");
    if let (true, UpcallRoute::LapicVector(v)) = (pending, route) {
        if !irr.contains(v) && !common.vlapic.in_service(v) {
            irr.raise(v);
        }
    }
    // The callback vector follows the live level: a handler that already cleared it
    // must not be entered again for a stale report.
    let callback = match (pending, route) {
        (true, UpcallRoute::CallbackVector(v)) => {
            let live = common.domain.services().is_some_and(|s| s.upcall_pending(common.vcpu_id));
            common.upcall.0 = live;
            live.then_some(v)
        }
        _ => None,
    };
    let lapic = common.vlapic.deliverable(irr);
    publish(common);
    if callback.is_none() && lapic.is_none() {
        cpu.interrupt_window(false);
        return;
    }
    // An interrupt waits or was injected: the next entry looks again.
    common.vlapic.unsettled();
    if !cpu.interruptible() {
        cpu.interrupt_window(true);
        return;
    }
    cpu.interrupt_window(false);
    match (callback, lapic) {
        (Some(v), _) => {
            // Level-like: injected again at the next entry the guest can take it, as long
            // as the guest has not cleared `evtchn_upcall_pending` by then.
            cpu.inject_interrupt(v);
        }
        (None, Some(v)) => {
            common.vlapic.accept(irr, v);
            publish(common);
            cpu.inject_interrupt(v);
        }
        (None, None) => {}
    }
}

/// Whether the guest, halting, would take an interrupt right away (so it need not
/// block): a deliverable local-APIC vector or an expired timer, with interrupts enabled
/// (the event upcall is the core's).
pub fn halt_ends_at_once(cpu: &mut dyn GuestCpu, common: &mut Common) -> bool {
    prepare_entry(cpu, common);
    if cpu.event_queued() {
        return true;
    }
    cpu.rflags() & RFLAGS_IF != 0
        && common.domain.lapic(common.vcpu_id).is_some_and(|l| l.pending(crate::regs::rdtsc()))
}

/// A HLT (RIP already past it): what the core must hear. With interrupts masked
/// (RFLAGS.IF clear) nothing but an NMI could end it, so the vCPU goes offline, as Xen's
/// `hvm_hlt` does, and the domain powers off when its last vCPU does (Linux halts every
/// CPU this way on `poweroff` when it has no ACPI power-off method); an interrupt the
/// guest can take right away ends the halt at once.
pub fn halt(cpu: &mut dyn GuestCpu, common: &mut Common) -> Option<VmExit> {
    if cpu.rflags() & RFLAGS_IF == 0 && !cpu.event_queued() {
        return Some(VmExit::StopVcpu);
    }
    (!halt_ends_at_once(cpu, common)).then_some(VmExit::Halt)
}

/// Local-APIC register MSRs and IA32_TSC_DEADLINE. `None` means #GP.
pub mod msr {
    use super::*;
    use crate::vlapic::reg;

    /// Whether `index` is one of the local APIC's MSRs.
    pub fn claims(index: u32) -> bool {
        (reg::FIRST..=reg::LAST).contains(&index) || index == reg::TSC_DEADLINE
    }

    pub fn read(common: &Common, index: u32) -> Option<u64> {
        common.vlapic.read(common.irr(), index, crate::regs::rdtsc())
    }

    pub fn write(cpu: &mut dyn GuestCpu, common: &mut Common, index: u32, value: u64) -> Option<()> {
        let irr = common.domain.irr(common.vcpu_id).expect("own IRR");
        let fx = common.vlapic.write(irr, index, value, crate::regs::rdtsc())?;
        effects(cpu, common, index, fx);
        Some(())
    }

    /// What a register write (MSR `index`, or its xAPIC offset / 16 + 0x800) asks for.
    pub(super) fn effects(cpu: &mut dyn GuestCpu, common: &mut Common, index: u32, fx: Effects) {
        if index == reg::TPR {
            cpu.set_cr8(common.vlapic.tpr() >> 4);
        }
        if let Some(ipi) = fx.ipi {
            send(common, &ipi);
        }
        if let (Some(v), UpcallRoute::LapicVector(u)) = (fx.eoi, common.upcall.1) {
            if v == u {
                common.reports.push_back(VmExit::UpcallAck);
            }
        }
        if fx.timer {
            report_timer(common);
        }
    }

    /// Delivers an IPI: fixed and lowest-priority vectors to their targets' request
    /// registers (lowest priority: the first target), a notification for each other
    /// vCPU; start-up IPIs start their targets. NMI and SMI are not delivered.
    fn send(common: &mut Common, ipi: &Icr) {
        let vcpus = common.domain.init().vcpus;
        match ipi.delivery {
            icr::DELIVERY_FIXED | icr::DELIVERY_LOWEST => {
                let lowest = ipi.delivery == icr::DELIVERY_LOWEST;
                let mut kick = 0u128;
                for target in icr::targets(ipi, common.vcpu_id, vcpus).take(if lowest { 1 } else { usize::MAX }) {
                    let Some(irr) = common.domain.irr(target) else { continue };
                    irr.raise(ipi.vector);
                    if target != common.vcpu_id && target < 128 {
                        kick |= 1 << target;
                    }
                }
                if kick != 0 {
                    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
                    common.reports.push_back(VmExit::Kick { vcpus: kick });
                }
            }
            // INIT puts a processor into wait-for-SIPI: an offline vCPU is there already;
            // a running one is not reset (Keel does not take vCPUs down from outside).
            icr::DELIVERY_INIT => {}
            // A start-up IPI starts an offline vCPU in real mode at the vector's page; the
            // core ignores it for a vCPU that runs already, as a processor outside
            // wait-for-SIPI does.
            icr::DELIVERY_STARTUP => {
                for target in icr::targets(ipi, common.vcpu_id, vcpus).filter(|&t| t != common.vcpu_id) {
                    let entry = GuestPhysAddr((ipi.vector as u64) << 12);
                    common.reports.push_back(VmExit::StartVcpu { target, entry, arg: 0 });
                }
            }
            other => log::warn!(
                "d{}v{}: IPI with delivery mode {other} dropped (not supported)",
                common.domain.init().id,
                common.vcpu_id
            ),
        }
    }
}

/// The local APIC's xAPIC page (`0xfee00000` while the APIC is in xAPIC mode), reached
/// through the MMIO emulation (`super::mmio`): registers as the MSRs, except ID, LDR,
/// DFR and the two ICR halves, which xAPIC mode keeps in its own format.
pub mod xapic {
    use super::*;

    /// Reads `size` bytes at `offset` in the page.
    pub fn read(common: &Common, offset: u32, size: u8) -> u64 {
        common.vlapic.mmio_read(common.irr(), offset, size, crate::regs::rdtsc())
    }

    /// Writes `size` bytes of `value` at `offset` in the page.
    pub fn write(cpu: &mut dyn GuestCpu, common: &mut Common, offset: u32, size: u8, value: u64) {
        let irr = common.domain.irr(common.vcpu_id).expect("own IRR");
        if let Some((index, fx)) = common.vlapic.mmio_write(irr, offset, size, value, crate::regs::rdtsc()) {
            msr::effects(cpu, common, index, fx);
        }
    }
}

//! Running a vCPU until the core must see an exit: the world switch, then everything
//! Keel handles without the core — emulated devices, trapped GIC registers, the virtual
//! timer's and the virtual interface's interrupts, PSCI queries, injected exceptions.
//! The EL1 state stays live across exits (`Vcpu::load`/`put` switch it); the virtual CPU
//! interface too, on the fast path (`docs/el2-modes.md`).

use super::exit::{self, Outcome, Syndrome};
use super::fast::{Fast, FastCtx};
use super::mmio::Done;
use super::{context, Aarch64Vcpu, GuestRegs, StageFault};
use crate::vgic::lr::Completed;
use crate::cpu;
use crate::irq;
use crate::layout::PPI_EVTCHN;
use aarch64_cpu::asm::barrier;
use core::ffi::c_void;
use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HCR_EL2, HPFAR_EL2, VMPIDR_EL2, VTTBR_EL2};
use keel_kernel::arch::{FastPath, MemoryAccess, VmExit};
use keel_kernel::mm::GuestPhysAddr;
use tock_registers::interfaces::{Readable, Writeable};

extern "C" {
    /// Runs the guest until an exception reaches EL2 that the hypercall fast path does
    /// not answer (`fast.rs`, `fast` a `FastCtx` the vector passes on); returns the
    /// vector slot (8-15).
    fn keel_guest_enter(regs: *mut GuestRegs, fast: *mut c_void) -> u64;
}

/// Guest-owned interrupt exits in a row after which the core gets control anyway.
const MAX_INTERNAL_IRQ_EXITS: u32 = 64;

/// Vector slots of IRQs from a lower EL (AArch64, AArch32).
fn is_irq(slot: u64) -> bool {
    slot == 9 || slot == 13
}

impl Aarch64Vcpu {
    pub(super) fn run_guest(&mut self, fast: Option<&dyn FastPath>) -> VmExit {
        if let Some(exit) = self.deferred.take() {
            return exit;
        }
        if core::mem::take(&mut self.upcall_ack) {
            return VmExit::UpcallAck;
        }
        let mut internal_exits = 0u32;
        loop {
            self.load_gic();
            VTTBR_EL2.set(self.vttbr);
            VMPIDR_EL2.set(self.vmpidr);
            HCR_EL2.set(self.hcr);
            barrier::isb(barrier::SY);
            let mut ctx = FastCtx {
                fast,
                gic: &self.gic,
                domain: &self.domain,
                vcpu_id: self.vcpu_id,
                vttbr: self.vttbr,
                hcr: self.hcr,
                last: Fast::Nothing,
                done: Done::default(),
            };
            // SAFETY: the guest runs under stage 2 (VTTBR, HCR_EL2.VM) with its own EL1
            // state loaded; every exception from it returns here through the vectors, with
            // Keel's callee-saved registers and stack restored. The vector's fast path uses
            // `regs` and `ctx` only until the call returns (`fast.rs`).
            let slot = unsafe { keel_guest_enter(&mut self.regs, (&raw mut ctx).cast()) };
            let (last, done) = (ctx.last, ctx.done);
            let esr = ESR_EL2.get();
            HCR_EL2.set(cpu::host_hcr());
            barrier::isb(barrier::SY);
            if last == Fast::Answered {
                // The fast path answered a hypercall and left everything as it was.
                return VmExit::Answered;
            }
            if last == Fast::Emulated {
                // The fast path emulated a vPL011 access (the PC is past it); what follows
                // is as after `handle` below.
                if let Some(exit) = self.mmio_done(done) {
                    return exit;
                }
                if core::mem::take(&mut self.upcall_ack) {
                    return VmExit::UpcallAck;
                }
                continue;
            }
            if last == Fast::Declined || crate::syndrome::is_hypercall(slot, esr) {
                // What the path below does for a hypercall, without decoding: it needs
                // nothing of the interrupt model, and ELR_EL2 is already past the HVC.
                if !self.gic.may_stay_loaded() {
                    self.sync_gic(false);
                }
                return VmExit::Hypercall;
            }
            let syndrome = Syndrome { slot, esr, far: FAR_EL2.get(), hpfar: HPFAR_EL2.get() };
            let outcome = exit::decode(syndrome);
            // The fast path: an exit that needs nothing of the interrupt model leaves the
            // virtual CPU interface loaded, unless the guest completed an interrupt.
            let taken = if exit::needs_interrupt_model(&outcome) || !self.gic.may_stay_loaded() {
                self.sync_gic(is_irq(slot))
            } else {
                Default::default()
            };
            // A completed upcall (`upcall_ack`) is reported after any other exit, at the
            // next `run`.
            if let Some(exit) = self.handle(outcome, &syndrome) {
                return exit;
            }
            if is_irq(slot) && taken.host {
                return VmExit::Interrupt;
            }
            if core::mem::take(&mut self.upcall_ack) {
                return VmExit::UpcallAck;
            }
            if is_irq(slot) {
                // Interrupts Keel takes for the guest (its timer, the interface's
                // maintenance) are handled here; should they keep coming, the core still
                // gets to run its timers and scheduler between entries.
                internal_exits += 1;
                if internal_exits >= MAX_INTERNAL_IRQ_EXITS {
                    return VmExit::Interrupt;
                }
            }
        }
    }

    /// Before an entry: loads the virtual CPU interface unless it still holds what the
    /// model would put there (loaded with this upcall level, and no virtual timer
    /// interrupt taken for the vCPU since).
    fn load_gic(&mut self) {
        if self.gic_live == Some(self.upcall) && !irq::vtimer_fired() {
            return;
        }
        self.sync_gic(false);
        let id = self.vcpu_id;
        let (cntv_ctl, _) = context::live_vtimer(cpu::vhe());
        let mut g = self.domain.vgic.lock();
        if irq::take_vtimer_fired() {
            g.timer_fired(id);
        }
        g.set_private_level(id, PPI_EVTCHN, self.upcall);
        if !super::vtimer_asserted(cntv_ctl) {
            g.timer_line_low(id);
        }
        self.gic.load(&mut g, id);
        self.gic_live = Some(self.upcall);
    }

    /// Saves the virtual CPU interface into the model, if it is loaded: turned off first
    /// (its maintenance interrupt drops), then, after an exit by IRQ (`irq_exit`), the
    /// guest's own interrupts are taken (its virtual timer, the maintenance interrupt).
    /// Returns what was taken; a completed upcall interrupt is kept in `upcall_ack`.
    pub(super) fn sync_gic(&mut self, irq_exit: bool) -> irq::Taken {
        let live = self.gic_live.take().is_some();
        if live {
            self.gic.quiesce();
        }
        let mut taken = if irq_exit { irq::take_guest_interrupts() } else { irq::Taken::default() };
        taken.timer |= irq::take_vtimer_fired();
        if !live && !taken.timer {
            return taken;
        }
        let id = self.vcpu_id;
        let mut g = self.domain.vgic.lock();
        if taken.timer {
            g.timer_fired(id);
        }
        let completed = if live { self.gic.save(&mut g, id, PPI_EVTCHN) } else { Completed::default() };
        self.upcall_ack |= completed.upcall;
        taken
    }

    /// Handles what Keel can; returns the exit the core must see, if any.
    fn handle(&mut self, outcome: Outcome, syndrome: &Syndrome) -> Option<VmExit> {
        let advance = |v: &mut Self, n: u64| v.regs.pc = v.regs.pc.wrapping_add(n);
        match outcome {
            // Host interrupts are sorted out by the caller.
            Outcome::Exit { exit: VmExit::Interrupt, .. } => None,
            Outcome::Exit { exit: VmExit::Halt, advance: n } if self.domain.vgic.lock().has_pending(self.vcpu_id) => {
                // WFI with an interrupt waiting completes at once.
                advance(self, n);
                None
            }
            Outcome::Exit { exit, advance: n } => {
                advance(self, n);
                if matches!(exit, VmExit::MemoryFault { .. } | VmExit::GuestCrash) {
                    self.log_state(syndrome.esr);
                }
                Some(exit)
            }
            Outcome::Undefined { .. } | Outcome::Abort { ipa: None, .. } if self.faulted_in_vectors() => {
                self.log_vector_fault();
                Some(VmExit::GuestCrash)
            }
            Outcome::Undefined { back } => {
                self.inject_undefined(back);
                None
            }
            Outcome::Abort { instruction, write, far, ipa: Some(ipa) } => {
                Some(self.stage_fault(StageFault { far, ipa, instruction, write }))
            }
            Outcome::Abort { instruction, write, far, ipa: None } => {
                log::debug!(
                    "d{}v{}: {} at {far:#x} refused by stage 2 (permission): abort injected",
                    self.domain.init().id,
                    self.vcpu_id,
                    if instruction { "instruction fetch" } else if write { "write" } else { "read" },
                );
                self.inject_abort(far, instruction, write);
                None
            }
            Outcome::Psci { advance: n } => {
                advance(self, n);
                self.psci()
            }
            Outcome::Mmio(m) => match self.emulate_mmio(&m) {
                Some(done) => {
                    advance(self, 4);
                    self.mmio_done(done)
                }
                // No device there: RAM being remapped, or a hole (the core decides).
                None => Some(self.stage_fault(StageFault {
                    far: syndrome.far,
                    ipa: m.gpa,
                    instruction: false,
                    write: m.write,
                })),
            },
            Outcome::Sysreg(s) => match self.emulate_sysreg(&s) {
                Some(kick) => {
                    advance(self, 4);
                    self.kick_others(kick)
                }
                None => {
                    self.inject_undefined(0);
                    None
                }
            },
        }
    }

    /// What follows an emulated device access (the PC already past it): the exit the core
    /// must see, if any.
    fn mmio_done(&mut self, done: Done) -> Option<VmExit> {
        if done.kick & 1 << self.vcpu_id != 0 {
            // A device raised this vCPU's own line: the interface is reloaded.
            self.sync_gic(false);
        }
        let kick = self.kick_others(done.kick);
        match done.output {
            Some(byte) => {
                self.deferred = kick;
                Some(VmExit::ConsoleOutput(byte))
            }
            None => kick,
        }
    }

    /// Reports a stage-2 fault no device claims to the core, which answers with
    /// [`Vcpu::settle_stage_fault`](keel_kernel::arch::Vcpu::settle_stage_fault) (see
    /// `settle`) before the next entry; the PC stays at the access.
    fn stage_fault(&mut self, fault: StageFault) -> VmExit {
        let access = if fault.instruction {
            MemoryAccess::Execute
        } else if fault.write {
            MemoryAccess::Write
        } else {
            MemoryAccess::Read
        };
        self.stage_fault = Some(fault);
        VmExit::StageFault { gpa: GuestPhysAddr(fault.ipa), access }
    }

    /// The core's answer to the last stage-2 fault: mapped by now, the guest executes
    /// the access again; a hole, the guest takes an external abort, as on hardware.
    pub(super) fn settle(&mut self, mapped: bool) {
        let Some(f) = self.stage_fault.take() else { return };
        if mapped {
            return;
        }
        if self.faulted_in_vectors() {
            self.log_vector_fault();
            self.deferred = Some(VmExit::GuestCrash);
            return;
        }
        log::debug!(
            "d{}v{}: {} at {:#x} (guest-physical {:#x}) refused by stage 2: abort injected",
            self.domain.init().id,
            self.vcpu_id,
            if f.instruction { "instruction fetch" } else if f.write { "write" } else { "read" },
            f.far,
            f.ipa
        );
        self.inject_abort(f.far, f.instruction, f.write);
    }

    fn log_vector_fault(&self) {
        log::warn!(
            "d{}v{}: an exception in its exception vectors (VBAR {:#x}, PC {:#x}): it cannot go on",
            self.domain.init().id,
            self.vcpu_id,
            context::live_vbar(cpu::vhe()),
            self.regs.pc
        );
    }

    /// The exit that makes the core wake the other vCPUs in `kick`, if any (this vCPU
    /// picks up its own interrupts on re-entry).
    fn kick_others(&self, kick: u128) -> Option<VmExit> {
        let others = kick & !(1u128 << self.vcpu_id);
        (others != 0).then_some(VmExit::Kick { vcpus: others })
    }

    /// Logs the guest's state at a fatal exit (debug level).
    pub(super) fn log_state(&mut self, esr_el2: u64) {
        self.el1.read(cpu::vhe());
        let e = &self.el1;
        log::debug!(
            "guest PC {:#x} PSTATE {:#x} ESR_EL2 {esr_el2:#x}; EL1: ELR {:#x} ESR {:#x} FAR {:#x} VBAR {:#x} SCTLR {:#x}",
            self.regs.pc,
            self.regs.pstate,
            e.elr,
            e.esr,
            e.far,
            e.vbar,
            e.sctlr
        );
    }
}

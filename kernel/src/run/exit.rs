//! What the run loop does with each [`VmExit`].

use super::cpu::CpuLoop;
use super::guests::{Guest, Slot};
use super::pending::Work;
use super::System;
use crate::arch::{Arch, BootEntry, MemoryAccess, StartResult, Vcpu, VcpuInit, VcpuTranslation, VmExit};
use crate::domain::{DomainState, Hooks};
use crate::mm::{GuestPhysAddr, PAGE_SIZE};
use crate::p2m::PageKind;

fn access_name(a: MemoryAccess) -> &'static str {
    match a {
        MemoryAccess::Read => "read",
        MemoryAccess::Write => "write",
        MemoryAccess::Execute => "instruction fetch",
    }
}

impl<A: Arch> CpuLoop<'_, '_, A> {
    /// Handles the exit of the current vCPU, and says whether the short return path may
    /// follow it ([`CpuLoop::settled`]): after the exits whose every consequence for this
    /// loop is raised as pending work by the core's hooks where it arises (a block, a
    /// wake-up, a timer change, a yield), if the backend latches the upcall level.
    pub(super) fn handle_exit(&mut self, exit: VmExit) {
        self.settled = self.current.as_ref().is_some_and(|c| c.vcpu.latches_upcall())
            && matches!(
                exit,
                VmExit::Hypercall
                    | VmExit::Halt
                    | VmExit::Yield
                    | VmExit::DeviceTimer { .. }
                    | VmExit::Kick { .. }
                    | VmExit::ConsoleOutput(_)
                    | VmExit::UpcallAck
                    | VmExit::Interrupt
                    | VmExit::Answered
            );
        match exit {
            VmExit::Interrupt => self.handle_interrupts(),
            VmExit::Hypercall => self.handle_hypercall(),
            _ => self.handle_other_exit(exit),
        }
    }

    /// A hypercall: the most frequent exit, kept apart from the others so that its path
    /// carries none of their stack frame.
    fn handle_hypercall(&mut self) {
        let cpu = self.cpu;
        let Some(cur) = self.current.as_mut() else { return };
        let (d, v) = (&cur.guest.domain, cur.key.vcpu);
        let args = cur.vcpu.hypercall_args();
        let mut result = self.m.hv.hypercall(d, v, &args, &VcpuTranslation(&cur.vcpu));
        if args.number == keel_abi::control::KEEL_CONTROL_OP {
            // A control call that needs the domain builder queued its request.
            if let Some(built) = self.m.serve_build(d.id(), v) {
                result = built;
                // A domain was built or refused: let the full loop look at everything.
                self.m.hooks.raise(cpu, Work::RESCHED);
            }
        }
        cur.vcpu.set_hypercall_result(result);
        if args.number == keel_abi::hypercall::HVM_OP {
            // It may have chosen another upcall route.
            self.m.hooks.raise(cpu, Work::UPCALL);
        }
    }

    /// Every exit but a hypercall and a host interrupt.
    #[inline(never)]
    fn handle_other_exit(&mut self, exit: VmExit) {
        let cpu = self.cpu;
        let Some(cur) = self.current.as_mut() else { return };
        let hv = &self.m.hv;
        let (d, v) = (&cur.guest.domain, cur.key.vcpu);
        match exit {
            // Answered: the hypercall was handled on the fast path; its work is pending.
            VmExit::Hypercall | VmExit::Interrupt | VmExit::Answered => {}
            // Xen's WFI/HLT: block unless an event upcall (or a virtual interrupt) is
            // pending, until the guest's own timer fires at the latest.
            VmExit::Halt => hv.halt(d, v, cur.vcpu.halt_deadline()),
            VmExit::DeviceTimer { deadline_ns } => hv.set_device_deadline(d, v, deadline_ns),
            VmExit::Yield => hv.hooks().yield_vcpu(d.id(), v),
            VmExit::MemoryFault { gpa, access } => {
                // No portable device claims guest-physical space yet; the backend handled
                // its own devices before reporting the fault.
                log::warn!(
                    "d{}v{v} ({}): {} fault at guest-physical {:#x}; crashing the domain",
                    d.id(),
                    cur.guest.name,
                    access_name(access),
                    gpa.0
                );
                hv.shutdown(d, DomainState::Crashed);
            }
            VmExit::StageFault { gpa, access } => {
                // Mapped by now: the access raced a change of the tables (a block split
                // with break-before-make) and runs again; else the backend treats it as
                // an access to nothing.
                // Under the memory lock, which every change of the P2M holds.
                let mapped = d.mm.lock().maps_for(gpa, access);
                if mapped {
                    log::debug!(
                        "d{}v{v}: {} fault at {:#x} raced a P2M change: again",
                        d.id(),
                        access_name(access),
                        gpa.0
                    );
                }
                cur.vcpu.settle_stage_fault(mapped);
            }
            VmExit::GuestCrash => {
                log::warn!("d{}v{v} ({}): the guest cannot continue; crashing the domain", d.id(), cur.guest.name);
                hv.shutdown(d, DomainState::Crashed);
            }
            VmExit::StartVcpu { target, entry, arg } => {
                let result = self.m.start_vcpu(&cur.guest, target, BootEntry { entry, arg });
                cur.vcpu.set_start_result(result);
            }
            VmExit::StopVcpu => hv.vcpu_down(d, v),
            VmExit::Shutdown(reason) => hv.shutdown_guest(d, reason),
            VmExit::Kick { vcpus } => {
                for target in (0..d.nr_vcpus()).filter(|&t| t != v && vcpus & (1u128 << t) != 0) {
                    if d.vcpu(target).is_some_and(|s| s.online) {
                        hv.wake_vcpu(d, target, true);
                    }
                }
            }
            VmExit::ConsoleOutput(byte) => hv.console_output(d, &[byte]),
            // The guest took the upcall: the level is read again before the next entry.
            VmExit::UpcallAck => self.m.hooks.raise(cpu, Work::UPCALL),
        }
    }
}

impl<A: Arch> System<'_, A> {
    /// Creates vCPU `vcpu` of `guest` (never started) in the state the guest gave with
    /// `VCPUOP_initialise`, parked; false if it has none or creation failed.
    pub(super) fn create_from_context(&self, guest: &Guest<A>, vcpu: u32) -> bool {
        let d = &guest.domain;
        let Some(context) = d.take_vcpu_context(vcpu) else { return false };
        let Some(root) = d.p2m_root() else { return false };
        let init = VcpuInit {
            entry: GuestPhysAddr(0),
            arg: 0,
            stage2_root: root,
            space: d.space(),
            vcpu_id: vcpu,
            secondary: true,
            context: Some(context),
        };
        match A::Vcpu::new(d.arch(), &init) {
            Ok(object) => {
                guest.park(vcpu, object);
                true
            }
            Err(e) => {
                log::warn!("d{}v{vcpu} ({}): cannot create the vCPU: {e:?}", d.id(), guest.name);
                false
            }
        }
    }

    /// Creates (or resets) vCPU `target` of `guest` at `boot` and starts it, for another
    /// of its vCPUs (PSCI `CPU_ON`, INIT/SIPI).
    pub(super) fn start_vcpu(&self, guest: &Guest<A>, target: u32, boot: BootEntry) -> StartResult {
        let d = &guest.domain;
        if target >= d.nr_vcpus() {
            return StartResult::InvalidTarget;
        }
        if !d.lookup(boot.entry.0 / PAGE_SIZE).is_some_and(|l| l.kind == PageKind::Ram) {
            return StartResult::InvalidEntry;
        }
        let Some(root) = d.p2m_root() else { return StartResult::Failed };
        {
            let Some(mut slot) = guest.slot(target) else { return StartResult::InvalidTarget };
            if d.vcpu(target).is_some_and(|s| s.online) {
                return StartResult::AlreadyOn;
            }
            if matches!(*slot, Slot::InUse(_)) {
                return StartResult::Pending;
            }
            if d.state() != DomainState::Running {
                return StartResult::Failed;
            }
            let init = VcpuInit {
                entry: boot.entry,
                arg: boot.arg,
                stage2_root: root,
                space: d.space(),
                vcpu_id: target,
                secondary: true,
                context: None,
            };
            match A::Vcpu::new(d.arch(), &init) {
                Ok(vcpu) => *slot = Slot::Parked(vcpu),
                Err(e) => {
                    log::warn!("d{}v{target} ({}): cannot create the vCPU: {e:?}", d.id(), guest.name);
                    return StartResult::Failed;
                }
            }
            if d.start_vcpu(target, self.hv.now()).is_err() {
                return StartResult::InvalidTarget;
            }
        }
        self.hooks.vcpu_online(d.id(), target, true);
        StartResult::Started
    }
}

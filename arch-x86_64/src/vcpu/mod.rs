//! Virtual CPUs on Intel VT-x or AMD SVM, chosen at boot from CPUID: one image runs on
//! both. [`X86Vcpu`] dispatches to the vendor's implementation, which decodes its exits;
//! what both vendors emulate alike (CPUID, MSRs, port I/O, the guest page walk) lives in
//! [`emulate`] and the files it uses.
//!
//! Interrupts: the event upcall (Xen's callback vector, or a vector of the virtual local
//! APIC) and the local APIC's own ([`crate::vlapic`]) are injected by [`interrupts`].
//!
//! A vCPU starts in a [`StartState`]: Xen's PVH entry (the boot vCPU), real mode at the
//! start-up IPI's page (`VcpuInit::secondary`), or a `VCPUOP_initialise` context.

pub mod common;
pub mod context;
pub mod control;
pub mod cpuid;
pub mod emulate;
pub mod extension;
pub mod fast;
pub mod guest;
pub mod guest_cpu;
pub mod interrupts;
pub mod io;
pub mod missing;
pub mod mmio;
pub mod msr;
pub mod per_cpu;
pub mod pvclock;
pub mod start;
pub mod svm;
pub mod task_switch;
pub mod vmx;
pub mod walk;

pub use common::Common;
pub use extension::{detect, enable_this_cpu, extension, Extension};
pub use guest::GuestRegisters;
pub use missing::{EnableError, Missing};
pub use per_cpu::CpuVirt;

use crate::domain::X86Domain;
use crate::regs;
use crate::vlapic::Vlapic;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use guest_cpu::GuestCpu;
use keel_abi::Errno;
use keel_kernel::arch::{FastPath, HypercallArgs, StartResult, UpcallRoute, Vcpu, VcpuError, VcpuInit, VmExit};
use keel_kernel::mm::GuestPhysAddr;
use start::StartState;

/// A vendor's virtual CPU.
enum Kind {
    Vmx(vmx::VmxVcpu),
    Svm(svm::SvmVcpu),
}

/// A virtual CPU of either vendor.
pub struct X86Vcpu {
    kind: Kind,
    common: Common,
}

impl X86Vcpu {
    /// The domain's backend state.
    pub fn domain(&self) -> &Arc<X86Domain> {
        &self.common.domain
    }

    /// The event upcall level and route last set by the core, for the virtual local
    /// APIC and callback-vector injection.
    pub fn upcall(&self) -> (bool, UpcallRoute) {
        self.common.upcall
    }

    fn cpu(&self) -> &dyn GuestCpu {
        match &self.kind {
            Kind::Vmx(v) => v,
            Kind::Svm(v) => v,
        }
    }

    /// Runs the guest until an exit for the core; with `fast`, hypercalls the core
    /// answers there do not end the run.
    fn run_with(&mut self, fast: Option<&dyn FastPath>) -> VmExit {
        if let Some(report) = self.common.reports.pop_front() {
            return report;
        }
        let exit = match &mut self.kind {
            Kind::Vmx(v) => v.run(&mut self.common, fast),
            Kind::Svm(v) => v.run(&mut self.common, fast),
        };
        if let VmExit::Hypercall = exit {
            // The number's low half, in either mode (not the whole `hypercall_args`): a
            // number beyond it names no hypercall that may move the `vcpu_info`. (A call
            // answered on the fast path was looked at there.)
            let number = match &mut self.kind {
                Kind::Vmx(v) => v.regs().hypercall_number_low(),
                Kind::Svm(v) => v.regs().hypercall_number_low(),
            };
            self.common.pvclock.after_hypercall(number);
        }
        exit
    }
}

impl Vcpu for X86Vcpu {
    type Domain = X86Domain;

    /// Xen's `vcpu_hvm_context`.
    const CONTEXT_SIZE: usize = start::HVM_CONTEXT_SIZE;

    fn check_context(context: &[u8]) -> Result<(), Errno> {
        StartState::from_hvm_context(context, cpuid::cr4_allowed(&regs::cpuid)).map(|_| ())
    }

    fn new(domain: &Arc<X86Domain>, init: &VcpuInit) -> Result<Self, VcpuError> {
        let state = match &init.context {
            Some(c) => StartState::from_hvm_context(&c.0, cpuid::cr4_allowed(&regs::cpuid)).map_err(|e| {
                log::error!("vCPU {}: VCPUOP_initialise context refused late: {}", init.vcpu_id, e.name());
                VcpuError::NoVirtualization
            })?,
            None if init.secondary => StartState::sipi(init.entry.0, regs::cpuid(1, 0).eax),
            None => StartState::pvh(init.entry.0, init.arg),
        };
        if let Err(e) = enable_this_cpu() {
            log::error!("cannot enable hardware virtualisation: {e}");
            return Err(VcpuError::NoVirtualization);
        }
        let kind = match extension() {
            Extension::Vmx(c) => vmx::VmxVcpu::new(c, init, &state).map(Kind::Vmx),
            Extension::Svm(c) => svm::SvmVcpu::new(c, init, &state).map(Kind::Svm),
        }?;
        let common = Common {
            vcpu_id: init.vcpu_id,
            domain: domain.clone(),
            upcall: (false, UpcallRoute::Platform),
            context: context::Context::new(matches!(kind, Kind::Vmx(_))),
            vlapic: Vlapic::new(init.vcpu_id),
            pvclock: pvclock::Pvclock::new(),
            reports: VecDeque::new(),
            stage_fault: None,
            walks: Default::default(),
        };
        Ok(X86Vcpu { kind, common })
    }

    fn load(&mut self) {
        if let Err(e) = enable_this_cpu() {
            // The VMX `load` then fails too; SVM's `run` would fault: report it here.
            log::error!("cannot enable hardware virtualisation on this CPU: {e}");
        }
        match &mut self.kind {
            Kind::Vmx(v) => v.load(),
            Kind::Svm(v) => v.load(),
        }
        self.common.context.restore();
        self.common.pvclock.invalidate();
        // A new CPU: the first entry evaluates the local APIC and publishes its state.
        self.common.vlapic.unsettled();
    }

    fn put(&mut self) {
        self.common.context.save();
        match &mut self.kind {
            Kind::Vmx(v) => v.put(),
            Kind::Svm(v) => v.put(),
        }
    }

    fn run(&mut self) -> VmExit {
        self.run_with(None)
    }

    /// Hypercalls are answered inside the vendor's run loop (`fast.rs`), and the guest
    /// entered again at once when the core says so.
    fn run_fast(&mut self, fast: &dyn FastPath) -> VmExit {
        self.run_with(Some(fast))
    }

    fn hypercall_args(&self) -> HypercallArgs {
        match &self.kind {
            Kind::Vmx(v) => v.hypercall_args(),
            Kind::Svm(v) => v.hypercall_args(),
        }
    }

    fn set_hypercall_result(&mut self, value: u64) {
        match &mut self.kind {
            Kind::Vmx(v) => v.set_hypercall_result(value),
            Kind::Svm(v) => v.set_hypercall_result(value),
        }
    }

    /// Mapped: the guest executes the access again. A hole: the access is performed as
    /// on unbacked space (`emulate::memory_fault`), before the next entry.
    fn settle_stage_fault(&mut self, mapped: bool) {
        let Some(f) = self.common.stage_fault.take() else { return };
        if mapped {
            return;
        }
        let exit = match &mut self.kind {
            Kind::Vmx(v) => emulate::memory_fault(v, &mut self.common, f.gpa, f.access, f.delivering),
            Kind::Svm(v) => emulate::memory_fault(v, &mut self.common, f.gpa, f.access, f.delivering),
        };
        if let Some(exit) = exit {
            self.common.reports.push_back(exit);
        }
    }

    fn set_event_upcall(&mut self, pending: bool, route: UpcallRoute) {
        self.common.upcall = (pending, route);
    }

    /// Yes: the level and route stay in `Common::upcall` across entries. The callback
    /// vector is injected while the guest's `evtchn_upcall_pending` reads set (the level
    /// is dropped when it reads clear; the core sets it again when it marks an event);
    /// the local APIC's upcall vector is requested while the level holds, and the
    /// guest's EOI of it is reported as `VmExit::UpcallAck`.
    fn latches_upcall(&self) -> bool {
        true
    }

    /// INIT/SIPI have no result to report.
    fn set_start_result(&mut self, _result: StartResult) {}

    fn translate_gva(&self, gva: u64, write: bool) -> Option<GuestPhysAddr> {
        let cpu = self.cpu();
        let access = if write { walk::Access::Write } else { walk::Access::Read };
        guest_cpu::gva_to_gpa_cached(&self.common.walks, cpu.stage2_root(), &cpu.paging(), gva, access)
            .map(GuestPhysAddr)
    }
}

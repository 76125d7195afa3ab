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

pub mod context;
pub mod control;
pub mod cpuid;
pub mod emulate;
pub mod guest;
pub mod interrupts;
pub mod io;
pub mod mmio;
pub mod msr;
pub mod pvclock;
pub mod start;
pub mod svm;
pub mod task_switch;
pub mod vmx;
pub mod walk;

pub use guest::GuestRegisters;

use crate::cpu;
use crate::domain::X86Domain;
use crate::regs;
use crate::vlapic::{Irr, Vlapic};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use emulate::GuestCpu;
use keel_abi::Errno;
use keel_kernel::arch::{HypercallArgs, StartResult, UpcallRoute, Vcpu, VcpuError, VcpuInit, VmExit};
use keel_kernel::mm::GuestPhysAddr;
use spin::Once;
use start::StartState;

/// The hardware-virtualisation extension of this machine.
#[derive(Clone, Copy, Debug)]
pub enum Extension {
    Vmx(vmx::capabilities::Capabilities),
    Svm(svm::capabilities::Capabilities),
}

/// What keeps Keel from using hardware virtualisation.
#[derive(Clone, Copy, Debug)]
pub enum Missing {
    NoExtension,
    VmxLockedOff,
    VmxNoEpt,
    VmxEptFormat,
    VmxNoInvept,
    SvmDisabled,
    SvmNoNpt,
    SvmNoAsids,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vendor = cpu::features().vendor_id();
        match self {
            Missing::NoExtension => {
                write!(f, "the {vendor} CPU has neither VMX (CPUID.1:ECX[5]) nor SVM (CPUID.80000001h:ECX[2])")
            }
            Missing::VmxLockedOff => {
                write!(f, "VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked without VMX outside SMX)")
            }
            Missing::VmxNoEpt => write!(f, "VMX without EPT (secondary control 'enable EPT' not allowed)"),
            Missing::VmxEptFormat => write!(f, "EPT without 4-level walks or write-back paging structures"),
            Missing::VmxNoInvept => write!(f, "EPT without INVEPT (single- or all-context)"),
            Missing::SvmDisabled => write!(f, "SVM is disabled by the firmware (VM_CR.SVMDIS=1)"),
            Missing::SvmNoNpt => write!(f, "SVM without nested paging (CPUID.8000000Ah:EDX.NP[0]=0)"),
            Missing::SvmNoAsids => write!(f, "SVM with no ASID for guests (CPUID.8000000Ah:EBX < 2)"),
        }
    }
}

/// Why a CPU could not enter its virtualisation mode.
#[derive(Clone, Copy, Debug)]
pub enum EnableError {
    /// The firmware locked the extension off on this CPU.
    Locked,
    /// No frame for the per-CPU control page.
    NoMemory,
    /// VMXON failed.
    Vmx(vmx::instructions::VmxFail),
}

impl fmt::Display for EnableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnableError::Locked => write!(f, "disabled by the firmware on this CPU"),
            EnableError::NoMemory => write!(f, "no memory for the per-CPU control page"),
            EnableError::Vmx(e) => write!(f, "VMXON failed: {e:?}"),
        }
    }
}

static EXTENSION: Once<Extension> = Once::new();

/// Picks VMX or SVM from CPUID and checks what Keel needs (EPT or NPT) is there.
pub fn detect() -> Result<&'static Extension, Missing> {
    let f = cpu::features();
    let ext = if f.vmx {
        Extension::Vmx(vmx::capabilities::Capabilities::detect()?)
    } else if f.svm {
        Extension::Svm(svm::capabilities::Capabilities::detect()?)
    } else {
        return Err(Missing::NoExtension);
    };
    Ok(EXTENSION.call_once(|| ext))
}

/// The extension chosen at boot.
pub fn extension() -> &'static Extension {
    EXTENSION.get().expect("virtualisation used before detection")
}

/// CR4.OSFXSR and OSXMMEXCPT: FXSAVE/FXRSTOR switch the guests' SSE registers.
const CR4_OSFXSR_OSXMMEXCPT: u64 = 1 << 9 | 1 << 10;

/// Enters VMX operation or enables SVM on the calling CPU (idempotent).
pub fn enable_this_cpu() -> Result<(), EnableError> {
    let this = cpu::this_cpu();
    if regs::read_cr4() & CR4_OSFXSR_OSXMMEXCPT != CR4_OSFXSR_OSXMMEXCPT {
        // SAFETY: enables FXSAVE of SSE state; Keel itself is built without SSE.
        unsafe { regs::write_cr4(regs::read_cr4() | CR4_OSFXSR_OSXMMEXCPT) };
    }
    match extension() {
        Extension::Vmx(c) => c.enable_cpu(this),
        Extension::Svm(c) => c.enable_cpu(this),
    }
}

/// One CPU's virtualisation state: VMXON region or host save area (set once), and the
/// SVM ASIDs it hands out. Only the owning CPU changes it.
pub struct CpuVirt {
    enabled: AtomicBool,
    region: AtomicU64,
    host_save: AtomicU64,
    asid_generation: AtomicU64,
    next_asid: AtomicU32,
}

impl CpuVirt {
    pub const fn new() -> CpuVirt {
        CpuVirt {
            enabled: AtomicBool::new(false),
            region: AtomicU64::new(0),
            host_save: AtomicU64::new(0),
            asid_generation: AtomicU64::new(0),
            // The first allocation starts a generation, which flushes the whole TLB.
            next_asid: AtomicU32::new(u32::MAX),
        }
    }

    /// The generation of this CPU's ASIDs: an ASID taken in an older one may be reused.
    pub fn asid_generation(&self) -> u64 {
        self.asid_generation.load(Ordering::Relaxed)
    }

    /// Takes an unused ASID below `count` (ASID 0 is the host's). Returns it, its
    /// generation, and whether a new generation began: then every ASID may hold stale
    /// translations and the caller must flush the whole TLB before running the guest.
    pub fn take_asid(&self, count: u32) -> (u32, u64, bool) {
        let next = self.next_asid.load(Ordering::Relaxed);
        if next != 0 && next < count {
            self.next_asid.store(next + 1, Ordering::Relaxed);
            return (next, self.asid_generation(), false);
        }
        let generation = self.asid_generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.next_asid.store(2, Ordering::Relaxed);
        (1, generation, true)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Records that the CPU is in its virtualisation mode with these pages.
    pub fn set_enabled(&self, region: u64, host_save: u64) {
        self.region.store(region, Ordering::Relaxed);
        self.host_save.store(host_save, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Release);
    }

    /// SVM: where VMSAVE keeps Keel's own segment and syscall state.
    pub fn host_save(&self) -> u64 {
        self.host_save.load(Ordering::Relaxed)
    }
}

impl Default for CpuVirt {
    fn default() -> Self {
        Self::new()
    }
}

/// A vendor's virtual CPU.
enum Kind {
    Vmx(vmx::VmxVcpu),
    Svm(svm::SvmVcpu),
}

/// What both vendors keep per vCPU.
pub struct Common {
    pub vcpu_id: u32,
    pub domain: Arc<X86Domain>,
    /// The event upcall level and route the core set before this entry.
    pub upcall: (bool, UpcallRoute),
    /// State switched on `load`/`put`.
    pub context: context::Context,
    pub vlapic: Vlapic,
    /// When the pvclock was last written.
    pub pvclock: pvclock::Pvclock,
    /// What the core must hear before the guest runs again ([`VmExit::Kick`],
    /// [`VmExit::DeviceTimer`], [`VmExit::UpcallAck`]), in order.
    pub reports: VecDeque<VmExit>,
    /// The EPT/NPT fault reported as [`VmExit::StageFault`], until the core settles it.
    pub stage_fault: Option<emulate::StageFault>,
}

impl Common {
    /// This vCPU's local-APIC request register.
    pub fn irr(&self) -> &Irr {
        self.domain.irr(self.vcpu_id).expect("a vCPU of its domain")
    }
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
    }

    fn put(&mut self) {
        self.common.context.save();
        match &mut self.kind {
            Kind::Vmx(v) => v.put(),
            Kind::Svm(v) => v.put(),
        }
    }

    fn run(&mut self) -> VmExit {
        if let Some(report) = self.common.reports.pop_front() {
            return report;
        }
        let exit = match &mut self.kind {
            Kind::Vmx(v) => v.run(&mut self.common),
            Kind::Svm(v) => v.run(&mut self.common),
        };
        if let VmExit::Hypercall = exit {
            let number = self.hypercall_args().number;
            self.common.pvclock.after_hypercall(number);
        }
        exit
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
        emulate::gva_to_gpa(cpu.stage2_root(), &cpu.paging(), gva, access).map(GuestPhysAddr)
    }
}

//! Virtual CPUs: an EL1 guest under stage 2, entered with ERET and left through the
//! lower-EL vectors, in both VHE and nVHE mode.
//!
//! State is switched lazily (`docs/el2-modes.md`, "The fast path"): every exit saves the
//! general registers, PC and PSTATE into [`Aarch64Vcpu`]; the EL1 system registers, the
//! guest's timers, the FP/SIMD registers and the virtual counter offset are switched by
//! `load`/`put`, when the vCPU takes or leaves the CPU, and are live in the CPU in
//! between; the virtual CPU interface (`vgic/hw.rs`) stays loaded across the exits that
//! do not need the interrupt model, and is saved and loaded around the others and in
//! `put`. [`run`] handles every exit Keel can without the core; `psci`, `mmio`, `inject`
//! and `translate` are its parts.

mod context;
mod exit;
mod fast;
mod fpsimd;
mod inject;
mod mmio;
mod psci;
mod run;
mod translate;

pub use context::GuestRegs;

use crate::cpu::{self, Cpu};
use crate::irq;
use crate::domain::{Aarch64Domain, Power};
use crate::vgic::CpuInterface;
use crate::{cache, stage2, GenericTimer};
use aarch64_cpu::registers::{CNTVOFF_EL2, HCR_EL2};
use alloc::sync::Arc;
use context::{El1Context, PSTATE_EL1H_MASKED};
use fpsimd::FpState;
use keel_kernel::arch::{
    CpuId, CpuOps, FastPath, HypercallArgs, StartResult, Timer, UpcallRoute, Vcpu, VcpuError, VcpuInit, VmExit,
};
use keel_kernel::mm::GuestPhysAddr;
use tock_registers::interfaces::Writeable;

/// HCR_EL2 while a guest runs: stage 2 on, EL1 is AArch64, physical interrupts and
/// SErrors to EL2, WFI/WFE, SMC, set/way cache maintenance, ACTLR, implementation-
/// defined and ID registers (`vsysreg.rs` sanitizes these) trapped; stage-2 forced
/// write-back where the CPU has it. VHE keeps E2H (the host's register layouts) but drops
/// TGE.
fn guest_hcr() -> u64 {
    let base = HCR_EL2::VM::SET
        + HCR_EL2::SWIO::SET
        + HCR_EL2::PTW::SET
        + HCR_EL2::FMO::SET
        + HCR_EL2::IMO::SET
        + HCR_EL2::AMO::SET
        + HCR_EL2::FB::SET
        + HCR_EL2::BSU::InnerShareable
        + HCR_EL2::TWI::SET
        + HCR_EL2::TWE::SET
        + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
        + HCR_EL2::TIDCP::SET
        + HCR_EL2::TID3::SET
        + HCR_EL2::TACR::SET
        + HCR_EL2::TSW::SET
        + HCR_EL2::RW::EL1IsAarch64
        + if cpu::fwb() { HCR_EL2::FWB::Enabled } else { HCR_EL2::FWB::Disabled };
    if cpu::vhe() {
        (base + HCR_EL2::E2H::EnableOsAtEl2).value
    } else {
        base.value
    }
}

/// `VMPIDR_EL2` for vCPU `id`: bit 31 (RES1), Aff0 = id % 16, Aff1 = id / 16 (as Xen's
/// `vcpuid_to_vaffinity`, which keeps 16 vCPUs per cluster for GICv3's target lists).
fn vmpidr(id: u32) -> u64 {
    1 << 31 | crate::layout::vcpu_affinity(id)
}

/// A guest CPU.
pub struct Aarch64Vcpu {
    regs: GuestRegs,
    el1: El1Context,
    fp: FpState,
    hcr: u64,
    vttbr: u64,
    vmpidr: u64,
    /// The CPU it is loaded on.
    cpu: Option<CpuId>,
    /// The event upcall level (PPI 31) the core last set; kept across entries.
    upcall: bool,
    /// The guest completed the upcall interrupt and the core was not told yet
    /// (`VmExit::UpcallAck`): it reads the level again then.
    upcall_ack: bool,
    /// The virtual CPU interface holds this vCPU's list registers, not yet saved, loaded
    /// with the upcall level in `.1` (`None`: saved; the next entry loads it).
    gic_live: Option<bool>,
    /// Its index in the domain.
    vcpu_id: u32,
    /// Its virtual CPU interface (list registers) between entries.
    gic: CpuInterface,
    domain: Arc<Aarch64Domain>,
    /// An exit to report before entering the guest again (one access can need two).
    deferred: Option<VmExit>,
    /// The stage-2 fault reported to the core, until it settles it.
    stage_fault: Option<StageFault>,
}

/// A stage-2 fault reported as `VmExit::StageFault`: the faulting virtual address, the
/// guest-physical one, and the access.
#[derive(Clone, Copy, Debug)]
struct StageFault {
    far: u64,
    ipa: u64,
    instruction: bool,
    write: bool,
}

/// `CNTV_CTL_EL0` bits.
const CNTV_ENABLE: u64 = 1;
const CNTV_IMASK: u64 = 1 << 1;
const CNTV_ISTATUS: u64 = 1 << 2;

/// Whether a saved `CNTV_CTL_EL0` has the virtual timer asserting its interrupt line:
/// enabled, not masked, condition met.
pub(crate) fn vtimer_asserted(cntv_ctl: u64) -> bool {
    cntv_ctl & (CNTV_ENABLE | CNTV_IMASK | CNTV_ISTATUS) == CNTV_ENABLE | CNTV_ISTATUS
}

impl Vcpu for Aarch64Vcpu {
    type Domain = Aarch64Domain;

    /// The boot state for the boot vCPU and for PSCI `CPU_ON` alike.
    fn new(domain: &Arc<Aarch64Domain>, init: &VcpuInit) -> Result<Self, VcpuError> {
        if !cpu::at_el2() {
            return Err(VcpuError::NoVirtualization);
        }
        let mut regs = GuestRegs { pc: init.entry.0, pstate: PSTATE_EL1H_MASKED, ..Default::default() };
        regs.x[0] = init.arg;
        // The guest fetches with its MMU off, from memory Keel may just have written.
        cache::invalidate_icache_all();
        let version = {
            let mut g = domain.vgic.lock();
            g.reset_cpu_interface(init.vcpu_id);
            g.version
        };
        domain.set_power(init.vcpu_id, Power::On);
        Ok(Aarch64Vcpu {
            regs,
            el1: El1Context::boot_state(),
            fp: FpState::default(),
            hcr: guest_hcr(),
            vttbr: stage2::vttbr(init.stage2_root, init.space),
            vmpidr: vmpidr(init.vcpu_id),
            cpu: None,
            upcall: false,
            upcall_ack: false,
            gic_live: None,
            vcpu_id: init.vcpu_id,
            gic: CpuInterface::new(version),
            domain: domain.clone(),
            deferred: None,
            stage_fault: None,
        })
    }

    /// Its EL1 registers and timers, FP/SIMD registers and its domain's counter offset
    /// take the CPU (its virtual CPU interface is loaded by the first entry).
    fn load(&mut self) {
        self.cpu = Some(Cpu::current());
        CNTVOFF_EL2.set(self.domain.cntvoff);
        self.el1.load(cpu::vhe());
        self.fp.load();
        irq::set_vtimer_live(true);
    }

    /// Saves what `load` put on the CPU (its timers stopped) and its virtual CPU
    /// interface.
    fn put(&mut self) {
        self.sync_gic(false);
        self.el1.save(cpu::vhe());
        irq::set_vtimer_live(false);
        self.fp.save();
        self.cpu = None;
    }

    fn run(&mut self) -> VmExit {
        assert_eq!(Some(Cpu::current()), self.cpu, "a vCPU runs only on the CPU it is loaded on");
        self.run_guest(None)
    }

    /// Hypercalls are answered from the exception vector (`fast.rs`).
    fn run_fast(&mut self, fast: &dyn FastPath) -> VmExit {
        assert_eq!(Some(Cpu::current()), self.cpu, "a vCPU runs only on the CPU it is loaded on");
        self.run_guest(Some(fast))
    }

    fn hypercall_args(&self) -> HypercallArgs {
        fast::args(&self.regs)
    }

    fn set_hypercall_result(&mut self, value: u64) {
        self.regs.x[keel_abi::hypercall_registers::AARCH64.result] = value;
    }

    /// Mapped: the guest runs the access again; a hole: it takes an external abort.
    fn settle_stage_fault(&mut self, mapped: bool) {
        self.settle(mapped);
    }

    /// The line of PPI 31 in the virtual GIC; arm64 guests always use it
    /// ([`UpcallRoute::Platform`]).
    fn set_event_upcall(&mut self, pending: bool, _route: UpcallRoute) {
        self.upcall = pending;
    }

    /// Yes: the level stays in `upcall` (and in the interface) across entries, and every
    /// completion of the upcall interrupt the interface reports becomes
    /// `VmExit::UpcallAck`, whatever exit brought it to light.
    fn latches_upcall(&self) -> bool {
        true
    }

    /// The PSCI return code in x0.
    fn set_start_result(&mut self, result: StartResult) {
        self.start_result(result);
    }

    /// Its virtual timer, if armed and unmasked: the physical counter value of its
    /// comparator (plus the domain's offset), in ns.
    fn halt_deadline(&self) -> Option<u64> {
        let (ctl, cval) = context::live_vtimer(cpu::vhe());
        if ctl & CNTV_ENABLE == 0 || ctl & CNTV_IMASK != 0 {
            return None;
        }
        let ticks = cval.saturating_add(self.domain.cntvoff);
        let f = GenericTimer::frequency().max(1);
        Some(((ticks as u128 * 1_000_000_000).div_ceil(f as u128)).min(u64::MAX as u128) as u64)
    }

    /// Identity while the guest's MMU is off (SCTLR_EL1.M clear), else the CPU's stage-1
    /// walk ([`translate`]).
    fn translate_gva(&self, gva: u64, write: bool) -> Option<GuestPhysAddr> {
        translate::gva(self.vttbr, self.hcr, gva, write)
    }
}

impl Aarch64Vcpu {
    /// The domain's backend state.
    pub fn domain(&self) -> &Arc<Aarch64Domain> {
        &self.domain
    }
}

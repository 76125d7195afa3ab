//! Virtual CPUs: an EL1 guest under stage 2, entered with ERET and left through the
//! lower-EL vectors, in both VHE and nVHE mode.
//!
//! All of a vCPU's state is in [`Aarch64Vcpu`] between entries (general registers, PC,
//! PSTATE and the EL1 system registers are saved on every exit and loaded on every
//! entry), so `load` and `put` only track which CPU may run it. Not yet: FP/SIMD state,
//! the virtual GIC interface (the event upcall level is recorded for it), PSCI calls
//! (`hvc #0`, which would become `VmExit::StartVcpu`/`StopVcpu`/`Shutdown`) and guest
//! virtual address translation for hypercall pointers.

mod context;
mod exit;
mod mmio;
mod translate;

pub use context::GuestRegs;

use crate::cpu::{self, Cpu};
use crate::domain::Aarch64Domain;
use crate::layout::PPI_EVTCHN;
use crate::vgic::CpuInterface;
use crate::{cache, irq, stage2, Stage2Tables};
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HCR_EL2, HPFAR_EL2, VMPIDR_EL2, VTTBR_EL2};
use alloc::sync::Arc;
use context::{El1Context, PSTATE_EL1H_MASKED};
use exit::{Outcome, Syndrome};
use keel_kernel::arch::{
    CpuId, CpuOps, HypercallArgs, MemoryAccess, Stage2, StartResult, UpcallRoute, Vcpu, VcpuError, VcpuInit, VmExit,
};
use keel_kernel::mm::GuestPhysAddr;
use tock_registers::interfaces::{Readable, Writeable};

extern "C" {
    /// Runs the guest until an exception reaches EL2; returns the vector slot (8-15).
    fn keel_guest_enter(regs: *mut GuestRegs) -> u64;
}

/// HCR_EL2 while a guest runs: stage 2 on, EL1 is AArch64, physical interrupts and
/// SErrors to EL2, WFI/WFE, SMC, set/way cache maintenance, ACTLR and implementation-
/// defined registers trapped. VHE keeps E2H (the host's register layouts) but drops TGE.
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
        + HCR_EL2::TACR::SET
        + HCR_EL2::TSW::SET
        + HCR_EL2::RW::EL1IsAarch64;
    if cpu::vhe() {
        (base + HCR_EL2::E2H::EnableOsAtEl2).value
    } else {
        base.value
    }
}

/// `VMPIDR_EL2` for vCPU `id`: bit 31 (RES1), Aff0 = id % 16, Aff1 = id / 16 (as Xen's
/// `vcpuid_to_vaffinity`, which keeps 16 vCPUs per cluster for GICv3's target lists).
fn vmpidr(id: u32) -> u64 {
    let id = id as u64;
    1 << 31 | ((id >> 4) & 0xff) << 8 | (id & 0xf)
}

/// A guest CPU.
pub struct Aarch64Vcpu {
    regs: GuestRegs,
    el1: El1Context,
    hcr: u64,
    vttbr: u64,
    vmpidr: u64,
    /// The CPU it is loaded on.
    cpu: Option<CpuId>,
    /// Identifies this vCPU object to [`translate`] (whose EL1 state a CPU holds).
    serial: u64,
    /// The event upcall level (PPI 31) the core set before this entry.
    upcall: bool,
    /// Its index in the domain.
    vcpu_id: u32,
    /// Its virtual CPU interface (list registers) between entries.
    gic: CpuInterface,
    domain: Arc<Aarch64Domain>,
}

impl Aarch64Vcpu {
    /// Takes an undefined-instruction exception to the guest's EL1 vectors, as the CPU
    /// would for an instruction at PC − `back`.
    fn inject_undefined(&mut self, back: u64) {
        const EC_UNKNOWN_IL: u64 = 1 << 25;
        let from = self.regs.pstate;
        self.el1.esr = EC_UNKNOWN_IL;
        self.el1.elr = self.regs.pc.wrapping_sub(back);
        self.el1.spsr = from;
        let offset = match from & 0x1f {
            0b00100 => 0x000,            // EL1t
            0b00101 => 0x200,            // EL1h
            m if m & 0x10 != 0 => 0x600, // AArch32 EL0
            _ => 0x400,                  // AArch64 EL0
        };
        self.regs.pc = self.el1.vbar.wrapping_add(offset);
        self.regs.pstate = PSTATE_EL1H_MASKED;
    }
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
        Ok(Aarch64Vcpu {
            regs,
            el1: El1Context::boot_state(),
            hcr: guest_hcr(),
            vttbr: stage2::vttbr(init.stage2_root, init.space),
            vmpidr: vmpidr(init.vcpu_id),
            cpu: None,
            serial: translate::new_serial(),
            upcall: false,
            vcpu_id: init.vcpu_id,
            gic: CpuInterface::new(domain.vgic.lock().version),
            domain: domain.clone(),
        })
    }

    fn load(&mut self) {
        self.cpu = Some(Cpu::current());
    }

    fn put(&mut self) {
        self.cpu = None;
    }

    fn run(&mut self) -> VmExit {
        assert_eq!(Some(Cpu::current()), self.cpu, "a vCPU runs only on the CPU it is loaded on");
        let vhe = cpu::vhe();
        let id = self.vcpu_id;
        loop {
            {
                let mut g = self.domain.vgic.lock();
                g.set_private_level(id, PPI_EVTCHN, self.upcall);
                self.gic.load(&mut g, id);
            }
            self.el1.load(vhe);
            translate::set_live(self.serial);
            VTTBR_EL2.set(self.vttbr);
            VMPIDR_EL2.set(self.vmpidr);
            HCR_EL2.set(self.hcr);
            barrier::isb(barrier::SY);
            // SAFETY: the guest runs under stage 2 (VTTBR, HCR_EL2.VM) with its own EL1
            // state loaded; every exception from it returns here through the vectors, with
            // Keel's callee-saved registers and stack restored.
            let slot = unsafe { keel_guest_enter(&mut self.regs) };
            let syndrome = Syndrome { slot, esr: ESR_EL2.get(), far: FAR_EL2.get(), hpfar: HPFAR_EL2.get() };
            HCR_EL2.set(cpu::host_hcr());
            barrier::isb(barrier::SY);
            self.el1.save(vhe);
            let completed = self.gic.save(&mut self.domain.vgic.lock(), id, PPI_EVTCHN);
            match exit::decode(syndrome) {
                Outcome::Exit { exit: VmExit::Interrupt, .. } => {
                    // The maintenance interrupt (its cause is handled) or a host interrupt.
                    match irq::highest_pending() {
                        Some(i) if i != irq::MAINTENANCE_IRQ => return VmExit::Interrupt,
                        _ if completed.upcall => return VmExit::UpcallAck,
                        _ => {}
                    }
                }
                Outcome::Exit { exit: VmExit::Halt, advance } if self.domain.vgic.lock().has_pending(id) => {
                    // WFI with an interrupt waiting completes at once.
                    self.regs.pc = self.regs.pc.wrapping_add(advance);
                }
                Outcome::Exit { exit, advance } => {
                    self.regs.pc = self.regs.pc.wrapping_add(advance);
                    if matches!(exit, VmExit::MemoryFault { .. } | VmExit::GuestCrash) {
                        self.log_state(syndrome.esr);
                    }
                    return exit;
                }
                Outcome::Undefined { back } => self.inject_undefined(back),
                Outcome::Mmio(m) => match self.emulate_mmio(&m) {
                    Some(kick) => {
                        self.regs.pc = self.regs.pc.wrapping_add(4);
                        if let Some(exit) = self.kick_others(kick) {
                            return exit;
                        }
                    }
                    None => {
                        let access = if m.write { MemoryAccess::Write } else { MemoryAccess::Read };
                        self.log_state(syndrome.esr);
                        return VmExit::MemoryFault { gpa: GuestPhysAddr(m.gpa), access };
                    }
                },
                Outcome::Sysreg(s) => match self.emulate_sysreg(&s) {
                    Some(kick) => {
                        self.regs.pc = self.regs.pc.wrapping_add(4);
                        if let Some(exit) = self.kick_others(kick) {
                            return exit;
                        }
                    }
                    None => self.inject_undefined(0),
                },
            }
        }
    }

    fn hypercall_args(&self) -> HypercallArgs {
        let x = &self.regs.x;
        HypercallArgs { number: x[16], args: [x[0], x[1], x[2], x[3], x[4]] }
    }

    fn set_hypercall_result(&mut self, value: u64) {
        self.regs.x[0] = value;
    }

    /// Recorded for the virtual GIC; arm64 guests always use PPI 31
    /// ([`UpcallRoute::Platform`]).
    fn set_event_upcall(&mut self, pending: bool, _route: UpcallRoute) {
        self.upcall = pending;
    }

    /// PSCI return codes in x0 (PSCI 1.1, table 6).
    fn set_start_result(&mut self, result: StartResult) {
        let code: i64 = match result {
            StartResult::Started => 0,
            StartResult::InvalidTarget => -2,
            StartResult::AlreadyOn => -4,
            StartResult::Pending => -5,
            StartResult::Failed => -6,
            StartResult::InvalidEntry => -9,
        };
        self.regs.x[0] = code as u64;
    }

    /// Identity while the guest's MMU is off (SCTLR_EL1.M clear), else the CPU's stage-1
    /// walk ([`translate`]).
    fn translate_gva(&self, gva: u64, write: bool) -> Option<GuestPhysAddr> {
        const SCTLR_M: u64 = 1;
        if self.el1.sctlr & SCTLR_M == 0 {
            return (gva >> Stage2Tables::ipa_bits() == 0).then_some(GuestPhysAddr(gva));
        }
        translate::stage1(self.serial, &self.el1, self.vttbr, self.hcr, gva, write).map(GuestPhysAddr)
    }
}

impl Aarch64Vcpu {
    /// The exit that makes the core wake the other vCPUs in `kick`, if any (this vCPU
    /// picks up its own interrupts on re-entry).
    fn kick_others(&self, kick: u128) -> Option<VmExit> {
        let others = kick & !(1u128 << self.vcpu_id);
        (others != 0).then_some(VmExit::Kick { vcpus: others })
    }

    /// Logs the guest's state at a fatal exit (debug level).
    fn log_state(&self, esr_el2: u64) {
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

    /// The domain's backend state.
    pub fn domain(&self) -> &Arc<Aarch64Domain> {
        &self.domain
    }

    /// The event upcall level last set by the core.
    pub fn upcall_pending(&self) -> bool {
        self.upcall
    }
}

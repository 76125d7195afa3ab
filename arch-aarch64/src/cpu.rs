//! The physical CPU at EL2: VHE or nVHE, the per-CPU EL2 register state, the CPU's
//! identity (index, MPIDR) and idling. A leaf: starting other CPUs and powering off stand
//! above it (`smp.rs`, `power.rs`).
//!
//! State here is kept in atomics that are only loaded and stored (never read-modify-
//! write), so it works with the MMU off, where exclusive accesses are not reliable.

use crate::dt::MAX_CPUS;
use crate::regs::{HcrxEl2, HstrEl2, PmcrEl0, VpidrEl2, PMCR_EL0};
use aarch64_cpu::asm::{self, barrier};
use aarch64_cpu::registers::*;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering, Ordering::Relaxed};
use keel_kernel::arch::CpuId;
use tock_registers::interfaces::{Readable, Writeable};

/// SCTLR_EL2 bits that must be 1 (also valid in the E2H layout): MMU and caches off.
pub const SCTLR_EL2_RES1: u64 = 0x30c5_0830;

static VHE: AtomicBool = AtomicBool::new(false);
static AT_EL2: AtomicBool = AtomicBool::new(false);
static FWB: AtomicBool = AtomicBool::new(false);

/// Whether Keel runs with the Virtualization Host Extensions (HCR_EL2.E2H = 1).
pub fn vhe() -> bool {
    VHE.load(Relaxed)
}

/// Whether Keel runs at EL2 (false only on the path that reports a wrong entry level).
pub fn at_el2() -> bool {
    AT_EL2.load(Relaxed)
}

/// Whether guests run with stage-2 forced write-back (FEAT_S2FWB, `HCR_EL2.FWB`): their
/// RAM is then write-back cacheable whatever their own attributes (even with their MMU
/// off), so what Keel writes there needs no cleaning to the point of coherency.
pub fn fwb() -> bool {
    FWB.load(Relaxed)
}

/// Picks VHE if the CPU has it (ID_AA64MMFR1_EL1.VH), nVHE otherwise, and stage-2 forced
/// write-back if the CPU has it (ID_AA64MMFR2_EL1.FWB). Boot CPU, once, before any stage-2
/// table is written.
pub fn select_mode() {
    VHE.store(ID_AA64MMFR1_EL1.read(ID_AA64MMFR1_EL1::VH) != 0, Relaxed);
    FWB.store(ID_AA64MMFR2_EL1.read(ID_AA64MMFR2_EL1::FWB) != 0, Relaxed);
    AT_EL2.store(true, Relaxed);
}

/// HCR_EL2 while Keel itself runs. VHE: the EL2&0 regime hosts Keel (E2H, TGE).
/// nVHE: physical interrupts and SErrors are routed to EL2 (IMO, FMO, AMO).
pub fn host_hcr() -> u64 {
    let common = HCR_EL2::RW::EL1IsAarch64;
    let mode = if vhe() {
        HCR_EL2::E2H::EnableOsAtEl2 + HCR_EL2::TGE::EnableTrapGeneralExceptionsToEl2
    } else {
        HCR_EL2::IMO::SET + HCR_EL2::FMO::SET + HCR_EL2::AMO::SET
    };
    (common + mode).value
}

/// Sets this CPU's EL2 control registers: HCR, traps, counters, stage 2 off with `vtcr`
/// as its translation control. Runs on every CPU before its MMU is on.
pub fn init_el2(vtcr: u64) {
    HCR_EL2.set(host_hcr());
    barrier::isb(barrier::SY);
    // Floating point and SIMD are not trapped (Keel itself never uses them); SVE and SME
    // are (the guest context does not hold their state yet).
    if vhe() {
        const FPEN_NO_TRAP: u64 = 3 << 20;
        CPTR_EL2.set(FPEN_NO_TRAP);
    } else {
        const CPTR_EL2_RES1_TZ_TSM: u64 = 0x33ff;
        CPTR_EL2.set(CPTR_EL2_RES1_TZ_TSM);
    }
    // Guests' debug and performance-monitor register accesses trap to EL2.
    let pmu = ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::PMUVer);
    let counters = if pmu != 0 && pmu != 0xf { PmcrEl0.read(PMCR_EL0::N) } else { 0 };
    MDCR_EL2.write(
        MDCR_EL2::HPMN.val(counters)
            + MDCR_EL2::TPMCR::SET
            + MDCR_EL2::TPM::SET
            + MDCR_EL2::TDA::SET
            + MDCR_EL2::TDOSA::SET
            + MDCR_EL2::TDRA::SET,
    );
    // Guests read the physical counter directly; their physical timer traps (they get
    // the virtual timer, whose interrupt Keel forwards), and so becomes an
    // undefined-instruction exception.
    if vhe() {
        const EL1PCTEN_E2H: u64 = 1 << 10;
        CNTHCTL_EL2.set(EL1PCTEN_E2H);
    } else {
        CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::CLEAR);
    }
    CNTVOFF_EL2.set(0);
    CNTHP_CTL_EL2.set(0);
    clear_optional_traps();
    VTTBR_EL2.set(0);
    VTCR_EL2.set(vtcr);
    VpidrEl2.set(MIDR_EL1.get());
    VMPIDR_EL2.set(MPIDR_EL1.get());
    barrier::isb(barrier::SY);
}

/// Registers whose reset values are unknown and that firmware may leave set: AArch32
/// CP15 traps, and where implemented the fine-grained traps (FEAT_FGT) and HCRX_EL2
/// (FEAT_HCX). Zero traps nothing extra, except that the "n"-prefixed fine-grained bits
/// trap accesses to registers of features guests cannot use yet.
fn clear_optional_traps() {
    HstrEl2.set(0);
    let fgt = (ID_AA64MMFR0_EL1.get() >> 56) & 0xf;
    if fgt != 0 {
        HFGRTR_EL2.set(0);
        HFGWTR_EL2.set(0);
        HFGITR_EL2.set(0);
        HDFGRTR_EL2.set(0);
        HDFGWTR_EL2.set(0);
        // HAFGRTR_EL2 exists only with AMUv1p1.
        if (ID_AA64PFR0_EL1.get() >> 44) & 0xf >= 2 {
            HAFGRTR_EL2.set(0);
        }
    }
    let hcx = (ID_AA64MMFR1_EL1.get() >> 40) & 0xf;
    if hcx != 0 {
        HcrxEl2.set(0);
    }
}

/// This CPU's MPIDR affinity fields (Aff3..Aff0), as device-tree `reg` values name CPUs.
pub fn mpidr_affinity() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// Processor control for the calling CPU; [`CpuOps`](keel_kernel::arch::CpuOps) is implemented where the backend
/// is composed (`machine.rs`), from [`current`], [`halt`] and the start-up and power-off
/// paths above this module.
pub struct Cpu;

/// The calling CPU's index (0 until Keel runs at EL2 and has set it).
pub fn current() -> CpuId {
    if !at_el2() {
        return CpuId(0);
    }
    CpuId(TPIDR_EL2.get() as u32)
}

/// Waits for an interrupt.
pub fn halt() {
    barrier::dsb(barrier::SY);
    asm::wfi();
}

/// A spin-loop pause that gives way: `YIELD`, which QEMU's round-robin TCG (every vCPU
/// in one thread, as under `-icount`) takes as the cue to run the next vCPU, where the
/// spin-loop hint (`ISB`) would spin out this vCPU's whole time slice.
pub fn relax() {
    // SAFETY: YIELD is a hint with no architectural effect on registers or memory.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// Stops this CPU for good.
pub fn park() -> ! {
    loop {
        asm::wfi();
    }
}

/// MPIDR affinity of each logical CPU (index = `CpuId`).
static MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// Records the calling CPU as the boot CPU, CPU 0.
pub fn record_boot_cpu() {
    MPIDR[0].store(mpidr_affinity(), Ordering::Release);
}

/// Records (or with `None`, forgets) the MPIDR affinity of logical CPU `index`.
pub fn record_mpidr(index: usize, mpidr: Option<u64>) {
    MPIDR[index].store(mpidr.unwrap_or(u64::MAX), Ordering::Release);
}

/// The MPIDR affinity of logical CPU `cpu`, if it was started.
pub fn mpidr_of(cpu: CpuId) -> Option<u64> {
    let v = MPIDR.get(cpu.0 as usize)?.load(Ordering::Acquire);
    (v != u64::MAX).then_some(v)
}

/// The hardware's ID register `op0 = 3, op1 = 0, CRn = 0, CRm = crm, op2 = op2` (`crm` in
/// 1..=7; the unallocated ones read as zero), for the guest's sanitized view.
pub fn id_register(crm: u8, op2: u8) -> u64 {
    macro_rules! read {
        ($($c:literal => [$($o:literal),*]),* $(,)?) => {
            match (crm, op2) {
                $($(
                    ($c, $o) => {
                        let v: u64;
                        // SAFETY: reading an ID register has no side effects, and every
                        // encoding in this space is readable at EL2 (unallocated ones are
                        // RAZ).
                        unsafe {
                            core::arch::asm!(concat!("mrs {}, S3_0_C0_C", $c, "_", $o), out(reg) v,
                                options(nomem, nostack, preserves_flags));
                        }
                        v
                    }
                )*)*
                _ => 0,
            }
        };
    }
    read!(
        1 => [0, 1, 2, 3, 4, 5, 6, 7],
        2 => [0, 1, 2, 3, 4, 5, 6, 7],
        3 => [0, 1, 2, 3, 4, 5, 6, 7],
        4 => [0, 1, 2, 3, 4, 5, 6, 7],
        5 => [0, 1, 2, 3, 4, 5, 6, 7],
        6 => [0, 1, 2, 3, 4, 5, 6, 7],
        7 => [0, 1, 2, 3, 4, 5, 6, 7],
    )
}

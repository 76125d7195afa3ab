//! Guest virtual to guest physical, for hypercall pointers: the CPU's own stage-1 walk
//! (`AT S1E1R`/`AT S1E1W`, result in `PAR_EL1`) with the guest's EL1 translation
//! registers and its stage 2 (for the walk's table reads) live.
//!
//! Keel calls this while the vCPU is loaded, so its EL1 registers are live on the CPU
//! (`El1Context`), and runs itself with the host's `HCR_EL2`:
//! - nVHE: the AT instructions translate in the EL1&0 regime.
//! - VHE: with `E2H = TGE = 1`, `AT S1E1*` would translate in Keel's own EL2&0 regime, so
//!   `TGE` is cleared (the guest's `HCR_EL2` is installed) around the instruction; the
//!   guest's EL1 registers are live in the `*_EL12` view.
//!
//! `PAR_EL1` is the guest's register too: its value is put back after the walk.

use super::context;
use crate::{cpu, Stage2Tables};
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{HCR_EL2, PAR_EL1, VTTBR_EL2};
use keel_kernel::arch::Stage2;
use keel_kernel::mm::GuestPhysAddr;
use tock_registers::interfaces::{Readable, Writeable};

/// PAR_EL1.F: the translation failed.
const PAR_FAULT: u64 = 1;
const PAR_PA: u64 = 0x0000_ffff_ffff_f000;

/// Translates `gva` for a read or a `write` at EL1 with the loaded guest's stage 1 (its
/// MMU is on), or `None` if the guest's tables do not allow it.
///
/// The vector's fast path (`fast.rs`) runs with the guest's `HCR_EL2` and `VTTBR_EL2`
/// still installed: then nothing is switched (no writes, two `ISB`s fewer).
pub fn stage1(vttbr: u64, guest_hcr: u64, gva: u64, write: bool) -> Option<u64> {
    let host_hcr = HCR_EL2.get();
    let guest_par = PAR_EL1.get();
    let switch = host_hcr != guest_hcr || VTTBR_EL2.get() != vttbr;
    if switch {
        VTTBR_EL2.set(vttbr);
        HCR_EL2.set(guest_hcr);
        barrier::isb(barrier::SY);
    }
    // SAFETY: address translation only writes PAR_EL1 (restored below); interrupts are
    // masked at EL2, so nothing runs with the guest's HCR_EL2 in between.
    unsafe {
        if write {
            core::arch::asm!("at s1e1w, {}", in(reg) gva, options(nostack));
        } else {
            core::arch::asm!("at s1e1r, {}", in(reg) gva, options(nostack));
        }
    }
    barrier::isb(barrier::SY);
    let par = PAR_EL1.get();
    PAR_EL1.set(guest_par);
    if switch {
        HCR_EL2.set(host_hcr);
        barrier::isb(barrier::SY);
    }
    (par & PAR_FAULT == 0).then_some((par & PAR_PA) | (gva & 0xfff))
}

/// The loaded vCPU's translation of `gva`: identity while its MMU is off (SCTLR_EL1.M
/// clear), else [`stage1`].
pub fn gva(vttbr: u64, hcr: u64, gva: u64, write: bool) -> Option<GuestPhysAddr> {
    const SCTLR_M: u64 = 1;
    if context::live_sctlr(cpu::vhe()) & SCTLR_M == 0 {
        return (gva >> Stage2Tables::ipa_bits() == 0).then_some(GuestPhysAddr(gva));
    }
    stage1(vttbr, hcr, gva, write).map(GuestPhysAddr)
}

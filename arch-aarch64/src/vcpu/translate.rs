//! Guest virtual to guest physical, for hypercall pointers: the CPU's own stage-1 walk
//! (`AT S1E1R`/`AT S1E1W`, result in `PAR_EL1`) with the guest's EL1 translation
//! registers and its stage 2 (for the walk's table reads) live.
//!
//! Keel calls this between exits of the vCPU, or right after loading it, while it runs
//! itself with the host's `HCR_EL2`:
//! - nVHE: the EL1 registers are the guest's as long as no other vCPU ran since; the AT
//!   instructions translate in the EL1&0 regime.
//! - VHE: with `E2H = TGE = 1`, `AT S1E1*` would translate in Keel's own EL2&0 regime, so
//!   `TGE` is cleared (the guest's `HCR_EL2` is installed) around the instruction; the
//!   guest's EL1 registers are live in the `*_EL12` view.
//!
//! Either way, whose translation registers are live is tracked per CPU ([`LIVE`]), and
//! they are loaded first if they belong to another vCPU.

use super::context::El1Context;
use crate::cpu::{self, Cpu};
use crate::dt::MAX_CPUS;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{HCR_EL2, PAR_EL1, VTTBR_EL2};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use keel_kernel::arch::CpuOps;
use tock_registers::interfaces::{Readable, Writeable};

/// Per CPU: the serial number of the vCPU whose EL1 translation registers are loaded.
static LIVE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Serial numbers of vCPU objects (0: none).
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// A serial number for a new vCPU object.
pub fn new_serial() -> u64 {
    NEXT_SERIAL.fetch_add(1, Relaxed)
}

/// Records that vCPU `serial` has its EL1 state loaded on this CPU.
pub fn set_live(serial: u64) {
    LIVE[Cpu::current().0 as usize].store(serial, Relaxed);
}

/// PAR_EL1.F: the translation failed.
const PAR_FAULT: u64 = 1;
const PAR_PA: u64 = 0x0000_ffff_ffff_f000;

/// Translates `gva` for a read or a `write` at EL1 with the guest's stage 1 (its MMU is
/// on), or `None` if the guest's tables do not allow it.
pub fn stage1(serial: u64, el1: &El1Context, vttbr: u64, guest_hcr: u64, gva: u64, write: bool) -> Option<u64> {
    let vhe = cpu::vhe();
    let live = &LIVE[Cpu::current().0 as usize];
    if live.load(Relaxed) != serial {
        el1.load_translation(vhe);
        live.store(serial, Relaxed);
    }
    let host_hcr = HCR_EL2.get();
    VTTBR_EL2.set(vttbr);
    HCR_EL2.set(guest_hcr);
    barrier::isb(barrier::SY);
    // SAFETY: address translation only writes PAR_EL1 (part of the guest's context, saved
    // already and restored from the saved copy on entry); interrupts are masked at EL2,
    // so nothing runs with the guest's HCR_EL2 in between.
    unsafe {
        if write {
            core::arch::asm!("at s1e1w, {}", in(reg) gva, options(nostack));
        } else {
            core::arch::asm!("at s1e1r, {}", in(reg) gva, options(nostack));
        }
    }
    barrier::isb(barrier::SY);
    let par = PAR_EL1.get();
    HCR_EL2.set(host_hcr);
    barrier::isb(barrier::SY);
    (par & PAR_FAULT == 0).then_some((par & PAR_PA) | (gva & 0xfff))
}

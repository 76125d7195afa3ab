//! Exceptions Keel makes a guest take, as the CPU would have: the vector of the guest's
//! current state in its `VBAR_EL1`, with `ELR_EL1`, `SPSR_EL1`, `ESR_EL1` (and
//! `FAR_EL1`) set, EL1h with D, A, I, F masked. The vCPU is loaded, so these are
//! changed in the CPU (read, changed, written back: injections are rare).

use super::context::{self, PSTATE_EL1H_MASKED};
use super::Aarch64Vcpu;
use crate::cpu;

/// ESR_EL1 IL: a 32-bit instruction.
const IL: u64 = 1 << 25;
/// Exception classes a guest sees.
const EC_UNKNOWN: u64 = 0x00;
const EC_IABT_LOWER: u64 = 0x20;
const EC_IABT_CURRENT: u64 = 0x21;
const EC_DABT_LOWER: u64 = 0x24;
const EC_DABT_CURRENT: u64 = 0x25;
/// Data fault status: synchronous external abort.
const DFSC_EXTERNAL: u64 = 0x10;

impl Aarch64Vcpu {
    /// Whether the guest faulted in its own exception vectors: another exception there
    /// would only come back (an unmapped or garbage vector table), so it cannot go on.
    pub(super) fn faulted_in_vectors(&self) -> bool {
        let pc = self.regs.pc;
        let vbar = context::live_vbar(cpu::vhe());
        pc >= vbar && pc - vbar < 0x800
    }

    /// Enters the guest's synchronous exception vector with `esr`, returning to PC − `back`
    /// (`far`: the fault address to report, if any).
    fn take_sync(&mut self, esr: u64, back: u64, far: Option<u64>) {
        let vhe = cpu::vhe();
        self.el1.read(vhe);
        if let Some(far) = far {
            self.el1.far = far;
        }
        let from = self.regs.pstate;
        self.el1.esr = esr;
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
        self.el1.load(vhe);
    }

    /// An undefined-instruction exception for the instruction at PC − `back` (an HVC
    /// returns after the instruction, a trapped SMC or MSR at it).
    pub(super) fn inject_undefined(&mut self, back: u64) {
        self.take_sync(EC_UNKNOWN << 26 | IL, back, None);
    }

    /// A synchronous external abort at virtual address `far`: a data abort for the
    /// access at the current PC (`write`: a store), or a prefetch abort.
    pub(super) fn inject_abort(&mut self, far: u64, instruction: bool, write: bool) {
        let from_el0 = self.regs.pstate & 0xf == 0;
        let ec = match (instruction, from_el0) {
            (true, true) => EC_IABT_LOWER,
            (true, false) => EC_IABT_CURRENT,
            (false, true) => EC_DABT_LOWER,
            (false, false) => EC_DABT_CURRENT,
        };
        let wnr = if write { 1 << 6 } else { 0 };
        self.take_sync(ec << 26 | IL | wnr | DFSC_EXTERNAL, 0, Some(far));
    }
}

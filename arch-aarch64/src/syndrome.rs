//! The one exit Keel recognises before decoding it: Xen's hypercall, on the raw vector
//! slot and `ESR_EL2` (the run loop's first test after an exit; `vcpu/exit.rs` decodes
//! everything else, and decodes this one to the same `VmExit::Hypercall`).

use aarch64_cpu::registers::ESR_EL2;
use keel_abi::hypercall::AARCH64_HVC_IMM;
use tock_registers::register_bitfields;

/// The vector slot of a synchronous exception from a lower EL in AArch64 (`asm/vectors.S`).
pub const SLOT_SYNC_A64: u64 = 8;
/// The same from a lower EL in AArch32.
pub const SLOT_SYNC_A32: u64 = 12;

/// `ESR_EL2` of `hvc #0xEA1` from AArch64 as the CPU reports it (EC HVC64, IL, the
/// immediate; the rest of ISS is RES0): the vectors' test for the hypercall fast path.
/// Any other syndrome of the hypercall falls back to the decoding path.
pub const ESR_HYPERCALL: u64 = 0x16 << 26 | 1 << 25 | AARCH64_HVC_IMM as u64;
// One movz and one movk load it.
const _: () = assert!(ESR_HYPERCALL >> 32 == 0);

/// The exception classes the vectors send to the trap fast path (`guest_trap`): a
/// trapped `MSR`/`MRS`, a data abort from a lower EL.
pub const EC_SYSREG: u64 = 0x18;
pub const EC_DABT_LOW: u64 = 0x24;

register_bitfields! {u64,
    /// The instruction syndrome (ESR_EL2.ISS) of HVC and SMC (EC 0x12, 0x13, 0x16, 0x17).
    pub ISS_CALL [
        IMM16 OFFSET(0) NUMBITS(16) []
    ]
}

/// Whether the exit in `slot` with syndrome `esr` is Xen's hypercall: `hvc #0xEA1` from
/// AArch64 (EC 0x16, the immediate in `ISS[15:0]`). Its return address is already past
/// the instruction, and it needs nothing of the interrupt model.
pub fn is_hypercall(slot: u64, esr: u64) -> bool {
    // ISS starts at bit 0, so its IMM16 is read from the whole syndrome.
    slot == SLOT_SYNC_A64
        && ESR_EL2::EC.read(esr) == ESR_EL2::EC::Value::HVC64 as u64
        && ISS_CALL::IMM16.read(esr) == u64::from(AARCH64_HVC_IMM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esr(ec: u64, iss: u64) -> u64 {
        ec << 26 | 1 << 25 | iss
    }

    #[test]
    fn the_fast_path_syndrome_is_the_hypercall() {
        assert_eq!(ESR_HYPERCALL, 0x5a00_0ea1);
        assert!(is_hypercall(8, ESR_HYPERCALL));
        assert_eq!(EC_SYSREG, ESR_EL2::EC::Value::TrappedMsrMrs as u64);
        assert_eq!(EC_DABT_LOW, ESR_EL2::EC::Value::DataAbortLowerEL as u64);
    }

    #[test]
    fn only_hvc_0xea1_from_aarch64_is_the_hypercall() {
        assert!(is_hypercall(8, esr(0x16, 0xea1)));
        assert!(is_hypercall(8, 0x5a00_0ea1), "the syndrome QEMU reports for hvc #0xea1");
        assert!(!is_hypercall(8, esr(0x16, 0)), "hvc #0: PSCI");
        assert!(!is_hypercall(8, esr(0x16, 0xea0)));
        assert!(!is_hypercall(8, esr(0x16, 0x1_0ea0)));
        assert!(!is_hypercall(8, esr(0x12, 0xea1)), "HVC from AArch32");
        assert!(!is_hypercall(8, esr(0x17, 0xea1)), "SMC");
        assert!(!is_hypercall(8, esr(0x36, 0xea1)), "another class whose bits include 0x16");
        assert!(!is_hypercall(12, esr(0x16, 0xea1)), "the AArch32 slot");
        assert!(!is_hypercall(9, esr(0x16, 0xea1)), "an IRQ: ESR_EL2 is stale");
    }
}

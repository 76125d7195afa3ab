//! Trapped system registers that Keel emulates without a device model: the ID registers
//! (`HCR_EL2.TID3`), the self-hosted debug registers (`MDCR_EL2.TDA`/`TDOSA`/`TDRA`) and the performance monitors
//! (`MDCR_EL2.TPM`/`TPMCR`). A guest gets no debug or PMU hardware: reads give zero and
//! writes are ignored, so one domain's breakpoints or counters can never fire in, or
//! count, another. Stock kernels touch these at CPU setup (`MDSCR_EL1`, the OS lock,
//! `PMUSERENR_EL0`) and take their absence in their stride.
//!
//! The ID registers tell a guest what the CPU has. Keel passes on what needs no state of
//! its own and hides what it does not switch between vCPUs or does not allow: SVE, SME,
//! MTE, pointer authentication, the activity monitors, RAS error records, the PMU, SPE,
//! trace, WFIT/WFET, the 128-bit system registers and every `ID_AA64MMFR3_EL1` extension
//! (each needs an `HCRX_EL2` enable Keel leaves off). A guest that trusted the hardware's
//! own values would use those units and take an undefined-instruction trap, or worse,
//! share their state with other domains.

/// How Keel answers a trapped access to an encoding `(op0, op1, CRn, CRm, op2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulation {
    /// Reads as zero, writes ignored.
    RazWi,
    /// Reads as this value, writes ignored.
    ReadOnly(u64),
    /// An ID register `(CRm, op2)` (`op0 = 3, op1 = 0, CRn = 0`): reads give the
    /// hardware's value through [`sanitize_id`].
    Id { crm: u8, op2: u8 },
    /// Not a register Keel emulates: the guest takes an undefined-instruction exception.
    Undefined,
}

/// `OSLSR_EL1`: OS lock implemented (`OSLM` = 0b10), unlocked.
const OSLSR_OSLM_IMPLEMENTED: u64 = 1 << 3;

/// The emulation for an ID, debug or PMU register, or [`Emulation::Undefined`].
pub fn classify(encoding: (u8, u8, u8, u8, u8)) -> Emulation {
    match encoding {
        // The feature registers TID3 traps (AArch32 and AArch64), CRm 1..7.
        (3, 0, 0, crm @ 1..=7, op2) => Emulation::Id { crm, op2 },
        // OSLSR_EL1.
        (2, 0, 1, 1, 4) => Emulation::ReadOnly(OSLSR_OSLM_IMPLEMENTED),
        // op0 = 2, op1 = 0: MDSCR_EL1, MDCCINT_EL1, OSDTRRX/TX_EL1, OSECCR_EL1,
        // DBGB{V,C}R<n>_EL1, DBGW{V,C}R<n>_EL1, MDRAR_EL1, OSLAR_EL1, OSDLR_EL1,
        // DBGPRCR_EL1, DBGCLAIMSET/CLR_EL1, DBGAUTHSTATUS_EL1.
        (2, 0, _, _, _) => Emulation::RazWi,
        // op0 = 2, op1 = 3: MDCCSR_EL0, DBGDTR_EL0, DBGDTRRX/TX_EL0 (the debug channel).
        (2, 3, 0, 1..=5, 0) => Emulation::RazWi,
        // op0 = 2, op1 = 4: DBGVCR32_EL2 is an EL2 register; nothing else is here.
        // PMINTENSET_EL1, PMINTENCLR_EL1, PMMIR_EL1.
        (3, 0, 9, 14, 1 | 2 | 6) => Emulation::RazWi,
        // PMCR_EL0 .. PMOVSSET_EL0 (CRm 12..14 of CRn 9 at op1 = 3).
        (3, 3, 9, 12..=14, _) => Emulation::RazWi,
        // PMEVCNTR<n>_EL0, PMEVTYPER<n>_EL0, PMCCFILTR_EL0.
        (3, 3, 14, 8..=15, _) => Emulation::RazWi,
        _ => Emulation::Undefined,
    }
}

/// A 4-bit ID field at bit `shift`.
const fn field(shift: u32) -> u64 {
    0xf << shift
}

/// What a guest reads from the ID register `(CRm, op2)` whose hardware value is `host`;
/// `gic_sysregs`: the guest's virtual GIC is a GICv3 with system registers.
pub fn sanitize_id(crm: u8, op2: u8, host: u64, gic_sysregs: bool) -> u64 {
    match (crm, op2) {
        // AArch32 feature registers (EL0 may run AArch32): as the hardware says.
        (1..=3, _) => host,
        // ID_AA64PFR0_EL1: drop SVE, RAS, GIC (if v2), SEL2, MPAM, AMU, RME.
        (4, 0) => {
            let mut hide = field(32) | field(28) | field(36) | field(40) | field(44) | field(52);
            if !gic_sysregs {
                hide |= field(24);
            }
            host & !hide
        }
        // ID_AA64PFR1_EL1: keep BT, SSBS and CSV2_frac; MTE, RAS_frac, MPAM_frac, SME,
        // RNDR_trap, NMI, GCS, THE, ... need state or enables Keel does not give.
        (4, 1) => host & (field(0) | field(4) | field(32)),
        // ID_AA64DFR0_EL1: keep DebugVer, BRPs, WRPs, CTX_CMPs and DoubleLock; no PMU,
        // trace, SPE, TraceFilt, TraceBuffer, MTPMU, BRBE, HPMN0.
        (5, 0) => host & (field(0) | field(12) | field(20) | field(28) | field(36)),
        // ID_AA64ISAR0_EL1: instructions only; all kept.
        (6, 0) => host,
        // ID_AA64ISAR1_EL1: drop APA, API, GPA, GPI (pointer authentication), LS64.
        (6, 1) => host & !(field(4) | field(8) | field(24) | field(28) | field(60)),
        // ID_AA64ISAR2_EL1: drop WFxT, GPA3, APA3, MOPS, PAC_frac, SYSREG_128,
        // SYSINSTR_128.
        (6, 2) => host & !(field(0) | field(8) | field(12) | field(16) | field(24) | field(32) | field(36)),
        // ID_AA64MMFR0..2_EL1: translation features of the guest's own stage 1.
        (7, 0..=2) => host,
        // ID_AA64ZFR0 (SVE), ID_AA64SMFR0 (SME), ID_AA64DFR1, ID_AA64AFR0/1,
        // ID_AA64MMFR3/4, ID_AA64PFR2, ID_AA64ISAR3 and the unallocated encodings: zero.
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_feature_register_space_is_id_space() {
        assert_eq!(classify((3, 0, 0, 4, 0)), Emulation::Id { crm: 4, op2: 0 });
        assert_eq!(classify((3, 0, 0, 1, 0)), Emulation::Id { crm: 1, op2: 0 });
        assert_eq!(classify((3, 0, 0, 0, 0)), Emulation::Undefined, "MIDR_EL1 is not trapped by TID3");
        assert_eq!(classify((3, 1, 0, 0, 0)), Emulation::Undefined, "CCSIDR_EL1");
    }

    #[test]
    fn units_with_state_are_hidden_and_plain_instructions_pass() {
        let all = u64::MAX;
        let pfr0 = sanitize_id(4, 0, all, true);
        assert_eq!(pfr0 >> 32 & 0xf, 0, "SVE");
        assert_eq!(pfr0 >> 44 & 0xf, 0, "AMU");
        assert_eq!(pfr0 >> 24 & 0xf, 0xf, "GICv3 system registers stay with a vGICv3");
        assert_eq!(sanitize_id(4, 0, all, false) >> 24 & 0xf, 0, "no GIC system registers with a vGICv2");
        assert_eq!(pfr0 & 0xfff, 0xfff, "EL0/EL1/EL2 fields pass");
        let pfr1 = sanitize_id(4, 1, all, true);
        assert_eq!(pfr1 >> 8 & 0xf, 0, "MTE");
        assert_eq!(pfr1 >> 24 & 0xf, 0, "SME");
        assert_eq!(pfr1 & 0xf, 0xf, "BTI");
        let isar1 = sanitize_id(6, 1, all, true);
        assert_eq!(isar1 >> 4 & 0xff, 0, "APA, API");
        assert_eq!(isar1 >> 24 & 0xff, 0, "GPA, GPI");
        assert_eq!(isar1 & 0xf, 0xf, "DPB");
        assert_eq!(sanitize_id(6, 2, all, true) & 0xf, 0, "WFxT");
        assert_eq!(sanitize_id(5, 0, all, true) >> 8 & 0xf, 0, "PMUVer");
        assert_eq!(sanitize_id(6, 0, all, true), all);
        assert_eq!(sanitize_id(4, 4, all, true), 0, "ID_AA64ZFR0_EL1");
        assert_eq!(sanitize_id(7, 3, all, true), 0, "ID_AA64MMFR3_EL1");
    }

    #[test]
    fn the_registers_linux_touches_at_cpu_setup_are_emulated() {
        // MDSCR_EL1, OSLAR_EL1, OSDLR_EL1, PMUSERENR_EL0, PMCR_EL0.
        for enc in [(2, 0, 0, 2, 2), (2, 0, 1, 0, 4), (2, 0, 1, 3, 4), (3, 3, 9, 14, 0), (3, 3, 9, 12, 0)] {
            assert_eq!(classify(enc), Emulation::RazWi, "{enc:?}");
        }
        assert_eq!(classify((2, 0, 1, 1, 4)), Emulation::ReadOnly(8));
    }

    #[test]
    fn every_breakpoint_and_watchpoint_register_is_inert() {
        for crm in 0..16 {
            for op2 in 4..8 {
                assert_eq!(classify((2, 0, 0, crm, op2)), Emulation::RazWi);
            }
            assert_eq!(classify((3, 3, 14, 8 + crm / 2, crm % 8)), Emulation::RazWi);
        }
    }

    #[test]
    fn other_registers_stay_undefined() {
        // ACTLR_EL1 (TACR), an implementation-defined register (TIDCP), ICC_SGI1R_EL1 and
        // the trace unit are not debug or PMU registers.
        for enc in [(3, 0, 1, 0, 1), (3, 0, 15, 0, 0), (3, 0, 12, 11, 5), (2, 1, 0, 0, 0), (2, 4, 0, 7, 0)] {
            assert_eq!(classify(enc), Emulation::Undefined, "{enc:?}");
        }
    }
}

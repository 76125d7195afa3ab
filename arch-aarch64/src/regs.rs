//! Typed accessors for the system registers `aarch64-cpu` lacks: the GICv3 CPU-interface
//! registers Keel uses, the EL2 physical timer's comparator, a few identification
//! registers, and the VHE aliases (`*_EL12`, `*_EL02`) through which EL2 reaches the
//! guest's EL1 registers while `HCR_EL2.E2H` is set. Everything else comes from
//! `aarch64_cpu::registers`.
//!
//! Registers are named by their encodings (`S<op0>_<op1>_C<n>_C<m>_<op2>`) so the
//! assembler needs no optional architecture features.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;

macro_rules! sysreg {
    ($(#[$doc:meta])* $name:ident, $enc:literal, $fields:ty, rw) => {
        sysreg!($(#[$doc])* $name, $enc, $fields, r);
        impl Writeable for $name {
            type T = u64;
            type R = $fields;
            #[inline]
            fn set(&self, value: u64) {
                // SAFETY: writing this EL2-accessible register has no memory-safety effect
                // by itself; callers order it with barriers where the architecture needs.
                unsafe { core::arch::asm!(concat!("msr ", $enc, ", {}"), in(reg) value, options(nomem, nostack)) }
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $enc:literal, $fields:ty, r) => {
        $(#[$doc])*
        #[allow(non_camel_case_types)]
        pub struct $name;
        impl Readable for $name {
            type T = u64;
            type R = $fields;
            #[inline]
            fn get(&self) -> u64 {
                let value;
                // SAFETY: reading a system register accessible at EL2 has no side effects
                // (IAR-style acknowledge registers are documented at their use).
                unsafe { core::arch::asm!(concat!("mrs {}, ", $enc), out(reg) value, options(nomem, nostack)) };
                value
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $enc:literal, $fields:ty, w) => {
        $(#[$doc])*
        #[allow(non_camel_case_types)]
        pub struct $name;
        impl Writeable for $name {
            type T = u64;
            type R = $fields;
            #[inline]
            fn set(&self, value: u64) {
                // SAFETY: as for the read-write registers above.
                unsafe { core::arch::asm!(concat!("msr ", $enc, ", {}"), in(reg) value, options(nomem, nostack)) }
            }
        }
    };
}

register_bitfields! {u64,
    pub CTR_EL0 [
        /// 1: data-cache cleaning to the point of unification is not needed for
        /// instruction-to-data coherence.
        IDC OFFSET(28) NUMBITS(1) [],
        /// log2 of the smallest data cache line, in words.
        DminLine OFFSET(16) NUMBITS(4) [],
        /// log2 of the smallest instruction cache line, in words.
        IminLine OFFSET(0) NUMBITS(4) []
    ],
    pub PMCR_EL0 [
        /// Number of event counters.
        N OFFSET(11) NUMBITS(5) []
    ],
    pub ICC_SGI1R_EL1 [
        Aff3 OFFSET(48) NUMBITS(8) [],
        RS OFFSET(44) NUMBITS(4) [],
        Aff2 OFFSET(32) NUMBITS(8) [],
        INTID OFFSET(24) NUMBITS(4) [],
        Aff1 OFFSET(16) NUMBITS(8) [],
        TargetList OFFSET(0) NUMBITS(16) []
    ],
    pub ICC_CTLR_EL1 [
        /// 1: EOI only drops priority; a separate DIR write deactivates.
        EOImode OFFSET(1) NUMBITS(1) []
    ]
}

sysreg!(
    /// Cache type: minimum line sizes for cache maintenance by address.
    CtrEl0, "S3_3_C0_C0_1", CTR_EL0::Register, r
);
sysreg!(
    /// Performance monitors control (for the number of counters, `MDCR_EL2.HPMN`).
    PmcrEl0, "S3_3_C9_C12_0", PMCR_EL0::Register, r
);
sysreg!(
    /// The MIDR value guests read.
    VpidrEl2, "S3_4_C0_C0_0", (), rw
);
sysreg!(
    /// Traps of AArch32 EL1 CP15 accesses (`HSTR_EL2`).
    HstrEl2, "S3_4_C1_C1_3", (), rw
);
sysreg!(
    /// Extended hypervisor configuration (`HCRX_EL2`, FEAT_HCX).
    HcrxEl2, "S3_4_C1_C2_2", (), rw
);
sysreg!(
    /// EL2 physical timer comparator (`CNTHP_CVAL_EL2`).
    CnthpCvalEl2, "S3_4_C14_C2_2", (), rw
);

// GICv3 CPU interface (system-register access, `ICC_SRE_EL2.SRE` = 1).
sysreg!(
    /// Priority mask: interrupts with a numerically lower priority are signalled.
    IccPmrEl1, "S3_0_C4_C6_0", (), rw
);
sysreg!(
    /// Group 1 acknowledge. Reading it takes the interrupt (side effect).
    IccIar1El1, "S3_0_C12_C12_0", (), r
);
sysreg!(
    /// Group 1 highest-priority pending interrupt (no side effect).
    IccHppir1El1, "S3_0_C12_C12_2", (), r
);
sysreg!(
    /// Group 1 end of interrupt.
    IccEoir1El1, "S3_0_C12_C12_1", (), w
);
sysreg!(
    /// Deactivates an interrupt (with `ICC_CTLR_EL1.EOImode` = 1).
    IccDirEl1, "S3_0_C12_C11_1", (), w
);
sysreg!(
    /// Group 1 binary point.
    IccBpr1El1, "S3_0_C12_C12_3", (), rw
);
sysreg!(
    /// Control; `aarch64-cpu` only reads it.
    IccCtlrEl1, "S3_0_C12_C12_4", ICC_CTLR_EL1::Register, rw
);
sysreg!(
    /// Group 1 interrupt enable.
    IccIgrpen1El1, "S3_0_C12_C12_7", (), rw
);
sysreg!(
    /// Group 1 SGI generation.
    IccSgi1rEl1, "S3_0_C12_C11_5", ICC_SGI1R_EL1::Register, w
);

// GICv3 virtual interface control, beyond what `aarch64-cpu` names.
sysreg!(
    /// The guest's view of `ICC_SRE_EL1` (system-register interface enable).
    IccSreEl1, "S3_0_C12_C12_5", (), rw
);

sysreg!(
    /// Empty list registers (bit n: list register n holds no interrupt).
    IchElrsrEl2, "S3_4_C12_C11_5", (), r
);

// VHE aliases of the guest's EL1/EL0 registers (valid only with HCR_EL2.E2H = 1).
sysreg!(SctlrEl12, "S3_5_C1_C0_0", (), rw);
sysreg!(CpacrEl12, "S3_5_C1_C0_2", (), rw);
sysreg!(Ttbr0El12, "S3_5_C2_C0_0", (), rw);
sysreg!(Ttbr1El12, "S3_5_C2_C0_1", (), rw);
sysreg!(TcrEl12, "S3_5_C2_C0_2", (), rw);
sysreg!(SpsrEl12, "S3_5_C4_C0_0", (), rw);
sysreg!(ElrEl12, "S3_5_C4_C0_1", (), rw);
sysreg!(Afsr0El12, "S3_5_C5_C1_0", (), rw);
sysreg!(Afsr1El12, "S3_5_C5_C1_1", (), rw);
sysreg!(EsrEl12, "S3_5_C5_C2_0", (), rw);
sysreg!(FarEl12, "S3_5_C6_C0_0", (), rw);
sysreg!(MairEl12, "S3_5_C10_C2_0", (), rw);
sysreg!(AmairEl12, "S3_5_C10_C3_0", (), rw);
sysreg!(VbarEl12, "S3_5_C12_C0_0", (), rw);
sysreg!(ContextidrEl12, "S3_5_C13_C0_1", (), rw);
sysreg!(CntkctlEl12, "S3_5_C14_C1_0", (), rw);
sysreg!(CntpCtlEl02, "S3_5_C14_C2_1", (), rw);
sysreg!(CntpCvalEl02, "S3_5_C14_C2_2", (), rw);
sysreg!(CntvCtlEl02, "S3_5_C14_C3_1", (), rw);
sysreg!(CntvCvalEl02, "S3_5_C14_C3_2", (), rw);

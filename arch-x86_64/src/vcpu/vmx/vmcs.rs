//! VMCS field encodings (Intel SDM vol. 3, appendix B) and the control bits Keel uses
//! (chapter 25).
//!
//! A field is a value of its width's type ([`Field16`], [`Field32`], [`Field64`],
//! [`Natural`]), which only this module can make: `vmread`/`vmwrite` take a [`Field`]
//! and read or write a value of its width, so neither a random number nor a value of the
//! wrong width reaches the VMCS.

use core::fmt;

/// A VMCS field: its encoding and the type of its value.
pub trait Field: Copy + fmt::Debug {
    /// The value as Keel uses it (the field's width, or `u64` for natural width).
    type Value: Copy;
    /// The encoding VMREAD and VMWRITE take.
    fn encoding(self) -> u32;
    /// The value of what VMREAD gave (the field's bits; the processor clears the rest).
    fn from_raw(raw: u64) -> Self::Value;
    /// What VMWRITE takes for `value`.
    fn to_raw(value: Self::Value) -> u64;
}

macro_rules! field_width {
    ($(#[$doc:meta])* $name:ident, $value:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name(u32);

        impl $name {
            /// The encoding, where a constant is needed (an operand of the entry code).
            pub const fn encoding_const(self) -> u32 {
                self.0
            }
        }

        impl Field for $name {
            type Value = $value;
            fn encoding(self) -> u32 {
                self.encoding_const()
            }
            fn from_raw(raw: u64) -> $value {
                // The field's own width: VMREAD zero-extends it into the register.
                raw as $value
            }
            fn to_raw(value: $value) -> u64 {
                u64::from(value)
            }
        }
    };
}

field_width!(
    /// A 16-bit field (encoding bits 14:13 = 0).
    Field16,
    u16
);
field_width!(
    /// A 32-bit field (bits 14:13 = 2).
    Field32,
    u32
);
field_width!(
    /// A 64-bit field (bits 14:13 = 1), accessed whole (access type 0).
    Field64,
    u64
);
field_width!(
    /// A natural-width field (bits 14:13 = 3): 64 bits on a 64-bit host.
    Natural,
    u64
);

/// The four fields of one guest segment register.
#[derive(Clone, Copy, Debug)]
pub struct SegmentFields {
    pub selector: Field16,
    pub base: Natural,
    pub limit: Field32,
    pub access_rights: Field32,
}

/// The guest segment register `n` in the order ES, CS, SS, DS, FS, GS, LDTR, TR
/// (its fields follow ES's at +2 each); `None` past TR.
pub fn guest_segment(n: usize) -> Option<SegmentFields> {
    let step = 2 * u32::try_from(n).ok().filter(|&n| n < 8)?;
    Some(SegmentFields {
        selector: Field16(GUEST_ES_SELECTOR.0 + step),
        base: Natural(GUEST_ES_BASE.0 + step),
        limit: Field32(GUEST_ES_LIMIT.0 + step),
        access_rights: Field32(GUEST_ES_ACCESS_RIGHTS.0 + step),
    })
}

/// PAE page-directory-pointer entry `n` (0 to 3); `None` past the fourth.
pub fn guest_pdpte(n: usize) -> Option<Field64> {
    let step = 2 * u32::try_from(n).ok().filter(|&n| n < 4)?;
    Some(Field64(GUEST_PDPTE0.0 + step))
}

// 16-bit fields.
pub const VPID: Field16 = Field16(0x0000);
pub const GUEST_ES_SELECTOR: Field16 = Field16(0x0800);
pub const GUEST_TR_SELECTOR: Field16 = Field16(0x080e);
pub const HOST_ES_SELECTOR: Field16 = Field16(0x0c00);
pub const HOST_CS_SELECTOR: Field16 = Field16(0x0c02);
pub const HOST_SS_SELECTOR: Field16 = Field16(0x0c04);
pub const HOST_DS_SELECTOR: Field16 = Field16(0x0c06);
pub const HOST_FS_SELECTOR: Field16 = Field16(0x0c08);
pub const HOST_GS_SELECTOR: Field16 = Field16(0x0c0a);
pub const HOST_TR_SELECTOR: Field16 = Field16(0x0c0c);

// 64-bit fields.
pub const EPT_POINTER: Field64 = Field64(0x201a);
pub const GUEST_PHYSICAL_ADDRESS: Field64 = Field64(0x2400);
pub const VMCS_LINK_POINTER: Field64 = Field64(0x2800);
pub const GUEST_IA32_DEBUGCTL: Field64 = Field64(0x2802);
pub const GUEST_IA32_PAT: Field64 = Field64(0x2804);
pub const GUEST_IA32_EFER: Field64 = Field64(0x2806);
/// The four PAE page-directory-pointer entries, at +2 each.
pub const GUEST_PDPTE0: Field64 = Field64(0x280a);
pub const HOST_IA32_PAT: Field64 = Field64(0x2c00);
pub const HOST_IA32_EFER: Field64 = Field64(0x2c02);

// 32-bit fields.
pub const PIN_BASED_CONTROLS: Field32 = Field32(0x4000);
pub const PRIMARY_CONTROLS: Field32 = Field32(0x4002);
pub const EXCEPTION_BITMAP: Field32 = Field32(0x4004);
pub const CR3_TARGET_COUNT: Field32 = Field32(0x400a);
pub const EXIT_CONTROLS: Field32 = Field32(0x400c);
pub const EXIT_MSR_STORE_COUNT: Field32 = Field32(0x400e);
pub const EXIT_MSR_LOAD_COUNT: Field32 = Field32(0x4010);
pub const ENTRY_CONTROLS: Field32 = Field32(0x4012);
pub const ENTRY_MSR_LOAD_COUNT: Field32 = Field32(0x4014);
pub const ENTRY_INTERRUPTION_INFO: Field32 = Field32(0x4016);
pub const ENTRY_EXCEPTION_ERROR_CODE: Field32 = Field32(0x4018);
pub const ENTRY_INSTRUCTION_LENGTH: Field32 = Field32(0x401a);
pub const SECONDARY_CONTROLS: Field32 = Field32(0x401e);
pub const PLE_GAP: Field32 = Field32(0x4020);
pub const PLE_WINDOW: Field32 = Field32(0x4022);
pub const VM_INSTRUCTION_ERROR: Field32 = Field32(0x4400);
pub const EXIT_REASON: Field32 = Field32(0x4402);
pub const PREEMPTION_TIMER_VALUE: Field32 = Field32(0x482e);
pub const EXIT_INTERRUPTION_INFO: Field32 = Field32(0x4404);
pub const IDT_VECTORING_INFO: Field32 = Field32(0x4408);
pub const IDT_VECTORING_ERROR_CODE: Field32 = Field32(0x440a);
pub const EXIT_INSTRUCTION_LENGTH: Field32 = Field32(0x440c);
pub const EXIT_INSTRUCTION_INFO: Field32 = Field32(0x440e);
/// Guest segment limit of ES; the other segments follow at +2 in the order ES, CS, SS,
/// DS, FS, GS, LDTR, TR (and likewise for selectors, bases and access rights).
pub const GUEST_ES_LIMIT: Field32 = Field32(0x4800);
pub const GUEST_GDTR_LIMIT: Field32 = Field32(0x4810);
pub const GUEST_IDTR_LIMIT: Field32 = Field32(0x4812);
pub const GUEST_ES_ACCESS_RIGHTS: Field32 = Field32(0x4814);
pub const GUEST_CS_ACCESS_RIGHTS: Field32 = Field32(0x4816);
pub const GUEST_INTERRUPTIBILITY: Field32 = Field32(0x4824);
pub const GUEST_ACTIVITY_STATE: Field32 = Field32(0x4826);
pub const GUEST_SYSENTER_CS: Field32 = Field32(0x482a);
pub const HOST_SYSENTER_CS: Field32 = Field32(0x4c00);

// Natural-width fields.
pub const CR0_GUEST_HOST_MASK: Natural = Natural(0x6000);
pub const CR4_GUEST_HOST_MASK: Natural = Natural(0x6002);
pub const CR0_READ_SHADOW: Natural = Natural(0x6004);
pub const CR4_READ_SHADOW: Natural = Natural(0x6006);
pub const EXIT_QUALIFICATION: Natural = Natural(0x6400);
pub const GUEST_CR0: Natural = Natural(0x6800);
pub const GUEST_CR3: Natural = Natural(0x6802);
pub const GUEST_CR4: Natural = Natural(0x6804);
pub const GUEST_ES_BASE: Natural = Natural(0x6806);
pub const GUEST_CS_BASE: Natural = Natural(0x6808);
pub const GUEST_FS_BASE: Natural = Natural(0x680e);
pub const GUEST_GS_BASE: Natural = Natural(0x6810);
pub const GUEST_GDTR_BASE: Natural = Natural(0x6816);
pub const GUEST_IDTR_BASE: Natural = Natural(0x6818);
pub const GUEST_DR7: Natural = Natural(0x681a);
pub const GUEST_RSP: Natural = Natural(0x681c);
pub const GUEST_RIP: Natural = Natural(0x681e);
pub const GUEST_RFLAGS: Natural = Natural(0x6820);
pub const GUEST_PENDING_DEBUG: Natural = Natural(0x6822);
pub const GUEST_SYSENTER_ESP: Natural = Natural(0x6824);
pub const GUEST_SYSENTER_EIP: Natural = Natural(0x6826);
pub const HOST_CR0: Natural = Natural(0x6c00);
pub const HOST_CR3: Natural = Natural(0x6c02);
pub const HOST_CR4: Natural = Natural(0x6c04);
pub const HOST_FS_BASE: Natural = Natural(0x6c06);
pub const HOST_GS_BASE: Natural = Natural(0x6c08);
pub const HOST_TR_BASE: Natural = Natural(0x6c0a);
pub const HOST_GDTR_BASE: Natural = Natural(0x6c0c);
pub const HOST_IDTR_BASE: Natural = Natural(0x6c0e);
pub const HOST_SYSENTER_ESP: Natural = Natural(0x6c10);
pub const HOST_SYSENTER_EIP: Natural = Natural(0x6c12);
/// Written by the entry code (`enter.s`) and, once per CPU, by Keel.
pub const HOST_RSP: Natural = Natural(0x6c14);
pub const HOST_RIP: Natural = Natural(0x6c16);

/// Pin-based VM-execution controls.
pub mod pin {
    pub const EXTERNAL_INTERRUPT_EXITING: u32 = 1 << 0;
    pub const NMI_EXITING: u32 = 1 << 3;
    pub const PREEMPTION_TIMER: u32 = 1 << 6;
}

/// Primary processor-based VM-execution controls.
pub mod primary {
    pub const INTERRUPT_WINDOW_EXITING: u32 = 1 << 2;
    pub const HLT_EXITING: u32 = 1 << 7;
    pub const INVLPG_EXITING: u32 = 1 << 9;
    pub const MWAIT_EXITING: u32 = 1 << 10;
    pub const RDPMC_EXITING: u32 = 1 << 11;
    pub const CR3_LOAD_EXITING: u32 = 1 << 15;
    pub const CR3_STORE_EXITING: u32 = 1 << 16;
    pub const CR8_LOAD_EXITING: u32 = 1 << 19;
    pub const CR8_STORE_EXITING: u32 = 1 << 20;
    pub const UNCONDITIONAL_IO_EXITING: u32 = 1 << 24;
    pub const USE_MSR_BITMAPS: u32 = 1 << 28;
    pub const MONITOR_EXITING: u32 = 1 << 29;
    pub const SECONDARY_CONTROLS: u32 = 1 << 31;
}

/// Secondary processor-based VM-execution controls.
pub mod secondary {
    pub const ENABLE_EPT: u32 = 1 << 1;
    pub const ENABLE_VPID: u32 = 1 << 5;
    pub const UNRESTRICTED_GUEST: u32 = 1 << 7;
    pub const PAUSE_LOOP_EXITING: u32 = 1 << 10;
}

/// VM-exit controls.
pub mod exit {
    pub const HOST_ADDRESS_SPACE_SIZE: u32 = 1 << 9;
    pub const SAVE_IA32_PAT: u32 = 1 << 18;
    pub const LOAD_IA32_PAT: u32 = 1 << 19;
    pub const SAVE_IA32_EFER: u32 = 1 << 20;
    pub const LOAD_IA32_EFER: u32 = 1 << 21;
}

/// VM-entry controls.
pub mod entry {
    pub const IA32E_MODE_GUEST: u32 = 1 << 9;
    pub const LOAD_IA32_PAT: u32 = 1 << 14;
    pub const LOAD_IA32_EFER: u32 = 1 << 15;
}

/// Basic VM-exit reasons (appendix C).
pub mod reason {
    pub const EXCEPTION_OR_NMI: u32 = 0;
    pub const EXTERNAL_INTERRUPT: u32 = 1;
    pub const TRIPLE_FAULT: u32 = 2;
    pub const TASK_SWITCH: u32 = 9;
    pub const PREEMPTION_TIMER: u32 = 52;
    pub const INTERRUPT_WINDOW: u32 = 7;
    pub const CPUID: u32 = 10;
    pub const GETSEC: u32 = 11;
    pub const HLT: u32 = 12;
    pub const INVD: u32 = 13;
    pub const RDPMC: u32 = 15;
    pub const VMCALL: u32 = 18;
    /// VMCLEAR (19) to VMXON (27): the VMX instructions.
    pub const VMCLEAR: u32 = 19;
    pub const VMXON: u32 = 27;
    pub const CR_ACCESS: u32 = 28;
    pub const IO: u32 = 30;
    pub const RDMSR: u32 = 31;
    pub const WRMSR: u32 = 32;
    pub const MWAIT: u32 = 36;
    pub const MONITOR: u32 = 39;
    pub const PAUSE: u32 = 40;
    pub const EPT_VIOLATION: u32 = 48;
    pub const EPT_MISCONFIGURATION: u32 = 49;
    pub const INVEPT: u32 = 50;
    pub const RDTSCP: u32 = 51;
    pub const INVVPID: u32 = 53;
    pub const WBINVD: u32 = 54;
    pub const XSETBV: u32 = 55;
    pub const INVPCID: u32 = 58;
    pub const VMFUNC: u32 = 59;
    /// Bit 31 of the exit reason: the VM entry itself failed.
    pub const ENTRY_FAILURE: u32 = 1 << 31;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_fields_follow_es_in_encoding_order() {
        let cs = guest_segment(1).expect("CS");
        assert_eq!(cs.access_rights, GUEST_CS_ACCESS_RIGHTS);
        assert_eq!(cs.base, GUEST_CS_BASE);
        assert_eq!(guest_segment(4).map(|s| s.base), Some(GUEST_FS_BASE));
        assert_eq!(guest_segment(7).map(|s| s.selector), Some(GUEST_TR_SELECTOR));
        assert!(guest_segment(8).is_none());
        assert_eq!(guest_pdpte(3).map(Field::encoding), Some(0x2810));
        assert!(guest_pdpte(4).is_none());
    }

    #[test]
    fn encodings_carry_their_width() {
        // Bits 14:13 of an encoding name its width: 0 = 16, 1 = 64, 2 = 32, 3 = natural.
        let width = |e: u32| (e >> 13) & 3;
        assert!([VPID, GUEST_ES_SELECTOR, HOST_TR_SELECTOR].iter().all(|f| width(f.encoding()) == 0));
        assert!([EPT_POINTER, GUEST_IA32_EFER, HOST_IA32_PAT].iter().all(|f| width(f.encoding()) == 1));
        assert!([EXIT_REASON, GUEST_INTERRUPTIBILITY, PREEMPTION_TIMER_VALUE].iter().all(|f| width(f.encoding()) == 2));
        assert!([GUEST_RIP, EXIT_QUALIFICATION, HOST_RIP].iter().all(|f| width(f.encoding()) == 3));
        assert_eq!(Field32::from_raw(0x1_2345_6789), 0x2345_6789);
    }
}

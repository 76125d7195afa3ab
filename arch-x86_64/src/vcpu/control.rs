//! The rules a guest's CR4 write must follow, the same on VMX and SVM, as Xen 4.17's
//! `hvm_set_cr4` applies them: no bit outside what the domain's CPUID offers
//! ([`super::cpuid::cr4_allowed`]), PAE kept while long mode is active, and PCIDE set
//! only in long mode with CR3's low 12 bits clear. A write that breaks one gets #GP(0).
//! And the decoding of `mov %reg, %crN` from its bytes, for SVM without decode assists.

pub const CR4_PAE: u64 = 1 << 5;
pub const CR4_PCIDE: u64 = 1 << 17;

/// The guest's paging state at a CR4 write.
#[derive(Clone, Copy, Debug)]
pub struct Cr4Write {
    /// The value written and the guest's CR4 before it.
    pub value: u64,
    pub old: u64,
    /// The CR4 bits the domain's CPUID offers.
    pub allowed: u64,
    /// EFER.LMA.
    pub long_mode: bool,
    pub cr3: u64,
}

impl Cr4Write {
    /// Whether the processor Xen shows the guest would take the write (else #GP).
    pub fn valid(&self) -> bool {
        if self.value & !self.allowed != 0 {
            return false;
        }
        if self.long_mode && self.value & CR4_PAE == 0 {
            return false;
        }
        let sets_pcide = self.value & CR4_PCIDE != 0 && self.old & CR4_PCIDE == 0;
        !(sets_pcide && (!self.long_mode || self.cr3 & 0xfff != 0))
    }
}

/// An instruction that writes a control register (AMD APM vol. 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrWriteInsn {
    /// `mov %reg, %crN` (`0f 22 /r`); `gpr` in x86 encoding order.
    Mov { cr: u8, gpr: usize },
    /// `clts` (`0f 06`).
    Clts,
    /// `lmsw %reg` (`0f 01 /6`, register form).
    LmswRegister { gpr: usize },
    /// `lmsw` of a memory operand, which Keel does not decode.
    LmswMemory,
}

/// A decoded control-register write and its length in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrWrite {
    pub insn: CrWriteInsn,
    pub len: u8,
}

/// Decodes the control-register write at the start of `bytes` (legacy prefixes, then a
/// REX prefix in 64-bit code); `None` for anything else. On AMD a LOCK prefix turns
/// `mov` to CR0 into CR8.
pub fn decode_cr_write(bytes: &[u8], in_64bit_code: bool) -> Option<CrWrite> {
    const MAX_LENGTH: usize = 15;
    let mut i = 0;
    let mut lock = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf2 | 0xf3 => {}
            0xf0 => lock = true,
            _ => break,
        }
        i += 1;
    }
    let rex = match bytes.get(i) {
        Some(&b) if in_64bit_code && b & 0xf0 == 0x40 => {
            i += 1;
            b
        }
        _ => 0,
    };
    if bytes.get(i) != Some(&0x0f) {
        return None;
    }
    let op = *bytes.get(i + 1)?;
    let (insn, len) = if op == 0x06 {
        (CrWriteInsn::Clts, i + 2)
    } else {
        let modrm = *bytes.get(i + 2)?;
        let (reg, rm) = ((modrm >> 3) & 7, modrm & 7 | (rex & 1) << 3);
        match op {
            0x22 => {
                let mut cr = reg | (rex & 4) << 1;
                if lock && cr == 0 {
                    cr = 8;
                }
                (CrWriteInsn::Mov { cr, gpr: usize::from(rm) }, i + 3)
            }
            0x01 if reg == 6 && modrm >> 6 == 3 => (CrWriteInsn::LmswRegister { gpr: usize::from(rm) }, i + 3),
            0x01 if reg == 6 => (CrWriteInsn::LmswMemory, i + 3),
            _ => return None,
        }
    };
    if len > MAX_LENGTH {
        return None;
    }
    Some(CrWrite { insn, len: u8::try_from(len).ok()? })
}

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_TS: u64 = 1 << 3;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_NW: u64 = 1 << 29;
pub const CR0_CD: u64 = 1 << 30;
pub const CR0_PG: u64 = 1 << 31;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// The guest's state at a CR0 write.
#[derive(Clone, Copy, Debug)]
pub struct Cr0Write {
    pub value: u64,
    pub old: u64,
    pub cr4: u64,
    pub efer: u64,
    /// CS.L with EFER.LMA: the write comes from 64-bit code.
    pub in_64bit_code: bool,
}

impl Cr0Write {
    /// The CR0 and EFER the processor ends up with (ET always set, LMA following paging
    /// with LME), or `None` for #GP, by Xen 4.17's `hvm_set_cr0`: bits 63:32, PG without
    /// PE, NW without CD, paging on with LME but without PAE, paging off from 64-bit
    /// code or with CR4.PCIDE.
    pub fn apply(&self) -> Option<(u64, u64)> {
        let value = self.value | CR0_ET;
        if value >> 32 != 0
            || (value & CR0_PG != 0 && value & CR0_PE == 0)
            || (value & CR0_NW != 0 && value & CR0_CD == 0)
        {
            return None;
        }
        let mut efer = self.efer;
        let (was, now) = (self.old & CR0_PG != 0, value & CR0_PG != 0);
        if now && !was && efer & EFER_LME != 0 {
            if self.cr4 & CR4_PAE == 0 {
                return None;
            }
            efer |= EFER_LMA;
        } else if was && !now && efer & EFER_LMA != 0 {
            if self.in_64bit_code || self.cr4 & CR4_PCIDE != 0 {
                return None;
            }
            efer &= !EFER_LMA;
        }
        Some((value, efer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UMIP: u64 = 1 << 11;
    const ALLOWED: u64 = 0x3f | 0x780 | CR4_PCIDE;

    fn write(value: u64, old: u64, long_mode: bool, cr3: u64) -> bool {
        Cr4Write { value, old, allowed: ALLOWED, long_mode, cr3 }.valid()
    }

    #[test]
    fn bits_outside_the_policy_are_refused() {
        assert!(write(CR4_PAE | 1 << 9, CR4_PAE, true, 0));
        assert!(!write(CR4_PAE | UMIP, CR4_PAE, true, 0), "UMIP hidden");
        assert!(!write(CR4_PAE | 1 << 63, CR4_PAE, true, 0), "reserved");
        for bit in 0..64 {
            let v = CR4_PAE | 1 << bit;
            assert_eq!(write(v, CR4_PAE, true, 0), ALLOWED & 1 << bit != 0, "bit {bit}");
        }
    }

    #[test]
    fn long_mode_keeps_pae() {
        assert!(!write(0, CR4_PAE, true, 0));
        assert!(write(0, CR4_PAE, false, 0));
    }

    #[test]
    fn pcide_needs_long_mode_and_a_clean_cr3() {
        assert!(write(CR4_PAE | CR4_PCIDE, CR4_PAE, true, 0x1000));
        assert!(!write(CR4_PAE | CR4_PCIDE, CR4_PAE, true, 0x1001));
        assert!(!write(CR4_PAE | CR4_PCIDE, CR4_PAE, false, 0));
        assert!(write(CR4_PAE | CR4_PCIDE, CR4_PAE | CR4_PCIDE, true, 0x1001), "already set");
    }

    #[test]
    fn cr_writes_decode() {
        let m = |cr, gpr, len| Some(CrWrite { insn: CrWriteInsn::Mov { cr, gpr }, len });
        assert_eq!(decode_cr_write(&[0x0f, 0x22, 0xe0], true), m(4, 0, 3), "mov %rax, %cr4");
        assert_eq!(decode_cr_write(&[0x41, 0x0f, 0x22, 0xe3], true), m(4, 11, 4), "mov %r11, %cr4");
        assert_eq!(decode_cr_write(&[0x0f, 0x22, 0xc3], false), m(0, 3, 3), "mov %ebx, %cr0");
        assert_eq!(decode_cr_write(&[0xf0, 0x0f, 0x22, 0xc1], false), m(8, 1, 4), "lock mov %ecx, %cr0");
        assert_eq!(decode_cr_write(&[0x41, 0x0f, 0x22, 0xe0], false), None, "inc %ecx in 32-bit code");
        assert_eq!(decode_cr_write(&[0x0f, 0x20, 0xe0], true), None, "mov from CR4");
        assert_eq!(decode_cr_write(&[0x0f, 0x22], true), None, "cut short");
        assert_eq!(decode_cr_write(&[0x66; 15], true), None, "prefixes only");
        let mut long = [0x66u8; 16];
        long[13..16].copy_from_slice(&[0x0f, 0x22, 0xe0]);
        assert_eq!(decode_cr_write(&long, true), None, "longer than 15 bytes");
        let clts = Some(CrWrite { insn: CrWriteInsn::Clts, len: 2 });
        assert_eq!(decode_cr_write(&[0x0f, 0x06], false), clts);
        let lmsw = Some(CrWrite { insn: CrWriteInsn::LmswRegister { gpr: 2 }, len: 3 });
        assert_eq!(decode_cr_write(&[0x0f, 0x01, 0xf2], false), lmsw, "lmsw %dx");
        let lmsw_mem = Some(CrWrite { insn: CrWriteInsn::LmswMemory, len: 3 });
        assert_eq!(decode_cr_write(&[0x0f, 0x01, 0x30], false), lmsw_mem, "lmsw (%eax)");
        assert_eq!(decode_cr_write(&[0x0f, 0x01, 0xd9], true), None, "vmmcall");
    }

    fn cr0(value: u64, old: u64, cr4: u64, efer: u64, in_64bit_code: bool) -> Option<(u64, u64)> {
        Cr0Write { value, old, cr4, efer, in_64bit_code }.apply()
    }

    #[test]
    fn cr0_follows_xen() {
        let (lme, lma) = (EFER_LME, EFER_LMA);
        let on = CR0_PG | CR0_PE | CR0_ET;
        assert_eq!(cr0(on | 1 << 32, on, CR4_PAE, lme | lma, true), None, "bit 32");
        assert_eq!(cr0(on | CR0_NW, on, CR4_PAE, lme | lma, true), None, "NW without CD");
        assert_eq!(cr0(CR0_PG, on, CR4_PAE, lme | lma, true), None, "PG without PE");
        assert_eq!(cr0(CR0_PE, on, CR4_PAE, lme | lma, true), None, "paging off in 64-bit code");
        assert_eq!(cr0(CR0_PE, on, CR4_PAE, lme | lma, false), Some((CR0_PE | CR0_ET, lme)), "leaving long mode");
        assert_eq!(cr0(CR0_PE, on, CR4_PAE | CR4_PCIDE, lme | lma, false), None, "PCIDE");
        assert_eq!(cr0(on, CR0_PE, CR4_PAE, lme, false), Some((on, lme | lma)), "entering long mode");
        assert_eq!(cr0(on, CR0_PE, 0, lme, false), None, "long mode without PAE");
        assert_eq!(cr0(on | CR0_TS, on, CR4_PAE, lme | lma, true), Some((on | CR0_TS, lme | lma)));
    }
}

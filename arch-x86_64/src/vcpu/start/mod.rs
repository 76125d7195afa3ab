//! The register state a vCPU starts in, for both vendors: Xen's PVH entry (32-bit
//! protected mode, paging off, `EBX` = `hvm_start_info`), the state after INIT and a
//! start-up IPI (real mode at the SIPI page), and the state a guest passes with
//! `VCPUOP_initialise` (Xen's `vcpu_hvm_context`).
//!
//! Segment attributes are in the 12-bit format Xen's `*_ar` fields and the SVM VMCB use:
//! the access byte in bits 0–7 (type, S, DPL, P), then AVL, L, D/B and G in bits 8–11.

use super::guest::{gpr, CODE_SELECTOR, DATA_SELECTOR, TASK_SELECTOR};
use crate::regs::efer;
use keel_abi::Errno;

/// One segment register's hidden state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub selector: u16,
    pub base: u64,
    pub limit: u32,
    /// 0 (not present): unusable.
    pub attr: u16,
}

impl Segment {
    const fn flat(selector: u16, attr: u16) -> Segment {
        Segment { selector, base: 0, limit: u32::MAX, attr }
    }

    const fn real(selector: u16, base: u64, attr: u16) -> Segment {
        Segment { selector, base, limit: 0xffff, attr }
    }

    pub fn present(&self) -> bool {
        self.attr & ATTR_P != 0
    }

    fn dpl(&self) -> u16 {
        (self.attr >> 5) & 3
    }

    /// The attributes in VMX's access-rights layout (AVL/L/D/G in bits 12–15, bit 16
    /// "unusable").
    pub fn vmx_access_rights(&self) -> u32 {
        if !self.present() {
            return 1 << 16;
        }
        (u32::from(self.attr) & 0xff) | (u32::from(self.attr) & 0xf00) << 4
    }
}

pub const ATTR_P: u16 = 1 << 7;
const ATTR_S: u16 = 1 << 4;
const ATTR_CODE: u16 = 1 << 3;
const ATTR_L: u16 = 1 << 9;
const ATTR_G: u16 = 1 << 11;
/// Flat 32-bit code and data, 64-bit code, a busy 32-bit (or 64-bit) TSS.
pub const ATTR_CODE32: u16 = 0xc9b;
pub const ATTR_DATA32: u16 = 0xc93;
pub const ATTR_CODE64: u16 = 0xa9b;
pub const ATTR_TSS_BUSY: u16 = 0x08b;
/// Real-mode code and data (16-bit, present, accessed), an LDT.
const ATTR_CODE16: u16 = 0x09b;
const ATTR_DATA16: u16 = 0x093;
const ATTR_LDT: u16 = 0x082;

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_ET: u64 = 1 << 4;
const CR0_NW: u64 = 1 << 29;
const CR0_CD: u64 = 1 << 30;
pub const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
pub const RFLAGS_RESERVED: u64 = 1 << 1;
/// RFLAGS bits a guest may set (the rest are reserved or Keel's: VM, VIF/VIP stay 0).
const RFLAGS_SETTABLE: u64 = 0x0024_7fd5 & !(1 << 17);
/// EFER bits a guest may have: SCE, LME, LMA, NXE.
const EFER_ALLOWED: u64 = 1 | efer::LME | efer::LMA | 1 << 11;

/// A vCPU's first state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartState {
    /// In x86 encoding order; `gpr[RSP]` is RSP.
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    /// The guest's view (the vendor code adds what the processor forces).
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    /// ES, CS, SS, DS, FS, GS (the VMX encoding order), LDTR, TR.
    pub segments: [Segment; 6],
    pub ldtr: Segment,
    pub tr: Segment,
    /// (base, limit) of the GDTR and IDTR.
    pub gdtr: (u64, u32),
    pub idtr: (u64, u32),
}

/// Index of CS in [`StartState::segments`].
pub const CS: usize = 1;

impl StartState {
    /// Xen's PVH entry: 32-bit protected mode with flat segments, paging off, `EBX` =
    /// `arg` (the `hvm_start_info` address).
    pub fn pvh(entry: u64, arg: u64) -> StartState {
        let data = Segment::flat(DATA_SELECTOR, ATTR_DATA32);
        let mut gpr = [0; 16];
        gpr[gpr::RBX] = arg;
        StartState {
            gpr,
            rip: entry,
            rflags: RFLAGS_RESERVED,
            cr0: CR0_PE | CR0_ET,
            cr3: 0,
            cr4: 0,
            efer: 0,
            segments: [data, Segment::flat(CODE_SELECTOR, ATTR_CODE32), data, data, data, data],
            ldtr: Segment::default(),
            tr: Segment { selector: TASK_SELECTOR, base: 0, limit: 0x67, attr: ATTR_TSS_BUSY },
            gdtr: (0, 0),
            idtr: (0, 0),
        }
    }

    /// After INIT and a start-up IPI with the page at `entry` (SDM vol. 3, table 10-1):
    /// real mode, `CS:IP` = `entry >> 4 : 0`, `EDX` = the processor signature.
    pub fn sipi(entry: u64, signature: u32) -> StartState {
        let data = Segment::real(0, 0, ATTR_DATA16);
        let mut gpr = [0; 16];
        gpr[gpr::RDX] = signature as u64;
        StartState {
            gpr,
            rip: 0,
            rflags: RFLAGS_RESERVED,
            cr0: CR0_CD | CR0_NW | CR0_ET,
            cr3: 0,
            cr4: 0,
            efer: 0,
            segments: [data, Segment::real((entry >> 4) as u16, entry & 0xf_f000, ATTR_CODE16), data, data, data, data],
            ldtr: Segment::real(0, 0, ATTR_LDT),
            tr: Segment::real(0, 0, ATTR_TSS_BUSY),
            gdtr: (0, 0xffff),
            idtr: (0, 0xffff),
        }
    }

    /// Whether the state is in 64-bit mode (EFER.LMA with a 64-bit CS).
    pub fn long_mode(&self) -> bool {
        self.efer & efer::LMA != 0 && self.segments[CS].attr & ATTR_L != 0
    }
}

/// `vcpu_hvm_context.mode`.
pub const VCPU_HVM_MODE_32B: u32 = 0;
pub const VCPU_HVM_MODE_64B: u32 = 1;
/// `sizeof(vcpu_hvm_context)`: mode, pad, and the larger of the two register sets
/// (`vcpu_hvm_x86_32`, 120 bytes).
pub const HVM_CONTEXT_SIZE: usize = 128;

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u32_at(b, off) as u64 | (u32_at(b, off + 4) as u64) << 32
}

fn canonical(va: u64) -> bool {
    ((va as i64) << 16 >> 16) as u64 == va
}

impl StartState {
    /// The state in Xen's `vcpu_hvm_context` (`public/hvm/hvm_vcpu.h`), checked as Xen's
    /// `arch_set_info_hvm_guest` does; `cr4_allowed`: the CR4 bits guests may set.
    pub fn from_hvm_context(b: &[u8], cr4_allowed: u64) -> Result<StartState, Errno> {
        if b.len() < HVM_CONTEXT_SIZE {
            return Err(Errno::EINVAL);
        }
        let r = &b[8..];
        let mut s = match u32_at(b, 0) {
            VCPU_HVM_MODE_32B => Self::from_x86_32(r)?,
            VCPU_HVM_MODE_64B => Self::from_x86_64(r)?,
            _ => return Err(Errno::EINVAL),
        };
        s.rflags = (s.rflags & RFLAGS_SETTABLE) | RFLAGS_RESERVED;
        let bad_cr0 = s.cr0 >> 32 != 0
            || (s.cr0 & CR0_PG != 0 && s.cr0 & CR0_PE == 0)
            || (s.cr0 & CR0_NW != 0 && s.cr0 & CR0_CD == 0);
        if bad_cr0 || s.cr4 & !cr4_allowed != 0 || s.efer & !EFER_ALLOWED != 0 {
            return Err(Errno::EINVAL);
        }
        if s.efer & efer::LMA != 0 && s.efer & efer::LME == 0 {
            return Err(Errno::EINVAL);
        }
        // Long mode is active exactly when enabled with paging on (PAE required).
        s.efer &= !efer::LMA;
        if s.efer & efer::LME != 0 && s.cr0 & CR0_PG != 0 {
            if s.cr4 & CR4_PAE == 0 {
                return Err(Errno::EINVAL);
            }
            s.efer |= efer::LMA;
        }
        Ok(s)
    }

    /// `vcpu_hvm_x86_32`: EAX..EDI, EIP, EFLAGS, CR0, CR3, CR4, pad, EFER, then base,
    /// limit and attributes of CS, DS, SS, ES, TR.
    fn from_x86_32(r: &[u8]) -> Result<StartState, Errno> {
        if u32_at(r, 52) != 0 || (0..3).any(|i| u16_at(r, 114 + 2 * i) != 0) {
            return Err(Errno::EINVAL);
        }
        let mut gpr = [0; 16];
        for (i, g) in gpr.iter_mut().take(8).enumerate() {
            *g = u32_at(r, 4 * i) as u64;
        }
        // Present segments are marked accessed (TR: busy), as Xen does.
        let seg = |n: usize, selector: u16, tr: bool| -> Segment {
            let mut attr = u16_at(r, 104 + 2 * n);
            if attr & ATTR_P != 0 {
                attr |= if tr { 2 } else { 1 };
            }
            Segment { selector, base: u32_at(r, 64 + 4 * n) as u64, limit: u32_at(r, 84 + 4 * n), attr }
        };
        let (cs, ds, ss, es, tr) = (
            seg(0, CODE_SELECTOR, false),
            seg(1, DATA_SELECTOR, false),
            seg(2, DATA_SELECTOR, false),
            seg(3, DATA_SELECTOR, false),
            seg(4, TASK_SELECTOR, true),
        );
        let code = |s: &Segment| s.attr & (ATTR_S | ATTR_CODE) == ATTR_S | ATTR_CODE;
        let writable_data = |s: &Segment| s.attr & (ATTR_S | ATTR_CODE | 2) == ATTR_S | 2;
        let busy_tss = |s: &Segment| s.attr & (ATTR_S | 0xf) == 0xb || s.attr & (ATTR_S | 0xf) == 0x3;
        if !cs.present() || !code(&cs) || cs.attr & ATTR_L != 0 {
            return Err(Errno::EINVAL);
        }
        if !ss.present() || !writable_data(&ss) || ss.dpl() != cs.dpl() {
            return Err(Errno::EINVAL);
        }
        if !tr.present() || !busy_tss(&tr) {
            return Err(Errno::EINVAL);
        }
        if [&ds, &es].iter().any(|s| s.present() && (s.attr & ATTR_S == 0 || s.dpl() > cs.dpl())) {
            return Err(Errno::EINVAL);
        }
        // The limit is in bytes: with G set its low 12 bits are all ones, without G it
        // fits in 20 bits (what the processor's own checks require).
        let limit_ok = |s: &Segment| {
            !s.present() || if s.attr & ATTR_G != 0 { s.limit & 0xfff == 0xfff } else { s.limit <= 0xf_ffff }
        };
        if ![&cs, &ds, &ss, &es, &tr].into_iter().all(limit_ok) {
            return Err(Errno::EINVAL);
        }
        let eip = u32_at(r, 32) as u64;
        if eip > cs.limit as u64 {
            return Err(Errno::EINVAL);
        }
        Ok(StartState {
            gpr,
            rip: eip,
            rflags: u32_at(r, 36) as u64,
            cr0: u32_at(r, 40) as u64,
            cr3: u32_at(r, 44) as u64,
            cr4: u32_at(r, 48) as u64,
            efer: u64_at(r, 56),
            // FS and GS are not in the context: they follow DS.
            segments: [es, cs, ss, ds, ds, ds],
            ldtr: Segment::default(),
            tr,
            gdtr: (0, 0),
            idtr: (0, 0),
        })
    }

    /// `vcpu_hvm_x86_64`: RAX..RDI, RIP, RFLAGS, CR0, CR3, CR4, EFER; flat 64-bit
    /// segments. Paging, PAE and EFER.LME must be on.
    fn from_x86_64(r: &[u8]) -> Result<StartState, Errno> {
        let mut gpr = [0; 16];
        for (i, g) in gpr.iter_mut().take(8).enumerate() {
            *g = u64_at(r, 8 * i);
        }
        let (rip, cr0, cr4, efer_value) = (u64_at(r, 64), u64_at(r, 80), u64_at(r, 96), u64_at(r, 104));
        if !canonical(rip) || cr0 & CR0_PG == 0 || cr4 & CR4_PAE == 0 || efer_value & efer::LME == 0 {
            return Err(Errno::EINVAL);
        }
        let data = Segment::flat(DATA_SELECTOR, ATTR_DATA32);
        Ok(StartState {
            gpr,
            rip,
            rflags: u64_at(r, 72),
            cr0,
            cr3: u64_at(r, 88),
            cr4,
            efer: efer_value,
            segments: [data, Segment::flat(CODE_SELECTOR, ATTR_CODE64), data, data, data, data],
            ldtr: Segment::default(),
            tr: Segment { selector: TASK_SELECTOR, base: 0, limit: 0x67, attr: ATTR_TSS_BUSY },
            gdtr: (0, 0),
            idtr: (0, 0),
        })
    }
}

#[cfg(test)]
mod tests;

//! The VMCB layout (AMD APM vol. 2, appendix B: control area at 0x000, state-save area
//! at 0x400) and typed access to one.

use keel_kernel::mm::PhysAddr;

/// Control-register intercepts: reads in bits 15:0, writes in bits 31:16.
pub const INTERCEPT_CR: usize = 0x000;
pub const INTERCEPT_EXCEPTIONS: usize = 0x008;
pub const INTERCEPT_MISC1: usize = 0x00c;
pub const INTERCEPT_MISC2: usize = 0x010;
pub const PAUSE_FILTER_THRESHOLD: usize = 0x03c;
pub const PAUSE_FILTER_COUNT: usize = 0x03e;
pub const IOPM_BASE: usize = 0x040;
pub const MSRPM_BASE: usize = 0x048;
pub const GUEST_ASID: usize = 0x058;
pub const TLB_CONTROL: usize = 0x05c;
pub const VIRTUAL_INTERRUPT: usize = 0x060;
pub const INTERRUPT_SHADOW: usize = 0x068;
pub const EXIT_CODE: usize = 0x070;
pub const EXIT_INFO1: usize = 0x078;
pub const EXIT_INFO2: usize = 0x080;
pub const EXIT_INT_INFO: usize = 0x088;
pub const NESTED_CONTROL: usize = 0x090;
pub const EVENT_INJECTION: usize = 0x0a8;
pub const NESTED_CR3: usize = 0x0b0;
pub const CLEAN_BITS: usize = 0x0c0;
pub const NEXT_RIP: usize = 0x0c8;

/// Segment registers in the state-save area, 16 bytes each: selector (u16), attributes
/// (u16), limit (u32), base (u64).
pub const ES: usize = 0x400;
pub const CS: usize = 0x410;
pub const SS: usize = 0x420;
pub const DS: usize = 0x430;
pub const FS: usize = 0x440;
pub const GS: usize = 0x450;
pub const GDTR: usize = 0x460;
pub const LDTR: usize = 0x470;
pub const IDTR: usize = 0x480;
pub const TR: usize = 0x490;
pub const CPL: usize = 0x4cb;
pub const EFER: usize = 0x4d0;
pub const CR4: usize = 0x548;
pub const CR3: usize = 0x550;
pub const CR0: usize = 0x558;
pub const DR7: usize = 0x560;
pub const DR6: usize = 0x568;
pub const RFLAGS: usize = 0x570;
pub const RIP: usize = 0x578;
pub const RSP: usize = 0x5d8;
pub const RAX: usize = 0x5f8;
pub const STAR: usize = 0x600;
pub const LSTAR: usize = 0x608;
pub const CSTAR: usize = 0x610;
pub const SFMASK: usize = 0x618;
pub const KERNEL_GS_BASE: usize = 0x620;
pub const SYSENTER_CS: usize = 0x628;
pub const SYSENTER_ESP: usize = 0x630;
pub const SYSENTER_EIP: usize = 0x638;
pub const G_PAT: usize = 0x668;

/// Intercept bits of [`INTERCEPT_MISC1`].
pub mod misc1 {
    pub const INTR: u32 = 1 << 0;
    pub const NMI: u32 = 1 << 1;
    pub const SMI: u32 = 1 << 2;
    pub const INIT: u32 = 1 << 3;
    pub const VINTR: u32 = 1 << 4;
    pub const RDPMC: u32 = 1 << 15;
    pub const CPUID: u32 = 1 << 18;
    pub const INVD: u32 = 1 << 22;
    pub const PAUSE: u32 = 1 << 23;
    pub const HLT: u32 = 1 << 24;
    pub const INVLPGA: u32 = 1 << 26;
    pub const IOIO: u32 = 1 << 27;
    pub const MSR: u32 = 1 << 28;
    pub const TASK_SWITCH: u32 = 1 << 29;
    pub const SHUTDOWN: u32 = 1 << 31;
}

/// Intercept bits of [`INTERCEPT_MISC2`]: every SVM instruction (VMRUN is mandatory).
pub mod misc2 {
    pub const VMRUN: u32 = 1 << 0;
    pub const VMMCALL: u32 = 1 << 1;
    pub const VMLOAD: u32 = 1 << 2;
    pub const VMSAVE: u32 = 1 << 3;
    pub const STGI: u32 = 1 << 4;
    pub const CLGI: u32 = 1 << 5;
    pub const SKINIT: u32 = 1 << 6;
    pub const RDTSCP: u32 = 1 << 7;
    pub const WBINVD: u32 = 1 << 9;
    pub const MONITOR: u32 = 1 << 10;
    pub const MWAIT: u32 = 1 << 11;
    pub const MWAIT_CONDITIONAL: u32 = 1 << 12;
    pub const XSETBV: u32 = 1 << 13;
}

/// #VMEXIT codes (appendix C).
pub mod exit_code {
    /// MOV to CR0, CLTS, LMSW; MOV to CR4.
    pub const CR0_WRITE: u64 = 0x10;
    pub const CR4_WRITE: u64 = 0x14;
    pub const EXCEPTION_UD: u64 = 0x46;
    pub const INTR: u64 = 0x60;
    pub const NMI: u64 = 0x61;
    pub const VINTR: u64 = 0x64;
    pub const RDPMC: u64 = 0x6f;
    pub const CPUID: u64 = 0x72;
    pub const INVD: u64 = 0x76;
    pub const PAUSE: u64 = 0x77;
    pub const HLT: u64 = 0x78;
    pub const INVLPGA: u64 = 0x7a;
    pub const IOIO: u64 = 0x7b;
    pub const MSR: u64 = 0x7c;
    pub const TASK_SWITCH: u64 = 0x7d;
    pub const SHUTDOWN: u64 = 0x7f;
    pub const VMRUN: u64 = 0x80;
    pub const VMMCALL: u64 = 0x81;
    /// VMLOAD, VMSAVE, STGI, CLGI, SKINIT, RDTSCP.
    pub const VMLOAD: u64 = 0x82;
    pub const RDTSCP: u64 = 0x87;
    pub const WBINVD: u64 = 0x89;
    /// MONITOR, MWAIT, MWAIT (conditional), XSETBV.
    pub const MONITOR: u64 = 0x8a;
    pub const XSETBV: u64 = 0x8d;
    pub const NPF: u64 = 0x400;
    pub const INVALID: u64 = u64::MAX;
}

/// The VMCB clean bits (APM vol. 2, 15.15.3, field [`CLEAN_BITS`]): a set bit lets the
/// processor take that group of fields from what it cached at the last #VMEXIT of this
/// VMCB on this CPU instead of reading them again.
pub mod clean {
    /// Intercept vectors, the pause filter, the TSC offset.
    pub const INTERCEPTS: u32 = 1 << 0;
    /// IOPM_BASE, MSRPM_BASE.
    pub const IOPM: u32 = 1 << 1;
    pub const ASID: u32 = 1 << 2;
    /// V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING, V_INTR_VECTOR.
    pub const TPR: u32 = 1 << 3;
    /// Nested paging: NP_ENABLE, N_CR3, G_PAT.
    pub const NP: u32 = 1 << 4;
    /// CR0, CR3, CR4, EFER.
    pub const CRX: u32 = 1 << 5;
    /// DR6, DR7.
    pub const DRX: u32 = 1 << 6;
    /// GDTR, IDTR.
    pub const DT: u32 = 1 << 7;
    /// CS, DS, SS, ES, CPL.
    pub const SEG: u32 = 1 << 8;
    pub const CR2: u32 = 1 << 9;
    /// DebugCtl and the last-branch records (Keel never writes them).
    pub const LBR: u32 = 1 << 10;
    /// Every group Keel knows (AVIC, bit 11, is not used).
    pub const ALL: u32 = (1 << 11) - 1;
}

/// The clean bit covering the field at `offset`: 0 for fields the processor always
/// reads (RIP, RSP, RAX, RFLAGS, event injection, TLB control, the interrupt shadow) or
/// that VMLOAD/VMSAVE switch (FS, GS, TR, LDTR, the SYSCALL and SYSENTER MSRs).
#[inline(always)]
pub const fn clean_bit(offset: usize) -> u32 {
    match offset {
        0x000..=0x03f | 0x050..=0x057 => clean::INTERCEPTS,
        0x040..=0x04f => clean::IOPM,
        0x058..=0x05b => clean::ASID,
        0x060..=0x067 => clean::TPR,
        0x090..=0x097 | 0x0b0..=0x0b7 | G_PAT => clean::NP,
        EFER | CR4 | CR3 | CR0 => clean::CRX,
        DR7 | DR6 => clean::DRX,
        0x460..=0x46f | 0x480..=0x48f => clean::DT,
        0x400..=0x43f | CPL => clean::SEG,
        0x640 => clean::CR2,
        _ => 0,
    }
}

/// A VMCB page Keel owns.
pub struct Vmcb(pub PhysAddr);

impl Vmcb {
    #[inline(always)]
    fn at<T>(&self, offset: usize) -> *mut T {
        debug_assert!(offset + core::mem::size_of::<T>() <= 4096);
        // A page-aligned frame plus an offset inside the page: the sum cannot wrap, and
        // no overflow check belongs on every field access of every exit.
        (self.0 .0 as usize).wrapping_add(offset) as *mut T
    }

    #[inline(always)]
    pub fn read<T: Copy>(&self, offset: usize) -> T {
        // SAFETY: the VMCB is an identity-mapped page this vCPU owns; the processor only
        // writes it during VMRUN, which never overlaps Keel's accesses.
        unsafe { core::ptr::read_volatile(self.at(offset)) }
    }

    /// Writes a field and clears its clean bit, so that the next VMRUN reads it (inlined:
    /// the offsets are constants, and so is the bit).
    #[inline(always)]
    pub fn write<T: Copy>(&self, offset: usize, value: T) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile(self.at(offset), value) }
        let bit = clean_bit(offset);
        if bit != 0 {
            let clean: u32 = self.read(CLEAN_BITS);
            if clean & bit != 0 {
                self.set_clean(clean & !bit);
            }
        }
    }

    /// Sets the clean bits: [`clean::ALL`] right after a #VMEXIT (the processor's cache
    /// then holds what the VMCB holds), 0 when the VMCB is new or moved to another CPU.
    pub fn set_clean(&self, bits: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile(self.at(CLEAN_BITS), bits) }
    }

    /// Writes a segment register of the state-save area.
    pub fn write_segment(&self, at: usize, selector: u16, attributes: u16, limit: u32, base: u64) {
        self.write(at, selector);
        self.write(at + 2, attributes);
        self.write(at + 4, limit);
        self.write(at + 8, base);
    }

    pub fn segment_attributes(&self, at: usize) -> u16 {
        self.read(at + 2)
    }

    pub fn segment_base(&self, at: usize) -> u64 {
        self.read(at + 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_keel_writes_has_its_clean_bit() {
        assert_eq!(clean_bit(INTERCEPT_MISC1), clean::INTERCEPTS);
        assert_eq!(clean_bit(PAUSE_FILTER_COUNT), clean::INTERCEPTS);
        assert_eq!(clean_bit(MSRPM_BASE), clean::IOPM);
        assert_eq!(clean_bit(GUEST_ASID), clean::ASID);
        assert_eq!(clean_bit(VIRTUAL_INTERRUPT), clean::TPR);
        assert_eq!(clean_bit(NESTED_CR3), clean::NP);
        assert_eq!(clean_bit(G_PAT), clean::NP);
        assert_eq!(clean_bit(CR0), clean::CRX);
        assert_eq!(clean_bit(EFER), clean::CRX);
        assert_eq!(clean_bit(DR7), clean::DRX);
        assert_eq!(clean_bit(IDTR + 8), clean::DT);
        assert_eq!(clean_bit(CS + 2), clean::SEG);
        assert_eq!(clean_bit(CPL), clean::SEG);
        // Always read, or switched by VMLOAD/VMSAVE.
        for f in
            [RIP, RSP, RAX, RFLAGS, EVENT_INJECTION, TLB_CONTROL, INTERRUPT_SHADOW, FS + 8, TR, STAR, KERNEL_GS_BASE]
        {
            assert_eq!(clean_bit(f), 0, "{f:#x}");
        }
    }
}

//! The model-specific registers a guest may use, and what accessing them does. Every
//! RDMSR and WRMSR exits; an MSR not listed here gets #GP, as on a processor without it
//! (see `docs/x86-guests.md` for the policy).
//!
//! - kept in the vendor's guest state (VMCS, VMCB, or the real register while the vCPU
//!   is loaded): EFER, PAT, FS/GS/kernel-GS base, STAR, LSTAR, CSTAR, SFMASK,
//!   SYSENTER_CS/ESP/EIP — validated here first;
//! - emulated: the TSC (read only; writes ignored), APIC_BASE and the x2APIC registers
//!   with IA32_TSC_DEADLINE (the virtual local APIC, `crate::vlapic`), FEATURE_CONTROL
//!   (locked, VMX off), the hypercall page (Xen's MSR 0x4000_0000, write only);
//! - read as a fixed value, writes ignored: microcode revision, MISC_ENABLE, DEBUGCTL,
//!   AMD HWCR.

/// Where an MSR lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msr {
    State(StateMsr),
    Tsc,
    ApicBase,
    FeatureControl,
    HypercallPage,
    /// Reads give the value, writes are ignored.
    Fixed(u64),
}

/// MSRs held in the vendor's guest state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateMsr {
    Efer,
    Pat,
    FsBase,
    GsBase,
    KernelGsBase,
    Star,
    Lstar,
    Cstar,
    Sfmask,
    SysenterCs,
    SysenterEsp,
    SysenterEip,
}

pub mod index {
    pub const TSC: u32 = 0x10;
    pub const APIC_BASE: u32 = 0x1b;
    pub const FEATURE_CONTROL: u32 = 0x3a;
    pub const BIOS_SIGN_ID: u32 = 0x8b;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const MISC_ENABLE: u32 = 0x1a0;
    pub const DEBUGCTL: u32 = 0x1d9;
    pub const PAT: u32 = 0x277;
    pub const HYPERCALL_PAGE: u32 = 0x4000_0000;
    pub const EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const SFMASK: u32 = 0xc000_0084;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const AMD_HWCR: u32 = 0xc001_0015;
}

/// IA32_FEATURE_CONTROL as the guest sees it: locked, VMX disabled.
pub const FEATURE_CONTROL_LOCKED: u64 = 1;
/// MISC_ENABLE: fast strings; branch trace store and PEBS unavailable.
const MISC_ENABLE_VALUE: u64 = 1 | 1 << 11 | 1 << 12;
pub const EFER_SCE: u64 = 1 << 0;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;
pub const EFER_NXE: u64 = 1 << 11;
const CR0_PG: u64 = 1 << 31;

/// What `index` is, or `None` for #GP.
pub fn classify(index: u32) -> Option<Msr> {
    use index::*;
    Some(match index {
        EFER => Msr::State(StateMsr::Efer),
        PAT => Msr::State(StateMsr::Pat),
        FS_BASE => Msr::State(StateMsr::FsBase),
        GS_BASE => Msr::State(StateMsr::GsBase),
        KERNEL_GS_BASE => Msr::State(StateMsr::KernelGsBase),
        STAR => Msr::State(StateMsr::Star),
        LSTAR => Msr::State(StateMsr::Lstar),
        CSTAR => Msr::State(StateMsr::Cstar),
        SFMASK => Msr::State(StateMsr::Sfmask),
        SYSENTER_CS => Msr::State(StateMsr::SysenterCs),
        SYSENTER_ESP => Msr::State(StateMsr::SysenterEsp),
        SYSENTER_EIP => Msr::State(StateMsr::SysenterEip),
        TSC => Msr::Tsc,
        APIC_BASE => Msr::ApicBase,
        FEATURE_CONTROL => Msr::FeatureControl,
        HYPERCALL_PAGE => Msr::HypercallPage,
        BIOS_SIGN_ID | DEBUGCTL | AMD_HWCR => Msr::Fixed(0),
        MISC_ENABLE => Msr::Fixed(MISC_ENABLE_VALUE),
        _ => return None,
    })
}

fn canonical(v: u64) -> bool {
    let top = (v as i64) >> 47;
    top == 0 || top == -1
}

/// Whether `value` is a PAT with only defined memory types (UC, WC, WT, WP, WB, UC-).
pub fn valid_pat(value: u64) -> bool {
    value.to_le_bytes().iter().all(|&t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7))
}

/// Checks a WRMSR of `value` to a state MSR: `Some(value to store)` or `None` for #GP.
/// `efer` and `cr0` are the guest's current values; `nx` whether NX is shown to it.
pub fn check_state_write(msr: StateMsr, value: u64, efer: u64, cr0: u64, nx: bool) -> Option<u64> {
    match msr {
        StateMsr::Efer => {
            let allowed = EFER_SCE | EFER_LME | EFER_LMA | if nx { EFER_NXE } else { 0 };
            if value & !allowed != 0 {
                return None;
            }
            if cr0 & CR0_PG != 0 && (value ^ efer) & EFER_LME != 0 {
                return None; // LME cannot change while paging is on
            }
            Some((value & !EFER_LMA) | (efer & EFER_LMA))
        }
        StateMsr::Pat => valid_pat(value).then_some(value),
        StateMsr::FsBase
        | StateMsr::GsBase
        | StateMsr::KernelGsBase
        | StateMsr::Lstar
        | StateMsr::Cstar
        | StateMsr::SysenterEsp
        | StateMsr::SysenterEip => canonical(value).then_some(value),
        StateMsr::Sfmask => (value >> 32 == 0).then_some(value),
        StateMsr::SysenterCs => Some(value & 0xffff_ffff),
        StateMsr::Star => Some(value),
    }
}

/// The page Xen's hypercall MSR fills: 128 stubs of 32 bytes, stub `n` being
/// `mov $n, %eax; vmcall` (or `vmmcall`); `ret`; stub 23 (`iret`, PV only) is `ud2`.
pub fn hypercall_page(vmmcall: bool) -> [u8; 4096] {
    const IRET: usize = 23;
    let mut page = [0xccu8; 4096]; // int3 between the stubs
    let call = if vmmcall { super::guest::VMMCALL } else { super::guest::VMCALL };
    for (n, stub) in page.chunks_mut(32).enumerate() {
        if n == IRET {
            stub[..2].copy_from_slice(&[0x0f, 0x0b]);
            continue;
        }
        stub[0] = 0xb8; // mov $imm32, %eax
        stub[1..5].copy_from_slice(&(n as u32).to_le_bytes());
        stub[5..8].copy_from_slice(&call);
        stub[8] = 0xc3; // ret
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(0xc000_0080), Some(Msr::State(StateMsr::Efer)));
        assert_eq!(classify(0x4000_0000), Some(Msr::HypercallPage));
        assert_eq!(classify(0x1a0), Some(Msr::Fixed(0x1801)));
        assert_eq!(classify(0x2ff), None, "MTRRs are hidden");
        assert_eq!(classify(0x48), None, "SPEC_CTRL is hidden");
        assert_eq!(classify(0x830), None, "x2APIC registers need the virtual APIC in x2APIC mode");
        assert_eq!(classify(0xdead_beef), None);
    }

    #[test]
    fn writes_are_validated() {
        let (lme, lma, pg) = (EFER_LME, EFER_LMA, 1u64 << 31);
        assert_eq!(check_state_write(StateMsr::Efer, lme | EFER_SCE, 0, 0, true), Some(lme | EFER_SCE));
        assert_eq!(check_state_write(StateMsr::Efer, lme | EFER_NXE, 0, 0, false), None, "NX hidden");
        assert_eq!(check_state_write(StateMsr::Efer, 1 << 12, 0, 0, true), None, "SVME is reserved for guests");
        assert_eq!(check_state_write(StateMsr::Efer, 0, lme | lma, pg, true), None, "LME while paging");
        assert_eq!(check_state_write(StateMsr::Efer, lme, lme | lma, pg, true), Some(lme | lma), "LMA is kept");
        assert_eq!(check_state_write(StateMsr::Pat, 0x0007_0406_0007_0406, 0, 0, true), Some(0x0007_0406_0007_0406));
        assert_eq!(check_state_write(StateMsr::Pat, 0x0000_0000_0000_0002, 0, 0, true), None);
        assert_eq!(check_state_write(StateMsr::Lstar, 0xffff_8000_0000_0000, 0, 0, true), Some(0xffff_8000_0000_0000));
        assert_eq!(check_state_write(StateMsr::Lstar, 0x0000_8000_0000_0000, 0, 0, true), None, "not canonical");
        assert_eq!(check_state_write(StateMsr::Sfmask, 1 << 32, 0, 0, true), None);
    }

    #[test]
    fn hypercall_page_stubs() {
        for vmmcall in [false, true] {
            let page = hypercall_page(vmmcall);
            let insn = if vmmcall { [0x0f, 0x01, 0xd9] } else { [0x0f, 0x01, 0xc1] };
            let stub = |n: usize| &page[32 * n..32 * n + 32];
            assert_eq!(&stub(0)[..9], &[0xb8, 0, 0, 0, 0, insn[0], insn[1], insn[2], 0xc3]);
            assert_eq!(&stub(17)[..9], &[0xb8, 17, 0, 0, 0, insn[0], insn[1], insn[2], 0xc3]);
            assert_eq!(&stub(127)[1..5], &127u32.to_le_bytes());
            assert_eq!(&stub(23)[..2], &[0x0f, 0x0b], "iret is ud2");
            assert!(stub(23)[2..].iter().all(|&b| b == 0xcc));
            assert!(stub(5)[9..].iter().all(|&b| b == 0xcc));
        }
    }
}

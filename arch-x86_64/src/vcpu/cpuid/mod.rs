//! What CPUID tells a guest: the host's leaves, filtered down to what Keel virtualises,
//! and Xen's leaves at 0x4000_0000 (Xen `public/arch-x86/cpuid.h`).
//!
//! Policy (see `docs/x86-guests.md`):
//! - hidden: VMX/SVM (no nesting), monitor/mwait, XSAVE and everything that needs it
//!   (AVX, AVX-512, ...), MCE/MCA, MTRR, PMU, thermal and power management, debug store,
//!   RDTSCP/RDPID (TSC_AUX), INVPCID, PKU, 5-level paging, UMIP, speculation-control
//!   MSRs, topology leaves (0xb, 0x1f); the x2APIC and TSC-deadline bits follow the
//!   virtual local APIC;
//! - set: the hypervisor bit (leaf 1 ECX[31]);
//! - per vCPU: the initial APIC id (leaf 1 EBX[31:24]) is the vCPU id; no hyperthreads,
//!   one core per package.

use core::arch::x86_64::CpuidResult;

/// The first Xen leaf and the last one Keel answers.
pub const XEN_BASE: u32 = 0x4000_0000;
pub const XEN_LAST: u32 = XEN_BASE + 5;
/// "XenVMMXenVMM".
const XEN_SIGNATURE: [u32; 3] = [0x566e_6558, 0x6558_4d4d, 0x4d4d_566e];
/// The hypercall-page MSR (leaf base+2 EBX).
pub const HYPERCALL_PAGE_MSR: u32 = 0x4000_0000;
/// Leaf base+4 EAX flags.
pub const XEN_HVM_CPUID_X2APIC_VIRT: u32 = 1 << 1;
pub const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;
pub const XEN_HVM_CPUID_DOMID_PRESENT: u32 = 1 << 4;
pub const XEN_HVM_CPUID_UPCALL_VECTOR: u32 = 1 << 6;
/// The highest basic and extended leaves reported.
const MAX_BASIC: u32 = 0x16;
const MAX_EXTENDED: u32 = 0x8000_0008;

/// What the answer depends on besides the host.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    pub vcpu_id: u32,
    pub domain_id: u16,
    /// The TSC frequency in kHz (leaf base+3).
    pub tsc_khz: u32,
    /// The virtual local APIC offers x2APIC mode and the TSC-deadline timer.
    pub x2apic: bool,
    pub tsc_deadline: bool,
    /// The per-vCPU upcall vector (`HVMOP_set_evtchn_upcall_vector`) is delivered.
    pub upcall_vector: bool,
}

mod bits {
    // Leaf 1 ECX.
    pub const DTES64: u32 = 1 << 2;
    pub const MONITOR: u32 = 1 << 3;
    pub const DS_CPL: u32 = 1 << 4;
    pub const VMX: u32 = 1 << 5;
    pub const SMX: u32 = 1 << 6;
    pub const EST: u32 = 1 << 7;
    pub const TM2: u32 = 1 << 8;
    pub const CNXT_ID: u32 = 1 << 10;
    pub const SDBG: u32 = 1 << 11;
    pub const FMA: u32 = 1 << 12;
    pub const XTPR: u32 = 1 << 14;
    pub const PDCM: u32 = 1 << 15;
    pub const DCA: u32 = 1 << 18;
    pub const X2APIC: u32 = 1 << 21;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    pub const XSAVE: u32 = 1 << 26;
    pub const OSXSAVE: u32 = 1 << 27;
    pub const AVX: u32 = 1 << 28;
    pub const F16C: u32 = 1 << 29;
    pub const HYPERVISOR: u32 = 1 << 31;
    // Leaf 1 EDX.
    pub const MCE: u32 = 1 << 7;
    pub const MTRR: u32 = 1 << 12;
    pub const MCA: u32 = 1 << 14;
    pub const PSN: u32 = 1 << 18;
    pub const DS: u32 = 1 << 21;
    pub const ACPI: u32 = 1 << 22;
    pub const HTT: u32 = 1 << 28;
    pub const TM: u32 = 1 << 29;
    pub const PBE: u32 = 1 << 31;
    // Leaf 7.0 EBX, kept: FSGSBASE, BMI1, SMEP, BMI2, ERMS, ADX, SMAP, CLFLUSHOPT, CLWB, SHA.
    pub const LEAF7_EBX_KEPT: u32 =
        1 << 0 | 1 << 3 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 19 | 1 << 20 | 1 << 23 | 1 << 24 | 1 << 29;
    // Extended leaf 0x8000_0001, kept. ECX: LAHF, ABM, SSE4A, MisAlignSSE, 3DNowPrefetch.
    pub const EXT1_ECX_KEPT: u32 = 1 << 0 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8;
    // EDX: AMD's copies of leaf 1 features (FPU..APIC, PGE, CMOV, PAT, PSE36, MMX,
    // FXSR; not MCE, MTRR, MCA), SYSCALL, NX, MMXEXT, 1 GiB pages, LM, 3DNow!.
    pub const EXT1_EDX_KEPT: u32 = 0x37f
        | 1 << 13
        | 1 << 15
        | 1 << 16
        | 1 << 17
        | 1 << 23
        | 1 << 24
        | 1 << 11
        | 1 << 20
        | 1 << 22
        | 1 << 26
        | 1 << 29
        | 1 << 30
        | 1 << 31;
    /// Extended leaf 0x8000_0007 EDX: invariant TSC.
    pub const INVARIANT_TSC: u32 = 1 << 8;
}

const ZERO: [u32; 4] = [0; 4];

fn regs(r: CpuidResult) -> [u32; 4] {
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// Xen's leaves.
fn xen(leaf: u32, subleaf: u32, c: &Context) -> [u32; 4] {
    let (major, minor) = (keel_abi::version::XEN_VERSION_REPORTED.major, keel_abi::version::XEN_VERSION_REPORTED.minor);
    match leaf - XEN_BASE {
        0 => [XEN_LAST, XEN_SIGNATURE[0], XEN_SIGNATURE[1], XEN_SIGNATURE[2]],
        1 => [(major as u32) << 16 | minor as u32, 0, 0, 0],
        2 => [1, HYPERCALL_PAGE_MSR, 0, 0],
        // TSC: sub-leaf 0 mode (native) and guest frequency; sub-leaf 2 the host's.
        3 => match subleaf {
            0 => [0, 0, c.tsc_khz, 0],
            2 => [c.tsc_khz, 0, 0, 0],
            _ => ZERO,
        },
        4 => {
            let mut flags = XEN_HVM_CPUID_VCPU_ID_PRESENT | XEN_HVM_CPUID_DOMID_PRESENT;
            if c.upcall_vector {
                flags |= XEN_HVM_CPUID_UPCALL_VECTOR;
            }
            [flags, c.vcpu_id, c.domain_id as u32, 0]
        }
        // PV-only parameters: nothing for a PVH guest.
        _ => ZERO,
    }
}

/// The guest's answer to CPUID `leaf`/`subleaf`; `host` executes the real instruction.
pub fn leaf(leaf: u32, subleaf: u32, c: &Context, host: &dyn Fn(u32, u32) -> CpuidResult) -> [u32; 4] {
    if (XEN_BASE..=XEN_LAST).contains(&leaf) {
        return xen(leaf, subleaf, c);
    }
    let max_basic = host(0, 0).eax.min(MAX_BASIC);
    let max_extended = host(0x8000_0000, 0).eax.min(MAX_EXTENDED);
    let in_range = leaf <= max_basic || (0x8000_0000..=max_extended).contains(&leaf);
    if !in_range {
        return ZERO;
    }
    let [a, b, cx, d] = regs(host(leaf, subleaf));
    match leaf {
        0 => [max_basic, b, cx, d],
        1 => {
            let hidden_ecx = bits::DTES64
                | bits::MONITOR
                | bits::DS_CPL
                | bits::VMX
                | bits::SMX
                | bits::EST
                | bits::TM2
                | bits::CNXT_ID
                | bits::SDBG
                | bits::FMA
                | bits::XTPR
                | bits::PDCM
                | bits::DCA
                | bits::X2APIC
                | bits::TSC_DEADLINE
                | bits::XSAVE
                | bits::OSXSAVE
                | bits::AVX
                | bits::F16C;
            let mut ecx = (cx & !hidden_ecx) | bits::HYPERVISOR;
            if c.x2apic {
                ecx |= bits::X2APIC;
            }
            if c.tsc_deadline {
                ecx |= bits::TSC_DEADLINE;
            }
            let hidden_edx = bits::MCE
                | bits::MTRR
                | bits::MCA
                | bits::PSN
                | bits::DS
                | bits::ACPI
                | bits::HTT
                | bits::TM
                | bits::PBE;
            // EBX: APIC id, one logical processor, the host's CLFLUSH size and brand.
            let ebx = (c.vcpu_id & 0xff) << 24 | 1 << 16 | (b & 0xffff);
            [a, ebx, ecx, d & !hidden_edx]
        }
        2 => [a, b, cx, d],
        // Cache parameters without the cores/threads sharing them.
        4 => [a & 0x3fff, b, cx, d],
        7 if subleaf == 0 => [0, b & bits::LEAF7_EBX_KEPT, 0, 0],
        0x15 | 0x16 => [a, b, cx, d],
        0x8000_0000 => [max_extended, b, cx, d],
        0x8000_0001 => [a, b, cx & bits::EXT1_ECX_KEPT, d & bits::EXT1_EDX_KEPT],
        0x8000_0002..=0x8000_0006 => [a, b, cx, d],
        0x8000_0007 => [0, 0, 0, d & bits::INVARIANT_TSC],
        // Address sizes only; no core count, no speculation features.
        0x8000_0008 => [a & 0xffff, 0, 0, 0],
        _ => ZERO,
    }
}

/// CR4 bits a guest may set: those of the features its own CPUID shows, by Xen 4.17's
/// rules (`hvm_cr4_guest_valid_bits`; PCE always, VMXE never since Keel offers no nested
/// virtualisation). Setting any other is refused with #GP, as on Xen.
pub fn cr4_allowed(host: &dyn Fn(u32, u32) -> CpuidResult) -> u64 {
    let c = Context { vcpu_id: 0, domain_id: 0, tsc_khz: 0, x2apic: true, tsc_deadline: true, upcall_vector: true };
    let [_, _, ecx1, edx1] = leaf(1, 0, &c, host);
    let [_, ebx7, ecx7, edx7] = leaf(7, 0, &c, host);
    let has = |reg: u32, bit: u32| reg & 1 << bit != 0;
    let rules: [(bool, u64); 19] = [
        (has(edx1, 1), 1 << 0 | 1 << 1),          // VME: VME, PVI
        (has(edx1, 4), 1 << 2),                   // TSC: TSD
        (has(edx1, 2), 1 << 3),                   // DE
        (has(edx1, 3), 1 << 4),                   // PSE
        (has(edx1, 6), 1 << 5),                   // PAE
        (has(edx1, 7) || has(edx1, 14), 1 << 6),  // MCE or MCA: MCE
        (has(edx1, 13), 1 << 7),                  // PGE
        (true, 1 << 8),                           // PCE
        (has(edx1, 24), 1 << 9),                  // FXSR: OSFXSR
        (has(edx1, 25), 1 << 10),                 // SSE: OSXMMEXCPT
        (has(ecx7, 2), 1 << 11),                  // UMIP
        (has(ecx7, 16), 1 << 12),                 // LA57
        (has(ebx7, 0), 1 << 16),                  // FSGSBASE
        (has(ecx1, 17), 1 << 17),                 // PCID: PCIDE
        (has(ecx1, 26), 1 << 18),                 // XSAVE: OSXSAVE
        (has(ebx7, 7), 1 << 20),                  // SMEP
        (has(ebx7, 20), 1 << 21),                 // SMAP
        (has(ecx7, 3), 1 << 22),                  // PKU: PKE
        (has(ecx7, 7) || has(edx7, 20), 1 << 23), // CET_SS or CET_IBT: CET
    ];
    let pks = if has(ecx7, 31) { 1 << 24 } else { 0 };
    rules.iter().filter(|(shown, _)| *shown).fold(pks, |bits, (_, b)| bits | b)
}

#[cfg(test)]
mod tests;

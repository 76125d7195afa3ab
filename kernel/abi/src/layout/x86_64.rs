//! x86_64 (PVH/HVM) layouts: `vcpu_info` is 64 bytes, `shared_info` 3136.

use super::VcpuTimeInfo;

/// `XEN_LEGACY_MAX_VCPUS`: `vcpu_info` slots in `shared_info`.
pub const LEGACY_MAX_VCPUS: usize = 32;

wire_struct! {
    /// `arch_vcpu_info` (x86_64).
    pub struct ArchVcpuInfo: 16 {
        pub cr2: u64 = 0,
        pub pad: u64 = 8,
    }
}

wire_struct! {
    /// `vcpu_info` (x86_64).
    pub struct VcpuInfo: 64 {
        /// Set by Keel when an event is pending; cleared by the guest.
        pub evtchn_upcall_pending: u8 = 0,
        /// PV only.
        pub evtchn_upcall_mask: u8 = 1,
        pub _pad: [u8; 6] = 2,
        /// 2-level selector: bit `w` set means `evtchn_pending[w]` has work.
        pub evtchn_pending_sel: u64 = 8,
        pub arch: ArchVcpuInfo = 16,
        pub time: VcpuTimeInfo = 32,
    }
}

wire_struct! {
    /// `arch_shared_info` (x86_64; PV-only contents).
    pub struct ArchSharedInfo: 48 {
        pub max_pfn: u64 = 0,
        pub pfn_to_mfn_frame_list_list: u64 = 8,
        pub nmi_reason: u64 = 16,
        pub p2m_cr3: u64 = 24,
        pub p2m_vaddr: u64 = 32,
        pub p2m_generation: u64 = 40,
    }
}

wire_struct! {
    /// `shared_info` (x86_64).
    pub struct SharedInfo: 3136 {
        pub vcpu_info: [VcpuInfo; 32] = 0,
        /// 2-level pending bitmap.
        pub evtchn_pending: [u64; 64] = 2048,
        /// 2-level mask bitmap.
        pub evtchn_mask: [u64; 64] = 2560,
        pub wc_version: u32 = 3072,
        pub wc_sec: u32 = 3076,
        pub wc_nsec: u32 = 3080,
        pub wc_sec_hi: u32 = 3084,
        pub arch: ArchSharedInfo = 3088,
    }
}

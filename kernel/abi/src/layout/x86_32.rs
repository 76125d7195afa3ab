//! The x86 compat layouts (Xen's `xen-x86_32.h` under `#pragma pack(4)`): what an x86
//! domain whose callers are 32-bit sees. `xen_ulong_t` is 32 bits, so the 2-level
//! bitmaps are 32 words of 32 bits (1024 ports) and the selector is a 32-bit word at 4.
//! `vcpu_info` keeps 64 bytes and its `time` at 32; `shared_info` is 2344 bytes.

use super::VcpuTimeInfo;

/// `XEN_LEGACY_MAX_VCPUS`: `vcpu_info` slots in `shared_info`.
pub const LEGACY_MAX_VCPUS: usize = 32;

wire_struct! {
    /// `arch_vcpu_info` (x86_32): `cr2` and five words of padding.
    pub struct ArchVcpuInfo: 24 {
        pub cr2: u32 = 0,
        pub pad: [u32; 5] = 4,
    }
}

wire_struct! {
    /// `vcpu_info` (x86_32).
    pub struct VcpuInfo: 64 {
        /// Set by Keel when an event is pending; cleared by the guest.
        pub evtchn_upcall_pending: u8 = 0,
        /// PV only.
        pub evtchn_upcall_mask: u8 = 1,
        pub _pad: [u8; 2] = 2,
        /// 2-level selector: bit `w` set means `evtchn_pending[w]` (32 bits) has work.
        pub evtchn_pending_sel: u32 = 4,
        pub arch: ArchVcpuInfo = 8,
        pub time: VcpuTimeInfo = 32,
    }
}

wire_struct! {
    /// `arch_shared_info` (x86_32; PV-only contents but `wc_sec_hi`).
    pub struct ArchSharedInfo: 28 {
        pub max_pfn: u32 = 0,
        pub pfn_to_mfn_frame_list_list: u32 = 4,
        pub nmi_reason: u32 = 8,
        pub p2m_cr3: u32 = 12,
        pub p2m_vaddr: u32 = 16,
        pub p2m_generation: u32 = 20,
        /// The high 32 bits of `wc_sec` (on x86_64 a field of `shared_info` itself).
        pub wc_sec_hi: u32 = 24,
    }
}

wire_struct! {
    /// `shared_info` (x86_32).
    pub struct SharedInfo: 2344 {
        pub vcpu_info: [VcpuInfo; 32] = 0,
        /// 2-level pending bitmap.
        pub evtchn_pending: [u32; 32] = 2048,
        /// 2-level mask bitmap.
        pub evtchn_mask: [u32; 32] = 2176,
        pub wc_version: u32 = 2304,
        pub wc_sec: u32 = 2308,
        pub wc_nsec: u32 = 2312,
        pub arch: ArchSharedInfo = 2316,
    }
}

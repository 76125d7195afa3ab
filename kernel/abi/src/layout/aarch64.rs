//! arm64 layouts: `vcpu_info` is 48 bytes (empty arch part), `shared_info` 1088.

use super::VcpuTimeInfo;

/// `XEN_LEGACY_MAX_VCPUS`: `vcpu_info` slots in `shared_info`.
pub const LEGACY_MAX_VCPUS: usize = 1;

wire_struct! {
    /// `arch_vcpu_info` (arm64): empty.
    pub struct ArchVcpuInfo: 0 {}
}

wire_struct! {
    /// `vcpu_info` (arm64).
    pub struct VcpuInfo: 48 {
        /// Set by Keel when an event is pending; cleared by the guest.
        pub evtchn_upcall_pending: u8 = 0,
        /// Ignored on arm (Linux's header calls it `evtchn_upcall_mask`).
        pub pad0: u8 = 1,
        pub _pad: [u8; 6] = 2,
        /// 2-level selector.
        pub evtchn_pending_sel: u64 = 8,
        pub arch: ArchVcpuInfo = 16,
        pub time: VcpuTimeInfo = 16,
    }
}

wire_struct! {
    /// `arch_shared_info` (arm64): empty.
    pub struct ArchSharedInfo: 0 {}
}

wire_struct! {
    /// `shared_info` (arm64).
    pub struct SharedInfo: 1088 {
        pub vcpu_info: [VcpuInfo; 1] = 0,
        pub evtchn_pending: [u64; 64] = 48,
        pub evtchn_mask: [u64; 64] = 560,
        pub wc_version: u32 = 1072,
        pub wc_sec: u32 = 1076,
        pub wc_nsec: u32 = 1080,
        pub wc_sec_hi: u32 = 1084,
        pub arch: ArchSharedInfo = 1088,
    }
}

//! `vcpu_time_info`: identical on both architectures.

/// `vcpu_time_info.flags`: the TSC is stable across vCPUs.
pub const PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `vcpu_time_info.flags`: the vCPU was stopped.
pub const PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

wire_struct! {
    /// `vcpu_time_info`. `version` is odd while an update is in progress. Time now is
    /// `system_time + (((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul) >> 32`.
    pub struct VcpuTimeInfo: 32 {
        pub version: u32 = 0,
        pub pad0: u32 = 4,
        pub tsc_timestamp: u64 = 8,
        /// Nanoseconds of system time at `tsc_timestamp`.
        pub system_time: u64 = 16,
        pub tsc_to_system_mul: u32 = 24,
        pub tsc_shift: i8 = 28,
        pub flags: u8 = 29,
        pub pad1: [u8; 2] = 30,
    }
}

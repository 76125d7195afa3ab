//! Layouts that differ between architectures: `vcpu_info`, `shared_info` and their
//! `arch_*` parts.
//!
//! Both layouts are always compiled ([`x86_64`], [`aarch64`]); nothing here looks at the
//! target. The hypervisor picks one per domain through a [`GuestLayout`] value (the
//! backend names it, see `kernel::arch::GuestAbi`), so the portable core is tested
//! against both on any host.

pub mod aarch64;
mod time;
pub mod x86_64;

pub use time::{VcpuTimeInfo, PVCLOCK_GUEST_STOPPED, PVCLOCK_TSC_STABLE_BIT};

use core::mem::{offset_of, size_of};

/// The guest architecture a layout belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestArch {
    X86_64,
    Aarch64,
}

/// Where the hypervisor finds things in `vcpu_info` and `shared_info` for one guest
/// architecture. Offsets are in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestLayout {
    pub arch: GuestArch,
    /// `sizeof(vcpu_info)`.
    pub vcpu_info_size: usize,
    /// Offset of `vcpu_info.time`.
    pub vcpu_info_time: usize,
    /// `vcpu_info` slots in `shared_info` (`XEN_LEGACY_MAX_VCPUS`).
    pub legacy_max_vcpus: usize,
    /// `sizeof(shared_info)`.
    pub shared_info_size: usize,
    /// Offset of `shared_info.evtchn_pending`.
    pub evtchn_pending: usize,
    /// Offset of `shared_info.evtchn_mask`.
    pub evtchn_mask: usize,
    /// Offset of `shared_info.wc_version` (then `wc_sec`, `wc_nsec`, `wc_sec_hi`, u32 each).
    pub wc_version: usize,
}

/// Offset of `vcpu_info.evtchn_upcall_pending` (both architectures).
pub const VCPU_INFO_UPCALL_PENDING: usize = 0;
/// Offset of `vcpu_info.evtchn_pending_sel` (both architectures).
pub const VCPU_INFO_PENDING_SEL: usize = 8;

impl GuestLayout {
    /// Offset of `shared_info.vcpu_info[vcpu]`, if that slot exists.
    pub const fn shared_vcpu_info(&self, vcpu: usize) -> Option<usize> {
        if vcpu < self.legacy_max_vcpus {
            Some(vcpu * self.vcpu_info_size)
        } else {
            None
        }
    }
}

/// The x86_64 layout.
pub const X86_64: GuestLayout = GuestLayout {
    arch: GuestArch::X86_64,
    vcpu_info_size: size_of::<x86_64::VcpuInfo>(),
    vcpu_info_time: offset_of!(x86_64::VcpuInfo, time),
    legacy_max_vcpus: x86_64::LEGACY_MAX_VCPUS,
    shared_info_size: size_of::<x86_64::SharedInfo>(),
    evtchn_pending: offset_of!(x86_64::SharedInfo, evtchn_pending),
    evtchn_mask: offset_of!(x86_64::SharedInfo, evtchn_mask),
    wc_version: offset_of!(x86_64::SharedInfo, wc_version),
};

/// The arm64 layout.
pub const AARCH64: GuestLayout = GuestLayout {
    arch: GuestArch::Aarch64,
    vcpu_info_size: size_of::<aarch64::VcpuInfo>(),
    vcpu_info_time: offset_of!(aarch64::VcpuInfo, time),
    legacy_max_vcpus: aarch64::LEGACY_MAX_VCPUS,
    shared_info_size: size_of::<aarch64::SharedInfo>(),
    evtchn_pending: offset_of!(aarch64::SharedInfo, evtchn_pending),
    evtchn_mask: offset_of!(aarch64::SharedInfo, evtchn_mask),
    wc_version: offset_of!(aarch64::SharedInfo, wc_version),
};

const _: () = {
    assert!(offset_of!(x86_64::VcpuInfo, evtchn_upcall_pending) == VCPU_INFO_UPCALL_PENDING);
    assert!(offset_of!(aarch64::VcpuInfo, evtchn_upcall_pending) == VCPU_INFO_UPCALL_PENDING);
    assert!(offset_of!(x86_64::VcpuInfo, evtchn_pending_sel) == VCPU_INFO_PENDING_SEL);
    assert!(offset_of!(aarch64::VcpuInfo, evtchn_pending_sel) == VCPU_INFO_PENDING_SEL);
    assert!(X86_64.vcpu_info_size == 64 && X86_64.shared_info_size == 3136);
    assert!(AARCH64.vcpu_info_size == 48 && AARCH64.shared_info_size == 1088);
    assert!(X86_64.vcpu_info_time == 32 && AARCH64.vcpu_info_time == 16);
    assert!(X86_64.evtchn_pending == 2048 && X86_64.evtchn_mask == 2560 && X86_64.wc_version == 3072);
    assert!(AARCH64.evtchn_pending == 48 && AARCH64.evtchn_mask == 560 && AARCH64.wc_version == 1072);
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Wire;

    #[test]
    fn shared_info_bytes_land_at_the_documented_offsets() {
        let mut si = x86_64::SharedInfo::ZERO;
        si.evtchn_pending[1] = 1 << 3;
        si.vcpu_info[2].evtchn_upcall_pending = 1;
        si.wc_sec = 0x0102_0304;
        let b = si.to_bytes();
        assert_eq!(b[X86_64.evtchn_pending + 8], 1 << 3);
        assert_eq!(b[X86_64.shared_vcpu_info(2).unwrap()], 1);
        assert_eq!(&b[X86_64.wc_version + 4..X86_64.wc_version + 8], &[4, 3, 2, 1]);
        assert_eq!(x86_64::SharedInfo::from_bytes(&b), Some(si));

        let mut arm = aarch64::SharedInfo::ZERO;
        arm.evtchn_mask[63] = u64::MAX;
        arm.vcpu_info[0].time.system_time = 7;
        let b = arm.to_bytes();
        assert_eq!(&b[AARCH64.evtchn_mask + 63 * 8..AARCH64.evtchn_mask + 64 * 8], &[0xff; 8]);
        assert_eq!(b[AARCH64.vcpu_info_time + 16], 7);
        assert_eq!(AARCH64.shared_vcpu_info(1), None);
    }
}

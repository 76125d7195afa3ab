//! Layouts that differ between architectures: `vcpu_info`, `shared_info` and their
//! `arch_*` parts.
//!
//! All layouts are always compiled ([`x86_64`], [`x86_32`], [`aarch64`]); nothing here
//! looks at the target. The hypervisor picks one per domain through a [`GuestLayout`]
//! value (the backend names the native one, see `kernel::arch::GuestAbi`), so the
//! portable core is tested against all of them on any host. An x86 domain switches to
//! the compat layout ([`X86_32`], the native layout's [`GuestLayout::compat`]) when its
//! callers are 32-bit, as Xen's `has_32bit_shinfo` does.

pub mod aarch64;
mod time;
pub mod x86_32;
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
    /// Offset of `shared_info.wc_version` (then `wc_sec`, `wc_nsec`, u32 each).
    pub wc_version: usize,
    /// Offset of `wc_sec_hi` (u32) in `shared_info`.
    pub wc_sec_hi: usize,
    /// `sizeof(xen_ulong_t)`: the bytes of a 2-level bitmap word and of the selector.
    pub word_bytes: usize,
    /// Offset of `vcpu_info.evtchn_pending_sel` (a word of `word_bytes`).
    pub pending_sel: usize,
    /// The layout the same domain uses when its callers are 32-bit, if it has one.
    pub compat: Option<&'static GuestLayout>,
}

/// Offset of `vcpu_info.evtchn_upcall_pending` (every layout).
pub const VCPU_INFO_UPCALL_PENDING: usize = 0;
/// Offset of `vcpu_info.evtchn_pending_sel` in the 64-bit layouts (`x86_64`, `aarch64`).
pub const VCPU_INFO_PENDING_SEL: usize = 8;

impl GuestLayout {
    /// Bits in a 2-level bitmap word (`BITS_PER_EVTCHN_WORD`).
    pub const fn word_bits(&self) -> u32 {
        // `word_bytes` is 4 or 8.
        if self.word_bytes == 4 {
            32
        } else {
            64
        }
    }

    /// Ports of the 2-level ABI: a word of selector bits, each naming a bitmap word.
    pub const fn two_level_ports(&self) -> u32 {
        self.word_bits() * self.word_bits()
    }

    /// The layout for a domain whose callers are 32-bit (`compat`) or not.
    pub const fn for_callers(&'static self, compat: bool) -> &'static GuestLayout {
        match (compat, self.compat) {
            (true, Some(c)) => c,
            _ => self,
        }
    }

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
    wc_sec_hi: offset_of!(x86_64::SharedInfo, wc_sec_hi),
    word_bytes: 8,
    pending_sel: offset_of!(x86_64::VcpuInfo, evtchn_pending_sel),
    compat: Some(&X86_32),
};

/// The x86 compat layout: an x86 domain whose callers are 32-bit.
pub const X86_32: GuestLayout = GuestLayout {
    arch: GuestArch::X86_64,
    vcpu_info_size: size_of::<x86_32::VcpuInfo>(),
    vcpu_info_time: offset_of!(x86_32::VcpuInfo, time),
    legacy_max_vcpus: x86_32::LEGACY_MAX_VCPUS,
    shared_info_size: size_of::<x86_32::SharedInfo>(),
    evtchn_pending: offset_of!(x86_32::SharedInfo, evtchn_pending),
    evtchn_mask: offset_of!(x86_32::SharedInfo, evtchn_mask),
    wc_version: offset_of!(x86_32::SharedInfo, wc_version),
    wc_sec_hi: offset_of!(x86_32::SharedInfo, arch) + offset_of!(x86_32::ArchSharedInfo, wc_sec_hi),
    word_bytes: 4,
    pending_sel: offset_of!(x86_32::VcpuInfo, evtchn_pending_sel),
    compat: None,
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
    wc_sec_hi: offset_of!(aarch64::SharedInfo, wc_sec_hi),
    word_bytes: 8,
    pending_sel: offset_of!(aarch64::VcpuInfo, evtchn_pending_sel),
    compat: None,
};

const _: () = {
    assert!(offset_of!(x86_64::VcpuInfo, evtchn_upcall_pending) == VCPU_INFO_UPCALL_PENDING);
    assert!(offset_of!(aarch64::VcpuInfo, evtchn_upcall_pending) == VCPU_INFO_UPCALL_PENDING);
    assert!(offset_of!(x86_64::VcpuInfo, evtchn_pending_sel) == VCPU_INFO_PENDING_SEL);
    assert!(offset_of!(aarch64::VcpuInfo, evtchn_pending_sel) == VCPU_INFO_PENDING_SEL);
    assert!(offset_of!(x86_32::VcpuInfo, evtchn_upcall_pending) == VCPU_INFO_UPCALL_PENDING);
    // The compat numbers, from Xen's x86_32 headers under pack(4).
    assert!(X86_32.vcpu_info_size == 64 && X86_32.shared_info_size == 2344);
    assert!(X86_32.vcpu_info_time == 32 && X86_32.pending_sel == 4 && X86_32.word_bytes == 4);
    assert!(X86_32.evtchn_pending == 2048 && X86_32.evtchn_mask == 2176 && X86_32.wc_version == 2304);
    assert!(X86_32.wc_sec_hi == 2340 && X86_64.wc_sec_hi == 3084 && AARCH64.wc_sec_hi == 1084);
    assert!(X86_32.two_level_ports() == 1024 && X86_64.two_level_ports() == 4096);
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

    #[test]
    fn compat_shared_info_bytes_land_at_xen_x86_32_offsets() {
        // Offsets as Xen's `xen-x86_32.h` and `xen.h` give them under pack(4).
        let mut si = x86_32::SharedInfo::ZERO;
        si.vcpu_info[3].evtchn_pending_sel = 0x8000_0001;
        si.vcpu_info[3].time.system_time = 0x1122_3344_5566_7788;
        si.evtchn_pending[31] = 1 << 31;
        si.evtchn_mask[1] = 1;
        si.wc_version = 2;
        si.wc_sec = 0x0a0b_0c0d;
        si.arch.wc_sec_hi = 0x5;
        let b = si.to_bytes();
        let slot = X86_32.shared_vcpu_info(3).unwrap();
        assert_eq!(slot, 3 * 64);
        assert_eq!(&b[slot + X86_32.pending_sel..slot + 8], &[1, 0, 0, 0x80]);
        assert_eq!(b[slot + X86_32.vcpu_info_time + 16], 0x88);
        assert_eq!(b[X86_32.evtchn_pending + 127], 0x80);
        assert_eq!(b[X86_32.evtchn_mask + 4], 1);
        assert_eq!(b[X86_32.wc_version], 2);
        assert_eq!(&b[X86_32.wc_version + 4..X86_32.wc_version + 8], &[0x0d, 0x0c, 0x0b, 0x0a]);
        assert_eq!(b[X86_32.wc_sec_hi], 5);
        assert_eq!(X86_32.shared_vcpu_info(32), None);
        assert_eq!(x86_32::SharedInfo::from_bytes(&b), Some(si));
    }

    #[test]
    fn only_x86_has_a_compat_layout() {
        assert_eq!(X86_64.for_callers(true), &X86_32);
        assert_eq!(X86_64.for_callers(false), &X86_64);
        assert_eq!(X86_32.for_callers(false), &X86_32);
        assert_eq!(AARCH64.for_callers(true), &AARCH64);
        // The vcpu_info slots do not move when the layout switches.
        for v in 0..32 {
            assert_eq!(X86_64.shared_vcpu_info(v), X86_32.shared_vcpu_info(v));
        }
    }
}

//! Versions: Keel's own guest-ABI version, the Xen version Keel reports, and the
//! `xen_version` sub-ops.

/// A guest-ABI version: `major.minor`. The major number changes only for an
/// incompatible ABI (never, once released); the minor number grows with additions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AbiVersion {
    pub major: u16,
    pub minor: u16,
}

impl AbiVersion {
    /// The version packed as `major << 16 | minor`, as Xen packs `XENVER_version`.
    pub const fn packed(self) -> u32 {
        (self.major as u32) << 16 | self.minor as u32
    }
}

impl core::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The guest ABI this build of Keel implements.
pub const ABI_VERSION: AbiVersion = AbiVersion { major: 1, minor: 0 };

/// The Xen interface version Keel reports to `XENVER_version` (4.19): new enough for
/// every check in current Linux, and the release whose semantics Keel follows.
pub const XEN_VERSION_REPORTED: AbiVersion = AbiVersion { major: 4, minor: 19 };
/// `XENVER_extraversion`: Linux prints "Xen version: 4.19.0-keel".
pub const XEN_EXTRAVERSION: &str = ".0-keel";
/// Prefix of the `XENVER_changeset` string, which carries Keel's ABI version:
/// `"keel-abi <major>.<minor>"`. This is how a guest learns [`ABI_VERSION`].
pub const CHANGESET_PREFIX: &str = "keel-abi ";

/// `xen_version`: returns `major << 16 | minor`.
pub const XENVER_VERSION: u64 = 0;
/// `xen_version`: 16-byte NUL-terminated string.
pub const XENVER_EXTRAVERSION: u64 = 1;
/// `xen_version`: [`XenCompileInfo`].
pub const XENVER_COMPILE_INFO: u64 = 2;
/// `xen_version`: 1024-byte capabilities string.
pub const XENVER_CAPABILITIES: u64 = 3;
/// `xen_version`: 64-byte changeset string.
pub const XENVER_CHANGESET: u64 = 4;
/// `xen_version`: [`XenPlatformParameters`].
pub const XENVER_PLATFORM_PARAMETERS: u64 = 5;
/// `xen_version`: [`XenFeatureInfo`].
pub const XENVER_GET_FEATURES: u64 = 6;
/// `xen_version`: returns the page size.
pub const XENVER_PAGESIZE: u64 = 7;
/// `xen_version`: 16-byte domain handle (UUID).
pub const XENVER_GUEST_HANDLE: u64 = 8;
/// `xen_version`: the hypervisor command line (privileged: -EPERM).
pub const XENVER_COMMANDLINE: u64 = 9;
/// `xen_version`: build id (privileged: -EPERM).
pub const XENVER_BUILD_ID: u64 = 10;

/// Size of the `XENVER_extraversion` buffer.
pub const EXTRAVERSION_LEN: usize = 16;
/// Size of the `XENVER_capabilities` buffer.
pub const CAPABILITIES_LEN: usize = 1024;
/// Size of the `XENVER_changeset` buffer.
pub const CHANGESET_LEN: usize = 64;
/// Size of the `XENVER_guest_handle` buffer.
pub const GUEST_HANDLE_LEN: usize = 16;

wire_struct! {
    /// `xen_compile_info` (`XENVER_compile_info`).
    pub struct XenCompileInfo: 144 {
        pub compiler: [u8; 64] = 0,
        pub compile_by: [u8; 16] = 64,
        pub compile_domain: [u8; 32] = 80,
        pub compile_date: [u8; 32] = 112,
    }
}

wire_struct! {
    /// `xen_platform_parameters` (`XENVER_platform_parameters`).
    pub struct XenPlatformParameters: 8 {
        /// Start of the hypervisor hole in guest virtual space; 0 (none) for Keel.
        pub virt_start: u64 = 0,
    }
}

wire_struct! {
    /// `xen_feature_info` (`XENVER_get_features`).
    pub struct XenFeatureInfo: 8 {
        /// IN: which 32-bit submap (only 0 exists).
        pub submap_idx: u32 = 0,
        /// OUT: the feature bits.
        pub submap: u32 = 4,
    }
}

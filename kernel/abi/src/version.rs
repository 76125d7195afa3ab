//! The guest-ABI version Keel reports at boot and to guests.

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

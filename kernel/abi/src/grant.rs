//! Grant tables v1 (`grant_table_op`): entries, flags, sub-ops, per-op status codes.

/// Map a granted frame.
pub const GNTTABOP_MAP_GRANT_REF: u64 = 0;
/// Remove a mapping.
pub const GNTTABOP_UNMAP_GRANT_REF: u64 = 1;
/// Size the table and list its frames.
pub const GNTTABOP_SETUP_TABLE: u64 = 2;
/// Copy between grants and/or own frames.
pub const GNTTABOP_COPY: u64 = 5;
/// Current and maximum table size.
pub const GNTTABOP_QUERY_SIZE: u64 = 6;
/// Choose the entry format (only v1 exists in Keel).
pub const GNTTABOP_SET_VERSION: u64 = 8;
/// Read the entry format.
pub const GNTTABOP_GET_VERSION: u64 = 10;
/// Bits of `cmd` above this mask are a continuation argument (must be 0).
pub const GNTTABOP_CMD_MASK: u64 = (1 << 12) - 1;

/// Entry type: unused.
pub const GTF_INVALID: u16 = 0;
/// Entry type: `domid` may map or copy `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// Entry type: page transfer (unsupported).
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// Entry type: transitive (v2 only).
pub const GTF_TRANSITIVE: u16 = 3;
/// Mask of the entry type.
pub const GTF_TYPE_MASK: u16 = 3;
/// Set by the granter: read-only access.
pub const GTF_READONLY: u16 = 1 << 2;
/// Set by the hypervisor while the frame is mapped or copied from.
pub const GTF_READING: u16 = 1 << 3;
/// Set by the hypervisor while the frame is mapped writable or copied to.
pub const GTF_WRITING: u16 = 1 << 4;
/// x86 cache attribute.
pub const GTF_PWT: u16 = 1 << 5;
/// x86 cache attribute.
pub const GTF_PCD: u16 = 1 << 6;
/// x86 cache attribute.
pub const GTF_PAT: u16 = 1 << 7;
/// Sub-page grant (v2 only; refused for mapping).
pub const GTF_SUB_PAGE: u16 = 1 << 8;

/// Map flag: device (IOMMU) mapping (refused for translated guests).
pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
/// Map flag: map at `host_addr`, a guest-physical address of the caller.
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// Map flag: read-only mapping.
pub const GNTMAP_READONLY: u32 = 1 << 2;
/// Map flag: PV application mapping (refused).
pub const GNTMAP_APPLICATION_MAP: u32 = 1 << 3;
/// Map flag: `host_addr` is a PTE address (PV; refused).
pub const GNTMAP_CONTAINS_PTE: u32 = 1 << 4;

/// Copy flag: `source` is a grant reference (else a frame of the caller).
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// Copy flag: `dest` is a grant reference (else a frame of the caller).
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

/// Per-op status: success.
pub const GNTST_OKAY: i16 = 0;
/// Per-op status: general error (bad entry flags or domid, read-only entry, ...).
pub const GNTST_GENERAL_ERROR: i16 = -1;
/// Per-op status: unknown domain.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// Per-op status: reference out of range, or bad map flags.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// Per-op status: unknown mapping handle.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// Per-op status: bad guest address (a frame list could not be written).
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
/// Per-op status: bad device address.
pub const GNTST_BAD_DEV_ADDR: i16 = -6;
/// Per-op status: out of IOMMU space.
pub const GNTST_NO_DEVICE_SPACE: i16 = -7;
/// Per-op status: not allowed (copy by frame for another domain).
pub const GNTST_PERMISSION_DENIED: i16 = -8;
/// Per-op status: the granted frame is not the granter's RAM.
pub const GNTST_BAD_PAGE: i16 = -9;
/// Per-op status: the copy crosses a page boundary.
pub const GNTST_BAD_COPY_ARG: i16 = -10;
/// Per-op status: address too big.
pub const GNTST_ADDRESS_TOO_BIG: i16 = -11;
/// Per-op status: try again.
pub const GNTST_EAGAIN: i16 = -12;
/// Per-op status: out of mapping handles.
pub const GNTST_NO_SPACE: i16 = -13;

/// Grant entries per 4 KiB frame in v1.
pub const GRANT_ENTRIES_PER_FRAME: u32 = 512;
/// References 0..8 are reserved for the toolstack (console 0, xenstore 1).
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;

wire_struct! {
    /// `grant_entry_v1`: one entry of a granter's table.
    pub struct GrantEntryV1: 8 {
        /// `GTF_*`; the low byte is updated by the hypervisor with compare-and-swap.
        pub flags: u16 = 0,
        /// The domain allowed access.
        pub domid: u16 = 2,
        /// The granted guest frame number.
        pub frame: u32 = 4,
    }
}

wire_struct! {
    /// `gnttab_setup_table`.
    pub struct GnttabSetupTable: 24 {
        pub dom: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub nr_frames: u32 = 4,
        /// OUT: `GNTST_*`.
        pub status: i16 = 8,
        pub _pad2: [u8; 6] = 10,
        /// Guest handle of a `u64` array receiving each frame's GFN (`!0` if unmapped).
        pub frame_list: u64 = 16,
    }
}

wire_struct! {
    /// `gnttab_setup_table` as a 32-bit x86 caller lays it out
    /// (`compat_gnttab_setup_table`): a 32-bit guest handle of a `u32` (`xen_pfn_t`) array.
    pub struct GnttabSetupTableCompat: 16 {
        pub dom: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub nr_frames: u32 = 4,
        /// OUT: `GNTST_*`.
        pub status: i16 = 8,
        pub _pad2: [u8; 2] = 10,
        /// Guest handle of a `u32` array receiving each frame's GFN.
        pub frame_list: u32 = 12,
    }
}

wire_struct! {
    /// `gnttab_query_size`.
    pub struct GnttabQuerySize: 16 {
        pub dom: u16 = 0,
        pub _pad: [u8; 2] = 2,
        /// OUT.
        pub nr_frames: u32 = 4,
        /// OUT.
        pub max_nr_frames: u32 = 8,
        /// OUT: `GNTST_*`.
        pub status: i16 = 12,
        pub _pad2: [u8; 2] = 14,
    }
}

wire_struct! {
    /// `gnttab_map_grant_ref`.
    pub struct GnttabMapGrantRef: 32 {
        /// Guest-physical address in the caller where the frame appears.
        pub host_addr: u64 = 0,
        /// `GNTMAP_*`.
        pub flags: u32 = 8,
        pub grant_ref: u32 = 12,
        /// The granting domain.
        pub dom: u16 = 16,
        /// OUT: `GNTST_*`.
        pub status: i16 = 18,
        /// OUT.
        pub handle: u32 = 20,
        /// OUT: always 0 in Keel (host addresses are not disclosed).
        pub dev_bus_addr: u64 = 24,
    }
}

wire_struct! {
    /// `gnttab_unmap_grant_ref`.
    pub struct GnttabUnmapGrantRef: 24 {
        pub host_addr: u64 = 0,
        pub dev_bus_addr: u64 = 8,
        pub handle: u32 = 16,
        /// OUT: `GNTST_*`.
        pub status: i16 = 20,
        pub _pad: [u8; 2] = 22,
    }
}

wire_struct! {
    /// `gnttab_copy_ptr`: one side of a copy.
    pub struct GnttabCopyPtr: 16 {
        /// A grant reference (with the `*_gref` flag) or a guest frame number.
        pub ref_or_gfn: u64 = 0,
        pub domid: u16 = 8,
        pub offset: u16 = 10,
        pub _pad: [u8; 4] = 12,
    }
}

wire_struct! {
    /// `gnttab_copy`.
    pub struct GnttabCopy: 40 {
        pub source: GnttabCopyPtr = 0,
        pub dest: GnttabCopyPtr = 16,
        pub len: u16 = 32,
        /// `GNTCOPY_*`.
        pub flags: u16 = 34,
        /// OUT: `GNTST_*`.
        pub status: i16 = 36,
        pub _pad: [u8; 2] = 38,
    }
}

wire_struct! {
    /// `gnttab_copy_ptr` as a 32-bit x86 caller lays it out: the reference or a 32-bit
    /// `xen_pfn_t`.
    pub struct GnttabCopyPtrCompat: 8 {
        pub ref_or_gfn: u32 = 0,
        pub domid: u16 = 4,
        pub offset: u16 = 6,
    }
}

wire_struct! {
    /// `gnttab_copy` as a 32-bit x86 caller lays it out (`compat_gnttab_copy`).
    pub struct GnttabCopyCompat: 24 {
        pub source: GnttabCopyPtrCompat = 0,
        pub dest: GnttabCopyPtrCompat = 8,
        pub len: u16 = 16,
        /// `GNTCOPY_*`.
        pub flags: u16 = 18,
        /// OUT: `GNTST_*`.
        pub status: i16 = 20,
        pub _pad: [u8; 2] = 22,
    }
}

impl GnttabCopyCompat {
    /// The op as a 64-bit caller would have written it (frame numbers zero-extended).
    pub fn widen(&self) -> GnttabCopy {
        let side = |p: &GnttabCopyPtrCompat| GnttabCopyPtr {
            ref_or_gfn: u64::from(p.ref_or_gfn),
            domid: p.domid,
            offset: p.offset,
            _pad: [0; 4],
        };
        GnttabCopy {
            source: side(&self.source),
            dest: side(&self.dest),
            len: self.len,
            flags: self.flags,
            status: self.status,
            _pad: [0; 2],
        }
    }
}

wire_struct! {
    /// `gnttab_set_version`.
    pub struct GnttabSetVersion: 4 {
        /// IN: wanted version; OUT: the version in force.
        pub version: u32 = 0,
    }
}

wire_struct! {
    /// `gnttab_get_version`.
    pub struct GnttabGetVersion: 8 {
        pub dom: u16 = 0,
        pub _pad: [u8; 2] = 2,
        /// OUT.
        pub version: u32 = 4,
    }
}

/// Grant reference the domain builder fills for the xenstore domain to map the store
/// page (Xen `GNTTAB_RESERVED_XENSTORE`; refs 0..7 are reserved for such uses).
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;

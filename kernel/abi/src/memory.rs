//! `memory_op`: sub-ops, map spaces, argument structs.

/// Allocate memory without placing it (unsupported for translated guests: -ENOSYS).
pub const XENMEM_INCREASE_RESERVATION: u64 = 0;
/// Give guest frames back; returns the number of extents released.
pub const XENMEM_DECREASE_RESERVATION: u64 = 1;
/// Returns the domain's current page count.
pub const XENMEM_CURRENT_RESERVATION: u64 = 3;
/// Returns the domain's page limit.
pub const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
/// Allocate memory at given guest frames; returns the number of extents populated.
pub const XENMEM_POPULATE_PHYSMAP: u64 = 6;
/// Place a special page (shared_info, grant frame) at a guest frame.
pub const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
/// Copy the domain's memory map (E820 entries).
pub const XENMEM_MEMORY_MAP: u64 = 9;
/// Bits of `cmd` holding the sub-op; the rest is the continuation start extent.
pub const MEMOP_CMD_MASK: u64 = 0x3f;
/// Shift of the start extent in `cmd`.
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
/// Largest extent order Keel accepts (2 MiB extents).
pub const MEMOP_MAX_EXTENT_ORDER: u32 = 9;

/// `add_to_physmap` space: the shared_info page (`idx` 0).
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `add_to_physmap` space: grant-table frame `idx`.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `add_to_physmap` space: move a guest frame (unsupported: -ENOSYS).
pub const XENMAPSPACE_GMFN: u32 = 2;
/// `add_to_physmap` space: move a range (unsupported: -ENOSYS).
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
/// `add_to_physmap` space: foreign frame (unsupported: -ENOSYS).
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;
/// `add_to_physmap` space: device MMIO (unsupported: -ENOSYS).
pub const XENMAPSPACE_DEV_MMIO: u32 = 5;
/// `idx` flag selecting a v2 status frame (refused: -EINVAL).
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

/// E820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type: reserved.
pub const E820_RESERVED: u32 = 2;

wire_struct! {
    /// `xen_add_to_physmap`.
    pub struct XenAddToPhysmap: 24 {
        pub domid: u16 = 0,
        /// Pages in a `gmfn_range` (unused otherwise).
        pub size: u16 = 2,
        /// `XENMAPSPACE_*`.
        pub space: u32 = 4,
        /// Index in the space.
        pub idx: u64 = 8,
        /// Guest frame where the page appears.
        pub gpfn: u64 = 16,
    }
}

wire_struct! {
    /// `xen_memory_map`.
    pub struct XenMemoryMap: 16 {
        /// IN: capacity of `buffer` in entries; OUT: entries written.
        pub nr_entries: u32 = 0,
        pub _pad: [u8; 4] = 4,
        /// Guest handle of an [`E820Entry`] array.
        pub buffer: u64 = 8,
    }
}

wire_struct! {
    /// A BIOS E820 entry as `XENMEM_memory_map` writes it (20 bytes, packed).
    pub struct E820Entry: 20 {
        pub addr: [u32; 2] = 0,
        pub size: [u32; 2] = 8,
        pub kind: u32 = 16,
    }
}

impl E820Entry {
    /// An entry for `[addr, addr + size)` of type `kind`.
    pub const fn new(addr: u64, size: u64, kind: u32) -> Self {
        E820Entry {
            addr: [(addr & 0xffff_ffff) as u32, (addr >> 32) as u32],
            size: [(size & 0xffff_ffff) as u32, (size >> 32) as u32],
            kind,
        }
    }
}

wire_struct! {
    /// `xen_add_to_physmap` as a 32-bit x86 caller lays it out (`compat_add_to_physmap`:
    /// 32-bit `xen_ulong_t` and `xen_pfn_t`).
    pub struct XenAddToPhysmapCompat: 16 {
        pub domid: u16 = 0,
        pub size: u16 = 2,
        pub space: u32 = 4,
        pub idx: u32 = 8,
        pub gpfn: u32 = 12,
    }
}

wire_struct! {
    /// `xen_memory_map` as a 32-bit x86 caller lays it out (a 32-bit guest handle).
    pub struct XenMemoryMapCompat: 8 {
        pub nr_entries: u32 = 0,
        pub buffer: u32 = 4,
    }
}

wire_struct! {
    /// `xen_memory_reservation` as a 32-bit x86 caller lays it out: a 32-bit guest
    /// handle of a `u32` (`xen_pfn_t`) array, a 32-bit `nr_extents`.
    pub struct XenMemoryReservationCompat: 20 {
        pub extent_start: u32 = 0,
        pub nr_extents: u32 = 4,
        pub extent_order: u32 = 8,
        pub mem_flags: u32 = 12,
        pub domid: u16 = 16,
        pub _pad: [u8; 2] = 18,
    }
}

wire_struct! {
    /// `xen_memory_reservation`.
    pub struct XenMemoryReservation: 32 {
        /// Guest handle of a `u64` array of guest frame numbers.
        pub extent_start: u64 = 0,
        pub nr_extents: u64 = 8,
        pub extent_order: u32 = 16,
        pub mem_flags: u32 = 20,
        pub domid: u16 = 24,
        pub _pad: [u8; 6] = 26,
    }
}

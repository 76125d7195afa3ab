//! The xenstore ring page as the hypervisor touches it (Xen `io/xs_wire.h`,
//! `struct xenstore_domain_interface`): only the connection word.

/// Offset of `connection` (u32) in the store page.
pub const XENSTORE_RING_CONNECTION: usize = 2068;
/// `connection`: the server serves the ring.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `connection`: a reconnection is asked for (the guest) or the server is not there yet
/// (the domain builder); the server sets it back to [`XENSTORE_CONNECTED`].
pub const XENSTORE_RECONNECT: u32 = 1;

/// Xen's Arm toolstack's store frame: `GUEST_MAGIC_BASE` (0x3900_0000) + page
/// `XENSTORE_PFN_OFFSET` (1) (`xen/include/public/arch-arm.h`).
pub const ARM_STORE_GFN: u64 = 0x39001;
/// Xen's HVM/PVH builder's store frame: special page `SPECIALPAGE_XENSTORE` (4) of the
/// eight below `X86_HVM_END_SPECIAL_REGION` (0xff000) (`tools/libs/guest/xg_dom_x86.c`).
pub const X86_STORE_GFN: u64 = 0xff000 - 8 + 4;

//! Device passthrough in Xen's dom0less binding: what a domain asks for, and whether
//! Keel may give it.
//!
//! A dom0less domain asks for devices with a `multiboot,device-tree` module: a partial
//! device tree whose `/passthrough` node holds one node per device (Xen
//! `docs/misc/arm/passthrough.txt`). Each device node carries
//!
//! - `xen,reg = <host-address size guest-address>...`: MMIO ranges to map into the
//!   domain, page aligned, in the cell counts of `/passthrough`;
//! - `xen,path = "/host/path"`: the host node of the device, whose `interrupts` (GIC
//!   SPIs) are routed to the domain with the same number (virq == irq), as Xen does;
//! - `xen,force-assign-without-iommu`: required, since Keel programs no IOMMU: the
//!   device's DMA reaches all of memory, so only a trusted domain may drive it, and its
//!   RAM must be direct-mapped (`direct-map` with `xen,static-mem`) for the device's
//!   DMA to land in it.
//!
//! [`partial::parse`] reads the fragment, [`host::resolve`] the host nodes it names,
//! [`check::check`] holds every request against what Keel itself uses and what
//! other domains own, and [`tree::copy_passthrough`] gives the guest its devices' nodes, and
//! [`route::IrqRoutes`] says which live domain each passed-through host interrupt goes to. All of it is pure and tested on the host; nothing here panics on
//! any input.

pub mod assign;
pub mod check;
pub mod host;
pub mod partial;
pub mod route;
pub mod tree;

#[cfg(test)]
mod assign_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tree_tests;

use crate::addr::Region;
use alloc::string::String;
use alloc::vec::Vec;

/// The 4 KiB granule MMIO ranges are mapped in.
pub const PAGE: u64 = 4096;

/// The first GIC interrupt ID of a shared peripheral interrupt (SPI).
pub const FIRST_SPI: u32 = 32;

/// One past the highest SPI INTID the GIC architecture has (1020–1023 are special).
pub const SPI_END: u32 = 1020;

/// One MMIO range a device node asks to map (`xen,reg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioRange {
    /// Host-physical range, page aligned.
    pub host: Region,
    /// Where the domain sees its start (guest-physical), page aligned.
    pub guest: u64,
}

impl MmioRange {
    /// The guest-physical range.
    pub fn guest_region(&self) -> Region {
        Region { start: self.guest, end: self.guest.saturating_add(self.host.size()) }
    }
}

/// One device of a partial device tree's `/passthrough` node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The device node's path in the partial tree (`/passthrough/virtio@a003e00`).
    pub node: String,
    /// `xen,path`: the device's node in the host tree, if given.
    pub host_path: Option<String>,
    pub mmio: Vec<MmioRange>,
    /// GIC INTIDs of the SPIs routed to the domain (from the host node, see
    /// [`host::resolve`]), each delivered as the same virtual INTID.
    pub irqs: Vec<u32>,
}

/// What one domain asks for, with its name and node for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The domain's name.
    pub domain: String,
    /// The domain's node (`/chosen/driver`).
    pub node: String,
    /// `direct-map`: the host-physical RAM given 1:1 (`xen,static-mem`); `None` for a
    /// domain whose RAM Keel places.
    pub direct_map: Option<Vec<Region>>,
    /// Guest-physical ranges a non-direct-mapped domain already uses (its RAM, Keel's
    /// emulated devices and windows), with what they are; a device may not be mapped
    /// over them.
    pub guest_used: Vec<(Region, String)>,
    pub devices: Vec<Device>,
}

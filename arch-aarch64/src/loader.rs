//! The arm64 guest boot protocol: Xen's guest memory layout and (later) the Linux Image
//! loader with a generated device tree.

use crate::Aarch64;
use alloc::vec::Vec;
use keel_abi::layout::{GuestLayout, AARCH64};
use keel_abi::memory::E820Entry;
use keel_kernel::arch::{BootEntry, GuestAbi, GuestLoader, LoadError, LoadRequest};
use keel_kernel::domain::Domain;
use keel_kernel::mm::Region;

/// Xen's arm64 guest RAM banks (`GUEST_RAM0_BASE`/`SIZE`, `GUEST_RAM1_BASE`/`SIZE`).
const RAM_BANKS: [(u64, u64); 2] = [(0x4000_0000, 0xc000_0000), (0x0200_0000_0000, 0xfe_0000_0000)];

impl GuestAbi for Aarch64 {
    const LAYOUT: &'static GuestLayout = &AARCH64;
}

impl GuestLoader for Aarch64 {
    /// Fills bank 0 (3 GiB at 1 GiB), then bank 1 (at 2 TiB), as Xen does.
    fn guest_ram(bytes: u64) -> Vec<Region> {
        let mut left = bytes;
        let mut banks = Vec::new();
        for (base, size) in RAM_BANKS {
            let take = left.min(size);
            if take > 0 {
                banks.push(Region::new(base, take));
            }
            left -= take;
        }
        banks
    }

    /// arm64 guests learn their memory from the device tree.
    fn memory_map(_ram: &[Region]) -> Vec<E820Entry> {
        Vec::new()
    }

    fn load_guest(_domain: &Domain<Aarch64>, _request: &LoadRequest<'_>) -> Result<BootEntry, LoadError> {
        Err(LoadError::Unsupported("the arm64 Image loader and guest device tree are not implemented yet"))
    }
}

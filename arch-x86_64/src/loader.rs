//! The x86_64 guest boot protocol: the PVH memory layout and E820 map, and (later) the
//! PVH ELF loader with `hvm_start_info`.

use crate::X86_64;
use alloc::vec::Vec;
use keel_abi::layout::{GuestLayout, X86_64 as X86_64_LAYOUT};
use keel_abi::memory::{E820Entry, E820_RAM};
use keel_kernel::arch::{BootEntry, GuestAbi, GuestLoader, LoadError, LoadRequest};
use keel_kernel::domain::Domain;
use keel_kernel::mm::Region;

/// RAM below 4 GiB ends where the MMIO hole begins (3 GiB); the rest starts at 4 GiB.
const LOW_RAM_END: u64 = 0xc000_0000;
const HIGH_RAM_START: u64 = 0x1_0000_0000;

impl GuestAbi for X86_64 {
    const LAYOUT: &'static GuestLayout = &X86_64_LAYOUT;
}

impl GuestLoader for X86_64 {
    fn guest_ram(bytes: u64) -> Vec<Region> {
        let low = bytes.min(LOW_RAM_END);
        let mut banks = Vec::new();
        if low > 0 {
            banks.push(Region::new(0, low));
        }
        if bytes > low {
            banks.push(Region::new(HIGH_RAM_START, bytes - low));
        }
        banks
    }

    fn memory_map(ram: &[Region]) -> Vec<E820Entry> {
        ram.iter().map(|r| E820Entry::new(r.start, r.size(), E820_RAM)).collect()
    }

    fn load_guest(_domain: &Domain<X86_64>, _request: &LoadRequest<'_>) -> Result<BootEntry, LoadError> {
        Err(LoadError::Unsupported("the PVH ELF loader and hvm_start_info are not implemented yet"))
    }
}

//! The guest-physical memory map of an x86 PVH domain and where the loader puts things.
//!
//! ```text
//! 0x0000_0000 .. 0x000a_0000   RAM
//! 0x000a_0000 .. 0x0010_0000   reserved (E820 type 2): the legacy VGA/BIOS window, which
//!                              holds Keel's boot tables:
//!     0x000e_0000              ACPI: RSDP, RSDT, XSDT, FADT, DSDT, MADT
//!     0x000f_0000              hvm_start_info, its memory map, module list, command line
//! 0x0010_0000 .. 3 GiB         RAM: the kernel's segments at their physical addresses, the
//!                              ramdisk at the top
//! 3 GiB .. 4 GiB               hole (the PV console ring at 0xfefff000, the guest's local
//!                              APIC at 0xfee0_0000)
//! 4 GiB ..                     the rest of the RAM
//! ```

use alloc::vec::Vec;
use keel_abi::memory::{E820Entry, E820_RAM, E820_RESERVED};
use keel_kernel::mm::Region;

/// RAM below 4 GiB ends where the MMIO hole begins (3 GiB); the rest starts at 4 GiB.
pub const LOW_RAM_END: u64 = 0xc000_0000;
pub const HIGH_RAM_START: u64 = 0x1_0000_0000;
/// The reserved window below 1 MiB.
pub const RESERVED: Region = Region { start: 0xa_0000, end: 0x10_0000 };
/// Where the ACPI tables start (the RSDP first), and how much room they have.
pub const ACPI_BASE: u64 = 0xe_0000;
pub const ACPI_SIZE: u64 = 0x1_0000;
/// Where `hvm_start_info` lies; its tables and the command line follow it.
pub const START_INFO: u64 = 0xf_0000;
pub const MEMMAP: u64 = START_INFO + 0x40;
pub const MODLIST: u64 = START_INFO + 0x400;
pub const CMDLINE: u64 = START_INFO + 0x800;
/// The longest command line (without its NUL) the window holds.
pub const MAX_CMDLINE: usize = (RESERVED.end - CMDLINE - 1) as usize;
/// The most memory-map entries the window holds before the module list.
pub const MAX_MEMMAP: usize = ((MODLIST - MEMMAP) / 24) as usize;
/// The frame of the PV console ring (`HVM_PARAM_CONSOLE_PFN`): the last page below
/// 0xff000000, in the hole, where Xen's toolstack puts its special pages.
pub const CONSOLE_GFN: u64 = 0xfefff;
/// The guest's local APIC (the MADT names it).
pub const LAPIC_BASE: u32 = 0xfee0_0000;
/// The least RAM a PVH guest gets: the low window plus 1 MiB.
pub const MIN_RAM: u64 = 2 << 20;

/// Guest RAM banks for `bytes` of RAM.
pub fn guest_ram(bytes: u64) -> Vec<Region> {
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

/// The E820 map of `ram`: RAM, with the window below 1 MiB reserved.
pub fn memory_map(ram: &[Region]) -> Vec<E820Entry> {
    let mut map = Vec::new();
    let mut push = |start: u64, end: u64, kind| {
        if end > start {
            map.push(E820Entry::new(start, end - start, kind));
        }
    };
    for r in ram {
        push(r.start, r.end.min(RESERVED.start), E820_RAM);
        push(r.start.max(RESERVED.start), r.end.min(RESERVED.end), E820_RESERVED);
        push(r.start.max(RESERVED.end), r.end, E820_RAM);
    }
    map
}

/// `(address, size, type)` of an entry.
pub fn entry(e: &E820Entry) -> (u64, u64, u32) {
    (e.addr[0] as u64 | (e.addr[1] as u64) << 32, e.size[0] as u64 | (e.size[1] as u64) << 32, e.kind)
}

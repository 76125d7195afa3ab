//! Turns the firmware's memory map into Keel's: RAM, the free part of it, the page Keel
//! reserves for the AP trampoline, and the ranges Keel's page tables must map.
//!
//! Free memory is usable RAM minus the low 1 MiB (firmware data, the trampoline), Keel's
//! image, the multiboot2 information and the modules. Everything the firmware marks as
//! anything but usable (ACPI tables, runtime services, holes) is never free.

use super::multiboot2::{mem_type, BootTags, MAX_MODULES};
use crate::acpi::AcpiInfo;
use crate::irq::lapic;
use crate::mmu::Kind;
use core::fmt;
use keel_kernel::mm::{MemoryMap, Region};

const PAGE: u64 = 4096;
const LOW_MEMORY_END: u64 = 1 << 20;
/// Real-mode start-up code must sit below the EBDA, which may begin anywhere above 0x80000.
const TRAMPOLINE_LIMIT: u64 = 0x9f000;

extern "C" {
    static __keel_image_start: u8;
    static __keel_image_end: u8;
}

/// Why no usable memory layout exists.
#[derive(Debug)]
pub enum Error {
    NoRam,
    MapTooLarge,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoRam => write!(f, "the memory map describes no usable RAM above 1 MiB"),
            Error::MapTooLarge => write!(f, "the memory map has more ranges than Keel can track"),
        }
    }
}

/// Keel's memory layout.
pub struct Plan {
    /// Bytes of RAM the firmware described (usable and ACPI memory).
    pub ram_bytes: u64,
    /// RAM nothing uses yet.
    pub free: MemoryMap,
    /// The page below 1 MiB reserved for the AP start-up code, if one was found.
    pub trampoline: Option<u64>,
    /// The ranges Keel's page tables map.
    pub mapped: Mapped,
}

/// Ranges to identity-map, with their memory kind.
pub struct Mapped {
    ranges: [(Region, Kind); 2 * MemoryMap::CAPACITY],
    len: usize,
}

impl Mapped {
    pub fn as_slice(&self) -> &[(Region, Kind)] {
        &self.ranges[..self.len]
    }

    fn add(&mut self, r: Region, kind: Kind) {
        assert!(self.len < self.ranges.len(), "too many ranges to map");
        if !r.is_empty() {
            self.ranges[self.len] = (r, kind);
            self.len += 1;
        }
    }
}

fn page_out(r: Region) -> Region {
    Region { start: r.start & !(PAGE - 1), end: r.end.next_multiple_of(PAGE) }
}

/// Keel's own image, from the linker script.
pub fn image() -> Region {
    let (start, end) = (&raw const __keel_image_start as u64, &raw const __keel_image_end as u64);
    Region { start, end }
}

pub fn plan(tags: &BootTags, acpi: Option<&AcpiInfo>, lapic_mode: lapic::Mode) -> Result<Plan, Error> {
    let mut ram = MemoryMap::new();
    let mut ram_bytes = 0u64;
    for e in tags.memory_map() {
        if matches!(e.ty, mem_type::AVAILABLE | mem_type::ACPI_RECLAIMABLE | mem_type::ACPI_NVS) {
            ram_bytes = ram_bytes.saturating_add(e.len);
        }
        if e.ty == mem_type::AVAILABLE {
            let start = e.base.next_multiple_of(PAGE);
            let end = e.base.saturating_add(e.len) & !(PAGE - 1);
            ram.add(Region { start, end });
        }
    }
    if ram.overflowed() {
        return Err(Error::MapTooLarge);
    }
    let mut reserved = [Region::default(); 2 + MAX_MODULES];
    reserved[0] = image();
    reserved[1] = page_out(tags.region);
    for (slot, m) in reserved[2..].iter_mut().zip(tags.modules()) {
        *slot = page_out(m.region);
    }
    let in_use = || reserved.iter().copied().filter(|r| !r.is_empty());

    let mut free = ram.clone();
    free.remove(Region { start: 0, end: LOW_MEMORY_END });
    for r in in_use() {
        free.remove(r);
    }
    if free.total() == 0 {
        return Err(Error::NoRam);
    }
    // The highest free RAM page below the EBDA (page 0 holds the real-mode IVT).
    let trampoline = ram.regions().iter().rev().find_map(|r| {
        let (low, mut top) = (r.start.max(PAGE), r.end.min(TRAMPOLINE_LIMIT) & !(PAGE - 1));
        while top >= low + PAGE {
            let p = top - PAGE;
            if in_use().all(|u| u.end <= p || u.start >= p + PAGE) {
                return Some(p);
            }
            top = p;
        }
        None
    });

    let mut plan = Plan {
        ram_bytes,
        free,
        trampoline,
        mapped: Mapped { ranges: [(Region::default(), Kind::Ram); 2 * MemoryMap::CAPACITY], len: 0 },
    };
    for r in ram.regions() {
        plan.mapped.add(*r, Kind::Ram);
    }
    for r in in_use() {
        plan.mapped.add(r, Kind::Ram);
    }
    if let lapic::Mode::XApic { base } = lapic_mode {
        plan.mapped.add(Region::new(base, PAGE), Kind::Device);
    }
    for &base in acpi.map(|a| a.ioapics()).unwrap_or(&[]) {
        plan.mapped.add(Region::new(base & !(PAGE - 1), PAGE), Kind::Device);
    }
    log::debug!(
        "memory: {} MiB RAM, {} MiB free in {} ranges, image {:#x}..{:#x}, trampoline page {:#x}",
        ram_bytes >> 20,
        plan.free.total() >> 20,
        plan.free.regions().len(),
        image().start,
        image().end,
        trampoline.unwrap_or(0)
    );
    Ok(plan)
}

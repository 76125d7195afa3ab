//! The multiboot2 boot information (Multiboot2 specification 1.0, section 3.6).
//!
//! GRUB passes the physical address of a block of 8-byte aligned tags. Every length is
//! checked against the block before it is used, so a malformed block is reported, never
//! followed out of bounds.

use core::fmt;
use keel_abi::wire::{read_u32_le, read_u64_le};
use keel_kernel::mm::Region;

/// The value in EAX when a multiboot2 loader enters Keel.
pub const BOOTLOADER_MAGIC: u32 = 0x36d7_6289;

/// Larger information blocks are refused as malformed.
const MAX_INFO_SIZE: u32 = 1 << 20;
/// At most this many modules are recorded.
pub const MAX_MODULES: usize = 16;

mod tag {
    pub const END: u32 = 0;
    pub const CMDLINE: u32 = 1;
    pub const BOOT_LOADER_NAME: u32 = 2;
    pub const MODULE: u32 = 3;
    pub const BASIC_MEMINFO: u32 = 4;
    pub const MMAP: u32 = 6;
    pub const EFI32_SYSTEM_TABLE: u32 = 11;
    pub const EFI64_SYSTEM_TABLE: u32 = 12;
    pub const ACPI_OLD: u32 = 14;
    pub const ACPI_NEW: u32 = 15;
    pub const EFI_MMAP: u32 = 17;
}

/// Memory-map entry types of the multiboot2 map (the E820 types).
pub mod mem_type {
    pub const AVAILABLE: u32 = 1;
    pub const ACPI_RECLAIMABLE: u32 = 3;
    pub const ACPI_NVS: u32 = 4;
}

/// Why the boot information cannot be used.
#[derive(Clone, Copy, Debug)]
pub enum Error {
    /// EAX did not hold the multiboot2 magic: not started by a multiboot2 loader.
    BadMagic(u32),
    /// The information block is at an address that is zero or not 8-byte aligned.
    BadAddress(u32),
    /// The block's total size is smaller than its header or implausibly large.
    BadSize(u32),
    /// A tag's size runs past the end of the block or is smaller than a tag header.
    BadTag { ty: u32, size: u32, offset: u32 },
    /// No end tag before the end of the block.
    NoEndTag,
    /// A memory-map tag whose entry size is too small to hold an entry.
    BadMemoryMap { entry_size: u32 },
    /// Neither a memory map (tag 6) nor an EFI memory map (tag 17).
    NoMemoryMap,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadMagic(m) => {
                write!(f, "EAX holds {m:#x}, not the multiboot2 magic {BOOTLOADER_MAGIC:#x}: not started by a multiboot2 loader")
            }
            Error::BadAddress(a) => write!(f, "boot information at {a:#x} is not a valid 8-byte aligned address"),
            Error::BadSize(s) => write!(f, "boot information claims {s} bytes (want 16..{MAX_INFO_SIZE})"),
            Error::BadTag { ty, size, offset } => {
                write!(f, "tag type {ty} at offset {offset:#x} has size {size}, which leaves the information block")
            }
            Error::NoEndTag => write!(f, "no end tag in the boot information"),
            Error::BadMemoryMap { entry_size } => write!(f, "memory-map entry size {entry_size} is too small"),
            Error::NoMemoryMap => write!(f, "no memory map (neither tag 6 nor the EFI memory map, tag 17)"),
        }
    }
}

/// A module the loader placed in memory.
#[derive(Clone, Copy, Debug)]
pub struct Module {
    pub region: Region,
    pub cmdline: &'static str,
}

/// One memory-map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEntry {
    pub base: u64,
    pub len: u64,
    /// Multiboot2 (E820) type; EFI maps are converted: usable memory becomes 1.
    pub ty: u32,
}

#[derive(Clone, Copy, Debug)]
enum MapSource {
    Multiboot { entries: &'static [u8], entry_size: usize },
    Efi { entries: &'static [u8], entry_size: usize },
}

/// What Keel takes from the boot information.
#[derive(Clone, Copy, Debug)]
pub struct BootTags {
    /// Where the information block itself lies (reserve it: strings point into it).
    pub region: Region,
    pub cmdline: &'static str,
    pub loader: &'static str,
    /// Basic memory information (KiB below 1 MiB, KiB above 1 MiB), if given.
    pub basic_meminfo: Option<(u32, u32)>,
    map: MapSource,
    /// Whether an EFI memory map was given too (for the log).
    pub efi_map_entries: usize,
    pub modules: [Option<Module>; MAX_MODULES],
    /// Modules beyond [`MAX_MODULES`], ignored.
    pub dropped_modules: usize,
    /// The loader's copies of the ACPI RSDP (version 1 and version 2 structures).
    pub rsdp_v1: Option<&'static [u8]>,
    pub rsdp_v2: Option<&'static [u8]>,
    /// An EFI system table tag was present: the machine booted through UEFI.
    pub uefi: bool,
    /// Tag types in order, for the debug log.
    pub tag_types: [u8; 32],
    pub tag_count: usize,
}

impl BootTags {
    /// The memory map, from tag 6 or else from the EFI memory map.
    pub fn memory_map(&self) -> impl Iterator<Item = MemoryEntry> {
        let (bytes, size, efi) = match self.map {
            MapSource::Multiboot { entries, entry_size } => (entries, entry_size, false),
            MapSource::Efi { entries, entry_size } => (entries, entry_size, true),
        };
        bytes.chunks_exact(size).map(move |e| if efi { efi_entry(e) } else { mb2_entry(e) })
    }

    /// Whether the map came from the EFI memory map (no tag 6).
    pub fn map_is_efi(&self) -> bool {
        matches!(self.map, MapSource::Efi { .. })
    }

    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.modules.iter().flatten()
    }
}

fn mb2_entry(e: &[u8]) -> MemoryEntry {
    MemoryEntry { base: read_u64_le(e, 0), len: read_u64_le(e, 8), ty: read_u32_le(e, 16) }
}

/// Converts an EFI memory descriptor (UEFI 2.x, 7.2): memory usable once boot services
/// have exited becomes type 1, everything else stays reserved (2), except the ACPI types.
fn efi_entry(e: &[u8]) -> MemoryEntry {
    const PAGE: u64 = 4096;
    let ty = match read_u32_le(e, 0) {
        1..=4 | 7 => mem_type::AVAILABLE, // loader code/data, boot services code/data, conventional
        9 => mem_type::ACPI_RECLAIMABLE,
        10 => mem_type::ACPI_NVS,
        _ => 2,
    };
    MemoryEntry { base: read_u64_le(e, 8), len: read_u64_le(e, 24).saturating_mul(PAGE), ty }
}

/// A NUL-terminated string in `b`; invalid UTF-8 becomes `"<invalid UTF-8>"`.
fn c_str(b: &'static [u8]) -> &'static str {
    let len = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    core::str::from_utf8(&b[..len]).unwrap_or("<invalid UTF-8>")
}

/// Parses the boot information at `addr` after checking `magic`.
///
/// # Safety
/// If `magic` is right, `addr` must be the address a multiboot2 loader passed in EBX, and
/// the block must stay untouched for the rest of Keel's life (the caller reserves it).
/// The memory must be mapped (the early identity map covers the low 4 GiB).
pub unsafe fn parse(magic: u32, addr: u32) -> Result<BootTags, Error> {
    if magic != BOOTLOADER_MAGIC {
        return Err(Error::BadMagic(magic));
    }
    if addr == 0 || !addr.is_multiple_of(8) {
        return Err(Error::BadAddress(addr));
    }
    // SAFETY: the loader promises 8 readable bytes at `addr` (total size, reserved).
    let total = unsafe { core::ptr::read_unaligned(addr as usize as *const u32) };
    if !(16..=MAX_INFO_SIZE).contains(&total) {
        return Err(Error::BadSize(total));
    }
    // SAFETY: the loader promises `total` bytes of information at `addr`; the caller keeps
    // them reserved for Keel's lifetime, so a 'static shared slice is sound.
    let info: &'static [u8] = unsafe { core::slice::from_raw_parts(addr as usize as *const u8, total as usize) };
    parse_block(info, addr as u64)
}

fn parse_block(info: &'static [u8], addr: u64) -> Result<BootTags, Error> {
    let mut tags = BootTags {
        region: Region::new(addr, info.len() as u64),
        cmdline: "",
        loader: "unknown multiboot2 loader",
        basic_meminfo: None,
        map: MapSource::Multiboot { entries: &[], entry_size: 24 },
        efi_map_entries: 0,
        modules: [None; MAX_MODULES],
        dropped_modules: 0,
        rsdp_v1: None,
        rsdp_v2: None,
        uefi: false,
        tag_types: [0; 32],
        tag_count: 0,
    };
    let (mut have_map, mut efi_map) = (false, None);
    let mut off = 8usize;
    loop {
        if off + 8 > info.len() {
            return Err(Error::NoEndTag);
        }
        let (ty, size) = (read_u32_le(info, off), read_u32_le(info, off + 4));
        if size < 8 || off + size as usize > info.len() {
            return Err(Error::BadTag { ty, size, offset: off as u32 });
        }
        let body: &'static [u8] = &info[off + 8..off + size as usize];
        if tags.tag_count < tags.tag_types.len() {
            tags.tag_types[tags.tag_count] = ty.min(255) as u8;
        }
        tags.tag_count += 1;
        let bad = || Error::BadTag { ty, size, offset: off as u32 };
        match ty {
            tag::END => break,
            tag::CMDLINE => tags.cmdline = c_str(body),
            tag::BOOT_LOADER_NAME => tags.loader = c_str(body),
            tag::BASIC_MEMINFO if body.len() >= 8 => {
                tags.basic_meminfo = Some((read_u32_le(body, 0), read_u32_le(body, 4)))
            }
            tag::MODULE => {
                if body.len() < 8 {
                    return Err(bad());
                }
                let (start, end) = (read_u32_le(body, 0) as u64, read_u32_le(body, 4) as u64);
                let module = Module { region: Region { start, end: end.max(start) }, cmdline: c_str(&body[8..]) };
                match tags.modules.iter_mut().find(|m| m.is_none()) {
                    Some(slot) => *slot = Some(module),
                    None => tags.dropped_modules += 1,
                }
            }
            tag::MMAP => {
                if body.len() < 8 {
                    return Err(bad());
                }
                let entry_size = read_u32_le(body, 0);
                if entry_size < 24 {
                    return Err(Error::BadMemoryMap { entry_size });
                }
                tags.map = MapSource::Multiboot { entries: &body[8..], entry_size: entry_size as usize };
                have_map = true;
            }
            tag::EFI_MMAP => {
                if body.len() < 8 {
                    return Err(bad());
                }
                let entry_size = read_u32_le(body, 0);
                if entry_size < 40 {
                    return Err(Error::BadMemoryMap { entry_size });
                }
                tags.efi_map_entries = (body.len() - 8) / entry_size as usize;
                efi_map = Some(MapSource::Efi { entries: &body[8..], entry_size: entry_size as usize });
            }
            tag::EFI32_SYSTEM_TABLE | tag::EFI64_SYSTEM_TABLE => tags.uefi = true,
            tag::ACPI_OLD => tags.rsdp_v1 = Some(body),
            tag::ACPI_NEW => tags.rsdp_v2 = Some(body),
            _ => {}
        }
        off += (size as usize).next_multiple_of(8);
    }
    if !have_map {
        tags.map = efi_map.ok_or(Error::NoMemoryMap)?;
    }
    Ok(tags)
}

//! Xen's PVH boot protocol (Xen `docs/misc/pvh.pandoc`): an ELF kernel with the
//! `XEN_ELFNOTE_PHYS32_ENTRY` note, loaded by its program headers at their physical
//! addresses, entered in 32-bit protected mode with `ebx` = `hvm_start_info`.
//!
//! [`prepare`] decides everything without touching the domain: which bytes go where
//! (segments, ramdisk, ACPI tables, `hvm_start_info` with its memory map, module list and
//! command line) and the entry point, or why the guest cannot be loaded. The caller only
//! copies. The kernel's ELF image is a [`KernelImage`]: a boot module's bytes, or the
//! window of the domain's own RAM a bzImage was decompressed into ([`scratch_window`]),
//! read through small copies of its headers and notes, never as a whole.

use super::acpi;
use crate::layout::{
    self, ACPI_BASE, ACPI_SIZE, CMDLINE, MAX_CMDLINE, MAX_MEMMAP, MEMMAP, MIN_RAM, MODLIST, RESERVED, START_INFO,
};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use keel_abi::start_info::{
    HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, HVM_START_INFO_VERSION, HVM_START_MAGIC_VALUE, SIF_INITDOMAIN,
    SIF_PRIVILEGED,
};
use keel_abi::Wire;
use keel_kernel::elf::{self, Elf, EM_386, EM_X86_64, PT_LOAD, PT_NOTE};
use keel_kernel::mm::Region;

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the physical address of the 32-bit PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// Page size and alignment of the ramdisk.
const PAGE: u64 = 4096;
/// The most vCPUs the MADT describes (8-bit xAPIC ids, 0xff is the broadcast id).
pub const MAX_VCPUS: u32 = 254;
/// How much of the image's start is read for its ELF header and program headers (the
/// most the reader accepts, 512 entries of 56 bytes, fits).
const HEAD: u64 = 64 << 10;
/// The largest note segment read (Linux's are a few hundred bytes).
const MAX_NOTES: u64 = 64 << 10;

/// A kernel's ELF image, wherever it is: a boot module's bytes, or guest RAM.
pub trait KernelImage {
    /// Its length in bytes.
    fn size(&self) -> u64;
    /// Copies `buf.len()` bytes from `offset` (within [`KernelImage::size`]); `Err` says
    /// why they cannot be read.
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), String>;
}

impl KernelImage for [u8] {
    fn size(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let start = usize::try_from(offset).map_err(|_| format!("offset {offset:#x} is outside the image"))?;
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| format!("[{offset:#x}, +{:#x}) is outside the image", buf.len()))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

/// The kernel's ELF image given to [`prepare`].
#[derive(Clone, Copy)]
pub enum Kernel<'a> {
    /// A boot module's bytes.
    Bytes(&'a [u8]),
    /// An image elsewhere (the loader's: a window of guest RAM).
    Elsewhere(&'a dyn KernelImage),
}

impl KernelImage for Kernel<'_> {
    fn size(&self) -> u64 {
        match self {
            Kernel::Bytes(b) => KernelImage::size(*b),
            Kernel::Elsewhere(e) => e.size(),
        }
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        match self {
            Kernel::Bytes(b) => KernelImage::read(*b, offset, buf),
            Kernel::Elsewhere(e) => e.read(offset, buf),
        }
    }
}

/// Where a domain's RAM can hold a decompressed kernel image of `len` bytes while it is
/// loaded: the top of its highest RAM bank that has room above 1 MiB, page aligned.
/// [`prepare`] (given it as [`Inputs::scratch`]) refuses a kernel whose segments land in
/// it; the ramdisk and tables may, as they are copied after the segments.
pub fn scratch_window(ram: &[Region], len: u64) -> Option<Region> {
    let size = len.checked_next_multiple_of(PAGE)?;
    ram.iter().rev().find_map(|bank| {
        let start = bank.end.checked_sub(size)? & !(PAGE - 1);
        (start >= bank.start.max(RESERVED.end)).then_some(Region { start, end: start + size })
    })
}

/// What the domain description gives the loader.
pub struct Inputs<'a> {
    /// Names of the kernel and ramdisk module nodes, for messages.
    pub kernel_node: &'a str,
    pub kernel: Kernel<'a>,
    pub ramdisk: Option<&'a [u8]>,
    pub cmdline: Option<&'a str>,
    pub vcpus: u32,
    /// The populated RAM banks, ascending.
    pub ram: &'a [Region],
    /// The initial domain (Xen's dom0): `hvm_start_info.flags` says so.
    pub initial: bool,
    /// RAM the kernel image itself occupies while it is loaded ([`scratch_window`]).
    pub scratch: Option<Region>,
}

/// Everything to copy into the domain, and where its boot vCPU starts.
pub struct BootImage<'a> {
    pub entry: u64,
    /// `ebx` at entry: the address of `hvm_start_info`.
    pub start_info: u64,
    /// Kernel segments: guest-physical address and where their file bytes are in the
    /// image (the rest of each segment is RAM that is already zero).
    pub segments: Vec<Placed>,
    pub ramdisk: Option<(u64, &'a [u8])>,
    /// Generated tables: ACPI, `hvm_start_info` and what it points at.
    pub tables: Vec<(u64, Vec<u8>)>,
}

/// Why a guest cannot be loaded: its image is wrong, or it does not fit.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    BadImage(String),
    TooLarge(String),
}

fn bad(s: String) -> Refusal {
    Refusal::BadImage(s)
}

/// A kernel segment's file bytes, `len` of them from `offset` in the image, go to
/// guest-physical `gpa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub gpa: u64,
    pub offset: u64,
    pub len: u64,
}

/// A loaded segment: `[paddr, paddr + memsz)` and where its file bytes are.
struct Load {
    at: Region,
    offset: u64,
    filesz: u64,
}

/// `len` bytes of `image` from `offset`, as a refusal naming `what` if they cannot be read.
fn read_image(node: &str, image: &dyn KernelImage, offset: u64, len: u64, what: &str) -> Result<Vec<u8>, Refusal> {
    let mut buf = alloc::vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    image.read(offset, &mut buf).map_err(|e| bad(format!("kernel {node}: cannot read its {what}: {e}")))?;
    Ok(buf)
}

/// The `XEN_ELFNOTE_PHYS32_ENTRY` notes of every note segment of `elf`, read from `image`.
fn entry_notes(node: &str, image: &dyn KernelImage, elf: &Elf<'_>) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut found = Vec::new();
    for (index, s) in elf.segments().enumerate().filter(|(_, s)| s.kind == PT_NOTE) {
        if s.filesz > MAX_NOTES {
            return Err(bad(format!(
                "kernel {node}: note segment {index} has {:#x} bytes, more than Keel reads",
                s.filesz
            )));
        }
        let bytes = read_image(node, image, s.offset, s.filesz, "notes")?;
        for n in elf::notes(&bytes) {
            let n = n.map_err(|()| {
                bad(format!(
                    "kernel {node} is not a usable ELF image: a note in program header {index} runs past its segment"
                ))
            })?;
            if n.owner == b"Xen" && n.kind == XEN_ELFNOTE_PHYS32_ENTRY {
                found.push(n.desc.to_vec());
            }
        }
    }
    Ok(found)
}

/// The kernel's entry point and loadable segments, checked against the image itself.
fn kernel(node: &str, image: &dyn KernelImage) -> Result<(u64, Vec<Load>), Refusal> {
    let head = read_image(node, image, 0, image.size().min(HEAD), "ELF header")?;
    let elf = Elf::parse_head(&head, image.size())
        .map_err(|e| bad(format!("kernel {node} is not a usable ELF image: {e}")))?;
    if elf.machine != EM_X86_64 && elf.machine != EM_386 {
        return Err(bad(format!("kernel {node}: ELF machine {} is not x86 (3 or 62)", elf.machine)));
    }
    let found = entry_notes(node, image, &elf)?;
    let mut notes = found.iter();
    let Some(note) = notes.next() else {
        // A 32-bit kernel with the note is a PVH kernel like any other (Xen boots them
        // too); one without it is most often a distribution's i386 kernel built without
        // Xen (Debian's `686` flavour): say so.
        let class = if elf.is_64bit() { "" } else { " (a 32-bit ELF: an i386 kernel built without Xen PVH support)" };
        return Err(bad(format!(
            "kernel {node} has no XEN_ELFNOTE_PHYS32_ENTRY note (type 18, owner \"Xen\"): not a PVH kernel{class}"
        )));
    };
    let entry = match note.len() {
        4 => u64::from(u32::from_le_bytes(note[..].try_into().unwrap_or_default())),
        8 => u64::from_le_bytes(note[..].try_into().unwrap_or_default()),
        n => {
            return Err(bad(format!(
                "kernel {node}: the PHYS32_ENTRY note holds {n} bytes, not a 4- or 8-byte address"
            )))
        }
    };
    if notes.next().is_some() {
        return Err(bad(format!("kernel {node} has two PHYS32_ENTRY notes")));
    }
    if entry >= 1 << 32 {
        return Err(bad(format!("kernel {node}: the 32-bit entry point {entry:#x} lies above 4 GiB")));
    }
    let mut loads: Vec<Load> = Vec::new();
    for s in elf.segments().filter(|s| s.kind == PT_LOAD && s.memsz > 0) {
        let end = s.paddr.checked_add(s.memsz).ok_or_else(|| {
            bad(format!("kernel {node}: a segment at {:#x} of {:#x} bytes wraps around", s.paddr, s.memsz))
        })?;
        let at = Region { start: s.paddr, end };
        if let Some(other) = loads.iter().find(|l| l.at.start < end && s.paddr < l.at.end) {
            return Err(bad(format!(
                "kernel {node}: segments [{:#x}, {:#x}) and [{:#x}, {:#x}) overlap",
                other.at.start, other.at.end, at.start, at.end
            )));
        }
        loads.push(Load { at, offset: s.offset, filesz: s.filesz });
    }
    if loads.is_empty() {
        return Err(bad(format!("kernel {node} has no loadable segment")));
    }
    if !loads.iter().any(|l| l.at.start <= entry && entry < l.at.start + l.filesz) {
        return Err(bad(format!("kernel {node}: the entry point {entry:#x} is not in a loaded segment")));
    }
    Ok((entry, loads))
}

fn inside_ram(r: Region, ram: &[Region]) -> bool {
    ram.iter().any(|b| b.start <= r.start && r.end <= b.end)
}

fn overlaps(a: Region, b: Region) -> bool {
    a.start < b.end && b.start < a.end
}

/// Lays out and checks everything for one guest.
pub fn prepare<'a>(i: &Inputs<'a>) -> Result<BootImage<'a>, Refusal> {
    let ram_bytes: u64 = i.ram.iter().map(|r| r.size()).sum();
    let low = i.ram.first().copied().filter(|r| r.start == 0 && r.end >= MIN_RAM).ok_or_else(|| {
        Refusal::TooLarge(format!("a PVH guest needs at least {} MiB of RAM from address 0", MIN_RAM >> 20))
    })?;
    if i.vcpus == 0 || i.vcpus > MAX_VCPUS {
        return Err(Refusal::TooLarge(format!("{} vCPUs: an x86 guest has 1 to {MAX_VCPUS}", i.vcpus)));
    }
    let (entry, loads) = kernel(i.kernel_node, &i.kernel)?;
    for l in &loads {
        if !inside_ram(l.at, i.ram) || overlaps(l.at, RESERVED) {
            return Err(Refusal::TooLarge(format!(
                "kernel {}: the segment [{:#x}, {:#x}) is not in the guest's RAM above 1 MiB ({} MiB)",
                i.kernel_node,
                l.at.start,
                l.at.end,
                ram_bytes >> 20
            )));
        }
        if let Some(w) = i.scratch.filter(|&w| overlaps(l.at, w)) {
            return Err(Refusal::TooLarge(format!(
                "kernel {}: the segment [{:#x}, {:#x}) meets [{:#x}, {:#x}), where the decompressed kernel lies while it is loaded: the guest's {} MiB of RAM are too few for both",
                i.kernel_node,
                l.at.start,
                l.at.end,
                w.start,
                w.end,
                ram_bytes >> 20
            )));
        }
    }
    let kernel_top = loads.iter().map(|l| l.at.end).filter(|&e| e <= low.end).max().unwrap_or(0);
    let ramdisk = match i.ramdisk {
        None => None,
        Some(bytes) => {
            let size = (bytes.len() as u64).next_multiple_of(PAGE);
            let at = low.end.checked_sub(size).map(|a| a & !(PAGE - 1));
            match at {
                Some(at) if at >= kernel_top.max(RESERVED.end) => Some((at, bytes)),
                _ => {
                    return Err(Refusal::TooLarge(format!(
                        "a ramdisk of {} KiB does not fit between the kernel's end at {kernel_top:#x} and the end of low RAM at {:#x}",
                        bytes.len() >> 10,
                        low.end
                    )))
                }
            }
        }
    };
    let cmdline = i.cmdline.unwrap_or("");
    if cmdline.len() > MAX_CMDLINE || cmdline.contains('\0') {
        return Err(Refusal::TooLarge(format!(
            "the command line has {} bytes; PVH guests take at most {MAX_CMDLINE} without NULs",
            cmdline.len()
        )));
    }
    let map = layout::memory_map(i.ram);
    if map.len() > MAX_MEMMAP {
        return Err(Refusal::TooLarge(format!("{} memory-map entries, at most {MAX_MEMMAP}", map.len())));
    }
    let acpi = acpi::build(ACPI_BASE, i.vcpus);
    assert!(acpi.bytes.len() as u64 <= ACPI_SIZE, "ACPI tables outgrew their window");

    let mut tables = Vec::new();
    let memmap: Vec<u8> = map
        .iter()
        .flat_map(|e| {
            let (addr, size, kind) = layout::entry(e);
            encode(&HvmMemmapTableEntry { addr, size, kind, reserved: 0 })
        })
        .collect();
    tables.push((MEMMAP, memmap));
    if let Some((at, bytes)) = ramdisk {
        let m = HvmModlistEntry { paddr: at, size: bytes.len() as u64, cmdline_paddr: 0, reserved: 0 };
        tables.push((MODLIST, encode(&m)));
    }
    let mut line = Vec::from(cmdline.as_bytes());
    line.push(0);
    tables.push((CMDLINE, line));
    let info = HvmStartInfo {
        magic: HVM_START_MAGIC_VALUE,
        version: HVM_START_INFO_VERSION,
        flags: if i.initial { SIF_PRIVILEGED | SIF_INITDOMAIN } else { 0 },
        nr_modules: ramdisk.is_some() as u32,
        modlist_paddr: if ramdisk.is_some() { MODLIST } else { 0 },
        cmdline_paddr: if i.cmdline.is_some() { CMDLINE } else { 0 },
        rsdp_paddr: acpi.rsdp,
        memmap_paddr: MEMMAP,
        memmap_entries: map.len() as u32,
        reserved: 0,
    };
    tables.push((START_INFO, encode(&info)));
    tables.push((ACPI_BASE, acpi.bytes));
    Ok(BootImage {
        entry,
        start_info: START_INFO,
        segments: loads.iter().map(|l| Placed { gpa: l.at.start, offset: l.offset, len: l.filesz }).collect(),
        ramdisk,
        tables,
    })
}

fn encode<T: Wire>(v: &T) -> Vec<u8> {
    let mut b = alloc::vec![0u8; T::SIZE];
    v.write_bytes(&mut b).expect("the buffer has the struct's size");
    b
}

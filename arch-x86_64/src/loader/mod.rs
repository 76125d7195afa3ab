//! The x86_64 guest boot protocol: Xen's PVH ([`pvh`]) with the memory map of
//! [`crate::layout`] and the ACPI tables of [`acpi`].

pub mod acpi;
pub mod pvh;

#[cfg(test)]
mod tests;

use crate::{layout, X86_64};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use keel_abi::layout::{GuestLayout, X86_64 as X86_64_LAYOUT};
use keel_abi::memory::E820Entry;
use keel_kernel::arch::{BootEntry, GuestAbi, GuestLoader, LoadError, LoadRequest};
use keel_kernel::bzimage;
use keel_kernel::config::Module;
use keel_kernel::domain::Domain;
use keel_kernel::mm::{GuestPhysAddr, Region};

impl GuestAbi for X86_64 {
    const LAYOUT: &'static GuestLayout = &X86_64_LAYOUT;
    /// Xen's PVH special page for xenstore (`SPECIALPAGE_XENSTORE` below 0xff000).
    const STORE_GFN: Option<u64> = Some(keel_abi::xenstore::X86_STORE_GFN);
    const PV_CONSOLE_GFN: Option<u64> = Some(layout::CONSOLE_GFN);
}

/// The bytes of a module: one the boot loader passed, or with `staged` a staging block of
/// the frame pool (`LoadRequest::staged`).
fn module(m: &Module, staged: bool) -> Result<&'static [u8], LoadError> {
    if staged {
        return crate::memory::staged_bytes(m.region)
            .ok_or_else(|| LoadError::MissingModule(format!("{} is not in the frame pool", m.node)));
    }
    crate::boot::module_bytes(m.region)
        .ok_or_else(|| LoadError::BadImage(format!("{} is not in a module the boot loader passed", m.node)))
}

/// The largest kernel ELF image a bzImage may decompress to.
const MAX_VMLINUX: usize = 256 << 20;
/// The bounce buffer guest-to-guest copies and clearing go through.
const BOUNCE: usize = 64 << 10;

/// A bzImage's ELF image, decompressed into `window` of the domain's RAM.
struct InGuest<'d> {
    domain: &'d Domain<X86_64>,
    window: Region,
    len: u64,
}

impl pvh::KernelImage for InGuest<'_> {
    fn size(&self) -> u64 {
        self.len
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let inside = offset.checked_add(buf.len() as u64).is_some_and(|end| end <= self.len);
        if !inside {
            return Err(format!("[{offset:#x}, +{:#x}) is outside the {}-byte image", buf.len(), self.len));
        }
        self.domain.read_phys(self.window.start + offset, buf).map_err(|e| format!("{e:?}"))
    }
}

/// Decompresses a bzImage's payload into the top of the domain's RAM ([`pvh::scratch_window`]),
/// chunk by chunk; `None` for an ELF kernel, which is loaded from its module as it is.
fn decompress_into_guest<'d>(
    domain: &'d Domain<X86_64>,
    node: &str,
    kernel: &[u8],
    ram: &[Region],
) -> Result<Option<InGuest<'d>>, LoadError> {
    if !bzimage::is_bzimage(kernel) {
        return Ok(None);
    }
    let p = bzimage::payload(kernel).map_err(|e| LoadError::BadImage(format!("kernel {node} (bzImage): {e}")))?;
    let len = u64::from(p.len);
    let ram_bytes: u64 = ram.iter().map(|r| r.size()).sum();
    let window = pvh::scratch_window(ram, len).ok_or_else(|| {
        LoadError::TooLarge(format!(
            "kernel {node} (bzImage): it decompresses to {} KiB, more than the guest's {} MiB of RAM above 1 MiB hold",
            len >> 10,
            ram_bytes >> 20
        ))
    })?;
    log::info!(
        "kernel {node}: bzImage, {:?} payload of {} KiB to {} KiB at guest-physical {:#x}",
        p.compression,
        p.stream.len() >> 10,
        len >> 10,
        window.start
    );
    let mut sink = |at: u64, chunk: &[u8]| {
        // The decoder never passes the announced length, which the window holds.
        let gpa = window.start.checked_add(at).filter(|g| g.saturating_add(chunk.len() as u64) <= window.end);
        let gpa = gpa.ok_or_else(|| format!("{} bytes at {at:#x} overflow the window", chunk.len()))?;
        domain.write_phys(gpa, chunk).map_err(|e| format!("guest-physical {gpa:#x}: {e:?}"))
    };
    bzimage::decompress_into(&p, MAX_VMLINUX, &mut sink).map_err(|e| match e {
        bzimage::BzImageError::OutOfMemory(_) | bzimage::BzImageError::TooLarge { .. } => {
            LoadError::TooLarge(format!("kernel {node} (bzImage): {e}"))
        }
        e => LoadError::BadImage(format!("kernel {node} (bzImage): {e}")),
    })?;
    Ok(Some(InGuest { domain, window, len }))
}

/// Copies `len` bytes of the domain's RAM from `from` to `to` (ranges that do not meet),
/// or clears them (`from` is `None`), through a bounce buffer.
fn copy_within(domain: &Domain<X86_64>, from: Option<u64>, to: u64, len: u64) -> Result<(), LoadError> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(BOUNCE).map_err(|_| LoadError::TooLarge("no heap left for a 64 KiB bounce buffer".into()))?;
    buf.resize(BOUNCE, 0);
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(BOUNCE as u64) as usize;
        let fault =
            |e| LoadError::TooLarge(format!("cannot copy {n} bytes in the guest's RAM to {:#x} ({e:?})", to + done));
        if let Some(from) = from {
            domain.read_phys(from + done, &mut buf[..n]).map_err(fault)?;
        }
        domain.write_phys(to + done, &buf[..n]).map_err(fault)?;
        done += n as u64;
    }
    Ok(())
}

impl GuestLoader for X86_64 {
    fn guest_ram(bytes: u64) -> Vec<Region> {
        layout::guest_ram(bytes)
    }

    fn memory_map(ram: &[Region]) -> Vec<E820Entry> {
        layout::memory_map(ram)
    }

    fn load_guest(domain: &Domain<X86_64>, request: &LoadRequest<'_>) -> Result<BootEntry, LoadError> {
        let c = request.config;
        let staged = request.staged;
        let module_bytes = module(&c.kernel, staged)?;
        let in_guest = decompress_into_guest(domain, &c.kernel.node, module_bytes, request.ram)?;
        let kernel = match &in_guest {
            Some(g) => pvh::Kernel::Elsewhere(g),
            None => pvh::Kernel::Bytes(module_bytes),
        };
        let inputs = pvh::Inputs {
            kernel_node: &c.kernel.node,
            kernel,
            ramdisk: c.ramdisk.as_ref().map(|m| module(m, staged)).transpose()?,
            cmdline: c.bootargs.as_deref(),
            vcpus: c.vcpus,
            ram: request.ram,
            initial: domain.config().initial,
            scratch: in_guest.as_ref().map(|g| g.window),
        };
        let image = pvh::prepare(&inputs).map_err(|r| match r {
            pvh::Refusal::BadImage(s) => LoadError::BadImage(s),
            pvh::Refusal::TooLarge(s) => LoadError::TooLarge(s),
        })?;
        let copy = |gpa: u64, bytes: &[u8]| {
            domain.write_phys(gpa, bytes).map_err(|e| {
                LoadError::TooLarge(format!("cannot copy {} bytes to guest-physical {gpa:#x} ({e:?})", bytes.len()))
            })
        };
        // Segments first, from the module or from the window; then the window is cleared
        // (the guest gets its RAM zeroed, as it was), and only then the ramdisk and tables,
        // which may lie in it.
        for s in &image.segments {
            match &in_guest {
                Some(g) => copy_within(domain, Some(g.window.start + s.offset), s.gpa, s.len)?,
                None => {
                    let bytes = usize::try_from(s.offset)
                        .ok()
                        .zip(usize::try_from(s.offset + s.len).ok())
                        .and_then(|(a, b)| module_bytes.get(a..b))
                        .ok_or_else(|| {
                            LoadError::BadImage(format!("kernel {}: a segment lies outside it", c.kernel.node))
                        })?;
                    copy(s.gpa, bytes)?;
                }
            }
        }
        if let Some(g) = &in_guest {
            copy_within(domain, None, g.window.start, g.window.size())?;
        }
        if let Some((gpa, bytes)) = image.ramdisk {
            copy(gpa, bytes)?;
        }
        for (gpa, bytes) in &image.tables {
            copy(*gpa, bytes)?;
        }
        log::debug!(
            "d{}: PVH kernel {} entry {:#x}, {} segment(s), ramdisk {:?}",
            domain.id(),
            c.kernel.node,
            image.entry,
            image.segments.len(),
            image.ramdisk.map(|(a, b)| (a, b.len()))
        );
        Ok(BootEntry { entry: GuestPhysAddr(image.entry), arg: image.start_info })
    }
}

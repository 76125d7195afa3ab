//! The x86_64 guest boot protocol: Xen's PVH ([`pvh`]) with the memory map of
//! [`crate::layout`] and the ACPI tables of [`acpi`].

pub mod acpi;
pub mod pvh;

#[cfg(test)]
mod tests;

use crate::{layout, X86_64};
use alloc::format;
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

/// The ELF image inside a bzImage kernel, decompressed (`None` for an ELF kernel, which is
/// loaded as it is).
fn bzimage_payload(node: &str, kernel: &[u8]) -> Result<Option<Vec<u8>>, LoadError> {
    if !bzimage::is_bzimage(kernel) {
        return Ok(None);
    }
    let p = bzimage::payload(kernel).map_err(|e| LoadError::BadImage(format!("kernel {node} (bzImage): {e}")))?;
    log::info!(
        "kernel {node}: bzImage, {:?} payload of {} KiB to {} KiB",
        p.compression,
        p.stream.len() >> 10,
        p.len >> 10
    );
    bzimage::decompress(&p, MAX_VMLINUX).map(Some).map_err(|e| match e {
        bzimage::BzImageError::OutOfMemory(_) | bzimage::BzImageError::TooLarge { .. } => {
            LoadError::TooLarge(format!("kernel {node} (bzImage): {e}"))
        }
        e => LoadError::BadImage(format!("kernel {node} (bzImage): {e}")),
    })
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
        let vmlinux = bzimage_payload(&c.kernel.node, module(&c.kernel, staged)?)?;
        let inputs = pvh::Inputs {
            kernel_node: &c.kernel.node,
            kernel: vmlinux.as_deref().map_or_else(|| module(&c.kernel, staged), Ok)?,
            ramdisk: c.ramdisk.as_ref().map(|m| module(m, staged)).transpose()?,
            cmdline: c.bootargs.as_deref(),
            vcpus: c.vcpus,
            ram: request.ram,
            initial: domain.config().initial,
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
        for &(gpa, bytes) in &image.segments {
            copy(gpa, bytes)?;
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

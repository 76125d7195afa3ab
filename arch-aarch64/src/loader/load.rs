//! [`GuestLoader`] and [`GuestAbi`] for arm64: the kernel module is parsed as a Linux
//! arm64 `Image` (inflated first if gzip-compressed), copied with the ramdisk and a
//! generated device tree into the domain's RAM, and vCPU 0 starts at the kernel with
//! x0 = the tree, MMU off (Linux boot protocol; `Vcpu::new` sets x1-x3 to 0).

use super::device_tree::{GuestGic, GuestTree};
use super::{image, placement};
use crate::layout::{GICC_BASE, GICC_SIZE, GNTTAB_SIZE, RAM_BANKS};
use crate::{cache, cpu, dt, irq, Aarch64};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use keel_abi::layout::{GuestLayout, AARCH64};
use keel_abi::memory::E820Entry;
use keel_kernel::arch::{BootEntry, GuestAbi, GuestLoader, LoadError, LoadRequest, Perms};
use keel_kernel::config::Module;
use keel_kernel::domain::Domain;
use keel_kernel::gzip;
use keel_kernel::mm::FRAME_POOL;
use keel_kernel::mm::{GuestPhysAddr, PhysAddr, Region, PAGE_SIZE};

impl GuestAbi for Aarch64 {
    const LAYOUT: &'static GuestLayout = &AARCH64;
    /// Xen's console magic page (`GUEST_MAGIC_BASE` + 0).
    const PV_CONSOLE_GFN: Option<u64> = Some(crate::layout::MAGIC_BASE >> 12);
    /// Xen's store page (`GUEST_MAGIC_BASE` + `XENSTORE_PFN_OFFSET`).
    const STORE_GFN: Option<u64> = Some(keel_abi::xenstore::ARM_STORE_GFN);
}

/// A module's bytes, if it lies in RAM Keel mapped: a boot module (reserved at boot:
/// never handed to the frame pool, never freed), or with `staged` a staging block of the
/// frame pool (`LoadRequest::staged`), which the builder holds until the load returns.
fn module_bytes(m: &Module, staged: bool) -> Result<&'static [u8], LoadError> {
    let p = dt::platform();
    let r = m.region;
    let in_ram = p.ram.regions().iter().any(|ram| ram.start <= r.start && r.end <= ram.end);
    let no_map = p.no_map.regions().iter().any(|n| n.start < r.end && r.start < n.end);
    let in_pool = FRAME_POOL.contains(PhysAddr(r.start), r.size());
    if r.start >= r.end || !in_ram || no_map || staged != in_pool {
        let why = if r.start >= r.end { "is empty" } else { "is not in RAM Keel can read" };
        return Err(LoadError::MissingModule(format!("{}: [{:#x}, {:#x}) {why}", m.node, r.start, r.end)));
    }
    // SAFETY: the region lies in RAM that boot mapped (RAM minus no-map reservations),
    // either reserved for the module at boot or a staging block of the pool that the
    // builder owns for the whole load, so nothing else writes it while this reads it.
    Ok(unsafe { core::slice::from_raw_parts(r.start as *const u8, r.size() as usize) })
}

/// Copies `bytes` to guest-physical `gpa`, where the guest reads it with its MMU off and
/// may execute it. The write itself reaches the point of coherency (`HostRam::write`:
/// cleaned there, or RAM forced write-back); with forced write-back, instruction fetches
/// still need the lines cleaned to the point of unification unless `CTR_EL0.IDC` says
/// otherwise. (vCPU creation invalidates the instruction cache.)
fn copy_in(d: &Domain<Aarch64>, gpa: u64, bytes: &[u8], what: &str) -> Result<(), LoadError> {
    const CHUNK: usize = 1 << 20;
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        let at = gpa + (i * CHUNK) as u64;
        d.write_phys(at, chunk).map_err(|e| LoadError::TooLarge(format!("{what} at {at:#x}: {e:?}")))?;
    }
    if cpu::fwb() && !cache::idc() {
        let mut page = gpa & !(PAGE_SIZE - 1);
        while page < gpa + bytes.len() as u64 {
            if let Some(l) = d.lookup(page / PAGE_SIZE) {
                cache::clean_to_pou(l.frame.0 as usize, PAGE_SIZE as usize);
            }
            page += PAGE_SIZE;
        }
    }
    Ok(())
}

/// GICv2: the host's virtual CPU interface (GICV) appears at the guest's GICC address.
fn map_gicv(d: &Domain<Aarch64>) -> Result<(), LoadError> {
    let Some(gicv) = dt::platform().gic.vcpu_if.filter(|r| r.size() >= GICC_SIZE) else {
        return Err(LoadError::Unsupported("the GICv2 has no virtual CPU interface (GICV) in the device tree"));
    };
    d.map_device(&FRAME_POOL, GuestPhysAddr(GICC_BASE), PhysAddr(gicv.start), GICC_SIZE, Perms::RW)
        .map_err(|e| LoadError::TooLarge(format!("cannot map the virtual CPU interface: {e:?}")))
}

/// The Image header of a kernel module, inflating the start of a gzip-compressed one
/// (`vmlinuz`, as distributions ship it); its size then comes from the gzip trailer.
fn kernel_header(kernel: &[u8]) -> Result<image::Image, String> {
    if !gzip::is_gzip(kernel) {
        return image::parse(kernel).map_err(|e| e.to_string());
    }
    let mut head = Vec::with_capacity(image::HEADER_LEN);
    let stop = gzip::inflate(kernel, |chunk| {
        let want = image::HEADER_LEN - head.len();
        head.extend_from_slice(&chunk[..want.min(chunk.len())]);
        if head.len() < image::HEADER_LEN {
            Ok(())
        } else {
            Err("header read")
        }
    });
    match stop {
        Err(gzip::GzipError::Sink(_)) => {}
        Err(e) => return Err(format!("gzip-compressed kernel: {e}")),
        // The whole stream was shorter than a header.
        Ok(_) => {}
    }
    let len = gzip::announced_len(kernel).unwrap_or(0) as u64;
    image::parse_header(&head, len).map_err(|e| format!("gzip-compressed kernel: {e}"))
}

/// Inflates a gzip-compressed kernel into guest RAM at `gpa`, refusing it if it turns out
/// longer than the `room` its header and trailer announced, or damaged.
fn inflate_in(d: &Domain<Aarch64>, gpa: u64, kernel: &[u8], room: u64) -> Result<(), String> {
    let mut at = gpa;
    gzip::inflate(kernel, |chunk| {
        if at - gpa + chunk.len() as u64 > room {
            return Err(format!("the gzip-compressed kernel inflates past the {room} bytes it announced"));
        }
        copy_in(d, at, chunk, "the kernel").map_err(|e| format!("{e:?}"))?;
        at += chunk.len() as u64;
        Ok(())
    })
    .map_err(|e| format!("gzip-compressed kernel: {e}"))?;
    Ok(())
}

/// Linux's arm64 Image protocol with a generated device tree (`docs/loader.md`): RAM in
/// Xen's `GUEST_RAM0`/`GUEST_RAM1` banks, no `XENMEM_memory_map` (the tree describes
/// memory), the tree's address as the boot argument (x0).
impl GuestLoader for Aarch64 {
    /// The devices of a partial tree are checked, claimed and mapped
    /// (`loader/passthrough.rs`) and their nodes copied into the guest's tree.
    const PASSTHROUGH: bool = true;
    const VIRTUAL_UART: bool = true;

    /// Fills bank 0 (3 GiB at 1 GiB), then bank 1 (at 8 GiB), as Xen does.
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

    fn load_guest(d: &Domain<Aarch64>, req: &LoadRequest<'_>) -> Result<BootEntry, LoadError> {
        let config = req.config;
        let kernel = module_bytes(&config.kernel, req.staged)?;
        let node = &config.kernel.node;
        let image = kernel_header(kernel).map_err(|e| LoadError::BadImage(format!("{node}: {e}")))?;
        let initrd = config.ramdisk.as_ref().map(|m| module_bytes(m, req.staged)).transpose()?;
        let partial = config.device_tree.as_ref().map(|m| module_bytes(m, req.staged)).transpose()?;
        let plan = placement::plan(req.ram, &image, initrd.map(|r| r.len() as u64)).map_err(|need| {
            LoadError::TooLarge(format!("kernel, device tree and ramdisk need {} KiB of RAM", need.div_ceil(1024)))
        })?;
        if d.config().max_grant_frames as u64 * PAGE_SIZE > GNTTAB_SIZE {
            return Err(LoadError::TooLarge(String::from("more grant frames than the 16 MiB grant window holds")));
        }
        let gic = match irq::version() {
            Some(2) => GuestGic::V2,
            _ => GuestGic::V3,
        };
        let tree = GuestTree {
            ram: req.ram,
            vcpus: config.vcpus,
            gic,
            bootargs: config.bootargs.as_deref(),
            initrd: plan.initrd.zip(initrd).map(|(at, r)| (at, at + r.len() as u64)),
            vpl011: config.vpl011,
            passthrough: partial,
        }
        .build()
        .map_err(|e| LoadError::BadImage(format!("cannot write the guest device tree: {e}")))?;
        if tree.len() as u64 > placement::DTB_MAX {
            return Err(LoadError::TooLarge(format!("the guest device tree takes {} bytes", tree.len())));
        }
        if gic == GuestGic::V2 {
            map_gicv(d)?;
        }
        if let (Some(m), Some(bytes)) = (&config.device_tree, partial) {
            super::passthrough::give_devices(d, config, &m.node, bytes, gic)?;
        }
        if gzip::is_gzip(kernel) {
            inflate_in(d, plan.kernel, kernel, image.image_size)
                .map_err(|e| LoadError::BadImage(format!("{node}: {e}")))?;
        } else {
            copy_in(d, plan.kernel, kernel, "the kernel")?;
        }
        copy_in(d, plan.dtb, &tree, "the device tree")?;
        if let (Some(at), Some(bytes)) = (plan.initrd, initrd) {
            copy_in(d, at, bytes, "the ramdisk")?;
        }
        log::debug!(
            "d{}: kernel at {:#x} ({} KiB), device tree at {:#x}, ramdisk at {:?}",
            d.id(),
            plan.kernel,
            image.image_size / 1024,
            plan.dtb,
            plan.initrd
        );
        Ok(BootEntry { entry: GuestPhysAddr(plan.kernel), arg: plan.dtb })
    }
}

//! A domain's passthrough devices on arm64 (Xen's dom0less binding, checked by
//! [`keel_kernel::passthrough`]): the partial tree read and held against the host tree,
//! Keel's own devices and every other domain's, then its `xen,reg` ranges mapped as
//! device memory, and its interrupts (host SPIs) given to its virtual GIC as
//! hardware-linked SPIs of the same numbers and recorded for the builder, which routes
//! them to the domain ([`keel_kernel::hypervisor::Hypervisor::route_device_irqs`]). The
//! `/passthrough` nodes go into the guest's tree
//! ([`super::device_tree::GuestTree::passthrough`]).

use super::device_tree::GuestGic;
use crate::layout::*;
use crate::{dt, irq, Aarch64};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use keel_kernel::arch::LoadError;
use keel_kernel::config::DomainConfig as BootConfig;
use keel_kernel::domain::Domain;
use keel_kernel::mm::{Region, FRAME_POOL};
use keel_kernel::passthrough::assign::{map_mmio, Claims};
use keel_kernel::passthrough::check::HostUse;
use keel_kernel::passthrough::{host, partial, Device, Request};
use spin::Mutex;

/// Which domain holds which devices, across every domain built.
static CLAIMS: Mutex<Claims> = Mutex::new(Claims::new());

fn refused(node: &str, errors: Vec<String>) -> LoadError {
    LoadError::BadImage(format!("{node}: device passthrough refused: {}", errors.join("; ")))
}

/// Reads and checks the passthrough request in `partial_tree` (the domain's
/// `multiboot,device-tree` module), claims its devices for the domain and maps their
/// MMIO into `d`. On error nothing is claimed.
pub fn give_devices(
    d: &Domain<Aarch64>,
    config: &BootConfig,
    module: &str,
    partial_tree: &[u8],
    gic: GuestGic,
) -> Result<(), LoadError> {
    let devices = partial::parse(partial_tree, module).map_err(|e| refused(&config.node, e))?;
    let Some(host_tree) = dt::tree() else {
        return Err(refused(&config.node, alloc::vec![String::from("boot kept no host device tree")]));
    };
    let problems = host::resolve(&devices, host_tree, module);
    if !problems.is_empty() {
        return Err(refused(&config.node, problems));
    }
    let request = Request {
        domain: config.name.clone(),
        node: config.node.clone(),
        direct_map: config.direct_map.clone(),
        guest_used: guest_used(gic, config.vcpus, config.vpl011),
        devices: devices.clone(),
    };
    CLAIMS.lock().claim(request, &host_use(host_tree)).map_err(|e| refused(&config.node, e))?;
    if let Err(e) = map_mmio(d, &FRAME_POOL, &devices) {
        CLAIMS.lock().release(&config.node);
        return Err(refused(&config.node, alloc::vec![e]));
    }
    let irqs: Vec<u32> = devices.iter().flat_map(|dev| dev.irqs.iter().copied()).collect();
    let left = d.arch().vgic.lock().add_hw_spis(&irqs);
    if !left.is_empty() {
        // The checks took only SPIs of the host's GIC, which the virtual GIC can number.
        CLAIMS.lock().release(&config.node);
        return Err(refused(&config.node, alloc::vec![format!("interrupts {left:?} are not SPIs a virtual GIC has")]));
    }
    d.set_device_irqs(irqs.clone());
    log::info!(
        "d{}: {} passthrough device(s) from {module}: {}; SPIs {irqs:?}",
        d.id(),
        devices.len(),
        names(&devices)
    );
    Ok(())
}

fn names(devices: &[Device]) -> String {
    devices.iter().map(|d| d.node.as_str()).collect::<Vec<_>>().join(", ")
}

/// What Keel drives itself: its console UART and its interrupt, the GIC's frames.
fn host_use(host_tree: &'static [u8]) -> HostUse {
    let p = dt::platform();
    let mut mmio = alloc::vec![(p.gic.dist, String::from("the GIC distributor"))];
    for r in &p.gic.redist[..p.gic.redist_count.min(p.gic.redist.len())] {
        mmio.push((*r, String::from("a GIC redistributor region")));
    }
    for (frame, name) in [(p.gic.cpu_if, "GICC"), (p.gic.hyp_if, "GICH"), (p.gic.vcpu_if, "GICV")] {
        if let Some(r) = frame {
            mmio.push((r, format!("the GIC's {name} frame")));
        }
    }
    let mut irqs = Vec::new();
    if let Some(fdt) = dt::open(host_tree) {
        if let Ok(uart) = dt::console(&fdt) {
            mmio.push((Region::new(uart.base() as u64, uart.span() as u64), String::from("its console UART")));
        }
        if let Some(irq) = dt::console_irq(&fdt) {
            irqs.push((irq, String::from("its console UART")));
        }
    }
    HostUse { ram: p.ram.regions().to_vec(), ram_used: Vec::new(), mmio, irqs, irq_lines: irq::lines() }
}

/// The guest-physical windows of Xen's guest layout Keel emulates or fills for the domain.
fn guest_used(gic: GuestGic, vcpus: u32, vpl011: bool) -> Vec<(Region, String)> {
    let mut used = alloc::vec![
        (Region::new(GNTTAB_BASE, GNTTAB_SIZE), String::from("grant-table window")),
        (Region::new(MAGIC_BASE, MAGIC_SIZE), String::from("special pages")),
    ];
    match gic {
        GuestGic::V3 => {
            used.push((Region::new(GICD_BASE, GICD_V3_SIZE), String::from("virtual GIC distributor")));
            let redist = GICR_STRIDE.saturating_mul(u64::from(vcpus)).min(GICR_REGION_SIZE);
            used.push((Region::new(GICR_BASE, redist), String::from("virtual GIC redistributors")));
        }
        GuestGic::V2 => {
            used.push((Region::new(GICD_BASE, GICD_V2_SIZE), String::from("virtual GIC distributor")));
            used.push((Region::new(GICC_BASE, GICC_SIZE), String::from("virtual GIC CPU interface")));
        }
    }
    if vpl011 {
        used.push((Region::new(PL011_BASE, PL011_SIZE), String::from("virtual PL011")));
    }
    used
}

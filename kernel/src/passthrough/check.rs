//! Whether Keel may give each domain what it asks for: the checks across domains and
//! against what Keel itself uses.

use super::{Request, FIRST_SPI, PAGE, SPI_END};
use crate::addr::Region;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// What the machine has and Keel keeps for itself, from the host device tree and the
/// boot memory map, each with a name for messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostUse {
    /// The host's RAM banks.
    pub ram: Vec<Region>,
    /// RAM that is not free: Keel's image and heap, the boot modules, the device tree.
    pub ram_used: Vec<(Region, String)>,
    /// Device ranges Keel drives or emulates with (its UART, the GIC).
    pub mmio: Vec<(Region, String)>,
    /// Interrupts Keel takes (its UART's SPI).
    pub irqs: Vec<(u32, String)>,
    /// INTIDs below this exist on the interrupt controller (`GICD_TYPER.ITLinesNumber`).
    pub irq_lines: u32,
}

/// Checks every request; returns `(index into requests, message)` for each refusal.
/// A domain with any message must not be built. Messages start with the domain's node
/// (or the device's) and name what is in the way.
pub fn check(requests: &[Request], host: &HostUse) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let mut refuse = |m: String| out.push((i, m));
        direct_map(i, r, requests, host, &mut refuse);
        if !r.devices.is_empty() && r.direct_map.is_none() {
            refuse(format!(
                "{}: passes devices through but is not direct-mapped: without an IOMMU a device's DMA uses \
                 host-physical addresses, so give the domain `direct-map` with `xen,static-mem`",
                r.node
            ));
        }
        mmio(i, r, requests, host, &mut refuse);
        irqs(i, r, requests, host, &mut refuse);
    }
    out
}

fn overlaps(a: Region, b: Region) -> bool {
    a.start < b.end && b.start < a.end
}

fn show(r: Region) -> String {
    format!("[{:#x}, {:#x})", r.start, r.end)
}

/// `direct-map`: the static memory is page aligned, RAM, free, nobody else's, and
/// clear of the guest-physical windows Keel emulates for the domain.
fn direct_map(i: usize, r: &Request, all: &[Request], host: &HostUse, refuse: &mut impl FnMut(String)) {
    let Some(banks) = &r.direct_map else { return };
    if banks.is_empty() {
        refuse(format!("{}: `direct-map` needs `xen,static-mem` (the host RAM to give 1:1)", r.node));
    }
    for (k, &b) in banks.iter().enumerate() {
        let what = format!("{}: xen,static-mem {}", r.node, show(b));
        if b.is_empty() || b.start % PAGE != 0 || b.end % PAGE != 0 {
            refuse(format!("{what} is empty or not page aligned (4 KiB)"));
            continue;
        }
        if !host.ram.iter().any(|ram| ram.start <= b.start && b.end <= ram.end) {
            refuse(format!("{what} is not inside one bank of the host's RAM"));
        }
        for (used, name) in &host.ram_used {
            if overlaps(b, *used) {
                refuse(format!("{what} is not free: {} holds {name}", show(*used)));
            }
        }
        for (other, _) in banks[..k].iter().enumerate().filter(|(_, o)| overlaps(b, **o)) {
            refuse(format!("{what} overlaps its bank {other}"));
        }
        for o in all.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, o)| o) {
            if o.direct_map.iter().flatten().any(|ob| overlaps(b, *ob)) {
                refuse(format!("{what} is given to domain {} ({})", o.domain, o.node));
            }
        }
        for (used, name) in &r.guest_used {
            if overlaps(b, *used) {
                refuse(format!("{what} overlaps the domain's {name} at guest-physical {}", show(*used)));
            }
        }
    }
}

/// MMIO ranges: device memory, not Keel's, not another domain's; the guest side 1:1
/// for a direct-mapped domain and clear of the domain's own guest-physical use.
fn mmio(i: usize, r: &Request, all: &[Request], host: &HostUse, refuse: &mut impl FnMut(String)) {
    for (k, d) in r.devices.iter().enumerate() {
        for m in &d.mmio {
            let what = format!("{}: xen,reg {}", d.node, show(m.host));
            if host.ram.iter().any(|ram| overlaps(m.host, *ram)) {
                refuse(format!("{what} is RAM, not a device"));
            }
            for (used, name) in &host.mmio {
                if overlaps(m.host, *used) {
                    refuse(format!("{what} is used by Keel: {name} at {}", show(*used)));
                }
            }
            for o in all.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, o)| o) {
                for od in &o.devices {
                    if od.mmio.iter().any(|om| overlaps(m.host, om.host)) {
                        refuse(format!("{what} is owned by domain {} ({})", o.domain, od.node));
                    }
                }
            }
            for od in &r.devices[..k] {
                for om in od.mmio.iter().filter(|om| overlaps(m.host, om.host)) {
                    if om.host.start.wrapping_sub(om.guest) != m.host.start.wrapping_sub(m.guest) {
                        refuse(format!("{what} is mapped by {} at another guest address", od.node));
                    }
                }
            }
            if r.direct_map.is_some() && m.guest != m.host.start {
                refuse(format!(
                    "{what} is mapped at guest-physical {:#x}; a direct-mapped domain sees devices where they are",
                    m.guest
                ));
            }
            let guest = m.guest_region();
            for (used, name) in &r.guest_used {
                if overlaps(guest, *used) {
                    refuse(format!("{what}: guest-physical {} overlaps the domain's {name}", show(guest)));
                }
            }
        }
    }
}

/// Interrupts: SPIs the GIC has, not Keel's, not another domain's, not twice.
fn irqs(i: usize, r: &Request, all: &[Request], host: &HostUse, refuse: &mut impl FnMut(String)) {
    let lines = host.irq_lines.min(SPI_END);
    for (k, d) in r.devices.iter().enumerate() {
        for (n, &irq) in d.irqs.iter().enumerate() {
            let what = format!("{}: interrupt {irq} (SPI {})", d.node, irq.wrapping_sub(FIRST_SPI));
            if !(FIRST_SPI..lines).contains(&irq) {
                refuse(format!("{what} is not an SPI of this GIC (INTIDs {FIRST_SPI} to {})", lines.saturating_sub(1)));
                continue;
            }
            if let Some((_, name)) = host.irqs.iter().find(|(x, _)| *x == irq) {
                refuse(format!("{what} is used by Keel: {name}"));
            }
            for o in all.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, o)| o) {
                if let Some(od) = o.devices.iter().find(|od| od.irqs.contains(&irq)) {
                    refuse(format!("{what} is owned by domain {} ({})", o.domain, od.node));
                }
            }
            let earlier = r.devices[..k].iter().find(|od| od.irqs.contains(&irq)).map(|od| od.node.as_str());
            let earlier = earlier.or_else(|| d.irqs[..n].contains(&irq).then_some(d.node.as_str()));
            if let Some(other) = earlier {
                refuse(format!("{what} is also routed for {other}"));
            }
        }
    }
}

//! The partial device tree of a `multiboot,device-tree` module: its `/passthrough`
//! devices, their `xen,reg` ranges, `xen,path` and the interrupts the guest is told.

use super::{Device, MmioRange, FIRST_SPI, PAGE, SPI_END};
use crate::addr::Region;
use crate::config::props::{self, Cells};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::node::FdtNode;

/// The cell counts Xen reads `/passthrough`'s children with when it names none (libfdt's
/// defaults).
const DEFAULT_CELLS: Cells = Cells { address: 2, size: 1 };

/// GIC interrupt specifier type of an SPI (`interrupts = <0 n flags>`: INTID 32 + n).
const GIC_SPI: u32 = 0;
/// GIC interrupt specifier type of a PPI (`<1 n flags>`: INTID 16 + n).
const GIC_PPI: u32 = 1;

/// Reads the devices of the partial tree `dtb` (the module at `module`, named in
/// messages). A node under `/passthrough` with neither `xen,reg` nor `xen,path` is only
/// copied into the guest's tree and asks for nothing. Every problem is returned, each
/// starting with the module's node and the partial tree's node at fault.
pub fn parse(dtb: &[u8], module: &str) -> Result<Vec<Device>, Vec<String>> {
    let fail = |m: String| Err(alloc::vec![format!("{module}: {m}")]);
    if let Err(e) = crate::dtb::validate(dtb) {
        return fail(format!("malformed partial device tree: {e}"));
    }
    let tree = match fdt::Fdt::new(dtb) {
        Ok(t) => t,
        Err(e) => return fail(format!("malformed partial device tree: {e:?}")),
    };
    let Some(root) = tree.all_nodes().next() else { return fail("the partial device tree has no root".into()) };
    let Some(bus) = root.children().find(|n| n.name == "passthrough") else {
        return fail("the partial device tree has no /passthrough node (Xen docs/misc/arm/passthrough.txt)".into());
    };
    let cells = match Cells::of(bus, DEFAULT_CELLS) {
        Ok(c) => c,
        Err(e) => return fail(format!("/passthrough: {e}")),
    };
    let (mut devices, mut errors) = (Vec::new(), Vec::new());
    for node in bus.children() {
        let path = format!("/passthrough/{}", node.name);
        match device(node, &path, cells) {
            Ok(Some(d)) => devices.push(d),
            Ok(None) => {}
            Err(es) => errors.extend(es.into_iter().map(|e| format!("{module}: {path}: {e}"))),
        }
    }
    if errors.is_empty() {
        Ok(devices)
    } else {
        Err(errors)
    }
}

/// One child of `/passthrough`.
fn device(node: FdtNode<'_, '_>, path: &str, cells: Cells) -> Result<Option<Device>, Vec<String>> {
    let reg = props::raw(node, "xen,reg");
    let host_path = props::raw(node, "xen,path");
    if reg.is_none() && host_path.is_none() {
        return Ok(None);
    }
    let mut errors = Vec::new();
    let mmio = match reg.map(|v| xen_reg(v, cells)).transpose() {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    let host_path = match host_path.map(props::string).transpose() {
        Ok(Some(p)) if !p.starts_with('/') => {
            errors.push(format!("xen,path \"{p}\" is not an absolute path"));
            None
        }
        Ok(p) => p.map(String::from),
        Err(e) => {
            errors.push(format!("xen,path: {e}"));
            None
        }
    };
    if props::raw(node, "xen,force-assign-without-iommu").is_none() {
        errors.push(
            "no `xen,force-assign-without-iommu`: Keel programs no IOMMU, so the device's DMA is not confined \
             to the domain; add the property to accept that, as Xen requires without an IOMMU"
                .into(),
        );
    }
    if props::raw(node, "interrupts-extended").is_some() {
        errors.push("`interrupts-extended` is not supported; use `interrupts` with the /gic placeholder".into());
    }
    let irqs = match props::raw(node, "interrupts").map(gic_spis).transpose() {
        Ok(i) => i.unwrap_or_default(),
        Err(e) => {
            errors.push(format!("interrupts: {e}"));
            Vec::new()
        }
    };
    if !irqs.is_empty() && host_path.is_none() && errors.is_empty() {
        errors
            .push("`interrupts` without `xen,path`: Keel routes the interrupts of the host node xen,path names".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Some(Device { node: path.into(), host_path, mmio, irqs }))
}

/// `xen,reg`: one or more `<host-address size guest-address>`, in `cells`, page aligned.
pub fn xen_reg(v: &[u8], cells: Cells) -> Result<Vec<MmioRange>, String> {
    let entries = props::tuples(v, [cells.address, cells.size, cells.address], "xen,reg")?;
    let mut ranges = Vec::new();
    for [host, size, guest] in entries {
        if size == 0 {
            return Err(format!("xen,reg: the range at {host:#x} has size 0"));
        }
        if host % PAGE != 0 || size % PAGE != 0 || guest % PAGE != 0 {
            return Err(format!(
                "xen,reg <{host:#x} {size:#x} {guest:#x}> is not page aligned (4 KiB): a domain's mappings are whole pages"
            ));
        }
        let end = host.checked_add(size).ok_or_else(|| format!("xen,reg: [{host:#x}, +{size:#x}) wraps around"))?;
        if guest.checked_add(size).is_none() {
            return Err(format!("xen,reg: guest [{guest:#x}, +{size:#x}) wraps around"));
        }
        ranges.push(MmioRange { host: Region { start: host, end }, guest });
    }
    Ok(ranges)
}

/// A GIC `interrupts` value of 3-cell specifiers `<type number flags>`, as SPI INTIDs.
pub fn gic_spis(v: &[u8]) -> Result<Vec<u32>, String> {
    if !v.len().is_multiple_of(12) {
        return Err(format!("{} bytes; each GIC specifier <type number flags> takes 12", v.len()));
    }
    let mut irqs = Vec::new();
    for spec in v.chunks_exact(12) {
        let cell = |i: usize| props::be_u32(&spec[4 * i..4 * i + 4]).unwrap_or(u32::MAX);
        let (kind, number) = (cell(0), cell(1));
        match kind {
            GIC_SPI => {
                let intid = number.checked_add(FIRST_SPI).filter(|&i| i < SPI_END);
                irqs.push(intid.ok_or_else(|| format!("SPI {number} does not exist (SPIs are 0 to 987)"))?);
            }
            GIC_PPI => return Err(format!("PPI {number} is a CPU's own interrupt; only SPIs can be passed through")),
            other => return Err(format!("specifier type {other} is not a GIC SPI (0) or PPI (1)")),
        }
    }
    Ok(irqs)
}

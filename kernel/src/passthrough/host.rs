//! The host nodes that `xen,path` names: their interrupts are what Keel routes, and
//! their registers must be inside what `xen,reg` maps.

use super::partial::gic_spis;
use super::Device;
use crate::addr::Region;
use crate::config::props::{self, Cells};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::node::FdtNode;

/// Checks each device that names a host node against the host tree `dtb` (already
/// validated by the boot path; checked again here): the node exists, is not disabled,
/// every range of its `reg` lies inside the device's `xen,reg` ranges, and its
/// `interrupts` are exactly those the partial tree gives the guest (Keel routes the
/// host node's SPIs with the same numbers, as Xen does, so the guest must be told
/// those). Returns one message per problem, starting with `module` and the device node.
pub fn resolve(devices: &[Device], dtb: &[u8], module: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if let Err(e) = crate::dtb::validate(dtb) {
        errors.push(format!("{module}: the host device tree is malformed: {e}"));
        return errors;
    }
    let Ok(tree) = fdt::Fdt::new(dtb) else {
        errors.push(format!("{module}: the host device tree is malformed"));
        return errors;
    };
    let Some(root) = tree.all_nodes().next() else { return errors };
    for d in devices {
        let Some(path) = &d.host_path else { continue };
        let at = |m: String| format!("{module}: {}: {m}", d.node);
        let Some((node, cells)) = find(root, path) else {
            errors.push(at(format!("xen,path \"{path}\": no such node in the host device tree")));
            continue;
        };
        if props::raw(node, "status").and_then(|v| props::string(v).ok()).is_some_and(|s| s != "okay" && s != "ok") {
            errors.push(at(format!("xen,path \"{path}\": the host node is disabled")));
        }
        match host_regs(node, cells) {
            Ok(regs) => {
                for r in regs {
                    if !d.mmio.iter().any(|m| m.host.start <= r.start && r.end <= m.host.end) {
                        errors.push(at(format!(
                            "xen,reg does not map [{:#x}, {:#x}) of the host node {path}",
                            r.start, r.end
                        )));
                    }
                }
            }
            Err(e) => errors.push(at(format!("the host node {path}: reg: {e}"))),
        }
        let host_irqs = match props::raw(node, "interrupts").map(gic_spis).transpose() {
            Ok(i) => i.unwrap_or_default(),
            Err(e) => {
                errors.push(at(format!("the host node {path}: interrupts: {e}")));
                continue;
            }
        };
        let (mut want, mut have) = (host_irqs.clone(), d.irqs.clone());
        want.sort_unstable();
        have.sort_unstable();
        if want != have {
            errors.push(at(format!(
                "interrupts name INTIDs {have:?}, but the host node {path} has {want:?}: Keel routes the host node's \
                 SPIs with the same numbers, so give the guest those"
            )));
        }
    }
    errors
}

/// The node at absolute `path` below `root`, and the cell counts of its parent.
fn find<'b, 'a>(root: FdtNode<'b, 'a>, path: &str) -> Option<(FdtNode<'b, 'a>, Cells)> {
    if path.trim_matches('/').is_empty() {
        return None;
    }
    let mut node = root;
    let mut cells = Cells::of(root, Cells::ROOT_DEFAULT).ok()?;
    let mut parent_cells = cells;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let child = node.children().find(|c| c.name == part)?;
        parent_cells = cells;
        cells = Cells::of(child, cells).ok()?;
        node = child;
    }
    Some((node, parent_cells))
}

/// Every (address, size) pair of `node`'s `reg`, in its parent's `cells`.
fn host_regs(node: FdtNode<'_, '_>, cells: Cells) -> Result<Vec<Region>, String> {
    let Some(v) = props::raw(node, "reg") else { return Ok(Vec::new()) };
    props::tuples(v, [cells.address, cells.size], "reg")?
        .into_iter()
        .map(|[start, size]| {
            start.checked_add(size).map(|end| Region { start, end }).ok_or("a range wraps around".into())
        })
        .collect()
}

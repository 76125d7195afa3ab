//! The guest's side of a partial device tree: its `/passthrough` node, copied into the
//! tree Keel writes for the domain, as Xen copies it (`domain_handle_dtb_bootmodule`).
//!
//! What changes on the way:
//! - `xen,reg`, `xen,path` and `xen,force-assign-without-iommu` are Keel's to read, not
//!   the guest's: they are dropped;
//! - `interrupt-parent = <65000>` names the `/gic` placeholder and becomes the phandle of
//!   the domain's virtual GIC;
//! - phandles the `/passthrough` subtree defines (`phandle`, `linux,phandle`) are
//!   renumbered from a base the caller gives, clear of the phandles of the tree it writes,
//!   and `interrupt-parent` values naming them follow. Other properties are copied byte
//!   for byte (a reference to a phandle in another property is not followed: the
//!   copied nodes must only point at each other through `interrupt-parent`).

use crate::config::props;
use crate::dtb::FdtWriter;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::node::FdtNode;

/// The `/gic` placeholder's phandle in Xen's partial trees (`GUEST_PHANDLE_GIC`).
pub const GIC_PLACEHOLDER: u32 = 65000;

/// The properties Keel reads and the guest does not see.
const KEEL_ONLY: [&str; 3] = ["xen,reg", "xen,path", "xen,force-assign-without-iommu"];

/// How deep `/passthrough`'s subtree may go: bounds the recursion on a hostile tree.
const MAX_DEPTH: usize = 8;

/// Copies the partial tree `dtb`'s `/passthrough` node and its subtree into the node
/// `w` has open, with the changes the module describes. `gic` is the phandle of the
/// domain's virtual GIC; phandles the subtree defines become `first_phandle`,
/// `first_phandle + 1`, … Returns the number of phandles used. On error nothing is
/// guaranteed about `w` (the caller drops it): the message names the node at fault.
pub fn copy_passthrough(w: &mut FdtWriter, dtb: &[u8], gic: u32, first_phandle: u32) -> Result<u32, String> {
    crate::dtb::validate(dtb).map_err(|e| format!("malformed partial device tree: {e}"))?;
    let tree = fdt::Fdt::new(dtb).map_err(|e| format!("malformed partial device tree: {e:?}"))?;
    let root = tree.all_nodes().next().ok_or_else(|| String::from("the partial device tree has no root"))?;
    let bus = root
        .children()
        .find(|n| n.name == "passthrough")
        .ok_or_else(|| String::from("the partial device tree has no /passthrough node"))?;
    let mut old = Vec::new();
    phandles(bus, "/passthrough", 0, &mut old)?;
    let mut renumber = Vec::with_capacity(old.len());
    for (i, (p, at)) in old.iter().enumerate() {
        if *p == 0 || *p == u32::MAX || *p == GIC_PLACEHOLDER {
            return Err(format!("{at}: phandle {p:#x} is reserved"));
        }
        if old[..i].iter().any(|(q, _)| q == p) {
            return Err(format!("{at}: phandle {p:#x} is defined twice"));
        }
        let new = u32::try_from(i)
            .ok()
            .and_then(|i| first_phandle.checked_add(i))
            .filter(|&n| n != u32::MAX && n != gic)
            .ok_or_else(|| format!("{at}: no phandle left to renumber {p:#x} to"))?;
        renumber.push((*p, new));
    }
    let map = Renumber { gic, phandles: &renumber };
    node(w, bus, "/passthrough", 0, &map)?;
    Ok(u32::try_from(renumber.len()).unwrap_or(u32::MAX))
}

struct Renumber<'a> {
    gic: u32,
    phandles: &'a [(u32, u32)],
}

impl Renumber<'_> {
    fn get(&self, p: u32) -> Option<u32> {
        if p == GIC_PLACEHOLDER {
            return Some(self.gic);
        }
        self.phandles.iter().find(|(old, _)| *old == p).map(|(_, new)| *new)
    }
}

fn is_phandle(name: &str) -> bool {
    name == "phandle" || name == "linux,phandle"
}

/// Every phandle the subtree at `n` defines, with the node's path.
fn phandles(n: FdtNode<'_, '_>, path: &str, depth: usize, out: &mut Vec<(u32, String)>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path}: nested deeper than {MAX_DEPTH} levels"));
    }
    let mut own = None;
    for p in n.properties().filter(|p| is_phandle(p.name)) {
        let v = props::be_u32(p.value).map_err(|e| format!("{path}: {}: {e}", p.name))?;
        match own {
            Some(o) if o != v => return Err(format!("{path}: phandle and linux,phandle differ")),
            Some(_) => {}
            None => {
                own = Some(v);
                out.push((v, String::from(path)));
            }
        }
    }
    for c in n.children() {
        phandles(c, &format!("{path}/{}", c.name), depth + 1, out)?;
    }
    Ok(())
}

/// Writes `n` (as `/passthrough` at depth 0) and its subtree.
fn node(w: &mut FdtWriter, n: FdtNode<'_, '_>, path: &str, depth: usize, map: &Renumber<'_>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path}: nested deeper than {MAX_DEPTH} levels"));
    }
    w.begin_node(n.name);
    for p in n.properties().filter(|p| !KEEL_ONLY.contains(&p.name)) {
        if is_phandle(p.name) || p.name == "interrupt-parent" {
            let v = props::be_u32(p.value).map_err(|e| format!("{path}: {}: {e}", p.name))?;
            let new = map.get(v).ok_or_else(|| {
                format!("{path}: {} <{v:#x}> names no node of /passthrough nor the /gic placeholder", p.name)
            })?;
            w.prop_u32(p.name, new);
        } else {
            w.prop(p.name, p.value);
        }
    }
    for c in n.children() {
        node(w, c, &format!("{path}/{}", c.name), depth + 1, map)?;
    }
    w.end_node();
    Ok(())
}

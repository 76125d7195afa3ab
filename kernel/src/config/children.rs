//! The child nodes a domain description may have: boot modules, `xen,vcpu` affinity
//! nodes and `xen,evtchn-v1` static event channels.

use super::props::{self, Cells};
use super::types::Module;
use crate::arch::CpuId;
use crate::mm::Region;
use crate::sched::CpuMask;
use alloc::format;
use alloc::string::String;
use fdt::node::FdtNode;

/// What a `multiboot,module` node holds, from its more specific compatible string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    Kernel,
    Ramdisk,
    DeviceTree,
    XsmPolicy,
    Unspecified,
}

impl ModuleKind {
    pub fn name(self) -> &'static str {
        match self {
            ModuleKind::Kernel => "kernel",
            ModuleKind::Ramdisk => "ramdisk",
            ModuleKind::DeviceTree => "device-tree",
            ModuleKind::XsmPolicy => "XSM policy",
            ModuleKind::Unspecified => "unspecified",
        }
    }
}

/// Whether `compat` marks a boot module: `"multiboot,module"`, or Xen 4.4's
/// `"xen,multiboot-module"`.
pub fn is_module(compat: &[&str]) -> bool {
    compat.iter().any(|c| *c == "multiboot,module" || *c == "xen,multiboot-module")
}

/// Whether `compat` names a specific module kind (even without the generic string).
pub fn names_module_kind(compat: &[&str]) -> bool {
    module_kind(compat) != ModuleKind::Unspecified
}

/// The module kind, with Xen 4.4's legacy names.
pub fn module_kind(compat: &[&str]) -> ModuleKind {
    let has = |names: &[&str]| compat.iter().any(|c| names.contains(c));
    if has(&["multiboot,kernel", "xen,linux-zimage"]) {
        ModuleKind::Kernel
    } else if has(&["multiboot,ramdisk", "xen,linux-initrd"]) {
        ModuleKind::Ramdisk
    } else if has(&["multiboot,device-tree"]) {
        ModuleKind::DeviceTree
    } else if has(&["xen,xsm-policy"]) {
        ModuleKind::XsmPolicy
    } else {
        ModuleKind::Unspecified
    }
}

/// A module node's location: its `reg` (read with the parent's cell counts), or the
/// boot loader's module it names by position with `module-index` (x86: the multiboot2
/// module list, Xen hyperlaunch's binding; `mb-index` is accepted as an alias).
pub fn module(node: FdtNode<'_, '_>, path: &str, cells: Cells, boot_modules: &[Region]) -> Result<Module, String> {
    let index = match (props::raw(node, "module-index"), props::raw(node, "mb-index")) {
        (Some(_), Some(_)) => return Err(format!("{path}: both `module-index` and `mb-index`; use one")),
        (Some(v), None) => Some(("module-index", v)),
        (None, Some(v)) => Some(("mb-index", v)),
        (None, None) => None,
    };
    let reg = props::raw(node, "reg");
    let region = match (reg, index) {
        (Some(_), Some((name, _))) => return Err(format!("{path}: both `reg` and `{name}`; a module is found by one")),
        (Some(v), None) => props::reg(v, cells).map_err(|e| format!("{path}: {e}"))?,
        (None, Some((name, v))) => {
            let i = props::be_u32(v).map_err(|e| format!("{path}: {name}: {e}"))?;
            if boot_modules.is_empty() {
                return Err(format!(
                    "{path}: {name} = <{i}>, but the boot loader passed no modules (multiboot2 `module2` lines)"
                ));
            }
            *boot_modules.get(i as usize).ok_or_else(|| {
                format!(
                    "{path}: {name} = <{i}>, but the boot loader passed {} modules (0 to {})",
                    boot_modules.len(),
                    boot_modules.len() - 1
                )
            })?
        }
        (None, None) => {
            let uefi = props::raw(node, "xen,uefi-binary").is_some();
            let why = if uefi { " (xen,uefi-binary needs UEFI boot, which Keel does not do)" } else { "" };
            return Err(format!("{path}: no `reg` or `module-index` property{why}"));
        }
    };
    if region.is_empty() {
        return Err(format!("{path}: the module is empty"));
    }
    Ok(Module { node: path.into(), region })
}

/// A module's `bootargs`, if present.
pub fn bootargs(node: FdtNode<'_, '_>, path: &str) -> Result<Option<String>, String> {
    props::raw(node, "bootargs")
        .map(|v| props::string(v).map(String::from).map_err(|e| format!("{path}: bootargs: {e}")))
        .transpose()
}

/// A `xen,vcpu` node: the vCPU id and its hard affinity (`"0-3,5"`).
pub fn vcpu_affinity(node: FdtNode<'_, '_>, path: &str, nr_pcpus: u32) -> Result<(u32, CpuMask), String> {
    let id = props::raw(node, "id").ok_or_else(|| format!("{path}: no `id` property"))?;
    let id = props::be_u32(id).map_err(|e| format!("{path}: id: {e}"))?;
    let mask = match props::raw(node, "hard-affinity") {
        None => CpuMask::first_n(nr_pcpus as usize),
        Some(v) => {
            let list = props::string(v).map_err(|e| format!("{path}: hard-affinity: {e}"))?;
            cpu_list(list, nr_pcpus).map_err(|e| format!("{path}: hard-affinity \"{list}\": {e}"))?
        }
    };
    Ok((id, mask))
}

/// Parses a CPU list such as `"0-3,5,7-8"` (ranges inclusive) into a mask.
pub fn cpu_list(list: &str, nr_pcpus: u32) -> Result<CpuMask, String> {
    let mut mask = CpuMask::EMPTY;
    for item in list.split(',').map(str::trim) {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let num = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("`{item}` is not a CPU number or range"));
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(format!("range `{item}` runs backwards"));
        }
        if hi >= nr_pcpus || hi as usize >= CpuMask::CAPACITY {
            return Err(format!("CPU {hi} does not exist (the machine has {nr_pcpus})"));
        }
        for c in lo..=hi {
            mask.insert(CpuId(c));
        }
    }
    Ok(mask)
}

/// The highest event-channel port (FIFO ABI: 2^17 ports, port 0 is reserved).
pub const MAX_PORT: u32 = (1 << 17) - 1;

/// One end of a static event channel, as found in the tree.
#[derive(Clone, Debug)]
pub struct EvtchnEnd {
    pub path: String,
    /// Index of the owning domain in the result list.
    pub owner: usize,
    pub phandle: Option<u32>,
    pub port: u32,
    /// Phandle of the other end's node.
    pub remote: u32,
}

/// A `xen,evtchn-v1` node: `xen,evtchn = <local-port &remote-node>`.
pub fn evtchn(node: FdtNode<'_, '_>, path: &str, owner: usize) -> Result<EvtchnEnd, String> {
    let v = props::raw(node, "xen,evtchn").ok_or_else(|| format!("{path}: no `xen,evtchn` property"))?;
    if v.len() != 8 {
        return Err(format!("{path}: xen,evtchn has {} bytes; expected <local-port &remote-node> (8)", v.len()));
    }
    let port = props::be_u32(&v[..4]).map_err(|e| format!("{path}: {e}"))?;
    let remote = props::be_u32(&v[4..]).map_err(|e| format!("{path}: {e}"))?;
    if port == 0 || port > MAX_PORT {
        return Err(format!("{path}: port {port} is outside 1..={MAX_PORT}"));
    }
    Ok(EvtchnEnd { path: path.into(), owner, phandle: props::phandle(node), port, remote })
}

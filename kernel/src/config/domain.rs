//! One `xen,domain` node (Xen dom0less) into a [`DomainConfig`].

use super::children::{self, EvtchnEnd, ModuleKind};
use super::props::{self, Cells};
use super::types::{Capabilities, DomainConfig, DomainKind, Enhanced, Limits, Module};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use fdt::node::FdtNode;

/// Errors and warnings collected while reading one domain.
#[derive(Default)]
pub(super) struct Notes {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// What reading a domain gives: the domain, or its errors; and the warnings either way.
pub(super) type Outcome = Result<DomainConfig, (Vec<String>, Vec<String>)>;

impl Notes {
    pub fn check<T>(&mut self, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.errors.push(e)).ok()
    }
}

/// Properties of a domain node that Keel reads (or that only structure the tree).
const UNDERSTOOD: &[&str] = &[
    "compatible",
    "memory",
    "cpus",
    "vpl011",
    "capabilities",
    "xen,enhanced",
    "#address-cells",
    "#size-cells",
    "phandle",
    "linux,phandle",
    "name",
    "keel,name",
    "keel,weight",
    "keel,cap",
    "direct-map",
    "xen,static-mem",
    "#xen,static-mem-address-cells",
    "#xen,static-mem-size-cells",
];

/// The 4 KiB granule guest memory is allocated in.
const PAGE_KIB: u64 = 4;

/// Reads the `xen,domain` node `node` at `path`. Static event-channel ends found under
/// it are appended to `evtchns`, owned by `owner`.
pub(super) fn parse(
    node: FdtNode<'_, '_>,
    path: &str,
    inherited: Cells,
    limits: &Limits<'_>,
    owner: usize,
    evtchns: &mut Vec<EvtchnEnd>,
) -> Outcome {
    let mut n = Notes::default();
    let cells = n.check(Cells::of(node, inherited).map_err(|e| format!("{path}: {e}"))).unwrap_or(inherited);
    let name = n.check(keel_name(node, path)).flatten().unwrap_or_else(|| node.name.to_string());
    let memory_kib = n.check(memory(node, path, limits)).unwrap_or(0);
    let vcpus = n.check(cpus(node, path, limits)).unwrap_or(0);
    let capabilities = n.check(capabilities(node, path)).unwrap_or_default();
    let enhanced = n.check(enhanced(node, path)).unwrap_or(Enhanced::Disabled);
    let weight = n.check(number(node, path, "keel,weight", 1, u16::MAX as u32)).flatten();
    let cap = n.check(number(node, path, "keel,cap", 0, 100)).flatten();
    let direct_map = n.check(super::static_mem::direct_map(node, path, memory_kib)).flatten();
    for p in node.properties() {
        if !UNDERSTOOD.contains(&p.name) {
            n.warnings.push(format!("{path}: ignoring property `{}` (not supported by Keel)", p.name));
        }
    }

    let mut modules = Modules::default();
    let mut affinity = Vec::new();
    for child in node.children() {
        let cpath = format!("{path}/{}", child.name);
        let compat = props::compatible(child);
        if children::is_module(&compat) || children::names_module_kind(&compat) {
            if !children::is_module(&compat) {
                n.errors.push(format!("{cpath}: the compatible list lacks the generic \"multiboot,module\""));
            } else {
                modules.add(child, &cpath, children::module_kind(&compat), cells, limits.boot_modules, &mut n);
            }
        } else if compat.contains(&"xen,vcpu") {
            if let Some(a) = n.check(children::vcpu_affinity(child, &cpath, limits.nr_pcpus)) {
                affinity.push((cpath, a));
            }
        } else if compat.contains(&"xen,evtchn-v1") {
            if let Some(e) = n.check(children::evtchn(child, &cpath, owner)) {
                evtchns.push(e);
            }
        } else {
            n.warnings.push(format!("{cpath}: ignoring node (compatible {compat:?} is not supported by Keel)"));
        }
    }

    let mut vcpu_affinity: Vec<(u32, crate::sched::CpuMask)> = Vec::new();
    for (cpath, (id, mask)) in affinity {
        if vcpus != 0 && id >= vcpus {
            n.errors.push(format!("{cpath}: vCPU id {id} but the domain has {vcpus} vCPUs"));
        } else if vcpu_affinity.iter().any(|(other, _)| *other == id) {
            n.errors.push(format!("{cpath}: a second affinity node for vCPU {id}"));
        } else {
            vcpu_affinity.push((id, mask));
        }
    }
    let Some((kernel, bootargs)) = modules.kernel else {
        n.errors.push(format!(
            "{path}: no kernel module (a child with compatible \"multiboot,kernel\", \"multiboot,module\")"
        ));
        return Err((n.errors, n.warnings));
    };
    if !n.errors.is_empty() {
        return Err((n.errors, n.warnings));
    }
    let mut d = DomainConfig::new(name, path.into(), DomainKind::Dom0less, kernel);
    d.bootargs = bootargs;
    d.ramdisk = modules.ramdisk;
    d.device_tree = modules.device_tree;
    d.direct_map = direct_map;
    d.memory_kib = memory_kib;
    d.vcpus = vcpus;
    d.vpl011 = props::raw(node, "vpl011").is_some();
    d.capabilities = capabilities;
    d.enhanced = enhanced;
    d.vcpu_affinity = vcpu_affinity;
    d.weight = weight.map_or(crate::sched::DEFAULT_WEIGHT, |w| u16::try_from(w).unwrap_or(u16::MAX));
    d.cap = u8::try_from(cap.unwrap_or(0)).unwrap_or(u8::MAX);
    d.warnings = n.warnings;
    Ok(d)
}

/// The modules of a domain, as found.
#[derive(Default)]
struct Modules {
    kernel: Option<(Module, Option<String>)>,
    ramdisk: Option<Module>,
    device_tree: Option<Module>,
}

impl Modules {
    fn add(
        &mut self,
        node: FdtNode<'_, '_>,
        path: &str,
        kind: ModuleKind,
        cells: Cells,
        boot_modules: &[crate::mm::Region],
        n: &mut Notes,
    ) {
        let slot = match kind {
            ModuleKind::Kernel => None,
            ModuleKind::Ramdisk => Some(&mut self.ramdisk),
            ModuleKind::DeviceTree => Some(&mut self.device_tree),
            ModuleKind::XsmPolicy | ModuleKind::Unspecified => {
                n.warnings.push(format!(
                    "{path}: ignoring a {} module (a domain takes multiboot,kernel, multiboot,ramdisk and multiboot,device-tree)",
                    kind.name()
                ));
                return;
            }
        };
        let first = slot.as_ref().map_or(self.kernel.as_ref().map(|k| &k.0), |s| s.as_ref());
        if let Some(first) = first {
            n.errors.push(format!("{path}: a second {} module (the first is {})", kind.name(), first.node));
            return;
        }
        let Some(m) = n.check(children::module(node, path, cells, boot_modules)) else { return };
        match slot {
            Some(slot) => *slot = Some(m),
            None => self.kernel = Some((m, n.check(children::bootargs(node, path)).flatten())),
        }
    }
}

/// `keel,name`: 1 to 32 characters of `[A-Za-z0-9_.-]`.
pub(super) fn keel_name(node: FdtNode<'_, '_>, path: &str) -> Result<Option<String>, String> {
    let Some(v) = props::raw(node, "keel,name") else { return Ok(None) };
    let name = props::string(v).map_err(|e| format!("{path}: keel,name: {e}"))?;
    let ok = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    if name.is_empty() || name.len() > 32 || !name.chars().all(ok) {
        return Err(format!("{path}: keel,name \"{name}\" must be 1 to 32 characters of A-Z a-z 0-9 _ . -"));
    }
    Ok(Some(name.into()))
}

/// `memory`: KiB as a 64-bit value (two cells), as Xen reads it.
fn memory(node: FdtNode<'_, '_>, path: &str, limits: &Limits<'_>) -> Result<u64, String> {
    let v = props::raw(node, "memory")
        .ok_or_else(|| format!("{path}: no `memory` property (KiB as a 64-bit value, e.g. <0 131072> for 128 MiB)"))?;
    let kib = props::be_u64(v).map_err(|e| format!("{path}: memory: {e}; write KiB as two cells, e.g. <0 131072>"))?;
    check_memory(kib, path, limits)?;
    Ok(kib)
}

pub(super) fn check_memory(kib: u64, path: &str, limits: &Limits<'_>) -> Result<(), String> {
    if kib == 0 {
        return Err(format!("{path}: memory is 0"));
    }
    if !kib.is_multiple_of(PAGE_KIB) {
        return Err(format!("{path}: memory {kib} KiB is not a multiple of 4 KiB"));
    }
    if kib > limits.max_memory_kib {
        return Err(format!("{path}: memory {kib} KiB exceeds the {} KiB a domain may have", limits.max_memory_kib));
    }
    Ok(())
}

/// `cpus`: the number of vCPUs, required.
fn cpus(node: FdtNode<'_, '_>, path: &str, limits: &Limits<'_>) -> Result<u32, String> {
    let v = props::raw(node, "cpus").ok_or_else(|| format!("{path}: no `cpus` property (the number of vCPUs)"))?;
    let n = props::be_u32(v).map_err(|e| format!("{path}: cpus: {e}"))?;
    if n == 0 || n > limits.max_vcpus {
        return Err(format!("{path}: cpus = {n}; a domain has 1 to {} vCPUs", limits.max_vcpus));
    }
    Ok(n)
}

fn capabilities(node: FdtNode<'_, '_>, path: &str) -> Result<Capabilities, String> {
    let Some(v) = props::raw(node, "capabilities") else { return Ok(Capabilities::NONE) };
    let bits = props::be_u32(v).map_err(|e| format!("{path}: capabilities: {e}"))?;
    if bits & !Capabilities::MASK != 0 {
        return Err(format!("{path}: capabilities {bits:#x} has bits outside {:#x}", Capabilities::MASK));
    }
    Ok(Capabilities(bits))
}

fn enhanced(node: FdtNode<'_, '_>, path: &str) -> Result<Enhanced, String> {
    let Some(v) = props::raw(node, "xen,enhanced") else { return Ok(Enhanced::Disabled) };
    if v.is_empty() {
        return Ok(Enhanced::Enabled);
    }
    match props::string(v).map_err(|e| format!("{path}: xen,enhanced: {e}"))? {
        "enabled" => Ok(Enhanced::Enabled),
        "legacy" => Ok(Enhanced::Legacy),
        "disabled" => Ok(Enhanced::Disabled),
        "no-xenstore" => Ok(Enhanced::NoXenstore),
        other => Err(format!(
            "{path}: xen,enhanced = \"{other}\"; expected \"enabled\", \"legacy\", \"disabled\" or \"no-xenstore\""
        )),
    }
}

/// An optional one-cell property `name` within `min..=max` (`keel,weight`, `keel,cap`).
fn number(node: FdtNode<'_, '_>, path: &str, name: &str, min: u32, max: u32) -> Result<Option<u32>, String> {
    let Some(v) = props::raw(node, name) else { return Ok(None) };
    let x = props::be_u32(v).map_err(|e| format!("{path}: {name}: {e}"))?;
    if x < min || x > max {
        return Err(format!("{path}: {name} = {x}; allowed {min}..={max}"));
    }
    Ok(Some(x))
}

//! Domain configuration from a device tree, in Xen's dom0less binding.
//!
//! [`parse`] reads the boot device tree (arm64: the one the firmware or QEMU passed;
//! x86: a DTB module) and returns one result per domain it describes:
//!
//! - the *initial domain* from boot modules directly under `/chosen` (compatible
//!   `"multiboot,module"` with `"multiboot,kernel"` / `"multiboot,ramdisk"`), as Xen
//!   builds its dom0 from what QEMU's `-device guest-loader` or a U-Boot script wrote;
//! - one domain per `/chosen` child with `compatible = "xen,domain"` (Xen dom0less:
//!   `memory`, `cpus`, `vpl011`, `capabilities`, `xen,enhanced`, module children,
//!   `xen,vcpu` affinity and `xen,evtchn-v1` static event channels).
//!
//! Keel's own additions are `keel,name`, `keel,weight` and `keel,cap`. The accepted
//! binding is documented in `docs/configuration.md`. A bad domain never stops the
//! others from being read, and no input makes the parser panic: the tree's structure is
//! validated ([`crate::dtb::validate`]) before the `fdt` crate walks it.

mod children;
mod domain;
mod initial;
mod links;
mod multiboot;
pub(crate) mod props;
mod static_mem;
mod types;

#[cfg(test)]
pub(crate) mod tests;

pub use children::MAX_PORT;
pub use multiboot::initial_from_modules;
pub use types::{
    Capabilities, DomainConfig, DomainError, DomainKind, DomainSet, Enhanced, InitialDefaults, Limits, Module, Problem,
    Severity, StaticEventChannel,
};

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use props::Cells;

/// Reads every domain `dtb` describes, checked against `limits`.
pub fn parse(dtb: &[u8], limits: &Limits<'_>) -> DomainSet {
    let mut set = DomainSet::default();
    let tree_error = |set: &mut DomainSet, node: &str, message: String| {
        set.problems.push(Problem { severity: Severity::Error, node: node.into(), message });
    };
    if let Err(e) = crate::dtb::validate(dtb) {
        tree_error(&mut set, "/", format!("/: malformed device tree: {e}"));
        return set;
    }
    let tree = match fdt::Fdt::new(dtb) {
        Ok(tree) => tree,
        Err(e) => {
            tree_error(&mut set, "/", format!("/: malformed device tree: {e:?}"));
            return set;
        }
    };
    let Some(root) = tree.all_nodes().next() else {
        tree_error(&mut set, "/", "/: the tree has no root node".into());
        return set;
    };
    let Some(chosen) = root.children().find(|n| n.name == "chosen") else {
        tree_error(&mut set, "/chosen", "/chosen: no such node, so no domains".into());
        return set;
    };
    let cells = match Cells::of(root, Cells::ROOT_DEFAULT).and_then(|c| Cells::of(chosen, c)) {
        Ok(c) => c,
        Err(e) => {
            tree_error(&mut set, "/chosen", format!("/chosen: {e}"));
            return set;
        }
    };

    let mut found: Vec<links::Found> = Vec::new();
    let mut ends = Vec::new();
    if let Some(r) = initial::parse(chosen, cells, limits, 0, &mut ends, &mut set.problems) {
        found.push(("/chosen".into(), r));
    }
    for node in chosen.children().filter(|n| props::compatible(*n).contains(&"xen,domain")) {
        let path = format!("/chosen/{}", node.name);
        let r = domain::parse(node, &path, cells, limits, found.len(), &mut ends);
        found.push((path, r));
    }
    links::check(&mut found, &ends, limits);

    for (node, r) in found {
        let problem = |severity, message| Problem { severity, node: node.clone(), message };
        match r {
            Ok(d) => {
                set.problems.extend(d.warnings.iter().map(|w| problem(Severity::Warning, w.clone())));
                set.domains.push(Ok(d));
            }
            Err((errors, warnings)) => {
                set.problems.extend(errors.iter().map(|e| problem(Severity::Error, e.clone())));
                set.problems.extend(warnings.into_iter().map(|w| problem(Severity::Warning, w)));
                set.domains.push(Err(DomainError { node, errors }));
            }
        }
    }
    set
}

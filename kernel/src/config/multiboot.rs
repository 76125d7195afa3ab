//! The initial domain from a multiboot2 boot without a configuration tree, as Xen builds
//! its dom0 from the GRUB entry a Xen user already has:
//!
//! ```text
//! multiboot2 /boot/keel.elf dom0_mem=512M dom0_max_vcpus=2
//! module2 /boot/vmlinuz console=hvc0
//! module2 /boot/initrd.img
//! ```
//!
//! The first module is the kernel, its command line (GRUB passes the words after the
//! file name) the kernel's; the second is the ramdisk; further modules are ignored with a
//! warning. Memory and vCPUs come from `dom0_mem=` and `dom0_max_vcpus=`
//! ([`InitialDefaults`](super::InitialDefaults)), as for the device-tree initial domain.

use super::domain::check_memory;
use super::initial::NAME;
use super::types::{DomainConfig, DomainError, DomainKind, DomainSet, Enhanced, Limits, Module, Problem, Severity};
use crate::mm::Region;
use alloc::format;
use alloc::string::String;
use alloc::vec;

/// Where the initial domain's messages point.
const NODE: &str = "multiboot2";

/// The initial domain of `modules` (each a region and the loader's command line for it,
/// in the loader's order); an empty set if there are none.
pub fn initial_from_modules(modules: &[(Region, &str)], limits: &Limits<'_>) -> DomainSet {
    let mut set = DomainSet::default();
    let Some(&(kernel, args)) = modules.first() else { return set };
    let module = |i: usize, r: Region, what: &str| Module { node: format!("{NODE} module {i} ({what})"), region: r };
    for (i, (_, line)) in modules.iter().enumerate().skip(2) {
        set.problems.push(Problem {
            severity: Severity::Warning,
            node: NODE.into(),
            message: format!("{NODE} module {i} ('{line}'): ignored (the initial domain takes a kernel and a ramdisk)"),
        });
    }
    let mut errors = vec![];
    let vcpus = limits.initial.vcpus(limits.nr_pcpus);
    if vcpus > limits.max_vcpus {
        errors.push(format!("{NODE}: the initial domain would have {vcpus} vCPUs, more than {}", limits.max_vcpus));
    }
    if let Err(e) = check_memory(limits.initial.memory_kib, NODE, limits) {
        errors.push(format!("{e} (set dom0_mem=)"));
    }
    if !errors.is_empty() {
        set.domains.push(Err(DomainError { node: NODE.into(), errors }));
        return set;
    }
    let mut d = DomainConfig::new(NAME.into(), NODE.into(), DomainKind::Initial, module(0, kernel, "kernel"));
    let args = args.trim();
    d.bootargs = (!args.is_empty()).then(|| String::from(args));
    d.ramdisk = modules.get(1).map(|&(r, _)| module(1, r, "ramdisk"));
    d.memory_kib = limits.initial.memory_kib;
    d.vcpus = vcpus;
    d.enhanced = Enhanced::NoXenstore;
    set.domains.push(Ok(d));
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InitialDefaults;

    fn limits(initial: InitialDefaults) -> Limits<'static> {
        Limits { max_vcpus: 128, nr_pcpus: 2, max_memory_kib: 1 << 20, ram: &[], boot_modules: &[], initial }
    }

    const K: Region = Region { start: 0x100_0000, end: 0x180_0000 };
    const R: Region = Region { start: 0x200_0000, end: 0x210_0000 };

    #[test]
    fn kernel_and_ramdisk_make_dom0_as_xen_does() {
        let (initial, errors) = InitialDefaults::from_cmdline("keel.exit=test dom0_mem=512M dom0_max_vcpus=4");
        assert!(errors.is_empty());
        let set = initial_from_modules(&[(K, " console=hvc0 quiet"), (R, "")], &limits(initial));
        let d = set.domains[0].as_ref().unwrap();
        assert_eq!((d.name.as_str(), d.kind, d.memory_kib, d.vcpus), ("dom0", DomainKind::Initial, 512 * 1024, 4));
        assert_eq!(d.bootargs.as_deref(), Some("console=hvc0 quiet"));
        assert_eq!(d.kernel.region, K);
        assert_eq!(d.ramdisk.as_ref().map(|m| m.region), Some(R));
        assert!(set.problems.is_empty());
    }

    #[test]
    fn defaults_extra_modules_and_no_modules() {
        let set = initial_from_modules(&[(K, ""), (R, "initrd"), (R, "third")], &limits(InitialDefaults::default()));
        let d = set.domains[0].as_ref().unwrap();
        assert_eq!((d.memory_kib, d.vcpus, d.bootargs.as_deref()), (512 * 1024, 2, None));
        assert_eq!(set.problems.len(), 1);
        assert!(set.problems[0].message.contains("module 2 ('third'): ignored"));
        assert!(initial_from_modules(&[], &limits(InitialDefaults::default())).domains.is_empty());
    }

    #[test]
    fn too_much_memory_is_refused_by_name() {
        let (initial, _) = InitialDefaults::from_cmdline("dom0_mem=4G");
        let set = initial_from_modules(&[(K, "")], &limits(initial));
        let e = set.domains[0].as_ref().unwrap_err();
        assert!(e.errors[0].contains("exceeds") && e.errors[0].ends_with("(set dom0_mem=)"), "{e:?}");
    }
}

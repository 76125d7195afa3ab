//! Module nodes that name the boot loader's modules by position (`module-index`), as an
//! x86 configuration passed by GRUB does.

use super::builder::Dtb;
use super::examples::limits;
use crate::config::{parse, DomainSet, Limits};
use crate::mm::Region;
use alloc::string::String;

/// What GRUB would pass: the tree itself, then two kernels and a ramdisk.
const MODULES: [Region; 4] = [
    Region { start: 0x4010_0000, end: 0x4010_1000 },
    Region { start: 0x4020_0000, end: 0x4021_0000 },
    Region { start: 0x4030_0000, end: 0x4031_0000 },
    Region { start: 0x4040_0000, end: 0x4040_8000 },
];

fn domain(b: &mut Dtb, name: &str, f: impl FnOnce(&mut Dtb)) {
    b.node(name).str("compatible", "xen,domain").cells("memory", &[0, 16384]).cells("cpus", &[1]);
    f(b);
    b.end();
}

fn kernel(b: &mut Dtb, prop: &str, index: u32) {
    b.node("kernel").strs("compatible", &["multiboot,kernel", "multiboot,module"]).cells(prop, &[index]);
    b.str("bootargs", "scenario=hypercalls");
    b.end();
}

fn parse_with(modules: &[Region], f: impl FnOnce(&mut Dtb)) -> DomainSet {
    let mut b = Dtb::new();
    b.node("chosen").cells("#address-cells", &[1]).cells("#size-cells", &[1]);
    f(&mut b);
    b.end();
    parse(&b.finish(), &Limits { boot_modules: modules, ..limits() })
}

fn first_error(set: &DomainSet) -> String {
    set.domains.iter().find_map(|d| d.as_ref().err()).map(|e| e.errors.join("; ")).unwrap_or_default()
}

#[test]
fn module_index_names_a_boot_module() {
    let set = parse_with(&MODULES, |b| {
        domain(b, "a", |b| {
            kernel(b, "module-index", 1);
            b.node("initrd").strs("compatible", &["multiboot,ramdisk", "multiboot,module"]).cells("mb-index", &[3]);
            b.end();
        });
        domain(b, "b", |b| kernel(b, "module-index", 2));
    });
    assert!(set.problems.is_empty(), "{:#?}", set.problems);
    let d: alloc::vec::Vec<_> = set.valid().collect();
    assert_eq!(d[0].kernel.region, MODULES[1]);
    assert_eq!(d[0].kernel.node, "/chosen/a/kernel");
    assert_eq!(d[0].bootargs.as_deref(), Some("scenario=hypercalls"));
    assert_eq!(d[0].ramdisk.as_ref().unwrap().region, MODULES[3]);
    assert_eq!(d[1].kernel.region, MODULES[2]);
}

#[test]
fn bad_module_indices_are_refused() {
    let set = parse_with(&MODULES, |b| domain(b, "a", |b| kernel(b, "module-index", 4)));
    assert!(first_error(&set)
        .contains("/chosen/a/kernel: module-index = <4>, but the boot loader passed 4 modules (0 to 3)"));
    let set = parse_with(&[], |b| domain(b, "a", |b| kernel(b, "module-index", 0)));
    assert!(first_error(&set).contains("passed no modules"), "{}", first_error(&set));
    let set = parse_with(&MODULES, |b| {
        domain(b, "a", |b| {
            b.node("kernel").strs("compatible", &["multiboot,kernel", "multiboot,module"]);
            b.cells("module-index", &[1]).cells("reg", &[0x4020_0000, 0x1000]).end();
        })
    });
    assert!(first_error(&set).contains("both `reg` and `module-index`"), "{}", first_error(&set));
    let set = parse_with(&MODULES, |b| {
        domain(b, "a", |b| {
            b.node("kernel").strs("compatible", &["multiboot,kernel", "multiboot,module"]);
            b.cells("module-index", &[1]).cells("mb-index", &[1]).end();
        })
    });
    assert!(first_error(&set).contains("both `module-index` and `mb-index`"));
    let set = parse_with(&MODULES, |b| {
        domain(b, "a", |b| {
            b.node("kernel").strs("compatible", &["multiboot,kernel", "multiboot,module"]).end();
        })
    });
    assert!(first_error(&set).contains("no `reg` or `module-index` property"));
}

#[test]
fn two_domains_naming_one_module_overlap() {
    let set = parse_with(&MODULES, |b| {
        domain(b, "a", |b| kernel(b, "module-index", 1));
        domain(b, "b", |b| kernel(b, "module-index", 1));
    });
    assert_eq!(set.valid().count(), 0);
    assert!(first_error(&set).contains("overlaps /chosen/b/kernel"), "{}", first_error(&set));
}

//! Every validation rule, each in a tree that also holds a good domain (which must still
//! be built): errors name the node at fault and what is wrong.

use super::builder::Dtb;
use super::examples::limits;
use crate::config::{parse, DomainSet, Severity};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A tree whose `/chosen` (cells 2 and 1) gets what `f` adds, plus a good domain `good`.
fn tree(f: impl FnOnce(&mut Dtb)) -> DomainSet {
    let mut b = Dtb::new();
    b.cells("#address-cells", &[2]).cells("#size-cells", &[2]);
    b.node("chosen").cells("#address-cells", &[2]).cells("#size-cells", &[1]);
    f(&mut b);
    domain(&mut b, "good", 0x7000_0000, |_| {});
    b.end();
    let set = parse(&b.finish(), &limits());
    assert!(set.valid().any(|d| d.name == "good"), "the good domain must survive: {set:#?}");
    set
}

/// A valid domain with a 1 MiB kernel at `kernel`; `f` may add or override things.
fn domain(b: &mut Dtb, name: &str, kernel: u32, f: impl FnOnce(&mut Dtb)) {
    b.node(name).str("compatible", "xen,domain").cells("memory", &[0, 65536]).cells("cpus", &[1]);
    f(b);
    module(b, "multiboot,kernel", kernel, 0x10_0000);
    b.end();
}

fn module(b: &mut Dtb, kind: &str, addr: u32, size: u32) {
    b.node(&format!("module@{addr:x}")).strs("compatible", &[kind, "multiboot,module"]).cells("reg", &[0, addr, size]);
    b.end();
}

/// The errors of the domain at `node`, which must have failed.
fn errors(set: &DomainSet, node: &str) -> Vec<String> {
    let d = set.domains.iter().find(|d| d.as_ref().map_or_else(|e| e.node == node, |d| d.node == node));
    match d {
        Some(Err(e)) => e.errors.clone(),
        other => panic!("{node} should have failed: {other:#?}"),
    }
}

fn assert_error(set: &DomainSet, node: &str, needles: &[&str]) {
    let errs = errors(set, node);
    assert!(
        errs.iter().any(|e| needles.iter().all(|n| e.contains(n))),
        "no error of {node} mentions {needles:?}: {errs:#?}"
    );
    assert!(set.problems.iter().any(|p| p.severity == Severity::Error && p.node == node));
}

#[test]
fn module_errors() {
    let set = tree(|b| {
        b.node("nokernel").str("compatible", "xen,domain").cells("memory", &[0, 65536]).cells("cpus", &[1]);
        module(b, "multiboot,ramdisk", 0x5000_0000, 0x1000);
        b.end();
        domain(b, "zero", 0x5100_0000, |b| module(b, "multiboot,ramdisk", 0x5200_0000, 0));
        domain(b, "short", 0x5300_0000, |b| {
            b.node("module@0")
                .strs("compatible", &["multiboot,ramdisk", "multiboot,module"])
                .cells("reg", &[0x5400_0000, 1]);
            b.end();
        });
        domain(b, "outside", 0x1000, |_| {});
        domain(b, "generic", 0x5500_0000, |b| {
            b.node("module@1").strs("compatible", &["multiboot,ramdisk"]).cells("reg", &[0, 0x5600_0000, 1]);
            b.end();
        });
        domain(b, "twokernels", 0x5700_0000, |b| module(b, "multiboot,kernel", 0x5800_0000, 0x1000));
        domain(b, "args", 0x5900_0000, |b| {
            b.node("module@2").strs("compatible", &["multiboot,kernel", "multiboot,module"]);
            b.cells("reg", &[0, 0x5a00_0000, 0x1000]).prop("bootargs", b"no terminator");
            b.end();
        });
    });
    assert_error(&set, "/chosen/nokernel", &["/chosen/nokernel", "no kernel module"]);
    assert_error(&set, "/chosen/zero", &["/chosen/zero/module@52000000", "size 0"]);
    assert_error(&set, "/chosen/short", &["/chosen/short/module@0", "reg has 8 bytes", "takes 12"]);
    assert_error(&set, "/chosen/outside", &["/chosen/outside/module@1000", "not inside RAM"]);
    assert_error(&set, "/chosen/generic", &["/chosen/generic/module@1", "lacks the generic \"multiboot,module\""]);
    assert_error(&set, "/chosen/twokernels", &["a second kernel module"]);
    assert_error(&set, "/chosen/args", &["/chosen/args/module@2", "bootargs", "NUL-terminated"]);
}

#[test]
fn overlapping_modules_fail_both_domains() {
    let set = tree(|b| {
        domain(b, "a", 0x5000_0000, |_| {});
        domain(b, "b", 0x500f_f000, |_| {});
        domain(b, "self", 0x6000_0000, |b| module(b, "multiboot,ramdisk", 0x6000_1000, 0x1000));
    });
    assert_error(&set, "/chosen/a", &["/chosen/a/module@50000000", "overlaps /chosen/b/module@500ff000"]);
    assert_error(&set, "/chosen/b", &["/chosen/b/module@500ff000", "overlaps /chosen/a/module@50000000"]);
    assert_error(&set, "/chosen/self", &["overlaps /chosen/self/module@60000000"]);
}

#[test]
fn memory_and_cpu_errors() {
    let set = tree(|b| {
        domain(b, "mem0", 0x5000_0000, |b| {
            b.cells("memory", &[0, 0]);
        });
        domain(b, "mem1cell", 0x5100_0000, |b| {
            b.cells("memory", &[65536]);
        });
        domain(b, "memhuge", 0x5200_0000, |b| {
            b.cells("memory", &[1, 0]);
        });
        domain(b, "mempage", 0x5300_0000, |b| {
            b.cells("memory", &[0, 1023]);
        });
        domain(b, "cpus0", 0x5400_0000, |b| {
            b.cells("cpus", &[0]);
        });
        domain(b, "cpus99", 0x5500_0000, |b| {
            b.cells("cpus", &[99]);
        });
        b.node("nocpus").str("compatible", "xen,domain").cells("memory", &[0, 65536]);
        module(b, "multiboot,kernel", 0x5600_0000, 0x1000);
        b.end();
    });
    assert_error(&set, "/chosen/mem0", &["memory is 0"]);
    assert_error(&set, "/chosen/mem1cell", &["memory", "two cells", "<0 131072>"]);
    assert_error(&set, "/chosen/memhuge", &["memory 4294967296 KiB exceeds"]);
    assert_error(&set, "/chosen/mempage", &["not a multiple of 4 KiB"]);
    assert_error(&set, "/chosen/cpus0", &["cpus = 0"]);
    assert_error(&set, "/chosen/cpus99", &["cpus = 99", "1 to 8"]);
    assert_error(&set, "/chosen/nocpus", &["no `cpus` property"]);
}

#[test]
fn property_errors_and_warnings() {
    let set = tree(|b| {
        domain(b, "caps", 0x5000_0000, |b| {
            b.cells("capabilities", &[8]);
        });
        domain(b, "hw1", 0x5100_0000, |b| {
            b.cells("capabilities", &[2]);
        });
        domain(b, "hw2", 0x5200_0000, |b| {
            b.cells("capabilities", &[3]);
        });
        domain(b, "enh", 0x5300_0000, |b| {
            b.str("xen,enhanced", "maybe");
        });
        domain(b, "direct", 0x5400_0000, |b| {
            b.empty("direct-map").cells("xen,static-mem", &[0, 0x3000_0000, 0x100]);
        });
        domain(b, "weight", 0x5500_0000, |b| {
            b.cells("keel,weight", &[0]).cells("keel,cap", &[101]);
        });
        domain(b, "n1", 0x5600_0000, |b| {
            b.str("keel,name", "same");
        });
        domain(b, "n2", 0x5a00_0000, |b| {
            b.str("keel,name", "same");
        });
        domain(b, "badname", 0x5700_0000, |b| {
            b.str("keel,name", "has space");
        });
        domain(b, "extra", 0x5800_0000, |b| {
            b.cells("nr_spis", &[32]).empty("vpl011").node("shm").str("compatible", "xen,domain-shared-memory-v1");
            b.end();
        });
    });
    assert_error(&set, "/chosen/caps", &["capabilities 0x8"]);
    assert!(set.valid().any(|d| d.name == "hw1" && d.capabilities.0 == 2));
    assert_error(&set, "/chosen/hw2", &["a second hardware domain", "/chosen/hw1"]);
    assert_error(&set, "/chosen/enh", &["xen,enhanced = \"maybe\""]);
    assert_error(&set, "/chosen/direct", &["xen,static-mem needs `#xen,static-mem-address-cells`"]);
    assert_error(&set, "/chosen/weight", &["keel,weight = 0"]);
    assert_error(&set, "/chosen/weight", &["keel,cap = 101"]);
    assert!(set.valid().any(|d| d.node == "/chosen/n1" && d.name == "same"));
    assert_error(&set, "/chosen/n2", &["the name \"same\" is taken by /chosen/n1"]);
    assert_error(&set, "/chosen/badname", &["keel,name \"has space\""]);
    let extra = set.valid().find(|d| d.name == "extra").expect("unknown properties only warn");
    assert!(extra.vpl011);
    assert!(extra.warnings.iter().any(|w| w.contains("`nr_spis`")), "{:?}", extra.warnings);
    assert!(extra.warnings.iter().any(|w| w.contains("/chosen/extra/shm: ignoring node")));
    assert!(set.problems.iter().any(|p| p.severity == Severity::Warning && p.node == "/chosen/extra"));
}

#[test]
fn vcpu_affinity_errors() {
    let set = tree(|b| {
        let vcpu = |b: &mut Dtb, node: &str, id: u32, list: &str| {
            b.node(node).str("compatible", "xen,vcpu").cells("id", &[id]).str("hard-affinity", list).end();
        };
        domain(b, "id", 0x5000_0000, |b| vcpu(b, "vcpu1", 1, "0"));
        domain(b, "backwards", 0x5100_0000, |b| vcpu(b, "vcpu0", 0, "3-1"));
        domain(b, "nosuchcpu", 0x5200_0000, |b| vcpu(b, "vcpu0", 0, "0,9"));
        domain(b, "twice", 0x5300_0000, |b| {
            vcpu(b, "a", 0, "0");
            vcpu(b, "b", 0, "1");
        });
    });
    assert_error(&set, "/chosen/id", &["/chosen/id/vcpu1", "vCPU id 1 but the domain has 1"]);
    assert_error(&set, "/chosen/backwards", &["hard-affinity \"3-1\"", "backwards"]);
    assert_error(&set, "/chosen/nosuchcpu", &["CPU 9 does not exist"]);
    assert_error(&set, "/chosen/twice", &["/chosen/twice/b", "a second affinity node for vCPU 0"]);
}

#[test]
fn static_event_channel_errors() {
    let ec = |b: &mut Dtb, name: &str, phandle: u32, port: u32, remote: u32| {
        b.node(name)
            .str("compatible", "xen,evtchn-v1")
            .cells("phandle", &[phandle])
            .cells("xen,evtchn", &[port, remote]);
        b.end();
    };
    let set = tree(|b| {
        domain(b, "a", 0x5000_0000, |b| ec(b, "ec1", 1, 5, 2));
        domain(b, "b", 0x5100_0000, |b| ec(b, "ec2", 2, 6, 1));
        domain(b, "oneway", 0x5200_0000, |b| ec(b, "ec3", 3, 5, 1));
        domain(b, "port0", 0x5300_0000, |b| ec(b, "ec4", 4, 0, 1));
        domain(b, "dangling", 0x5400_0000, |b| ec(b, "ec5", 5, 7, 0x99));
        domain(b, "dup", 0x5500_0000, |b| {
            ec(b, "ec6", 6, 9, 7);
            ec(b, "ec6b", 8, 9, 13);
        });
        // The other ends of dup's channels, in a domain that fails for another reason.
        domain(b, "broken", 0x5600_0000, |b| {
            b.cells("cpus", &[0]);
            ec(b, "ec7", 7, 1, 6);
            ec(b, "ec7b", 13, 2, 8);
        });
        domain(b, "c", 0x5700_0000, |b| ec(b, "ec9", 9, 2, 10));
        domain(b, "d", 0x5800_0000, |b| {
            ec(b, "ec10", 10, 3, 9);
            ec(b, "ec11", 11, 4, 12);
        });
        domain(b, "e", 0x5900_0000, |b| {
            b.cells("cpus", &[0]);
            ec(b, "ec12", 12, 5, 11);
        });
    });
    let a = set.valid().find(|d| d.name == "a").unwrap();
    assert_eq!((a.event_channels[0].local_port, a.event_channels[0].remote_domain.as_str()), (5, "b"));
    assert_error(&set, "/chosen/oneway", &["/chosen/oneway/ec3", "the other end /chosen/a/ec1 does not link back"]);
    assert_error(&set, "/chosen/port0", &["port 0 is outside 1..=131071"]);
    assert_error(&set, "/chosen/dangling", &["links to phandle 0x99, which is no xen,evtchn-v1 node"]);
    assert_error(&set, "/chosen/dup", &["port 9 is also used by"]);
    // d's channel to the failed domain e is dropped with a warning; d is still built.
    let d = set.valid().find(|d| d.name == "d").unwrap();
    assert_eq!(d.event_channels.len(), 1);
    assert!(d.warnings.iter().any(|w| w.contains("/chosen/d/ec11: dropped") && w.contains("/chosen/e/ec12")));
}

#[test]
fn tree_level_problems() {
    let mut b = Dtb::new();
    b.node("memory").end();
    let set = parse(&b.finish(), &limits());
    assert!(set.domains.is_empty());
    assert!(set.problems[0].message.contains("/chosen: no such node"));

    let mut good = Dtb::new();
    good.node("chosen").end();
    let good = good.finish();
    let set = parse(&good, &limits());
    assert_eq!((set.domains.len(), set.problems.len()), (0, 0), "an empty /chosen describes no domain");

    let mut bad = good.clone();
    bad[0] = 0;
    assert!(parse(&bad, &limits()).problems[0].message.contains("bad magic"));
    assert!(parse(&good[..good.len() - 4], &limits()).problems[0].message.contains("totalsize"));
    let mut nop = good.clone();
    let at = nop.windows(4).position(|w| w == [0, 0, 0, 2]).unwrap();
    nop[at + 3] = 4;
    assert!(parse(&nop, &limits()).problems[0].message.contains("FDT_NOP"));
}

#[test]
fn initial_domain_rules() {
    let initial = |f: &dyn Fn(&mut Dtb)| {
        let mut b = Dtb::new();
        b.cells("#address-cells", &[2]).cells("#size-cells", &[2]);
        b.node("chosen").str("bootargs", "from chosen");
        f(&mut b);
        b.end();
        parse(&b.finish(), &limits())
    };
    let m = |b: &mut Dtb, addr: u32, compat: &[&str], args: Option<&str>| {
        b.node(&format!("module@{addr:x}")).strs("compatible", compat).cells("reg", &[0, addr, 0, 0x1000]);
        if let Some(a) = args {
            b.str("bootargs", a);
        }
        b.end();
    };
    // Unspecified modules: the first is the kernel, the second the ramdisk; Xen 4.4 names.
    let set = initial(&|b| {
        m(b, 0x5000_0000, &["xen,multiboot-module"], None);
        m(b, 0x5100_0000, &["multiboot,module"], None);
        m(b, 0x5200_0000, &["xen,linux-zimage", "xen,multiboot-module"], None);
    });
    let d = set.valid().next().unwrap();
    assert_eq!(d.kernel.region.start, 0x5000_0000);
    assert_eq!(d.ramdisk.as_ref().map(|r| r.region.start), Some(0x5100_0000));
    assert_eq!(d.bootargs.as_deref(), Some("from chosen"), "/chosen/bootargs is the last resort");
    assert!(d.warnings.iter().any(|w| w.contains("/chosen/module@52000000: ignoring a kernel module")));
    // xen,dom0-bootargs beats the module's bootargs, which beat /chosen/bootargs.
    let set = initial(&|b| {
        m(b, 0x5000_0000, &["multiboot,kernel", "multiboot,module"], Some("from module"));
    });
    assert_eq!(set.valid().next().unwrap().bootargs.as_deref(), Some("from module"));
    let set = initial(&|b| {
        b.str("xen,dom0-bootargs", "from dom0-bootargs");
        m(b, 0x5000_0000, &["multiboot,kernel", "multiboot,module"], Some("from module"));
    });
    assert_eq!(set.valid().next().unwrap().bootargs.as_deref(), Some("from dom0-bootargs"));
    // A ramdisk alone makes no domain, with a warning.
    let set = initial(&|b| m(b, 0x5000_0000, &["multiboot,ramdisk", "multiboot,module"], None));
    assert!(set.domains.is_empty());
    assert!(set.problems.iter().any(|p| p.message.contains("without a kernel module")));
    // With dom0less domains as well, the initial domain comes first (as in Xen).
    let mut b = Dtb::new();
    b.cells("#address-cells", &[2]).cells("#size-cells", &[2]);
    b.node("chosen");
    b.node("domU").str("compatible", "xen,domain").cells("memory", &[0, 4096]).cells("cpus", &[1]);
    b.node("k")
        .strs("compatible", &["multiboot,kernel", "multiboot,module"])
        .cells("reg", &[0, 0x6000_0000, 0, 0x1000])
        .end();
    b.end();
    m(&mut b, 0x5000_0000, &["multiboot,kernel", "multiboot,module"], None);
    b.end();
    let set = parse(&b.finish(), &limits());
    let names: Vec<_> = set.valid().map(|d| d.name.to_string()).collect();
    assert_eq!(names, ["dom0", "domU"]);
}

/// `direct-map` with `xen,static-mem` (Xen's static allocation): read, and refused by
/// name where the RAM is not the domain's to have.
#[test]
fn direct_map_and_static_memory() {
    let direct = |b: &mut Dtb, mem: &[u32]| {
        b.empty("direct-map").cells("#xen,static-mem-address-cells", &[1]).cells("#xen,static-mem-size-cells", &[1]);
        b.cells("xen,static-mem", mem);
    };
    let set = tree(|b| {
        domain(b, "driver", 0x5000_0000, |b| direct(b, &[0x6000_0000, 0x200_0000, 0x6400_0000, 0x200_0000]));
        domain(b, "nostatic", 0x5100_0000, |b| {
            b.empty("direct-map");
        });
        domain(b, "nodirect", 0x5200_0000, |b| {
            b.cells("#xen,static-mem-address-cells", &[1]).cells("#xen,static-mem-size-cells", &[1]);
            b.cells("xen,static-mem", &[0x6800_0000, 0x400_0000]);
        });
        domain(b, "short", 0x5300_0000, |b| direct(b, &[0x6800_0000, 0x100_0000]));
        domain(b, "odd", 0x5400_0000, |b| direct(b, &[0x6800_0800, 0x400_0000]));
        domain(b, "onmodule", 0x5500_0000, |b| direct(b, &[0x5200_0000, 0x400_0000]));
        domain(b, "pair1", 0x5600_0000, |b| direct(b, &[0x7400_0000, 0x400_0000]));
        domain(b, "pair2", 0x5900_0000, |b| direct(b, &[0x7600_0000, 0x400_0000]));
        domain(b, "outside", 0x5700_0000, |b| direct(b, &[0x1000_0000, 0x400_0000]));
        domain(b, "badlen", 0x5800_0000, |b| direct(b, &[0x6800_0000]));
    });
    let good = set.valid().find(|d| d.name == "driver").expect("driver is built");
    let bank = |start, size| crate::mm::Region::new(start, size);
    assert_eq!(good.direct_map, Some(alloc::vec![bank(0x6000_0000, 0x200_0000), bank(0x6400_0000, 0x200_0000)]));
    assert_error(&set, "/chosen/nostatic", &["`direct-map` without `xen,static-mem`"]);
    assert_error(&set, "/chosen/nodirect", &["`xen,static-mem` without `direct-map`"]);
    assert_error(&set, "/chosen/short", &["gives 16384 KiB but memory says 65536 KiB"]);
    assert_error(&set, "/chosen/odd", &["not page aligned"]);
    assert_error(&set, "/chosen/onmodule", &["not free", "overlaps the module /chosen/onmodule/module@55000000"]);
    assert_error(&set, "/chosen/pair2", &["[0x76000000, 0x7a000000) is given to /chosen/pair1 as well"]);
    assert_error(&set, "/chosen/pair1", &["[0x74000000, 0x78000000) is given to /chosen/pair2 as well"]);
    assert_error(&set, "/chosen/outside", &["is not inside RAM"]);
    assert_error(&set, "/chosen/badlen", &["xen,static-mem has 4 bytes"]);
}

//! The example trees in `dts/` (committed compiled next to their source) and a real
//! QEMU `virt` tree with two `guest-loader` devices.

use crate::config::{
    parse, Capabilities, DomainConfig, DomainKind, Enhanced, InitialDefaults, Limits, Module, StaticEventChannel,
};
use crate::mm::Region;
use crate::sched::CpuMask;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

const TWO_DOMAINS: &[u8] = include_bytes!("../../../../dts/two-domains.dtb");
const SINGLE: &[u8] = include_bytes!("../../../../dts/dom0less-single.dtb");
const GUEST_LOADER: &[u8] = include_bytes!("../../../../dts/guest-loader.dtb");
/// `qemu-system-aarch64 -M virt,virtualization=on,gic-version=3,dumpdtb=... -smp 2 -m 1G
/// -kernel k -append "dom0_mem=512M keel.exit=test" -device guest-loader,addr=0x47000000,
/// kernel=k,bootargs="console=hvc0 root=/dev/ram0" -device guest-loader,addr=0x48000000,
/// initrd=i` (QEMU 10), repacked with `dtc -I dtb -O dtb`.
const QEMU_VIRT: &[u8] = include_bytes!("qemu-virt-guest-loader.dtb");

const RAM: [Region; 1] = [Region { start: 0x4000_0000, end: 0x8000_0000 }];

pub fn limits() -> Limits<'static> {
    Limits {
        max_vcpus: 8,
        nr_pcpus: 4,
        max_memory_kib: 1 << 20,
        ram: &RAM,
        boot_modules: &[],
        initial: InitialDefaults::default(),
    }
}

fn module(node: &str, start: u64, size: u64) -> Module {
    Module { node: node.into(), region: Region::new(start, size) }
}

fn only_valid(dtb: &[u8], limits: &Limits<'_>) -> Vec<DomainConfig> {
    let set = parse(dtb, limits);
    assert!(set.problems.is_empty(), "{:#?}", set.problems);
    set.domains.into_iter().map(Result::unwrap).collect()
}

#[test]
fn two_domains() {
    let d = only_valid(TWO_DOMAINS, &limits());
    assert_eq!(d.len(), 2);
    let mut want = DomainConfig::new(
        "domU1".into(),
        "/chosen/domU1".into(),
        DomainKind::Dom0less,
        module("/chosen/domU1/module@48000000", 0x4800_0000, 0x100_0000),
    );
    want.bootargs = Some("console=ttyAMA0 rdinit=/init".into());
    want.ramdisk = Some(module("/chosen/domU1/module@49000000", 0x4900_0000, 0x80_0000));
    want.memory_kib = 256 * 1024;
    want.vcpus = 2;
    want.vpl011 = true;
    want.enhanced = Enhanced::NoXenstore;
    want.weight = 512;
    want.event_channels =
        alloc::vec![StaticEventChannel { local_port: 0xa, remote_domain: "worker".into(), remote_port: 0xb }];
    assert_eq!(d[0], want);

    let w = &d[1];
    assert_eq!((w.name.as_str(), w.node.as_str()), ("worker", "/chosen/domU2"));
    assert_eq!((w.memory_kib, w.vcpus, w.vpl011, w.cap, w.weight), (128 * 1024, 1, false, 50, 256));
    assert_eq!(w.kernel, module("/chosen/domU2/module@4a000000", 0x4a00_0000, 0x100_0000));
    assert_eq!(w.ramdisk, Some(module("/chosen/domU2/module@4b000000", 0x4b00_0000, 0x40_0000)));
    assert_eq!(w.bootargs.as_deref(), Some("console=hvc0"));
    assert_eq!(w.capabilities, Capabilities::NONE);
    assert_eq!(
        w.event_channels,
        [StaticEventChannel { local_port: 0xb, remote_domain: "domU1".into(), remote_port: 0xa }]
    );
}

#[test]
fn single_domain_with_vcpu_affinity() {
    let d = only_valid(SINGLE, &limits());
    assert_eq!(d.len(), 1);
    let d = &d[0];
    assert_eq!((d.name.as_str(), d.memory_kib, d.vcpus, d.enhanced), ("domU1", 64 * 1024, 2, Enhanced::Enabled));
    assert_eq!(d.kernel, module("/chosen/domU1/module@44000000", 0x4400_0000, 0x200_0000));
    assert_eq!((d.ramdisk.as_ref(), d.bootargs.as_deref()), (None, Some("console=ttyAMA0 earlycon")));
    assert_eq!(d.vcpu_affinity, [(0, CpuMask::of(&[0])), (1, CpuMask::of(&[1, 2, 3]))]);
}

#[test]
fn guest_loader_modules_make_the_initial_domain() {
    for dtb in [GUEST_LOADER, QEMU_VIRT] {
        let d = only_valid(dtb, &limits());
        assert_eq!(d.len(), 1);
        let mut want = DomainConfig::new(
            "dom0".into(),
            "/chosen".into(),
            DomainKind::Initial,
            module("/chosen/module@0x47000000", 0x4700_0000, 0x1388),
        );
        want.bootargs = Some("console=hvc0 root=/dev/ram0".into());
        want.ramdisk = Some(module("/chosen/module@0x48000000", 0x4800_0000, 0xbb8));
        want.memory_kib = 512 * 1024;
        want.vcpus = 4;
        want.vpl011 = true;
        want.enhanced = Enhanced::NoXenstore;
        assert_eq!(d[0], want);
    }
    // Xen's dom0_mem= and dom0_max_vcpus= set the initial domain's size.
    let (initial, errors) = InitialDefaults::from_cmdline("dom0_mem=768M dom0_max_vcpus=2");
    assert!(errors.is_empty());
    let d = only_valid(QEMU_VIRT, &Limits { initial, ..limits() });
    assert_eq!((d[0].memory_kib, d[0].vcpus), (768 * 1024, 2));
}

/// The committed `.dtb` files match their `.dts` sources (when `dtc` is installed):
/// both parse to the same domains and hold the same nodes and properties.
#[test]
fn compiled_examples_match_their_sources() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../dts");
    let out = std::env::temp_dir().join(std::format!("keel-dts-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    for (name, committed) in [("two-domains", TWO_DOMAINS), ("dom0less-single", SINGLE), ("guest-loader", GUEST_LOADER)]
    {
        let dtb = out.join(std::format!("{name}.dtb"));
        let status = std::process::Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&dtb)
            .arg(std::format!("{dir}/{name}.dts"))
            .status();
        let Ok(status) = status else {
            std::eprintln!("skipping the dts/ sync check: dtc is not installed");
            return;
        };
        assert!(status.success(), "dtc failed on dts/{name}.dts");
        let fresh = std::fs::read(&dtb).unwrap();
        assert_eq!(parse(&fresh, &limits()), parse(committed, &limits()), "dts/{name}.dtb is stale");
        assert_eq!(dump(&fresh), dump(committed), "dts/{name}.dtb is stale: run dtc on dts/{name}.dts");
    }
    std::fs::remove_dir_all(&out).ok();
}

/// A node's path and its properties.
type NodeDump = (String, Vec<(String, Vec<u8>)>);

/// Every node path with its properties, in tree order.
fn dump(dtb: &[u8]) -> Vec<NodeDump> {
    let tree = fdt::Fdt::new(dtb).unwrap();
    let mut out = Vec::new();
    fn walk(n: fdt::node::FdtNode<'_, '_>, path: String, out: &mut Vec<NodeDump>) {
        out.push((path.clone(), n.properties().map(|p| (p.name.to_string(), p.value.to_vec())).collect()));
        for c in n.children() {
            walk(c, std::format!("{path}/{}", c.name), out);
        }
    }
    walk(tree.all_nodes().next().unwrap(), String::new(), &mut out);
    out
}

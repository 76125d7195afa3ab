//! The passthrough binding: partial trees as Xen documents them, every refusal by name,
//! and no panic on any partial tree.

use super::check::{check, HostUse};
use super::{host, partial, Device, MmioRange, Request};
use crate::addr::Region;
use crate::config::tests::builder::Dtb;
use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};
use proptest::prelude::*;

const MODULE: &str = "/chosen/driver/module@49000000";
/// QEMU virt's last two virtio-mmio transports (the first two `-device`s): their page.
const VIRTIO_PAGE: u64 = 0x0a00_3000;

/// One `/passthrough` child as QEMU's transport `addr` on `spi`, mapping its page 1:1.
pub(super) fn virtio(b: &mut Dtb, addr: u64, spi: u32, edit: impl FnOnce(&mut Dtb)) {
    b.node(&format!("virtio@{addr:x}"));
    b.str("compatible", "virtio,mmio");
    b.cells("reg", &[0, addr as u32, 0, 0x200]);
    b.cells("interrupt-parent", &[65000]);
    b.cells("interrupts", &[0, spi, 1]);
    b.cells("xen,reg", &[0, VIRTIO_PAGE as u32, 0, 0x1000, 0, VIRTIO_PAGE as u32]);
    b.str("xen,path", &format!("/virtio_mmio@{addr:x}"));
    b.empty("xen,force-assign-without-iommu");
    edit(b);
    b.end();
}

/// A partial tree in Xen's layout: a `/gic` placeholder and `/passthrough` with the
/// devices `body` adds.
pub(super) fn partial_tree(body: impl FnOnce(&mut Dtb)) -> Vec<u8> {
    let mut b = Dtb::new();
    b.cells("#address-cells", &[2]).cells("#size-cells", &[2]);
    b.node("gic").cells("#interrupt-cells", &[3]).empty("interrupt-controller").cells("phandle", &[65000]).end();
    b.node("passthrough").strs("compatible", &["simple-bus"]).empty("ranges");
    b.cells("#address-cells", &[2]).cells("#size-cells", &[2]);
    body(&mut b);
    b.end();
    b.finish()
}

/// The net (SPI 47) and block (SPI 46) transports QEMU gives the first two devices.
pub(super) fn net_and_blk() -> Vec<u8> {
    partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |_| {});
        virtio(b, 0x0a00_3c00, 46, |_| {});
    })
}

/// The host's transports as QEMU virt describes them.
fn host_tree() -> Vec<u8> {
    let mut b = Dtb::new();
    b.cells("#address-cells", &[2]).cells("#size-cells", &[2]);
    for i in 0..32u32 {
        let addr = 0x0a00_0000 + i * 0x200;
        b.node(&format!("virtio_mmio@{addr:x}")).str("compatible", "virtio,mmio");
        b.cells("reg", &[0, addr, 0, 0x200]).cells("interrupts", &[0, 16 + i, 1]).end();
    }
    b.node("pl011@9000000").cells("reg", &[0, 0x0900_0000, 0, 0x1000]).cells("interrupts", &[0, 1, 4]).end();
    b.node("off").str("status", "disabled").cells("reg", &[0, 0x0c00_0000, 0, 0x1000]).end();
    b.finish()
}

fn errors_of(dtb: &[u8]) -> String {
    partial::parse(dtb, MODULE).unwrap_err().join("\n")
}

#[test]
fn qemu_virtio_net_and_blk_parse_and_match_the_host() {
    let devices = partial::parse(&net_and_blk(), MODULE).unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0].node, "/passthrough/virtio@a003e00");
    assert_eq!(devices[0].host_path.as_deref(), Some("/virtio_mmio@a003e00"));
    let page = MmioRange { host: Region::new(VIRTIO_PAGE, 0x1000), guest: VIRTIO_PAGE };
    assert_eq!(devices[0].mmio, vec![page]);
    assert_eq!(devices[0].irqs, vec![79]);
    assert_eq!(devices[1].irqs, vec![78]);
    assert_eq!(host::resolve(&devices, &host_tree(), MODULE), Vec::<String>::new());
}

#[test]
fn nodes_without_xen_properties_ask_for_nothing() {
    let dtb = partial_tree(|b| {
        b.node("clock").str("compatible", "fixed-clock").cells("clock-frequency", &[100]).end();
    });
    assert_eq!(partial::parse(&dtb, MODULE).unwrap(), Vec::new());
}

#[test]
fn force_assign_is_required_since_keel_has_no_iommu() {
    let mut b = Dtb::new();
    b.node("passthrough").cells("#size-cells", &[2]);
    b.node("dev").cells("xen,reg", &[0, 0x0a00_3000, 0, 0x1000, 0, 0x0a00_3000]).end();
    b.end();
    let e = errors_of(&b.finish());
    assert!(e.contains(MODULE) && e.contains("/passthrough/dev"), "{e}");
    assert!(e.contains("no `xen,force-assign-without-iommu`") && e.contains("IOMMU"), "{e}");
}

#[test]
fn bad_partial_trees_are_refused_by_name() {
    let e = errors_of(&partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("xen,reg", &[0, 0x0a00_3e00, 0, 0x200, 0, 0x0a00_3e00]);
        })
    }));
    assert!(e.contains("not page aligned"), "{e}");
    let e = errors_of(&partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("xen,reg", &[0, 0x0a00_3000, 0, 0x1000]);
        })
    }));
    assert!(e.contains("xen,reg has 16 bytes"), "{e}");
    let e = errors_of(&partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("xen,reg", &[0xffff_ffff, 0xffff_f000, 0, 0x2000, 0, 0]);
        })
    }));
    assert!(e.contains("wraps"), "{e}");
    let e = errors_of(&partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("xen,reg", &[0, 0x0a00_3000, 0, 0, 0, 0x0a00_3000]);
        })
    }));
    assert!(e.contains("size 0"), "{e}");
    let e = errors_of(&partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("interrupts", &[1, 14, 4]);
        })
    }));
    assert!(e.contains("PPI 14"), "{e}");
    let e = errors_of(&partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("interrupts", &[0, 988, 4]);
        })
    }));
    assert!(e.contains("SPI 988 does not exist"), "{e}");
    let e = errors_of(&partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("interrupts", &[0, 47]);
        })
    }));
    assert!(e.contains("interrupts: 8 bytes"), "{e}");
    let e = errors_of(&partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.str("xen,path", "virtio");
        })
    }));
    assert!(e.contains("not an absolute path"), "{e}");
    let mut b = Dtb::new();
    b.node("passthrough").cells("#size-cells", &[2]);
    b.node("dev").cells("xen,reg", &[0, 0x1000, 0, 0x1000, 0, 0x1000]).cells("interrupts", &[0, 5, 4]);
    b.empty("xen,force-assign-without-iommu").end().end();
    assert!(errors_of(&b.finish()).contains("`interrupts` without `xen,path`"));
    let mut b = Dtb::new();
    b.node("devices").end();
    assert!(errors_of(&b.finish()).contains("no /passthrough node"));
    assert!(errors_of(b"not a tree").contains("malformed partial device tree"));
}

#[test]
fn host_nodes_must_exist_be_mapped_and_give_the_guest_their_interrupts() {
    let resolve = |dtb: Vec<u8>| {
        let d = partial::parse(&dtb, MODULE).unwrap();
        host::resolve(&d, &host_tree(), MODULE).join("\n")
    };
    let e = resolve(partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.str("xen,path", "/soc/virtio");
        })
    }));
    assert!(e.contains("no such node in the host device tree"), "{e}");
    let e = resolve(partial_tree(|b| virtio(b, 0x0a00_3e00, 46, |_| {})));
    assert!(e.contains("INTIDs [78]") && e.contains("has [79]"), "{e}");
    let e = resolve(partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("xen,reg", &[0, 0x0a00_2000, 0, 0x1000, 0, 0x0a00_2000]);
        })
    }));
    assert!(e.contains("does not map [0xa003e00, 0xa004000)"), "{e}");
    let e = resolve(partial_tree(|b| {
        virtio(b, 0x0c00_0000, 47, |b| {
            b.str("xen,path", "/off").cells("xen,reg", &[0, 0x0c00_0000, 0, 0x1000, 0, 0x0c00_0000]);
            b.cells("interrupts", &[]);
        })
    }));
    assert!(e.contains("disabled"), "{e}");
    let d = partial::parse(&net_and_blk(), MODULE).unwrap();
    assert!(host::resolve(&d, b"junk", MODULE)[0].contains("malformed"));
}

// ---- the checks across domains ----

const RAM: Region = Region { start: 0x4000_0000, end: 0x8000_0000 };
const KEEL: Region = Region { start: 0x4020_0000, end: 0x4100_0000 };
const STATIC: Region = Region { start: 0x6000_0000, end: 0x7000_0000 };

pub(super) fn host_use() -> HostUse {
    HostUse {
        ram: vec![RAM],
        ram_used: vec![(KEEL, "Keel's image".into()), (Region::new(0x4900_0000, 0x1000), MODULE.into())],
        mmio: vec![
            (Region::new(0x0900_0000, 0x1000), "its UART".into()),
            (Region::new(0x0800_0000, 0x10000), "the GIC distributor".into()),
        ],
        irqs: vec![(33, "its UART".into())],
        irq_lines: 288,
    }
}

pub(super) fn driver(devices: Vec<Device>) -> Request {
    Request {
        domain: "driver".into(),
        node: "/chosen/driver".into(),
        direct_map: Some(vec![STATIC]),
        guest_used: vec![(Region::new(0x0300_1000, 0x1000), "virtual GIC distributor".into())],
        devices,
    }
}

pub(super) fn device(node: &str, host: u64, guest: u64, irqs: &[u32]) -> Device {
    Device {
        node: node.into(),
        host_path: None,
        mmio: vec![MmioRange { host: Region::new(host, 0x1000), guest }],
        irqs: irqs.to_vec(),
    }
}

fn refusals(requests: &[Request]) -> Vec<(usize, String)> {
    check(requests, &host_use())
}

fn assert_refused(requests: &[Request], index: usize, words: &[&str]) {
    let all = refusals(requests);
    assert!(
        all.iter().any(|(i, m)| *i == index && words.iter().all(|w| m.contains(w))),
        "no refusal of request {index} with {words:?} in {all:#?}"
    );
}

#[test]
fn a_direct_mapped_driver_domain_with_qemus_virtio_devices_is_accepted() {
    let devices = partial::parse(&net_and_blk(), MODULE).unwrap();
    let other = Request { domain: "guest".into(), node: "/chosen/guest".into(), direct_map: None, ..driver(vec![]) };
    assert_eq!(refusals(&[driver(devices), other]), Vec::new());
}

#[test]
fn direct_map_ram_must_be_free_ram_of_nobody_else() {
    let mut r = driver(vec![]);
    r.direct_map = Some(vec![Region::new(0x4080_0000, 0x80_0000)]);
    assert_refused(&[r.clone()], 0, &["/chosen/driver", "not free", "Keel's image"]);
    r.direct_map = Some(vec![Region::new(0x4900_0000, 0x10_0000)]);
    assert_refused(&[r.clone()], 0, &["not free", MODULE]);
    r.direct_map = Some(vec![Region::new(0x7ff0_0000, 0x20_0000)]);
    assert_refused(&[r.clone()], 0, &["not inside one bank of the host's RAM"]);
    r.direct_map = Some(vec![Region::new(0x6000_0800, 0x1000)]);
    assert_refused(&[r.clone()], 0, &["not page aligned"]);
    r.direct_map = Some(vec![]);
    assert_refused(&[r.clone()], 0, &["needs `xen,static-mem`"]);
    r.direct_map = Some(vec![Region::new(0x0300_0000, 0x10_0000)]);
    assert_refused(&[r.clone()], 0, &["overlaps the domain's virtual GIC distributor"]);
    r.direct_map = Some(vec![STATIC, Region::new(0x6800_0000, 0x1000)]);
    assert_refused(&[r], 0, &["overlaps its bank 0"]);
    let a = driver(vec![]);
    let b = Request { domain: "second".into(), node: "/chosen/second".into(), ..driver(vec![]) };
    assert_refused(&[a.clone(), b.clone()], 1, &["/chosen/second", "is given to domain driver"]);
    assert_refused(&[a, b], 0, &["is given to domain second"]);
}

#[test]
fn devices_need_a_direct_mapped_domain() {
    let mut r = driver(vec![device("/passthrough/a", 0x0a00_3000, 0x0a00_3000, &[79])]);
    r.direct_map = None;
    assert_refused(&[r], 0, &["not direct-mapped", "direct-map"]);
}

#[test]
fn mmio_keel_uses_or_another_domain_owns_is_refused() {
    let uart = driver(vec![device("/passthrough/uart", 0x0900_0000, 0x0900_0000, &[])]);
    assert_refused(&[uart], 0, &["/passthrough/uart", "used by Keel: its UART"]);
    let ram = driver(vec![device("/passthrough/ram", 0x5000_0000, 0x5000_0000, &[])]);
    assert_refused(&[ram], 0, &["is RAM, not a device"]);
    let a = driver(vec![device("/passthrough/net", VIRTIO_PAGE, VIRTIO_PAGE, &[])]);
    let mut b = driver(vec![device("/passthrough/blk", VIRTIO_PAGE, VIRTIO_PAGE, &[])]);
    b.domain = "other".into();
    b.direct_map = Some(vec![Region::new(0x5000_0000, 0x1000_0000)]);
    assert_refused(&[a.clone(), b.clone()], 1, &["/passthrough/blk", "owned by domain driver", "/passthrough/net"]);
    assert_refused(&[a, b], 0, &["owned by domain other"]);
    let moved = driver(vec![device("/passthrough/net", VIRTIO_PAGE, 0x1000_0000, &[])]);
    assert_refused(&[moved], 0, &["guest-physical 0x10000000", "direct-mapped"]);
    let two = driver(vec![
        device("/passthrough/a", VIRTIO_PAGE, VIRTIO_PAGE, &[]),
        device("/passthrough/b", VIRTIO_PAGE, VIRTIO_PAGE + 0x1000, &[]),
    ]);
    assert_refused(&[two], 0, &["/passthrough/b", "mapped by /passthrough/a at another guest address"]);
    let mut plain = driver(vec![device("/passthrough/a", VIRTIO_PAGE, 0x0300_1000, &[])]);
    plain.direct_map = None;
    assert_refused(&[plain], 0, &["overlaps the domain's virtual GIC distributor"]);
}

#[test]
fn interrupts_keel_uses_or_another_domain_owns_are_refused() {
    let r = |irqs: &[u32]| driver(vec![device("/passthrough/a", VIRTIO_PAGE, VIRTIO_PAGE, irqs)]);
    assert_refused(&[r(&[33])], 0, &["interrupt 33 (SPI 1)", "used by Keel: its UART"]);
    assert_refused(&[r(&[300])], 0, &["not an SPI of this GIC", "32 to 287"]);
    assert_refused(&[r(&[27])], 0, &["not an SPI"]);
    assert_refused(&[r(&[79, 79])], 0, &["also routed for /passthrough/a"]);
    let mut other = driver(vec![device("/passthrough/b", 0x0a00_2000, 0x0a00_2000, &[79])]);
    other.domain = "other".into();
    other.direct_map = Some(vec![Region::new(0x5000_0000, 0x1000_0000)]);
    assert_refused(&[r(&[79]), other], 1, &["interrupt 79", "owned by domain driver (/passthrough/a)"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No partial tree makes the reader or the host check panic: mutated good trees.
    #[test]
    fn no_partial_tree_panics(at in 0usize..2048, value in any::<u32>(), cut in 0usize..2048) {
        let mut dtb = net_and_blk();
        let at = at % dtb.len();
        let end = (at + 4).min(dtb.len());
        dtb[at..end].copy_from_slice(&value.to_be_bytes()[..end - at]);
        dtb.truncate(cut.max(40).min(dtb.len()));
        if let Ok(devices) = partial::parse(&dtb, MODULE) {
            let _ = host::resolve(&devices, &host_tree(), MODULE);
            let _ = refusals(&[driver(devices)]);
        }
    }

    /// Any MMIO range or interrupt a request names is either refused or clear of
    /// Keel's and of the other domain's.
    #[test]
    fn accepted_requests_never_share(h1 in 0u64..0x10_0000, h2 in 0u64..0x10_0000, i1 in 0u32..400, i2 in 0u32..400) {
        let a = driver(vec![device("/passthrough/a", h1 * 0x1000, h1 * 0x1000, &[i1])]);
        let mut b = driver(vec![device("/passthrough/b", h2 * 0x1000, h2 * 0x1000, &[i2])]);
        b.domain = "other".into();
        b.direct_map = Some(vec![Region::new(0x5000_0000, 0x1000_0000)]);
        let all = refusals(&[a.clone(), b.clone()]);
        let ok = |i: usize| !all.iter().any(|(j, _)| *j == i);
        let h = host_use();
        for (i, r) in [(0, &a), (1, &b)] {
            if ok(i) {
                let d = &r.devices[0];
                prop_assert!(h.mmio.iter().all(|(m, _)| d.mmio[0].host.end <= m.start || m.end <= d.mmio[0].host.start));
                prop_assert!(d.irqs.iter().all(|x| (32..288).contains(x) && *x != 33));
            }
        }
        if ok(0) && ok(1) {
            prop_assert!(h1 != h2 && i1 != i2);
        }
    }
}

/// `dts/passthrough-virtio.dtb`, the example partial tree.
const EXAMPLE: &[u8] = include_bytes!("../../../dts/passthrough-virtio.dtb");
/// A real QEMU 10 `virt` tree (its 32 virtio-mmio transports), the config tests' fixture.
const QEMU_VIRT: &[u8] = include_bytes!("../config/tests/qemu-virt-guest-loader.dtb");

#[test]
fn the_example_fits_qemus_own_tree() {
    let devices = partial::parse(EXAMPLE, MODULE).unwrap();
    assert_eq!(devices, partial::parse(&net_and_blk(), MODULE).unwrap());
    assert_eq!(host::resolve(&devices, QEMU_VIRT, MODULE), Vec::<String>::new());
    assert_eq!(refusals(&[driver(devices)]), Vec::new());
}

/// The committed `.dtb` matches its source (when `dtc` is installed).
#[test]
fn the_example_matches_its_source() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../dts/passthrough-virtio.dts");
    let out = std::env::temp_dir().join(format!("keel-passthrough-{}.dtb", std::process::id()));
    let Ok(status) =
        std::process::Command::new("dtc").args(["-q", "-I", "dts", "-O", "dtb", "-o"]).arg(&out).arg(src).status()
    else {
        std::eprintln!("skipping the dts/ sync check: dtc is not installed");
        return;
    };
    assert!(status.success(), "dtc failed on {src}");
    let fresh = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).ok();
    assert_eq!(fresh, EXAMPLE, "dts/passthrough-virtio.dtb is stale: run dtc on its .dts");
}

//! The `/passthrough` nodes as the guest sees them: Keel's properties gone, the GIC
//! placeholder and the subtree's phandles renumbered, and refusals by name.

use super::tests::{net_and_blk, partial_tree, virtio};
use super::tree::{copy_passthrough, GIC_PLACEHOLDER};
use crate::config::tests::builder::Dtb;
use crate::dtb::FdtWriter;
use alloc::string::String;
use alloc::vec::Vec;
use proptest::prelude::*;

const GIC: u32 = 1;

/// The guest tree: a root holding what `copy_passthrough` writes.
fn guest(partial: &[u8], first: u32) -> Result<(Vec<u8>, u32), String> {
    let mut w = FdtWriter::new();
    w.begin_node("");
    let used = copy_passthrough(&mut w, partial, GIC, first)?;
    w.end_node();
    Ok((w.finish().map_err(|e| alloc::format!("{e}"))?, used))
}

fn cells(v: &[u8]) -> Vec<u32> {
    v.chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn the_virtio_nodes_reach_the_guest_without_keels_properties() {
    let (b, used) = guest(&net_and_blk(), 0x100).unwrap();
    assert_eq!(used, 0);
    crate::dtb::validate(&b).unwrap();
    let t = fdt::Fdt::new(&b).unwrap();
    assert!(t.find_node("/gic").is_none(), "the placeholder stays behind");
    let bus = t.find_node("/passthrough").unwrap();
    assert_eq!(bus.property("compatible").unwrap().as_str(), Some("simple-bus"));
    assert!(bus.property("ranges").is_some());
    let net = t.find_node("/passthrough/virtio@a003e00").unwrap();
    assert_eq!(net.property("compatible").unwrap().as_str(), Some("virtio,mmio"));
    assert_eq!(cells(net.property("reg").unwrap().value), [0, 0x0a00_3e00, 0, 0x200]);
    assert_eq!(cells(net.property("interrupts").unwrap().value), [0, 47, 1]);
    assert_eq!(cells(net.property("interrupt-parent").unwrap().value), [GIC]);
    for keel in ["xen,reg", "xen,path", "xen,force-assign-without-iommu"] {
        assert!(net.property(keel).is_none(), "{keel} is copied");
    }
    assert!(t.find_node("/passthrough/virtio@a003c00").is_some());
}

#[test]
fn the_subtrees_phandles_are_renumbered_and_followed() {
    let dtb = partial_tree(|b| {
        b.node("intc").empty("interrupt-controller").cells("#interrupt-cells", &[3]).cells("phandle", &[7]);
        b.cells("linux,phandle", &[7]).cells("interrupt-parent", &[GIC_PLACEHOLDER]).end();
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("interrupt-parent", &[7]);
        });
    });
    let (b, used) = guest(&dtb, 0x100).unwrap();
    assert_eq!(used, 1);
    let t = fdt::Fdt::new(&b).unwrap();
    let intc = t.find_node("/passthrough/intc").unwrap();
    assert_eq!(cells(intc.property("phandle").unwrap().value), [0x100]);
    assert_eq!(cells(intc.property("linux,phandle").unwrap().value), [0x100]);
    assert_eq!(cells(intc.property("interrupt-parent").unwrap().value), [GIC]);
    let net = t.find_node("/passthrough/virtio@a003e00").unwrap();
    assert_eq!(cells(net.property("interrupt-parent").unwrap().value), [0x100]);
}

#[test]
fn bad_phandles_are_refused_by_name() {
    let dangling = partial_tree(|b| {
        virtio(b, 0x0a00_3e00, 47, |b| {
            b.cells("interrupt-parent", &[9]);
        })
    });
    let e = guest(&dangling, 0x100).unwrap_err();
    assert!(e.contains("/passthrough/virtio@a003e00: interrupt-parent <0x9> names no node"), "{e}");
    let twice = partial_tree(|b| {
        b.node("a").cells("phandle", &[5]).end();
        b.node("b").cells("phandle", &[5]).end();
    });
    assert!(guest(&twice, 0x100).unwrap_err().contains("/passthrough/b: phandle 0x5 is defined twice"));
    let placeholder = partial_tree(|b| {
        b.node("a").cells("phandle", &[GIC_PLACEHOLDER]).end();
    });
    assert!(guest(&placeholder, 0x100).unwrap_err().contains("is reserved"));
    let differ = partial_tree(|b| {
        b.node("a").cells("phandle", &[5]).cells("linux,phandle", &[6]).end();
    });
    assert!(guest(&differ, 0x100).unwrap_err().contains("differ"));
    let short = partial_tree(|b| {
        b.node("a").prop("phandle", &[1, 2]).end();
    });
    assert!(guest(&short, 0x100).unwrap_err().starts_with("/passthrough/a: phandle:"));
    let full = partial_tree(|b| {
        b.node("a").cells("phandle", &[5]).end();
    });
    assert!(guest(&full, u32::MAX).unwrap_err().contains("no phandle left"));
    assert!(guest(&full, GIC).unwrap_err().contains("no phandle left"), "the GIC's phandle is not reused");
    let mut none = Dtb::new();
    none.node("other").end();
    assert!(guest(&none.finish(), 0x100).unwrap_err().contains("no /passthrough node"));
    assert!(guest(&[0u8; 16], 0x100).unwrap_err().contains("malformed"));
}

#[test]
fn a_deep_subtree_is_refused_not_recursed_into() {
    let dtb = partial_tree(|b| {
        for i in 0..20 {
            b.node(&alloc::format!("n{i}"));
        }
        for _ in 0..20 {
            b.end();
        }
    });
    assert!(guest(&dtb, 0x100).unwrap_err().contains("nested deeper than"));
}

proptest! {
    /// Any bytes in place of a partial tree: an error or a valid guest tree, never a panic.
    #[test]
    fn no_panic_on_any_partial_tree(bytes in proptest::collection::vec(any::<u8>(), 0..512), flip in 0usize..4096) {
        let _ = guest(&bytes, 0x100);
        let mut tree = net_and_blk();
        let at = flip % tree.len();
        tree[at] ^= 0x5a;
        if let Ok((b, _)) = guest(&tree, 0x100) {
            prop_assert!(crate::dtb::validate(&b).is_ok());
        }
    }
}

//! Mapping a domain's devices and holding them exclusively.

use super::assign::{map_mmio, merged, Claims};
use super::tests::{device, driver, host_use};
use super::{Device, MmioRange};
use crate::addr::Region;
use crate::arch::Perms;
use crate::p2m::PageKind;
use crate::test_support::*;
use alloc::vec;
use alloc::vec::Vec;
use keel_abi::layout::AARCH64;

const PAGE: u64 = 0x0a00_3000;

fn shared_page(node: &str) -> Device {
    device(node, PAGE, PAGE, &[])
}

#[test]
fn shared_and_touching_ranges_are_mapped_once() {
    let two = [shared_page("/passthrough/net"), shared_page("/passthrough/blk")];
    assert_eq!(merged(&two), vec![(PAGE, PAGE, 0x1000)]);
    let mut next = device("/passthrough/next", PAGE + 0x1000, PAGE + 0x1000, &[]);
    next.mmio.push(MmioRange { host: Region::new(0x0c00_0000, 0x1000), guest: 0x0b00_0000 });
    assert_eq!(
        merged(&[next, shared_page("/passthrough/net")]),
        vec![(PAGE, PAGE, 0x2000), (0x0b00_0000, 0x0c00_0000, 0x1000)]
    );
    let moved = device("/passthrough/moved", PAGE + 0x5000, PAGE, &[]);
    assert_eq!(merged(&[shared_page("/a"), moved]).len(), 2, "another offset is not merged");
}

#[test]
fn the_ranges_are_device_memory_and_nothing_around_them_is_mapped() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &AARCH64, 1, 64);
    let devices = [shared_page("/passthrough/net"), shared_page("/passthrough/blk")];
    map_mmio(&d, hv.pool(), &devices).unwrap();
    let l = d.lookup(PAGE / 0x1000).unwrap();
    assert_eq!((l.frame.0, l.kind, l.perms), (PAGE, PageKind::Other, Perms::RW));
    assert!(d.lookup(PAGE / 0x1000 - 1).is_none() && d.lookup(PAGE / 0x1000 + 1).is_none());
    assert!(d.read_phys(PAGE, &mut [0u8; 4]).is_err(), "Keel never copies from device memory for a guest");
}

#[test]
fn a_range_over_the_domains_ram_is_refused_by_address() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &AARCH64, 1, 64);
    let e = map_mmio(&d, hv.pool(), &[device("/passthrough/x", PAGE, RAM, &[])]).unwrap_err();
    assert!(e.contains("cannot map [0xa003000, 0xa004000) at guest-physical 0x40000000"), "{e}");
}

#[test]
fn devices_and_interrupts_are_held_by_one_domain() {
    let host = host_use();
    let mut claims = Claims::new();
    claims.claim(driver(vec![device("/passthrough/net", PAGE, PAGE, &[79])]), &host).unwrap();
    let mut other = driver(vec![device("/passthrough/net2", PAGE, PAGE, &[80])]);
    other.node = "/chosen/other".into();
    other.domain = "other".into();
    other.direct_map = Some(vec![Region::new(0x7000_0000, 0x100_0000)]);
    let e = claims.claim(other.clone(), &host).unwrap_err().join("\n");
    assert!(e.contains("is owned by domain driver (/passthrough/net)"), "{e}");
    other.devices = vec![device("/passthrough/net2", PAGE + 0x1000, PAGE + 0x1000, &[79])];
    let e = claims.claim(other.clone(), &host).unwrap_err().join("\n");
    assert!(e.contains("interrupt 79 (SPI 47) is owned by domain driver"), "{e}");
    other.devices = vec![device("/passthrough/uart", 0x0900_0000, 0x0900_0000, &[])];
    let e = claims.claim(other.clone(), &host).unwrap_err().join("\n");
    assert!(e.contains("is used by Keel: its UART"), "{e}");
    other.devices = vec![device("/passthrough/net2", PAGE + 0x1000, PAGE + 0x1000, &[80])];
    claims.claim(other.clone(), &host).unwrap();
    // The driver rebuilt (a reboot) takes its own devices again; the other's stay refused.
    claims.claim(driver(vec![device("/passthrough/net", PAGE, PAGE, &[79])]), &host).unwrap();
    let e = claims.claim(driver(vec![device("/passthrough/net", PAGE + 0x1000, PAGE + 0x1000, &[])]), &host);
    assert!(e.unwrap_err().join("\n").contains("is owned by domain other"));
    claims.release("/chosen/other");
    claims.claim(driver(vec![device("/passthrough/net", PAGE + 0x1000, PAGE + 0x1000, &[80])]), &host).unwrap();
}

#[test]
fn nothing_is_merged_from_empty_requests() {
    assert_eq!(merged(&[]), Vec::new());
}

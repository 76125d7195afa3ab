//! Stock Linux split network drivers between Linux domains on Keel (`docs/devices.md`):
//! Debian's arm64 kernel as the initial domain is the driver domain (`xen-netback`, bridge
//! `xenbr0` at 10.0.0.1 that `keelctl devd` adds the vif to), a Linux domU is the front end
//! (`xen-netfront`, 10.0.0.2); both use Keel's xenstore domain. After `keelctl
//! network-attach` the domU pings the bridge and dom0 pings the domU
//! (`tests/guests/linux/netback-session`, `netfront-session`). Netback copies the front
//! end's packets with `GNTTABOP_copy` and maps its transmit grants, so the test fails if
//! Keel does not serve them, the rings or the event channels.

use super::arm64_guests::spec;
use super::arm64_linux::{on_with, xen_guest, INITRAMFS, KERNEL, NVHE_GICV2, VHE_GICV3};
use super::boot;
use keel_tests::BootTest;

/// What dom0 (d0), the domU (d2) and the xenstore domain (d1) must print.
pub const LINES: [&str; 14] = [
    "(d0) [linux] netback: bridge: inet 10.0.0.1/24",
    "(d0) keel-devd: domain 0, watching /local/domain/0/backend",
    "(d0) [linux] netback: front end is d2",
    "(d0) [linux] netback: network-attach: exit 0",
    "(d0) keel-devd: vif 2/0: vif2.0 added to xenbr0",
    "(d2) [linux] netfront: eth0: 00:16:3e:4b:00:02",
    "(d2) [linux] netfront: ping 10.0.0.1: 3 packets received",
    "(d0) [linux] netback: front end: done",
    "(d0) [linux] netback: ping 10.0.0.2: 3 packets received",
    "(d0) [linux] netback: network-list: 0 0 00:16:3e:4b:00:02 0 4",
    // "left xenbr0", or "gone" if netback removed the interface first (it may, on detach).
    "(d0) keel-devd: vif 2/0: closed; vif2.0 ",
    "(d0) [linux] netback: network-detach: exit 0",
    "(d0) [linux] netback: keelctl shutdown -w: exit 0",
    "domain 2 (guest): shut down (poweroff)",
];

fn net_session(config: &str, machine: [&str; 4]) {
    let dom0 =
        format!("kernel={KERNEL};ramdisk={INITRAMFS};bootargs=console=hvc0 keel.linux=netback keel.victim=guest");
    let xenstore = spec("xenstore", "caps=4;bootargs=keel.program=xenstored xenstored.exit=last");
    let guest = format!(
        "name=guest;kernel={KERNEL};ramdisk={INITRAMFS};mem=256M;cpus=1;enhanced;bootargs=console=hvc0 keel.linux=netfront"
    );
    let extra = ["--dom0", &dom0, "--domain", &xenstore, "--domain", &guest];
    let t: BootTest = on_with(&format!("arm64 Linux netfront and netback ({config})"), machine, "2G", &extra)
        .domains(&["dom0", "xenstore", "guest"])
        .lines(&LINES);
    boot(xen_guest(xen_guest(t, 0), 2));
}

/// VHE, GICv3, 2 CPUs: netfront in a Linux domU served by netback in Linux dom0.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_netfront_netback_vhe_gicv3() {
    net_session("VHE GICv3", VHE_GICV3);
}

/// The same on nVHE with GICv2.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_netfront_netback_nvhe_gicv2() {
    net_session("nVHE GICv2", NVHE_GICV2);
}

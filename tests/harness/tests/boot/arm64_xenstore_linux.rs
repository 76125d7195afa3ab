//! Stock Linux's xenbus against Keel's xenstore domain (`docs/xenstore.md`): Debian's arm64
//! kernel as a dom0less domU with `xen,enhanced` beside the xenstore domain connects its
//! xenbus (the ring Keel built at boot, `connection` reset by the service), writes what
//! it obeys into `control/`, and Debian's `xenstore-utils` (`scripts/fetch-linux-arm64`)
//! run in it (`tests/guests/linux/xenstore-session`): read, write, ls, rm, refusals outside
//! its subtree (exit 1, and `EACCES` on the wire), and a `xenstore-watch` that sees a node
//! of a test guest (`keel.role=poke`) change.
//!
//! Linux as the initial domain (a control domain) on the same xenstore: given a store port
//! by Keel it connects as a domU does, `xenstore-ls` sees every domain, and `keelctl
//! shutdown -w` asks a Linux domU to power off through its `control/shutdown`
//! (`tests/guests/linux/shutdown-session`), which the domU's kernel obeys. With
//! `keel.dom0_xenstore=local` dom0 gets no store port, serves its own store as under Xen,
//! and hands it to the xenstore domain with `keelctl xenstore-connect`.

use super::arm64_guests::spec;
use super::arm64_linux::{on_with, xen_guest, INITRAMFS, KERNEL, NVHE_GICV2, VHE_GICV3};
use super::boot;
use keel_tests::BootTest;
use std::time::Duration;

/// What Linux (d2), the poking test guest (d3) and the xenstore domain (d1) must print.
const LINES: [&str; 29] = [
    "domain 2 (linux): xenstore page at gfn 0x39001, port ",
    "(d1) xenstored: d2 introduced (ring mapped",
    "(d1) xenstored: d3 introduced (ring mapped",
    "(d2) [linux] xenstore: bus: /sys/bus/xen",
    "(d2) [linux] xenstore: device: /dev/xen/xenbus",
    "(d2) [linux] xenstore: read domid: 2 (exit 0)",
    "(d2) [linux] xenstore: read name: linux",
    "(d2) [linux] xenstore: feature-poweroff: 1",
    "(d2) [linux] xenstore: write: exit 0",
    "(d2) [linux] xenstore: read back: hello from d2",
    "(d2) [linux] xenstore: ls: domid = \"2\"",
    "(d2) [linux] xenstore: ls: name = \"linux\"",
    "(d2) [linux] xenstore: ls:  target = \"262144\"",
    "(d2) [linux] xenstore: ls:   availability = \"online\"",
    "(d2) [linux] xenstore: ls:  greeting = \"hello from d2\"",
    "(d2) [linux] xenstore: rm: exit 0",
    "(d2) [linux] xenstore: rm: data/greeting gone",
    "(d2) [linux] xenstore: write outside its subtree: exit 1: xenstore-write: could not write path /local/intruder",
    "(d2) [linux] xenstore: write to its read-only name: exit 1: xenstore-write: could not write path name",
    "(d2) [linux] xenstore: wire: reply type 16, EACCES",
    "(d2) [linux] xenstore: peer node: /local/domain/3/data/poke readable",
    "(d2) [linux] xenstore: watch: 2 events on /local/domain/3/data/poke",
    "(d2) [linux] xenstore: watch: the peer changed it (from ",
    "(d2) [linux] xenstore: seen: told d3",
    "(d3) xenbus: poke: d2 saw data/poke change",
    "(d3) PASS xenbus",
    "(d1) xenstored: d2 released (ring ",
    "(d1) xenstored: d3 released (ring ",
    "(d1) xenstored: no other domain left; powering off",
];

fn xenstore_utils_in_linux(config: &str, machine: [&str; 4]) {
    let xenstore = spec("xenstore", "caps=4;bootargs=keel.program=xenstored xenstored.exit=last");
    let linux = format!(
        "name=linux;kernel={KERNEL};ramdisk={INITRAMFS};mem=256M;cpus=2;enhanced;bootargs=console=hvc0 keel.linux=xenstore keel.peer=3"
    );
    let poker = spec("poker", "mem=32M;enhanced;bootargs=keel.test=xenbus keel.role=poke keel.peer=2");
    let extra = ["--domain", &xenstore, "--domain", &linux, "--domain", &poker];
    let t = on_with(&format!("arm64 xenstore-utils in a Linux domU ({config})"), machine, "1G", &extra)
        .domains(&["xenstore", "linux", "poker"])
        .lines(&LINES);
    boot(xen_guest(t, 2));
}

/// VHE, GICv3, 2 CPUs.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_xenstore_utils_in_linux_domu_vhe_gicv3() {
    xenstore_utils_in_linux("VHE GICv3", VHE_GICV3);
}

/// nVHE, GICv2, 2 CPUs.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_xenstore_utils_in_linux_domu_nvhe_gicv2() {
    xenstore_utils_in_linux("nVHE GICv2", NVHE_GICV2);
}

/// What Linux dom0 (d0), the Linux domU it shuts down (d2) and Keel must print.
const SHUTDOWN_LINES: [&str; 16] = [
    "domain 0 (dom0): xenstore page at gfn 0x39001, port ",
    "(d1) xenstored: d0 introduced (ring mapped",
    "(d1) xenstored: d2 introduced (ring mapped",
    "(d0) [linux] shutdown: dom0 reads domid 0",
    "(d0) [linux] shutdown: domains: 0 2 ",
    "(d0) [linux] shutdown: guest is d2: ",
    "(d2) [linux] obey: waiting for control/shutdown",
    "(d0) [linux] shutdown: feature-poweroff: 1",
    "(d2) [linux] action: poweroff (asked through control/shutdown)",
    "domain 2 (guest): shut down (poweroff)",
    "(d1) xenstored: d2 released (ring ",
    "(d0) [linux] shutdown: keelctl shutdown -w: exit 0: Shutting down domain 2|Waiting for 1 domains|Domain 2 has been shut down|",
    // The domU's kernel empties the node once it has read it.
    "(d0) [linux] shutdown: control/shutdown: ",
    "(d0) [linux] shutdown: list: guest is gone",
    "domain 0 (dom0): shut down (poweroff)",
    "(d1) xenstored: no other domain left; powering off",
];

fn shutdown_through_xenstore(config: &str, machine: [&str; 4]) {
    let dom0 =
        format!("kernel={KERNEL};ramdisk={INITRAMFS};bootargs=console=hvc0 keel.linux=shutdown keel.victim=guest");
    let xenstore = spec("xenstore", "caps=4;bootargs=keel.program=xenstored xenstored.exit=last");
    let guest = format!(
        "name=guest;kernel={KERNEL};ramdisk={INITRAMFS};mem=256M;cpus=1;enhanced;bootargs=console=hvc0 keel.linux=obey"
    );
    let extra = ["--dom0", &dom0, "--domain", &xenstore, "--domain", &guest];
    let t: BootTest = on_with(&format!("arm64 keelctl shutdown through xenstore ({config})"), machine, "2G", &extra)
        .domains(&["dom0", "xenstore", "guest"])
        .lines(&SHUTDOWN_LINES);
    boot(xen_guest(xen_guest(t, 0), 2));
}

/// VHE, GICv3, 2 CPUs.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_keelctl_shutdown_through_xenstore_vhe_gicv3() {
    shutdown_through_xenstore("VHE GICv3", VHE_GICV3);
}

/// nVHE, GICv2, 2 CPUs.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_keelctl_shutdown_through_xenstore_nvhe_gicv2() {
    shutdown_through_xenstore("nVHE GICv2", NVHE_GICV2);
}

/// What Linux dom0 started without a store port (d0), a test-guest client (d2) and Keel
/// must print once dom0 handed its store to the xenstore domain.
const HANDOFF_LINES: [&str; 12] = [
    "domain 0: xenstore connection handed over to port ",
    "(d0) [linux] xenstore: connect: xenstore: handed to domain 1 (xenstore) on port ",
    "(d1) xenstored: d0 introduced (ring mapped",
    "(d0) [linux] xenstore: domains: 0 2 ",
    "(d0) [linux] xenstore: read domid: 0 (exit 0)",
    "(d0) [linux] xenstore: read name: dom0",
    // Written by dom0's kernel once its xenbus came up on the handed-over ring.
    "(d0) [linux] xenstore: feature-poweroff: 1",
    "(d0) [linux] xenstore: read back: hello from d0",
    // dom0 is privileged: a write anywhere succeeds.
    "(d0) [linux] xenstore: wire: reply type 11, OK",
    "(d2) xenbus: connected; domid 2",
    "(d2) PASS xenbus",
    "(d1) xenstored: no other domain left; powering off",
];

/// VHE, GICv3, 2 CPUs: Linux dom0 without a store port (`keel.dom0_xenstore=local`) runs
/// `keelctl xenstore-connect xenstore`, then the xenstore session.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_dom0_hands_its_store_to_the_xenstore_domain_vhe_gicv3() {
    let dom0 =
        format!("kernel={KERNEL};ramdisk={INITRAMFS};bootargs=console=hvc0 keel.linux=xenstore keel.xenstore=xenstore");
    let xenstore = spec("xenstore", "caps=4;bootargs=keel.program=xenstored xenstored.exit=last");
    let client = spec("client", "mem=32M;enhanced;bootargs=keel.test=xenbus keel.role=client");
    let extra = ["--bootargs", "keel.dom0_xenstore=local", "--dom0", &dom0, "--domain", &xenstore, "--domain", &client];
    let t = on_with("arm64 Linux dom0 hands its store to the xenstore domain (VHE GICv3)", VHE_GICV3, "2G", &extra)
        .domains(&["dom0", "xenstore", "client"])
        .lines(&HANDOFF_LINES);
    boot(xen_guest(t, 0));
}

/// Dom0's lines, the waiting domU's (`(d1)`), xenstored's (`(d2)`) and Keel's.
const LATE: [&str; 13] = [
    "domain 1 (late): xenstore port ",
    "(d1) [linux] late: waiting for xenstore (xenstore_late_init bound)",
    "(d0) [linux] latestore: late waits for its store",
    "(d0) [linux] latestore: create xenstore: exit 0",
    "domain 1 (late): xenstore page at gfn 0x39001, port ",
    "(d2) xenstored: d1 introduced (ring mapped, port ",
    "(d1) [linux] late: xenstore up: domid 1, name late, feature-poweroff 1",
    "(d0) [linux] latestore: late: late: xenstore up: domid 1, name late, feature-poweroff 1",
    "(d0) [linux] latestore: a second xenstore domain: exit 1: keelctl create: ",
    "(d1) [linux] late: the control domain says seen",
    "(d0) [linux] latestore: late ended",
    "(d0) [linux] latestore: done",
    "(d2) xenstored: no other domain left; powering off",
];

/// The late-init handshake (`docs/xenstore.md`): a dom0less Linux domU built while no
/// xenstore domain exists reads `HVM_PARAM_STORE_PFN` = ~0 and waits on its store port;
/// Linux dom0 then creates the xenstore domain (`keelctl create` with `xenstore_domain =
/// 1`, `CTL_CREATE_XENSTORE`); Keel gives the waiting domain its page and points its port
/// at the new xenstore domain, which introduces it and signals the port, and the domU's
/// xenbus connects (`tests/guests/linux/latestore-session`, `keel.linux=late`).
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_late_store_after_xenstore_domain_created_vhe_gicv3() {
    let dom0 =
        format!("kernel={KERNEL};ramdisk={INITRAMFS};bootargs=console=hvc0 keel.linux=latestore keel.victim=late");
    let late = format!(
        "name=late;kernel={KERNEL};ramdisk={INITRAMFS};mem=256M;cpus=1;enhanced;bootargs=console=hvc0 keel.linux=late"
    );
    let extra = ["--timeout", "600", "--dom0", &dom0, "--domain", &late];
    let t = on_with("arm64 late xenstore page (VHE GICv3)", VHE_GICV3, "2G", &extra)
        .domains(&["dom0", "late"])
        .lines(&LATE);
    boot(xen_guest(t, 1).timeout(Duration::from_secs(620)));
}

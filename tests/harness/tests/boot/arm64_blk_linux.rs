//! Stock Linux split block drivers between Linux domains on Keel (`docs/devices.md`):
//! Debian's arm64 kernel as the initial domain is the driver domain (`xen-blkback`, a loop
//! device over a backing file set up by `keelctl devd`), a Linux domU is the front end
//! (`xen-blkfront`); both use Keel's xenstore domain. Dom0 writes a known pattern into the
//! file and `keelctl block-attach`es it; the domU finds `/dev/xvda`, reads the pattern
//! (checksum), writes another and reads it back; after `keelctl block-detach` dom0's file
//! holds the new pattern, the loop device is released and the back end's nodes are gone
//! (`tests/guests/linux/blkback-session`, `blkfront-session`). Blkback maps the front
//! end's grants into ballooned pages (`GNTTABOP_map_grant_ref`), so the test fails if Keel
//! does not serve that, the rings, or the event channels between the two.

use super::arm64_guests::spec;
use super::arm64_linux::{on_with, xen_guest, INITRAMFS, KERNEL, NVHE_GICV2, VHE_GICV3};
use super::boot;
use keel_tests::BootTest;

/// What dom0 (d0), the domU (d2) and the xenstore domain (d1) must print.
pub const LINES: [&str; 22] = [
    "(d1) xenstored: d0 introduced (ring mapped",
    "(d1) xenstored: d2 introduced (ring mapped",
    "(d0) [linux] blkback: backing file: 1048576 bytes, ",
    "(d0) keel-devd: domain 0, watching /local/domain/0/backend",
    "(d0) [linux] blkback: front end is d2",
    "(d0) [linux] blkback: block-attach: exit 0",
    "(d0) keel-devd: vbd 2/51712: /root/disk.img on /dev/loop0 (7:0, rw)",
    "(d2) [linux] blkfront: /dev/xvda: 2048 sectors, ro=0",
    "(d2) [linux] blkfront: read: pattern 1 (",
    "(d2) [linux] blkfront: write: pattern 2: exit 0",
    "(d2) [linux] blkfront: read back: pattern 2",
    "(d0) [linux] blkback: front end: written",
    "(d0) [linux] blkback: block-list: 51712 0 2 4",
    "(d0) [linux] blkback: block-detach: exit 0",
    "(d0) keel-devd: vbd 2/51712: closed; /dev/loop0 released; back end directory removed",
    "(d0) [linux] blkback: loop devices left: 0",
    "(d0) [linux] blkback: backing file: pattern 2",
    "(d0) [linux] blkback: /local/domain/0/backend/vbd/2/51712: gone",
    "(d0) [linux] blkback: /local/domain/2/device/vbd/51712: gone",
    "(d0) [linux] blkback: /libxl/2/device/vbd/51712: gone",
    "(d0) [linux] blkback: keelctl shutdown -w: exit 0",
    "domain 2 (guest): shut down (poweroff)",
];

fn blk_session(config: &str, machine: [&str; 4]) {
    let dom0 =
        format!("kernel={KERNEL};ramdisk={INITRAMFS};bootargs=console=hvc0 keel.linux=blkback keel.victim=guest");
    let xenstore = spec("xenstore", "caps=4;bootargs=keel.program=xenstored xenstored.exit=last");
    let guest = format!(
        "name=guest;kernel={KERNEL};ramdisk={INITRAMFS};mem=256M;cpus=1;enhanced;bootargs=console=hvc0 keel.linux=blkfront"
    );
    let extra = ["--dom0", &dom0, "--domain", &xenstore, "--domain", &guest];
    let t: BootTest = on_with(&format!("arm64 Linux blkfront and blkback ({config})"), machine, "2G", &extra)
        .domains(&["dom0", "xenstore", "guest"])
        .lines(&LINES);
    boot(xen_guest(xen_guest(t, 0), 2));
}

/// VHE, GICv3, 2 CPUs: blkfront in a Linux domU served by blkback in Linux dom0.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_blkfront_blkback_vhe_gicv3() {
    blk_session("VHE GICv3", VHE_GICV3);
}

/// The same on nVHE with GICv2.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_blkfront_blkback_nvhe_gicv2() {
    blk_session("nVHE GICv2", NVHE_GICV2);
}

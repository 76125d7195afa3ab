//! Stock Linux split block drivers between Linux domains on x86 (`docs/devices.md`), as
//! `arm64_blk_linux.rs` on arm64, with the same sessions and lines: Debian's amd64 kernel
//! as the initial domain (modules directly under `/chosen` of `linux-blk.dts`) is the
//! driver domain (`xen-blkback`, a loop device over a backing file set up by `keelctl
//! devd`), a Linux domU is the front end (`xen-blkfront`), and Keel's xenstore domain
//! serves both. The domU reads dom0's pattern through `/dev/xvda`, writes another, and
//! after `keelctl block-detach` dom0's file holds it. Blkback maps the front end's grants
//! into pages of dom0's unpopulated (ZONE_DEVICE) space, so the test fails if Keel does
//! not serve that, the rings, or the event channels between the two.

use super::arm64_blk_linux::LINES;
use super::x86_linux::qemu_svm_bios;
use super::{boot, QEMU_X86_PASS};
use std::time::Duration;

/// QEMU TCG SVM through GRUB BIOS, 2 CPUs, 2 GiB: blkfront in a Linux domU (256 MiB)
/// served by blkback in Linux dom0 (512 MiB).
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_blk_linux_blkfront_blkback_qemu_svm_bios() {
    let t = qemu_svm_bios("x86 Linux blkfront and blkback (QEMU SVM BIOS)", "linux-blk")
        .exit_status(QEMU_X86_PASS)
        .timeout(Duration::from_secs(600))
        .domains(&["dom0", "xenstore", "guest"])
        .lines(&["(d0) [linux] xen-detected: yes", "(d2) [linux] xen-detected: yes"])
        .lines(&LINES);
    boot(t);
}

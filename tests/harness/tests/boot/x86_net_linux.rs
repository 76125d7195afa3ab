//! Stock Linux split network drivers between Linux domains on x86 (`docs/devices.md`), as
//! `arm64_net_linux.rs` on arm64, with the same sessions and lines: Debian's amd64 kernel
//! as the initial domain (modules directly under `/chosen` of `linux-net.dts`) is the
//! driver domain (`xen-netback`, bridge `xenbr0` at 10.0.0.1 that `keelctl devd` adds the
//! vif to), a Linux domU is the front end (`xen-netfront`, 10.0.0.2), and Keel's xenstore
//! domain serves both. After `keelctl network-attach` the domU pings the bridge and dom0
//! pings the domU. Netback copies the front end's packets with `GNTTABOP_copy` and maps
//! its transmit grants, so the test fails if Keel does not serve them, the rings or the
//! event channels.

use super::arm64_net_linux::LINES;
use super::x86_linux::qemu_svm_bios;
use super::{boot, QEMU_X86_PASS};
use std::time::Duration;

/// QEMU TCG SVM through GRUB BIOS, 2 CPUs, 2 GiB: netfront in a Linux domU (256 MiB)
/// served by netback in Linux dom0 (512 MiB).
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_net_linux_netfront_netback_qemu_svm_bios() {
    let t = qemu_svm_bios("x86 Linux netfront and netback (QEMU SVM BIOS)", "linux-net")
        .exit_status(QEMU_X86_PASS)
        .timeout(Duration::from_secs(600))
        .domains(&["dom0", "xenstore", "guest"])
        .lines(&["(d0) [linux] xen-detected: yes", "(d2) [linux] xen-detected: yes"])
        .lines(&LINES);
    boot(t);
}

//! `keelctl watch`, the daemon that acts on `on_poweroff`, `on_reboot` and `on_crash`
//! (issues 12 and 13, `docs/toolstack.md`): Debian's arm64 kernel as dom0 (control and
//! driver domain: `keelctl watch`, `keelctl devd`, xen-blkback) creates three Linux domUs
//! with a disk each. `rb` (`on_reboot='restart'`) reboots itself and comes back, built
//! again from its configuration, with the disk it wrote before; `off` powers itself off
//! and leaves no xenstore node and no loop device; `crash` (`on_crash='preserve'`) crashes
//! (its watchdog expires) and stays listed as crashed until `keelctl destroy`
//! (`tests/guests/linux/watchctl-session`, `watchguest-session`).

use super::arm64_guests::spec;
use super::arm64_linux::{on_with, xen_guest, KERNEL, VHE_GICV3};
use super::boot;
use keel_tests::BootTest;
use std::time::Duration;

/// Dom0's initramfs, with the kernel and the plain initramfs as files in `/boot`.
const INITRAMFS_WITH_KERNEL: &str = "target/linux-arm64/initramfs-with-kernel.img";

const LINES: [&str; 26] = [
    "(d0) keel-watch: watching @releaseDomain",
    // Reboots itself: Keel keeps it (CTL_START_KEEP_REBOOT), the watcher restarts it.
    "(d0) [linux] watchctl: create rb: exit 0",
    "[linux] watchguest: rebooting",
    "(rb): shut down (reboot); kept until the control domain destroys it",
    "(rb): reboot: restarted as domain ",
    "[linux] watchguest: second boot: the disk is the one written before the reboot",
    ": its disk says it rebooted once",
    "(d0) [linux] watchctl: rb: listed 1 time(s)",
    "(d0) [linux] watchctl: destroy rb: exit 0",
    // Powers itself off: destroyed by Keel, cleaned up by the watcher.
    "(d0) [linux] watchctl: create off: exit 0",
    "[linux] watchguest: powering off",
    "(off): gone; its devices and xenstore nodes removed",
    "(d0) [linux] watchctl: off: listed: 0",
    "(d0) [linux] watchctl: off: nodes left: none",
    "(d0) [linux] watchctl: off: loop devices on its disk: 0",
    // Crashes: kept and preserved until destroyed.
    "(d0) [linux] watchctl: create crash: exit 0",
    "[linux] watchguest: crashing: kernel panic (sysrq c)",
    "(crash): crashed (",
    "(crash): crashed: preserved",
    "(d0) [linux] watchctl: crash: listed as ---s",
    "(d0) [linux] watchctl: destroy crash: exit 0",
    "(d0) [linux] watchctl: crash: listed after destroy: 0",
    "(d0) [linux] watchctl: crash: nodes left after destroy: none",
    "(d0) [linux] watchctl: records left: 0",
    "(crash), created at run time: crashed (",
    "(off), created at run time: shut down (poweroff)",
];

/// VHE, GICv3, 2 CPUs.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_keelctl_watch_vhe_gicv3() {
    let dom0 = format!("kernel={KERNEL};ramdisk={INITRAMFS_WITH_KERNEL};bootargs=console=hvc0 keel.linux=watchctl");
    let xenstore = spec("xenstore", "caps=4;bootargs=keel.program=xenstored xenstored.exit=last");
    let extra = ["--dom0", &dom0, "--domain", &xenstore, "--timeout", "900"];
    let t: BootTest =
        on_with("arm64 keelctl watch: on_reboot, on_poweroff, on_crash (VHE GICv3)", VHE_GICV3, "2G", &extra)
            .domains(&["dom0", "xenstore"])
            .lines(&LINES);
    boot(xen_guest(t, 0).timeout(Duration::from_secs(920)));
}

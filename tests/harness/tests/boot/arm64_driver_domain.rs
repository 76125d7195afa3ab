//! A driver domain that is not the control domain, its death and a new one (issue 13,
//! `docs/devices.md`): Debian's arm64 kernel as dom0 only controls (`keelctl`); it creates
//! a Linux domU `driver1` with `keelctl create` (Xen's `driver_domain=1`: stock
//! `xen-blkback` and `keelctl devd`, no control capability, a backing file in its own
//! initramfs) and attaches its disk to the Linux domU `guest` with `backend=driver1`.
//! The guest reads the driver domain's pattern and writes another through stock
//! `xen-blkfront`. Then dom0 destroys `driver1`: Keel releases every mapping it held of
//! the guest's grants, keelctl closes the orphaned disk on its behalf, the guest's
//! `/dev/xvda` goes away with no grant left in use, and the guest runs on. A second driver
//! domain serves `xvdb` the same way, then crashes its own kernel (sysrq c, Keel's
//! watchdog ends it) and `keelctl block-detach` closes the orphan
//! (`tests/guests/linux/drvctl-session`, `driverdom-session`, `drvguest-session`).

use super::arm64_linux::{beside_hostile_frontend, INITRAMFS_WITH_KERNEL};
use super::boot;

/// What dom0 (d0), the xenstore domain (d1), the guest (d2), the driver domains and Keel
/// must print.
const LINES: [&str; 37] = [
    "(d1) xenstored: d2 introduced (ring mapped",
    "(d0) [linux] drvctl: front end is d2",
    // The first driver domain, created at run time.
    "(d0) [linux] drvctl: create driver1: exit 0",
    "[linux] driverdom: serving",
    "(d0) [linux] drvctl: driver1: agent running",
    "(d0) [linux] drvctl: block-attach xvda backend=driver1: exit 0",
    "keel-devd: vbd 2/51712: /root/disk.img on /dev/loop0 (7:0, rw)",
    "(d2) [linux] drvguest: /dev/xvda: 2048 sectors, ro=0",
    "(d2) [linux] drvguest: xvda: read pattern 1",
    "(d2) [linux] drvguest: xvda: wrote and read back pattern 2",
    "(d0) [linux] drvctl: front end: written",
    // Destroyed: Keel drops its mappings, keelctl closes the disk on its behalf.
    "(d0) [linux] drvctl: destroy driver1: exit 0",
    "vbd 2/51712: back end domain ",
    " gone: closed on its behalf (front end closed); removed",
    "mappings of d2's grants released, its entries unpinned",
    "(d2) [linux] drvguest: /dev/xvda: gone",
    "(d2) [linux] drvguest: grants still in use: 0",
    "(d2) [linux] drvguest: running on (uptime",
    "(d0) [linux] drvctl: front end after destroy: gone",
    "(d0) [linux] drvctl: vbd 51712 nodes: gone",
    "(d0) [linux] drvctl: driver1 listed: 0",
    // A new driver domain serves a new disk to the same guest.
    "(d0) [linux] drvctl: create driver2: exit 0",
    "(d0) [linux] drvctl: driver2: agent running",
    "(d0) [linux] drvctl: block-attach xvdb backend=driver2: exit 0",
    "(d2) [linux] drvguest: /dev/xvdb: 2048 sectors, ro=0",
    "(d2) [linux] drvguest: xvdb: read pattern 3",
    "(d2) [linux] drvguest: xvdb: wrote and read back pattern 4",
    // It crashes; the disk is detached on its behalf.
    "[linux] driverdom: asked to crash: kernel panic (sysrq c)",
    "(d0) [linux] drvctl: driver2 listed after its panic: 0",
    "(d0) [linux] drvctl: block-detach xvdb (back end gone): exit 0",
    "(d2) [linux] drvguest: /dev/xvdb: gone",
    "(d0) [linux] drvctl: front end after block-detach: gone",
    "(d0) [linux] drvctl: vbd 51728 nodes: gone",
    "(d0) [linux] drvctl: keelctl shutdown -w: exit 0",
    "domain 2 (guest): shut down (poweroff)",
    "(driver1), created at run time: destroyed",
    "(driver2), created at run time: crashed (watchdog expired)",
];

/// What the hostile front end (d3, Keel's test guest), the driver domain's kernel and Keel
/// print while it sends garbage to driver1's blkback.
const HOSTILE_LINES: [&str; 32] = [
    "(d0) [linux] drvctl: block-attach hostile xvda (read-only) backend=driver1: exit 0",
    "(d3) hostile-blkfront: disk from d4 (/local/domain/4/backend/vbd/3/51712)",
    "(d3) hostile-blkfront: back end InitWait",
    "(d3) hostile-blkfront: back end Connected",
    "(d3) hostile-blkfront: a good read: status 0",
    "(d3) hostile-blkfront: a good read: okay, the disk's bytes",
    "(d3) hostile-blkfront: 0 segments: status -1",
    "(d3) hostile-blkfront: 200 segments: status -1",
    "(d3) hostile-blkfront: a ref never granted: status -1",
    "(d3) hostile-blkfront: a ref beyond the table: status -1",
    "(d3) hostile-blkfront: a ref granted to d0: status -1",
    "(d3) hostile-blkfront: the page granted to d0 is unchanged",
    "(d3) hostile-blkfront: a sector past the end: status -1",
    "(d3) hostile-blkfront: a sector that wraps: status -1",
    "(d3) hostile-blkfront: last sector before the first: status -1",
    "(d3) hostile-blkfront: last sector beyond the page: status -1",
    "(d3) hostile-blkfront: a write to the read-only disk: status -1",
    "(d3) hostile-blkfront: operation 0xee: status -2",
    "(d3) hostile-blkfront: a good read again: status 0",
    "(d3) hostile-blkfront: producer 1000 ahead: 0 responses (ring halted)",
    "(d3) hostile-blkfront: 50 state flips written, last Closed",
    "(d3) hostile-blkfront: back end Closed after the flips",
    "(d3) hostile-blkfront: finished",
    "(d3) PASS xenbus",
    // Keel refused blkback's maps (debug: a guest's mistake), blkback halted the ring.
    "d4: map of d3's grant ref 20 refused (-1)",
    "d4: map of d3's grant ref 12 refused (-1)",
    "d4: map of d3's grant ref 2147483632 refused (-3)",
    "(d4) [",
    "Frontend provided bogus ring requests",
    "(d0) [linux] drvctl: driver1 listed after the hostile front end: 1",
    "(d0) [linux] drvctl: block-detach hostile xvda: exit 0",
    "(d2) [linux] drvguest: xvda: read pattern 2 again after the hostile front end",
];

/// VHE, GICv3, 2 CPUs: blkfront in a Linux domU served by blkback in two Linux driver
/// domains in turn, neither of them dom0.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_driver_domain_vhe_gicv3() {
    let name = "arm64 Linux driver domain, its destroy and crash (VHE GICv3)";
    let t = beside_hostile_frontend(name, INITRAMFS_WITH_KERNEL, "drvctl", "drvguest", "hostile-blkfront");
    boot(t.lines(&LINES).lines(&HOSTILE_LINES));
}

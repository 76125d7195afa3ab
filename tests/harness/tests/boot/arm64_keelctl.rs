//! keelctl in a Linux control domain (`docs/toolstack.md`): Debian's stock arm64 kernel
//! as a dom0less domain holding the control capability (`caps=1`) loads `xen-privcmd`
//! and runs `tests/guests/linux/keelctl-session`, which drives a spinning dom0less test
//! guest through Keel's control interface; a third domain, a test guest without the
//! capability, gets `EPERM` for every control sub-op.
//!
//! UNFINISHED: this file is not included in `boot.rs`, and its functions are not tests
//! yet. In the Linux control domain, `open("/dev/xen/privcmd")` does not return (by
//! keelctl and by busybox `cat` alike; `xen-privcmd` loads and the node exists), both as
//! a dom0less domain with `caps=1` and as the initial domain from `guest-loader`. The
//! likely cause, not yet confirmed in Linux's source: newer Linux (and Debian's 6.1
//! backports) make privcmd in a domain that is not `xen_initial_domain()` wait at `open`
//! for xenstore to name its target domain; no xenstore runs yet, and on arm64 Linux
//! counts itself the initial domain only if the hypervisor reports `XENFEAT_dom0`,
//! which Keel does not. Either a xenstore serving the control domain or `XENFEAT_dom0`
//! for the initial domain (a guest ABI change, docs/abi.md) should let the session run;
//! then include this file in `boot.rs` and make these `#[test]`s.

use super::arm64_guests::spec;
use super::arm64_linux::{linux, on_with, xen_guest, INITRAMFS, KERNEL, NVHE_GICV2, VHE_GICV3};
use super::boot;

/// What the session in the control domain (d1) must print, and what Keel and the other
/// domains say.
const SESSION: [&str; 22] = [
    "(d1) [linux] keelctl: xen-privcmd loaded",
    "(d1) [linux] keelctl: list: header Name ID Mem VCPUs State Time(s)",
    "(d1) [linux] keelctl: list: ctl id 1, r----- (itself)",
    "(d1) [linux] keelctl: list: spinner id 2, 32 MiB, 1 vCPU(s), r-----",
    "(d1) [linux] keelctl: pause: spinner --p---",
    "(d1) [linux] keelctl: pause: CPU time stays at ",
    "(d1) [linux] keelctl: unpause: spinner r-----",
    "(d1) [linux] keelctl: unpause: CPU time runs again",
    "(d1) [linux] keelctl: sched-credit: spinner weight 512 cap 0",
    "(d1) [linux] keelctl: vcpu-pin: spinner on CPU 1",
    "(d1) [linux] keelctl: vcpu-list: spinner vCPU 0",
    "(d1) [linux] keelctl: info: xen_version 4.19.0-keel",
    "(d1) [linux] keelctl: info: xen_caps keel-control-1.0",
    "(d1) [linux] keelctl: console: read ",
    "(d1) [linux] keelctl: bad name: exit 1: keelctl pause: Domain 'no-such-domain' does not exist.",
    "(d1) [linux] keelctl: pause itself: exit 1: keelctl pause: invalid argument: Keel refused pausing of domain 1 (EINVAL)",
    "(d1) [linux] keelctl: destroy: spinner is no longer listed",
    "(d1) [linux] keelctl: done",
    "(d3) control-denied: 18 sub-ops, each EPERM; VIRQ_DOM_EXC: EBUSY",
    "(d3) PASS control-denied",
    "domain 2 (spinner): destroyed",
    "domain 1 (ctl): shut down (poweroff)",
];

fn keelctl_session(config: &str, machine: [&str; 4]) {
    let ctl = linux("ctl", 2, "console=hvc0 keel.linux=keelctl keel.self=ctl keel.victim=spinner", "caps=1");
    let spinner = spec("spinner", "mem=32M;bootargs=keel.test=spin");
    let denied = spec("denied", "mem=32M;bootargs=keel.test=control-denied");
    let extra = ["--domain", &ctl, "--domain", &spinner, "--domain", &denied];
    let mut t = on_with(&format!("arm64 keelctl in a Linux control domain ({config})"), machine, "2G", &extra)
        .domain("ctl")
        .domain("denied")
        .refusal("[test] fail domain-spinner: destroyed", 1)
        .lines(&SESSION);
    t.required_lines.push("[test] done pass=4 fail=1 expected=5".into());
    boot(xen_guest(t, 1));
}

/// The initial domain from QEMU's `guest-loader` (Xen's dom0 path: a control domain by
/// default, and `xen_initial_domain()` in Linux, whose privcmd then needs no xenstore):
/// keelctl lists it, reads `info`, refuses a bad name and pausing itself.
/// UNFINISHED (see the module's notes).
#[allow(dead_code)]
fn arm64_keelctl_in_linux_dom0_vhe_gicv3() {
    let kernel =
        format!("guest-loader,addr=0x42000000,kernel={KERNEL},bootargs=console=hvc0 keel.linux=keelctl keel.self=0");
    let initrd = format!("guest-loader,addr=0x47000000,initrd={INITRAMFS}");
    let extra = ["-device", &kernel, "-device", &initrd];
    let t = on_with("arm64 keelctl in Linux dom0 (VHE GICv3)", VHE_GICV3, "2G", &extra).domain("dom0").lines(&[
        "(d0) [linux] keelctl: xen-privcmd loaded",
        "(d0) [linux] keelctl: list: header Name ID Mem VCPUs State Time(s)",
        "(d0) [linux] keelctl: list: dom0 id 0, r----- (itself)",
        "(d0) [linux] keelctl: info: xen_version 4.19.0-keel",
        "(d0) [linux] keelctl: info: xen_caps keel-control-1.0",
        "(d0) [linux] keelctl: bad name: exit 1: keelctl pause: Domain 'no-such-domain' does not exist.",
        "(d0) [linux] keelctl: pause itself: exit 1: keelctl pause: invalid argument: Keel refused pausing of domain 0 (EINVAL)",
        "(d0) [linux] keelctl: done",
        "domain 0 (dom0): shut down (poweroff)",
    ]);
    boot(xen_guest(t, 0));
}

/// UNFINISHED (see the module's notes).
#[allow(dead_code)]
fn arm64_keelctl_in_a_linux_control_domain_vhe_gicv3() {
    keelctl_session("VHE GICv3", VHE_GICV3);
}

/// UNFINISHED (see the module's notes).
#[allow(dead_code)]
fn arm64_keelctl_in_a_linux_control_domain_nvhe_gicv2() {
    keelctl_session("nVHE GICv2", NVHE_GICV2);
}

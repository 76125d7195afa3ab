//! keelctl in a Linux control domain (`docs/toolstack.md`): Debian's stock arm64 kernel
//! as Keel's initial domain (Xen's dom0, a control domain by default) loads `xen-privcmd`
//! and runs `tests/guests/linux/keelctl-session`, which drives a spinning dom0less test
//! guest through Keel's control interface; a third domain, a test guest without the
//! capability, gets `EPERM` for every control sub-op.
//!
//! Linux treats itself as the initial domain on arm64 only when Keel reports
//! `XENFEAT_dom0` (docs/abi.md §4); otherwise its privcmd makes `open` wait for xenstore
//! to name a target domain and then refuses arbitrary hypercalls, so a dom0less domain
//! with `caps=1` cannot run keelctl under Linux (docs/toolstack.md).

use super::arm64_guests::spec;
use super::arm64_linux::{on_with, xen_guest, INITRAMFS, KERNEL, NVHE_GICV2, VHE_GICV3};
use super::boot;

/// What the session in dom0 must print, and what Keel and the other domains say.
pub const SESSION: [&str; 22] = [
    "(d0) [linux] keelctl: xen-privcmd loaded",
    "(d0) [linux] keelctl: list: header Name ID Mem VCPUs State Time(s)",
    "(d0) [linux] keelctl: list: dom0 id 0, r----- (itself)",
    "(d0) [linux] keelctl: list: spinner id 1, 32 MiB, 1 vCPU(s), r-----",
    "(d0) [linux] keelctl: pause: spinner --p---",
    "(d0) [linux] keelctl: pause: CPU time stays at ",
    "(d0) [linux] keelctl: unpause: spinner r-----",
    "(d0) [linux] keelctl: unpause: CPU time runs again",
    "(d0) [linux] keelctl: sched-credit: spinner weight 512 cap 0",
    "(d0) [linux] keelctl: vcpu-pin: spinner on CPU 1",
    "(d0) [linux] keelctl: vcpu-list: spinner vCPU 0",
    "(d0) [linux] keelctl: info: xen_version 4.19.0-keel",
    "(d0) [linux] keelctl: info: xen_caps keel-control-1.4",
    "(d0) [linux] keelctl: console: read ",
    "(d0) [linux] keelctl: bad name: exit 1: keelctl pause: Domain 'no-such-domain' does not exist.",
    "(d0) [linux] keelctl: pause itself: exit 1: keelctl pause: invalid argument: Keel refused pausing of domain 0 (EINVAL)",
    "(d0) [linux] keelctl: destroy: spinner is no longer listed",
    "(d0) [linux] keelctl: done",
    "(d2) control-denied: 18 sub-ops, each EPERM; VIRQ_DOM_EXC: EBUSY",
    "(d2) PASS control-denied",
    "domain 1 (spinner): destroyed",
    "domain 0 (dom0): shut down (poweroff)",
];

fn keelctl_session(config: &str, machine: [&str; 4]) {
    let dom0 = format!(
        "kernel={KERNEL};ramdisk={INITRAMFS};bootargs=console=hvc0 keel.linux=keelctl keel.self=0 keel.victim=spinner"
    );
    let spinner = spec("spinner", "mem=32M;bootargs=keel.test=spin");
    let denied = spec("denied", "mem=32M;bootargs=keel.test=control-denied");
    let extra = ["--dom0", &dom0, "--domain", &spinner, "--domain", &denied];
    let mut t = on_with(&format!("arm64 keelctl in Linux dom0 ({config})"), machine, "2G", &extra)
        .domain("dom0")
        .domain("denied")
        .refusal("[test] fail domain-spinner: destroyed", 1)
        .lines(&SESSION);
    t.required_lines.push("[test] done pass=4 fail=1 expected=5".into());
    boot(xen_guest(t, 0));
}

/// Linux dom0 (the initial domain, written into the tree with the dom0less domains) runs
/// the keelctl session against a spinning domU beside a domain denied the interface.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_keelctl_in_linux_dom0_vhe_gicv3() {
    keelctl_session("VHE GICv3", VHE_GICV3);
}

/// The same on nVHE with GICv2.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_keelctl_in_linux_dom0_nvhe_gicv2() {
    keelctl_session("nVHE GICv2", NVHE_GICV2);
}

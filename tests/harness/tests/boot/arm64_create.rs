//! Domains created at run time (`docs/control-abi.md` §4a, `docs/toolstack.md`): Debian's
//! stock arm64 Linux as Keel's initial domain runs `tests/guests/linux/create-session`,
//! which creates Keel's test guest from xl.cfg files with `keelctl create` (kernel
//! copied out of dom0's memory into Keel's frame pool, then through the boot-time
//! loader), reads its marker through `keelctl console`, destroys and creates it again,
//! checks the documented errors of bad configurations, and runs 100 create/destroy
//! cycles; Keel's free memory, to the page, must be the same before and after.

use super::arm64_linux::{on_with, xen_guest, INITRAMFS, KERNEL, NVHE_GICV2, VHE_GICV3};
use super::boot;
use std::time::Duration;

/// Dom0's initramfs, with the kernel and the plain initramfs as files in `/boot`.
const INITRAMFS_WITH_KERNEL: &str = "target/linux-arm64/initramfs-with-kernel.img";

/// What the session in dom0 must print, and what Keel says.
const SESSION: [&str; 19] = [
    "(d0) [linux] create: xen-privcmd loaded",
    "(d0) [linux] create: made created",
    "(d0) [linux] create: list: made id 1, 16 MiB, 1 vCPU(s)",
    "(d0) [linux] create: console: made spins",
    "(d0) [linux] create: duplicate name: exit 1: keelctl create: /tmp/made.cfg:2: name: a domain named `made` already exists",
    "(d0) [linux] create: destroy: made is no longer listed",
    "(d0) [linux] create: made created again",
    "(d0) [linux] create: destroy: made is gone again",
    "(d0) [linux] create: missing kernel: exit 1: keelctl create: /tmp/nokernel.cfg:3: kernel: cannot read `/no/such/kernel`",
    "(d0) [linux] create: too much memory: exit 1: keelctl create: /tmp/huge.cfg:3: memory: not enough free memory: 1000000 MiB asked,",
    "(d0) [linux] create: too little memory: exit 1: keelctl create: /tmp/tiny.cfg:2: memory: the kernel, ramdisk and boot tables do not fit in 8 MiB",
    "not started: does not fit: kernel, device tree and ramdisk need 12288 KiB of RAM",
    "(d0) [linux] create: refused configurations left no domain",
    "(d0) [linux] create: free_pages unchanged after create, destroy and refusals",
    "(d0) [linux] create: cycles: 100 create/destroy cycles, free_pages ",
    "(d0) [linux] create: cycles: no leak",
    "(d0) [linux] create: done",
    "domain 1 (made): created by the control interface, 16384 KiB",
    "domain 0 (dom0): shut down (poweroff)",
];

fn create_session(config: &str, machine: [&str; 4]) {
    let dom0 = format!("kernel={KERNEL};ramdisk={INITRAMFS};bootargs=console=hvc0 keel.linux=create");
    // 100 cycles of a few keelctl calls each under QEMU TCG: more than on_with's 200 s.
    let extra = ["--timeout", "420", "--dom0", &dom0];
    let t = on_with(&format!("arm64 keelctl create in Linux dom0 ({config})"), machine, "2G", &extra)
        .domain("dom0")
        .lines(&SESSION);
    boot(xen_guest(t, 0).timeout(Duration::from_secs(450)));
}

/// Linux dom0 creates, destroys and re-creates test-guest domains from xl.cfg files.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_create_in_linux_dom0_vhe_gicv3() {
    create_session("VHE GICv3", VHE_GICV3);
}

/// The same on nVHE with GICv2.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_create_in_linux_dom0_nvhe_gicv2() {
    create_session("nVHE GICv2", NVHE_GICV2);
}

/// What the vuart session in dom0 prints, what the domU prints on its virtual PL011
/// (Keel's log, prefixed `(d1)`), and what Keel says.
const VUART: [&str; 11] = [
    "(d0) [linux] vuart: create vu: exit 0",
    "domain 1 (vu): created by the control interface, 196608 KiB",
    ", virtual UART; being built",
    "(d1) [linux] console: hvc0 ttyAMA0",
    "(d0) [linux] vuart: console: [linux] console: hvc0 ttyAMA0",
    "(d0) [linux] vuart: console: [linux] action: shell",
    "(d0) [linux] vuart: prompt seen",
    "(d0) [linux] vuart: typed: echo vuart-$((6*7)); answer: vuart-42",
    "(d1) vuart-42",
    "(d0) [linux] vuart: vu powered off from its shell",
    "(vu), created at run time: shut down (poweroff)",
];

/// xl.cfg's `vuart = "sbsa_uart"` (`CTL_CREATE_VUART`): Linux dom0 creates a Linux domU
/// with Keel's virtual PL011 and `console=ttyAMA0`; its boot lines and shell reach
/// `keelctl console` and Keel's log, and a command typed through `keelctl console` is
/// answered (`tests/guests/linux/vuart-session`).
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_create_linux_with_vuart_vhe_gicv3() {
    let dom0 = format!("kernel={KERNEL};ramdisk={INITRAMFS_WITH_KERNEL};bootargs=console=hvc0 keel.linux=vuart");
    let extra = ["--timeout", "600", "--dom0", &dom0];
    let t =
        on_with("arm64 keelctl create with vuart (VHE GICv3)", VHE_GICV3, "2G", &extra).domain("dom0").lines(&VUART);
    boot(xen_guest(t, 0).timeout(Duration::from_secs(620)));
}

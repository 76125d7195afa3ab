//! Domains created at run time on x86 (`docs/control-abi.md` §4a, `docs/toolstack.md`),
//! as `arm64_create.rs` on arm64: Debian's stock amd64 Linux, the initial domain from
//! Xen's own GRUB entry (`linux-dom0-create.grub`, a control domain by default), runs
//! `tests/guests/linux/create-session`: `keelctl create` of Keel's x86 test guest (a PVH
//! ELF, `/guest.img`) from xl.cfg files, its marker through `keelctl console`, destroy
//! and create again, the documented errors of bad configurations, and 100
//! create/destroy cycles after which Keel's free memory, to the page, is what it was.
//!
//! Linux dom0 is far too slow on Bochs, so on Bochs the control domain is Keel's test
//! guest (`keel.test=create`, `configs/create.dts`): it creates test-guest domains from
//! the kernel in its own memory, reads their console, pauses, unpauses and destroys
//! them, cycle after cycle, with Keel's free frames unchanged; a domain without the
//! capability gets `EPERM`.

use super::x86_guests::{x86_boot, x86_iso, X86Machine};
use super::x86_linux::{qemu_svm_bios, qemu_svm_uefi};
use super::{boot, QEMU_X86_PASS};
use keel_tests::BootTest;
use std::time::Duration;

/// What the session in dom0 must print, and what Keel says.
const SESSION: [&str; 20] = [
    "(d0) [linux] xen-detected: yes",
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
    "domain 1 (tiny): not started: does not fit: kernel kernel of domain 1 (tiny): the segment [",
    "(d0) [linux] create: refused configurations left no domain",
    "(d0) [linux] create: free_pages unchanged after create, destroy and refusals",
    "(d0) [linux] create: cycles: 100 create/destroy cycles, free_pages ",
    "(d0) [linux] create: cycles: no leak",
    "(d0) [linux] create: done",
    "domain 1 (made): created by the control interface, 16384 KiB",
    "domain 0 (dom0): shut down (poweroff)",
];

/// The session's verdict on `machine`: Linux's boot and 100 cycles of a few keelctl
/// calls each under QEMU TCG (about 3 minutes on an idle host).
fn create_session(machine: BootTest) -> BootTest {
    machine.exit_status(QEMU_X86_PASS).timeout(Duration::from_secs(600)).domain("dom0").lines(&SESSION)
}

/// QEMU TCG SVM through GRUB BIOS, 2 CPUs, 2 GiB: Linux dom0 (512 MiB, 2 vCPUs) creates,
/// destroys and re-creates test-guest domains from xl.cfg files.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_create_in_linux_dom0_qemu_svm_bios() {
    boot(create_session(qemu_svm_bios("x86 keelctl create in Linux dom0 (QEMU SVM BIOS)", "linux-dom0-create")));
}

/// The same session through OVMF and UEFI GRUB: the control domain, the domains it
/// creates and the free-memory figure live in the memory map of the UEFI handoff.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_create_in_linux_dom0_qemu_svm_uefi() {
    boot(create_session(qemu_svm_uefi("x86 keelctl create in Linux dom0 (QEMU SVM UEFI)", "linux-dom0-create")));
}

/// What the test-guest control domain (d1), the denied domain (d2) and Keel print. The
/// created domain's id depends on whether d2 has ended by then (ids are reused).
const FROM_TEST_GUEST: [&str; 7] = [
    "(d1) create: kernel of ",
    " (made): created by the control interface, 16384 KiB, kernel ",
    " (made), created at run time: destroyed",
    " runs: console read ",
    "(d1) create: duplicate name, too much memory, 0 vCPUs, early start, loads out of order refused",
    "(d1) create: 5 cycles of create, console, pause, unpause, destroy; free pages ",
    "(d2) control-denied: 18 sub-ops, each EPERM; VIRQ_DOM_EXC: EBUSY",
];

fn create_from_test_guest(machine: X86Machine) {
    let t = x86_boot(machine, &x86_iso("create"))
        .timeout(Duration::from_secs(300))
        .domains(&["control", "denied"])
        .lines(&FROM_TEST_GUEST);
    boot(t);
}

/// QEMU TCG SVM through GRUB BIOS: the test-guest control domain's 5 cycles.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_create_from_test_guest_qemu_bios() {
    create_from_test_guest(X86Machine::QemuBios);
}

/// Bochs Skylake (VT-x, EPT, VPID): the same cycles.
#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_create_from_test_guest_bochs_vmx() {
    create_from_test_guest(X86Machine::BochsVmx);
}

/// Bochs Ryzen (SVM with NRIPS): the same cycles.
#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_create_from_test_guest_bochs_svm() {
    create_from_test_guest(X86Machine::BochsSvm);
}

//! keelctl in a Linux control domain on x86 (`docs/toolstack.md`), as `arm64_keelctl.rs`
//! on arm64, with the same session and lines: Debian's stock amd64 kernel as Keel's
//! initial domain (modules directly under `/chosen` of `linux-dom0-keelctl.dts`, a
//! control domain by default) loads `xen-privcmd` and runs
//! `tests/guests/linux/keelctl-session` against a spinning test guest; a third domain,
//! a test guest without the capability, gets `EPERM` for every control sub-op.
//!
//! Linux on x86 PVH acts as the initial domain only when `hvm_start_info.flags` has
//! `SIF_INITDOMAIN`, which Keel writes for the initial domain alone; otherwise its
//! privcmd makes `open` wait for xenstore to name a target domain.

use super::arm64_keelctl::SESSION;
use super::x86_linux::{qemu_svm_bios, qemu_svm_uefi};
use super::{boot, QEMU_X86_FAIL};
use keel_tests::BootTest;
use std::time::Duration;

/// The session's verdict on `machine`.
fn keelctl_session(machine: BootTest) -> BootTest {
    let mut t = machine
        .timeout(Duration::from_secs(500))
        .domain("dom0")
        .domain("denied")
        .refusal("[test] fail domain-spinner: destroyed", QEMU_X86_FAIL)
        .lines(&["(d0) [linux] xen-detected: yes", "domain 0 (dom0): 2 vCPU(s), 512 MiB"])
        .lines(&SESSION);
    t.required_lines.push("[test] done pass=4 fail=1 expected=5".into());
    t
}

/// QEMU TCG SVM through GRUB BIOS, 2 CPUs, 2 GiB: Linux dom0 (512 MiB, 2 vCPUs) lists,
/// pauses, unpauses, tunes, pins, reads the console of and destroys a dom0less domain.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_keelctl_in_linux_dom0_qemu_svm_bios() {
    boot(keelctl_session(qemu_svm_bios("x86 keelctl in Linux dom0 (QEMU SVM BIOS)", "linux-dom0-keelctl")));
}

/// The same session through OVMF and UEFI GRUB: the initial domain and the dom0less
/// domains beside it are built from the modules of the UEFI handoff.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_keelctl_in_linux_dom0_qemu_svm_uefi() {
    boot(keelctl_session(qemu_svm_uefi("x86 keelctl in Linux dom0 (QEMU SVM UEFI)", "linux-dom0-keelctl")));
}

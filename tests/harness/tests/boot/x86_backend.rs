//! What a back end in a driver domain needs from Keel (issue 13) on x86: the test
//! guest's `backend` scenario (`tests/guests/x86_64/configs/backend.dts`), as on arm64,
//! on QEMU SVM (GRUB BIOS) and Bochs VT-x.

use super::arm64_backend::BACKEND_LINES;
use super::boot;
use super::x86_guests::{x86_boot, x86_iso, X86Machine};
use std::time::Duration;

fn x86_backend(machine: X86Machine) {
    boot(
        x86_boot(machine, &x86_iso("backend"))
            .timeout(Duration::from_secs(240))
            .domains(&["front-a", "front-b", "back"])
            .lines(&BACKEND_LINES)
            .lines(&[
                "static event channel: front-a port 10 <-> back port 20",
                "static event channel: front-b port 11 <-> back port 21",
            ]),
    );
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_backend_qemu_bios() {
    x86_backend(X86Machine::QemuBios);
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_backend_bochs_vmx() {
    x86_backend(X86Machine::BochsVmx);
}

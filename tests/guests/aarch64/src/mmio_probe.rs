//! `keel.test=mmio keel.mmio=ADDR`: reads a virtio-mmio transport's MagicValue, Version
//! and DeviceID at guest-physical ADDR with 32-bit loads and says what it found, or that
//! the reads aborted (a domain not given the device). The boot test judges the line.

use crate::platform::{record_probe_fault, Arm, PROBE_FAULT};
use core::sync::atomic::Ordering::Relaxed;
use keel_test_guest::{cmdline, say, Outcome, Platform, Probe};

extern "C" {
    fn guest_probe_read32(addr: u64) -> u32;
}

/// A 32-bit read of `gpa` that may abort.
fn read32(p: &Arm, gpa: u64) -> Probe {
    record_probe_fault(0);
    // SAFETY: the load may fault; the exception handler resumes after it with x0 = 0 and
    // records the syndrome, so no other state changes.
    let v = unsafe { guest_probe_read32(gpa) };
    match PROBE_FAULT[p.cpu() as usize % crate::MAX_CPUS].load(Relaxed) {
        0 => Probe::Value(u64::from(v)),
        esr => Probe::Fault(esr),
    }
}

pub fn run(p: &Arm) -> Outcome {
    let Some(at) = cmdline::get_u64(p.cmdline(), "keel.mmio") else {
        keel_test_guest::fail!("keel.mmio=ADDR is missing");
    };
    match (read32(p, at), read32(p, at + 4), read32(p, at + 8)) {
        (Probe::Value(magic), Probe::Value(version), Probe::Value(device)) => {
            say!(p, "mmio {at:#x}: magic {magic:#x} version {version} device {device}");
        }
        (Probe::Fault(esr), _, _) => say!(p, "mmio {at:#x}: aborted (ESR {esr:#x})"),
        other => keel_test_guest::fail!("mmio {at:#x}: some reads aborted, not all: {other:?}"),
    }
    Ok(())
}

//! Powering the machine off: semihosting's exit for test runs, PSCI `SYSTEM_OFF`
//! otherwise, and what boot knows of the exit path before the core has read its options.

use crate::{console, cpu, firmware_psci, semihosting};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use keel_kernel::arch::{ExitStatus, PowerOffPath};

/// Whether `keel.exit=...` is known yet (until then failures try the test exit first).
static EXIT_KNOWN: AtomicBool = AtomicBool::new(false);
static EXIT_FIRMWARE: AtomicBool = AtomicBool::new(false);
/// Whether `keel_main` runs (from then on the core reads the command line itself).
static CORE_STARTED: AtomicBool = AtomicBool::new(false);

/// Boot has read `keel.exit=`: failures before the core runs take that path.
pub fn set_boot_exit_path(path: PowerOffPath) {
    EXIT_FIRMWARE.store(path == PowerOffPath::Firmware, Relaxed);
    EXIT_KNOWN.store(true, Relaxed);
}

/// The core is about to run and from now on chooses the exit path itself.
pub fn set_core_started() {
    CORE_STARTED.store(true, Relaxed);
}

/// How to power off during boot: as `keel.exit=` says once the command line is read, else
/// the test exit first (which falls back to the firmware where absent).
pub fn failure_exit_path() -> PowerOffPath {
    if EXIT_KNOWN.load(Relaxed) && EXIT_FIRMWARE.load(Relaxed) {
        PowerOffPath::Firmware
    } else {
        PowerOffPath::TestDevice
    }
}

/// Powers off: semihosting `SYS_EXIT` with the status for [`PowerOffPath::TestDevice`],
/// else (or if semihosting is absent) PSCI `SYSTEM_OFF`; parks the CPU if both fail.
pub fn power_off(path: PowerOffPath, status: ExitStatus) -> ! {
    // Before the core has read the command line, its options are defaults; boot knows.
    let path = if CORE_STARTED.load(Relaxed) { path } else { failure_exit_path() };
    console::flush();
    if path == PowerOffPath::TestDevice {
        semihosting::exit(if status == ExitStatus::Success { 0 } else { 1 });
    }
    let err = firmware_psci::system_off();
    let cpu = cpu::current();
    match firmware_psci::conduit() {
        Some(c) => console::emergency(format_args!(
            "[ERROR {cpu}] cannot power off: PSCI SYSTEM_OFF over {} failed: {err}; halting this CPU",
            c.name()
        )),
        None => console::emergency(format_args!(
            "[ERROR {cpu}] cannot power off: the device tree names no PSCI conduit; halting this CPU"
        )),
    }
    console::flush();
    cpu::park()
}

//! Power-off with a status.
//!
//! Test path: QEMU's isa-debug-exit (port 0xf4: 0x10 → exit 33, 0x11 → exit 35); then, for
//! Bochs, the magic breakpoint `xchg bx, bx` on success (its debugger runs `quit`: exit 0)
//! or "Shutdown" to port 0x8900 on failure (exit 1). Firmware path (and the test path's
//! fallback): ACPI S5, then a keyboard-controller reset, then a triple fault.

use crate::console;
use crate::regs::{inb, outb, outl, outw};
use core::arch::asm;
use keel_kernel::arch::{ExitStatus, PowerOffPath};
use spin::Once;

/// How to power off, from Keel's command line once boot has read it.
static BOOT_EXIT: Once<PowerOffPath> = Once::new();

/// Boot has read `keel.exit=`: failures from now on take that path.
pub fn set_boot_exit_path(path: PowerOffPath) {
    BOOT_EXIT.call_once(|| path);
}

/// How to power off on a failure outside the core: as `keel.exit=` says, the firmware
/// until the command line has been read.
pub fn failure_exit_path() -> PowerOffPath {
    BOOT_EXIT.get().copied().unwrap_or(PowerOffPath::Firmware)
}

const DEBUG_EXIT_PORT: u16 = 0xf4;
const DEBUG_EXIT_SUCCESS: u32 = 0x10;
const DEBUG_EXIT_FAILURE: u32 = 0x11;
const BOCHS_SHUTDOWN_PORT: u16 = 0x8900;
const KBC_STATUS: u16 = 0x64;
const KBC_INPUT_FULL: u8 = 1 << 1;
const KBC_PULSE_RESET: u8 = 0xfe;
const SLP_EN: u16 = 1 << 13;

/// Powers off; see the module documentation for the order of attempts.
pub fn power_off(path: PowerOffPath, status: ExitStatus) -> ! {
    x86_64::instructions::interrupts::disable();
    console::drain();
    if path == PowerOffPath::TestDevice {
        let code = if status == ExitStatus::Success { DEBUG_EXIT_SUCCESS } else { DEBUG_EXIT_FAILURE };
        // SAFETY: port 0xf4 is QEMU's isa-debug-exit in test runs; elsewhere it is unused.
        unsafe { outl(DEBUG_EXIT_PORT, code) };
        if status == ExitStatus::Success {
            // SAFETY: `xchg bx, bx` exchanges a register with itself: no effect, except
            // that Bochs (magic_break: enabled=1) stops in its debugger.
            unsafe { asm!("xchg bx, bx", options(nomem, nostack, preserves_flags)) };
        }
        for b in b"Shutdown" {
            // SAFETY: port 0x8900 is Bochs' shutdown port; elsewhere it is unused.
            unsafe { outb(BOCHS_SHUTDOWN_PORT, *b) };
        }
    }
    firmware_power_off()
}

fn firmware_power_off() -> ! {
    if let Some(acpi) = crate::acpi::info() {
        if let (Some(pm1a), Some((typ_a, typ_b))) = (acpi.pm1a_control, acpi.s5_sleep_types) {
            // SAFETY: writing SLP_TYP(S5) | SLP_EN to PM1 control enters S5 (ACPI 4.8.3.2.1).
            unsafe {
                outw(pm1a, (typ_a as u16) << 10 | SLP_EN);
                if let Some(pm1b) = acpi.pm1b_control {
                    outw(pm1b, (typ_b as u16) << 10 | SLP_EN);
                }
            }
            spin(10_000_000);
        }
    }
    for _ in 0..100_000 {
        if inb(KBC_STATUS) & KBC_INPUT_FULL == 0 {
            break;
        }
    }
    // SAFETY: the keyboard controller's "pulse reset line" command resets the machine.
    unsafe { outb(KBC_STATUS, KBC_PULSE_RESET) };
    spin(10_000_000);
    let empty = x86_64::structures::DescriptorTablePointer { limit: 0, base: x86_64::VirtAddr::new(0) };
    // SAFETY: an empty IDT makes the breakpoint a triple fault, i.e. a reset; nothing runs after.
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        asm!("int3", options(nomem, nostack));
    }
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

fn spin(iterations: u64) {
    for _ in 0..iterations {
        core::hint::spin_loop();
    }
}

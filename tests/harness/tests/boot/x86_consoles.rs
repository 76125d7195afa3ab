//! x86 consoles: input typed on COM1 (its receive interrupt through the I/O APIC) routed
//! to one domain at a time, as on arm64 (`arm64_consoles.rs`).

use super::{boot, input_file, QEMU_X86_PASS, X86_64};
use keel_tests::BootTest;
use std::time::Duration;

/// QEMU TCG SVM through GRUB BIOS, 2 CPUs: Debian's amd64 Linux runs busybox's shell on
/// hvc0 (`linux-configs/linux-shell.dts`) beside a test guest on its PV console. The
/// typed command line reaches the shell, which computes and prints `typed-42` (only the
/// shell can: the typed line says `$((6 * 7))`); `exit` ends the shell and Linux powers
/// off. Three Ctrl-A then give the input to the test guest, which must read its line.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_shell_with_typed_input_qemu_svm_bios() {
    let iso = keel_tests::repo_root().join("target/images/test/x86-linux-shell.iso").display().to_string();
    // QEMU puts the first byte into the 16550 at power-on, before Keel turns its FIFOs on,
    // which drops it (as a real UART drops typeahead): that byte is a spare newline.
    let input = input_file("x86-linux-shell", b"\necho typed-$((6 * 7))\nexit\n\x01\x01\x01to-the-second\n");
    let args = ["--smp", "2", "--iso", &iso, "--input", &input, "-m", "2G"];
    let t = BootTest::new("x86 Linux shell with typed input (QEMU SVM BIOS)", X86_64, &args)
        .exit_status(QEMU_X86_PASS)
        .fact("virtualization", "svm")
        .probe_on_cpus(2)
        .retry_on_emulator_reset()
        .timeout(Duration::from_secs(400))
        .domain("linux")
        .domain("second")
        .lines(&[
            "console input goes to domain 1 (linux); Ctrl-A three times switches",
            "console input goes to domain 2 (second); Ctrl-A three times switches",
            "(d1) [linux] action: shell",
            "(d1) typed-42",
            "(d2) pv console: hello through the ring",
            "(d2) pv console input: to-the-second (",
            "domain 1 (linux): shut down (poweroff)",
        ]);
    boot(t);
}

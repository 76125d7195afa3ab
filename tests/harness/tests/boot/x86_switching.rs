//! Lazy vCPU state must not leak on x86 (issue 14, "Correctness first"): two domains
//! pinned to physical CPU 0 (`tests/guests/x86_64/configs/switching.dts`) fill the FS, GS
//! and kernel GS bases, STAR/LSTAR/CSTAR/SFMASK, the SYSENTER MSRs, PAT, EFER.SCE,
//! DR0–DR3, DR6, DR7 and XMM0–XMM15 with different patterns and check them all after
//! each of 2000 yields, at least half of which went to the other domain.

use super::boot;
use super::x86_guests::{x86_boot, x86_iso, X86Machine};
use std::time::Duration;

fn x86_switching(machine: X86Machine) {
    let mut t = x86_boot(machine, &x86_iso("switching")).domains(&["red", "blue"]).timeout(Duration::from_secs(400));
    for d in [1, 2] {
        t = t.line(&format!(
            "(d{d}) switching: 18 system registers and xmm0-xmm15 kept through 2000 yields, half or more to the other domain"
        ));
    }
    boot(t);
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_switching_keeps_each_domains_registers_qemu_bios() {
    x86_switching(X86Machine::QemuBios);
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_switching_keeps_each_domains_registers_bochs_vmx() {
    x86_switching(X86Machine::BochsVmx);
}

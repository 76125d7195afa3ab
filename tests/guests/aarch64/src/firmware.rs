//! `keel.test=psci`: the arm64 platform's own scenario: PSCI as Keel answers it over
//! `hvc #0` and a trapped `smc #0`, an unknown `hvc` immediate (an undefined-instruction
//! exception), WFE, and the end by `SYSTEM_OFF` (or `SYSTEM_RESET` with
//! `keel.end=reset`) instead of a Xen shutdown.

use crate::psci::{self, AFFINITY_INFO, CPU_ON};
use crate::regs::smccc;
use keel_test_guest::cmdline::get;
use keel_test_guest::{ensure, expect_eq, say, Outcome, Platform};

const VERSION: u32 = 0x8400_0000;
const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
const SYSTEM_OFF: u32 = 0x8400_0008;
const SYSTEM_RESET: u32 = 0x8400_0009;
const FEATURES: u32 = 0x8400_000a;
const SMCCC_VERSION: u32 = 0x8000_0000;

extern "C" {
    fn guest_probe_hvc1() -> u64;
    fn guest_smc_version() -> u64;
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    expect_eq!(smccc(VERSION, 0, 0, 0), 0x1_0001, "PSCI_VERSION over hvc");
    // SAFETY: `smc #0` with PSCI_VERSION in w0; Keel traps and answers it.
    expect_eq!(unsafe { guest_smc_version() }, 0x1_0001, "PSCI_VERSION over a trapped smc");
    for f in [CPU_ON, AFFINITY_INFO, SYSTEM_OFF, SYSTEM_RESET, FEATURES, psci::CPU_OFF] {
        expect_eq!(smccc(FEATURES, f as u64, 0, 0), 0, "PSCI_FEATURES of a function Keel implements");
    }
    expect_eq!(smccc(FEATURES, 0x8400_0012, 0, 0), -1, "PSCI_FEATURES of an unknown function");
    expect_eq!(smccc(FEATURES, SMCCC_VERSION as u64, 0, 0), -1, "PSCI_FEATURES(SMCCC_VERSION)");
    expect_eq!(smccc(0x8400_00ff, 0, 0, 0), -1, "an unknown function");
    expect_eq!(smccc(MIGRATE_INFO_TYPE, 0, 0, 0), 2, "MIGRATE_INFO_TYPE");
    expect_eq!(psci::affinity_info(0), 0, "AFFINITY_INFO of this vCPU");
    expect_eq!(psci::affinity_info(0x55), -2, "AFFINITY_INFO of no vCPU");
    expect_eq!(smccc(AFFINITY_INFO, 0, 1, 0), -2, "AFFINITY_INFO above level 0");
    if p.nr_cpus() > 1 {
        expect_eq!(psci::cpu_on(psci::mpidr_of(1), 0x10, 0), -9, "CPU_ON with an entry outside RAM");
    }
    expect_eq!(psci::cpu_on(0x7f, 0x4000_0000, 0), -2, "CPU_ON of no vCPU");
    say!(
        p,
        "psci: version 1.1 over hvc and smc; FEATURES, MIGRATE_INFO_TYPE, AFFINITY_INFO, CPU_ON errors as specified"
    );
    // SAFETY: `hvc #1` is no call Keel knows: the guest takes an undefined-instruction
    // exception, which the exception handler turns into a return with the syndrome.
    let esr = unsafe { guest_probe_hvc1() };
    ensure!(esr >> 26 == 0, "hvc #1: syndrome {esr:#x}, expected an undefined-instruction exception");
    say!(p, "hvc #1: undefined-instruction exception (ESR {esr:#x})");
    for _ in 0..1000 {
        // SAFETY: WFE only waits (Keel treats it as a yield).
        unsafe { core::arch::asm!("wfe", options(nostack, nomem)) };
    }
    say!(p, "wfe: 1000 yields");
    let reset = get(p.cmdline(), "keel.end") == Some("reset");
    say!(p, "psci: {}", if reset { "SYSTEM_RESET" } else { "SYSTEM_OFF" });
    smccc(if reset { SYSTEM_RESET } else { SYSTEM_OFF }, 0, 0, 0);
    keel_test_guest::fail!("the system did not power off")
}

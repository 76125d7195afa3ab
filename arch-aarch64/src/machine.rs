//! The architecture composed: [`Arch`] and [`CpuOps`] over the hardware modules (the one
//! module that ties CPU identity to secondary start-up and power-off), and the hypercall
//! probe guest.

use crate::{console, cpu, dt, irq, power, firmware_psci, smp, Aarch64Domain, Aarch64Vcpu, Cpu, GenericTimer, Gic, HostRam, Stage2Tables};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use keel_kernel::arch::{Arch, CpuId, CpuOps, ExitStatus, IrqNumber, PowerOffPath, Stage2};

/// `XENVER_version`: the `xen_version` sub-command the probe calls.
const XENVER_VERSION: u64 = 0;

core::arch::global_asm!(
    include_str!("asm/probe.S"),
    XENVER_VERSION = const XENVER_VERSION,
    XEN_VERSION = const keel_abi::hypercall::XEN_VERSION,
    HVC_IMM = const keel_abi::hypercall::AARCH64_HVC_IMM,
);

extern "C" {
    static keel_probe_guest_start: u8;
    static keel_probe_guest_end: u8;
}

impl CpuOps for Cpu {
    fn current() -> CpuId {
        cpu::current()
    }

    fn halt() {
        cpu::halt()
    }

    fn relax() {
        cpu::relax()
    }

    fn start_secondaries(entry: fn(CpuId) -> !) -> u32 {
        smp::start_secondaries(entry)
    }

    fn power_off(path: PowerOffPath, status: ExitStatus) -> ! {
        power::power_off(path, status)
    }
}

/// The arm64 architecture.
pub struct Aarch64;

impl Arch for Aarch64 {
    const NAME: &'static str = "aarch64";
    type Cpu = Cpu;
    type Timer = GenericTimer;
    type Irq = Gic;
    type Memory = HostRam;
    type Stage2 = Stage2Tables;
    type Domain = Aarch64Domain;
    type Vcpu = Aarch64Vcpu;

    fn facts() -> Vec<(&'static str, String)> {
        let platform = dt::platform();
        let list_registers = match irq::list_registers() {
            Ok(n) => n.to_string(),
            Err(why) => why.to_string(),
        };
        let console = console::uart().map_or("none".to_string(), |u| format!("{}@{:#x}", u.kind(), u.base()));
        alloc::vec![
            ("el2", if cpu::vhe() { "vhe" } else { "nvhe" }.to_string()),
            ("gic-version", irq::version().map_or("none".to_string(), |v| v.to_string())),
            ("gic-list-registers", list_registers),
            ("psci-conduit", firmware_psci::conduit().map_or("none", |c| c.name()).to_string()),
            ("cpus-possible", platform.cpus.count.to_string()),
            ("ipa-bits", Stage2Tables::ipa_bits().to_string()),
            ("stage2-fwb", if cpu::fwb() { "yes" } else { "no" }.to_string()),
            ("console", console),
        ]
    }

    fn console_input_start() -> Option<IrqNumber> {
        console::start_input().map(IrqNumber)
    }

    fn console_read(buf: &mut [u8]) -> usize {
        console::read(buf)
    }

    fn probe_guest_code() -> &'static [u8] {
        // SAFETY: the two symbols delimit the probe's bytes in Keel's read-only data.
        unsafe {
            let start = &raw const keel_probe_guest_start;
            let end = &raw const keel_probe_guest_end;
            core::slice::from_raw_parts(start, end as usize - start as usize)
        }
    }
}

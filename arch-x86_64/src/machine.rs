//! The architecture composed: [`Arch`] and [`CpuOps`] over the hardware modules (the one
//! module that ties CPU identity to secondary start-up and power-off), and the boot facts.

use crate::{
    acpi, boot, console, console_input, cpu, domain, irq, memory, power, probe, smp, stage2, timer, vcpu, X86_64,
};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use keel_kernel::arch::{Arch, CpuId, CpuOps, ExitStatus, IrqNumber, PowerOffPath};

fn yes_no(b: bool) -> String {
    String::from(if b { "yes" } else { "no" })
}

impl CpuOps for cpu::X86Cpu {
    fn current() -> CpuId {
        CpuId(cpu::current_index())
    }

    fn halt() {
        cpu::halt()
    }

    fn start_secondaries(entry: fn(CpuId) -> !) -> u32 {
        smp::start_secondaries(entry)
    }

    fn power_off(path: PowerOffPath, status: ExitStatus) -> ! {
        power::power_off(path, status)
    }
}

impl Arch for X86_64 {
    const NAME: &'static str = "x86_64";
    type Cpu = cpu::X86Cpu;
    type Timer = timer::X86Timer;
    type Irq = irq::X86Irq;
    type Memory = memory::X86Memory;
    type Stage2 = stage2::X86Stage2;
    type Domain = domain::X86Domain;
    type Vcpu = vcpu::X86Vcpu;

    fn facts() -> Vec<(&'static str, String)> {
        let mut facts = Vec::new();
        match vcpu::extension() {
            vcpu::Extension::Vmx(c) => {
                facts.push(("virtualization", String::from("vmx")));
                facts.push(("ept", yes_no(c.ept())));
                facts.push(("vpid", yes_no(c.vpid())));
                facts.push(("unrestricted-guest", yes_no(c.unrestricted_guest())));
                facts.push(("pause-loop-exiting", yes_no(c.pause_loop_exiting())));
            }
            vcpu::Extension::Svm(c) => {
                facts.push(("virtualization", String::from("svm")));
                facts.push(("npt", yes_no(true)));
                facts.push(("nrips", yes_no(c.nrips)));
                facts.push(("asids", format!("{}", c.asids)));
                facts.push(("pause-filter", yes_no(c.pause_filter)));
            }
        }
        let f = cpu::features();
        facts.push(("cpu-vendor", String::from(f.vendor_id())));
        let apic = match irq::lapic::mode() {
            irq::lapic::Mode::X2Apic => "x2apic",
            irq::lapic::Mode::XApic { .. } => "xapic",
        };
        facts.push(("apic", String::from(apic)));
        let cpus = acpi::info().map_or(1, |a| a.cpu_apic_ids().len().max(1));
        facts.push(("cpus-possible", format!("{cpus}")));
        facts.push(("tsc-mhz", format!("{}", timer::tsc_hz() / 1_000_000)));
        facts.push(("tsc-calibration", String::from(timer::source())));
        facts.push(("console", String::from(console::DESCRIPTION)));
        facts.push(("boot-firmware", String::from(boot::firmware())));
        facts
    }

    fn probe_guest_code() -> &'static [u8] {
        probe::code()
    }

    fn console_input_start() -> Option<IrqNumber> {
        console_input::start().map(|v| IrqNumber(u32::from(v)))
    }

    fn console_read(buf: &mut [u8]) -> usize {
        console::read(buf)
    }
}

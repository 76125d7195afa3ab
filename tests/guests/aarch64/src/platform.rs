//! [`Platform`] for arm64: `hvc #0xEA1`, the virtual counter and timer, the GIC, PSCI.

use crate::board::{self, BOARD};
use crate::{gic, mmu, psci, regs};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use keel_test_guest::{CpuState, Platform, Probe};

/// The arm64 platform (one instance).
pub struct Arm;

pub static ARM: Arm = Arm;

/// Per CPU: its index (CPU 0 until `set_cpu`); looked up by MPIDR.
static CPU_OF_MPIDR: [AtomicU32; crate::MAX_CPUS] = [const { AtomicU32::new(u32::MAX) }; crate::MAX_CPUS];
/// Per CPU: the syndrome of the last fault `probe_read` caught.
pub static PROBE_FAULT: [AtomicU64; crate::MAX_CPUS] = [const { AtomicU64::new(0) }; crate::MAX_CPUS];

extern "C" {
    fn guest_probe_read(addr: u64) -> u64;
    fn guest_probe_write(addr: u64, value: u64);
    fn guest_secondary_entry();
    fn guest_fp_fill(seed: u64);
    fn guest_wreck(vbar: u64) -> !;
    fn guest_refuse_0() -> u64;
    fn guest_refuse_1() -> u64;
    fn guest_refuse_2() -> u64;
    fn guest_refuse_3() -> u64;
    fn guest_refuse_4() -> u64;
    fn guest_refuse_5() -> u64;
    fn guest_fp_check(seed: u64) -> u64;
}

/// Records that this CPU is `cpu` (secondaries, at start).
pub fn set_cpu(cpu: u32) {
    if let Some(slot) = CPU_OF_MPIDR.get(cpu as usize) {
        slot.store(cpu, Relaxed);
    }
}

/// Whether faults in the hole are tolerated ([`Platform::tolerate_hole_faults`]).
static TOLERATE_HOLE: AtomicBool = AtomicBool::new(false);
/// Hole faults tolerated, and the address of the last one.
static HOLE_FAULTS: AtomicU64 = AtomicU64::new(0);
static HOLE_FAULT_AT: AtomicU64 = AtomicU64::new(0);

/// Whether a data abort at `far` is one to skip; if so it is counted.
pub fn tolerated_hole_fault(far: u64) -> bool {
    let (start, end) = ARM.hole();
    if !TOLERATE_HOLE.load(Relaxed) || !(start..end).contains(&far) {
        return false;
    }
    HOLE_FAULT_AT.store(far, Relaxed);
    HOLE_FAULTS.fetch_add(1, Relaxed);
    true
}

pub fn record_probe_fault(esr: u64) {
    PROBE_FAULT[ARM.cpu() as usize % crate::MAX_CPUS].store(esr, Relaxed);
}

impl Platform for Arm {
    const ARCH: &'static str = "aarch64";
    const FEATURES: u32 = keel_abi::features::FEATURES_AARCH64;
    const LAYOUT: &'static keel_abi::layout::GuestLayout = &keel_abi::layout::AARCH64;

    fn cmdline(&self) -> &str {
        board::cmdline()
    }

    fn hypercall(&self, number: u64, args: [u64; 5]) -> u64 {
        regs::hypercall(number, args)
    }

    /// From MPIDR_EL1 (Aff0 = id % 16, Aff1 = id / 16, as Keel sets VMPIDR_EL2).
    fn cpu(&self) -> u32 {
        let m = regs::mpidr();
        ((m >> 8) & 0xff) as u32 * 16 + (m & 0xf) as u32
    }

    fn nr_cpus(&self) -> u32 {
        BOARD.cpus.load(Relaxed)
    }

    fn ticks(&self) -> u64 {
        regs::counter()
    }

    fn tick_hz(&self) -> u64 {
        regs::counter_hz()
    }

    fn gpa(&self, va: usize) -> u64 {
        mmu::gpa(va as u64)
    }

    fn alias(&self, va: usize) -> Option<usize> {
        mmu::alias(va as u64).map(|a| a as usize)
    }

    fn unmapped_va(&self) -> usize {
        mmu::UNMAPPED as usize
    }

    /// Above Xen's magic pages, below RAM.
    fn hole(&self) -> (u64, u64) {
        (0x3c00_0000, 0x4000_0000)
    }

    fn ram(&self) -> (u64, u64) {
        (BOARD.ram_start.load(Relaxed), BOARD.ram_end.load(Relaxed))
    }

    /// Identity for the normal memory below RAM (grant window, magic pages) and RAM.
    fn phys_to_virt(&self, gpa: u64) -> Option<usize> {
        let (start, end) = self.ram();
        ((0x3800_0000..0x4000_0000).contains(&gpa) || (start..end).contains(&gpa)).then_some(gpa as usize)
    }

    fn tolerate_hole_faults(&self) {
        TOLERATE_HOLE.store(true, Relaxed);
    }

    fn hole_faults(&self) -> (u64, u64) {
        (HOLE_FAULTS.load(Relaxed), HOLE_FAULT_AT.load(Relaxed))
    }

    fn init_interrupts(&self) {
        if let Err(why) = gic::init_cpu(self.cpu()) {
            panic!("interrupt controller: {why}");
        }
    }

    fn enable_interrupts(&self) {
        regs::irq_enable();
    }

    fn disable_interrupts(&self) {
        regs::irq_disable();
    }

    fn wait_for_interrupt(&self) {
        regs::wfi();
    }

    fn set_timer(&self, deadline: u64) {
        regs::set_virtual_timer(deadline, 1);
    }

    fn stop_timer(&self) {
        regs::set_virtual_timer(0, 0);
    }

    /// SGI `n` (SGIs 0-7).
    fn send_ipi(&self, cpu: u32, n: u32) {
        gic::send_sgi(cpu, n % keel_test_guest::irq::NR_IPIS);
    }

    fn start_cpu(&self, cpu: u32) -> Result<(), i64> {
        let entry = self.gpa(guest_secondary_entry as *const () as usize);
        match psci::cpu_on(psci::mpidr_of(cpu), entry, cpu as u64) {
            0 => Ok(()),
            e => Err(e),
        }
    }

    fn cpu_state(&self, cpu: u32) -> Option<CpuState> {
        match psci::affinity_info(psci::mpidr_of(cpu)) {
            0 => Some(CpuState::On),
            1 => Some(CpuState::Off),
            2 => Some(CpuState::OnPending),
            _ => None,
        }
    }

    fn cpu_off(&self) -> i64 {
        psci::cpu_off()
    }

    fn probe_write(&self, gpa: u64, value: u64) -> Probe {
        let slot = &PROBE_FAULT[self.cpu() as usize % crate::MAX_CPUS];
        slot.store(0, Relaxed);
        // SAFETY: the store may fault; the exception handler resumes after it and records
        // the syndrome. The caller chooses memory the guest's Rust code does not use.
        unsafe { guest_probe_write(gpa, value) };
        match slot.load(Relaxed) {
            0 => Probe::Value(0),
            esr => Probe::Fault(esr),
        }
    }

    fn fp_fill(&self, seed: u64) {
        // SAFETY: writes only the FP/SIMD registers (enabled by `mmu::enable`), which no
        // Rust code of this soft-float guest uses.
        unsafe { guest_fp_fill(seed) }
    }

    fn fp_check(&self, seed: u64) -> Result<(), u32> {
        // SAFETY: reads only the FP/SIMD registers.
        match unsafe { guest_fp_check(seed) } {
            0 => Ok(()),
            n => Err(n as u32 - 1),
        }
    }

    fn bench_sysreg_read(&self) -> Option<u64> {
        let v: u64;
        // SAFETY: reading an ID register has no side effect (Keel emulates it).
        unsafe { core::arch::asm!("mrs {}, id_aa64pfr0_el1", out(reg) v, options(nomem, nostack)) };
        Some(v)
    }

    fn bench_mmio_read(&self) -> Option<u64> {
        Some(crate::uart::flags().into())
    }

    fn owned_regs_fill(&self, seed: u64) -> usize {
        crate::owned::fill(seed)
    }

    fn owned_regs_read(&self, out: &mut [u64]) {
        crate::owned::read_all(out);
    }

    fn owned_reg_name(&self, i: usize) -> &'static str {
        crate::owned::NAMES.get(i).copied().unwrap_or("?")
    }

    /// CNTPCT − CNTVCT: the offset Keel gives the domain's virtual counter.
    fn clock_offset(&self) -> Option<u64> {
        let (phys, virt) = (regs::physical_counter(), regs::counter());
        Some(phys.wrapping_sub(virt))
    }

    /// QEMU `virt`'s GIC distributor and CPU interface, PL011 and RTC.
    fn host_addresses(&self) -> &'static [u64] {
        &[0x0800_0000, 0x0801_0000, 0x0900_0000, 0x0901_0000]
    }

    /// `hvc #0x1234`, `smc #1`, the physical timer (trapped), set/way cache maintenance
    /// and `ACTLR_EL1` (trapped).
    fn refused_instructions(&self) -> (u32, u32) {
        let probes: [unsafe extern "C" fn() -> u64; 6] =
            [guest_refuse_0, guest_refuse_1, guest_refuse_2, guest_refuse_3, guest_refuse_4, guest_refuse_5];
        let refused = probes
            .iter()
            // SAFETY: each stub executes one instruction that Keel turns into an
            // undefined-instruction exception, which the handler returns from.
            .map(|f| unsafe { f() })
            .filter(|&esr| esr != 0 && esr >> 26 == 0)
            .count();
        (probes.len() as u32, refused as u32)
    }

    /// Vectors in the hole: mapped by the guest, not by Keel.
    fn wreck(&self) -> ! {
        // SAFETY: the guest gives up: its next exception cannot be handled.
        unsafe { guest_wreck(self.hole().0 + 0x80_0000) }
    }

    fn platform_scenario(&self, name: &str) -> Option<keel_test_guest::Outcome> {
        match name {
            "psci" => Some(crate::firmware::run(self)),
            "vpl011" => Some(crate::uart::run(self)),
            "mmio" => Some(crate::mmio_probe::run(self)),
            "virtio-rng" => Some(crate::virtio_rng::run(self)),
            _ => None,
        }
    }

    fn probe_read(&self, gpa: u64) -> Probe {
        let slot = &PROBE_FAULT[self.cpu() as usize % crate::MAX_CPUS];
        slot.store(0, Relaxed);
        // SAFETY: the load may fault; the exception handler resumes after it with x0 = 0
        // and records the syndrome, so no other state changes.
        let v = unsafe { guest_probe_read(gpa) };
        match slot.load(Relaxed) {
            0 => Probe::Value(v),
            esr => Probe::Fault(esr),
        }
    }
}

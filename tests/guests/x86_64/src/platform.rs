//! [`Platform`] for x86_64 PVH: `vmcall`/`vmmcall` by the CPU's vendor, the TSC, port
//! and MSR access, the page tables of `entry.s`.

use crate::cpu;
use crate::start_info::{self, Boot};
use crate::traps;
use crate::MAX_CPUS;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use keel_test_guest::{Platform, Probe};

/// The x86_64 PVH platform (one instance).
pub struct Pvh;

pub static X86: Pvh = Pvh;

/// Where `entry.s` maps the low 4 GiB a second time.
pub const ALIAS_BASE: u64 = 0x80_0000_0000;
pub const ALIAS_SIZE: u64 = 1 << 32;
/// A virtual address no table maps.
pub const UNMAPPED: u64 = 0x100_0000_0000;
/// Guest-physical space above RAM and below the local APIC: no RAM, identity-mapped.
const HOLE: (u64, u64) = (0xc000_0000, 0xfe00_0000);
const GS_BASE: u32 = 0xc000_0101;

static INTEL: AtomicBool = AtomicBool::new(false);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static CMDLINE: (AtomicUsize, AtomicUsize) = (AtomicUsize::new(0), AtomicUsize::new(0));
static RAM_END: AtomicU64 = AtomicU64::new(0);
/// The first module's guest-physical address and size (`hvm_start_info`'s list).
static MODULE: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));
static CPUS: AtomicU32 = AtomicU32::new(1);
/// Each CPU's index; GS points at its slot.
static CPU_INDEX: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// Reads the boot information and the CPU (boot CPU, before the scenario).
pub fn init(start_info: u64) {
    let boot: Boot = match start_info::read(start_info) {
        Ok(b) => b,
        Err(why) => panic!("hvm_start_info at {start_info:#x}: {why}"),
    };
    CMDLINE.0.store(boot.cmdline.as_ptr() as usize, Relaxed);
    CMDLINE.1.store(boot.cmdline.len(), Relaxed);
    RAM_END.store(boot.ram_end, Relaxed);
    MODULE.0.store(boot.module.0, Relaxed);
    MODULE.1.store(boot.module.1, Relaxed);
    CPUS.store(boot.cpus, Relaxed);
    let vendor = cpu::cpuid(0, 0);
    INTEL.store(vendor.ebx == u32::from_le_bytes(*b"Genu"), Relaxed);
    TSC_HZ.store(cpu::cpuid(0x4000_0003, 0).ecx as u64 * 1000, Relaxed);
    set_cpu(0);
}

/// Points GS at this CPU's index.
pub fn set_cpu(cpu: u32) {
    let slot = &CPU_INDEX[(cpu as usize).min(MAX_CPUS - 1)];
    slot.store(cpu, Relaxed);
    if let Err(v) = traps::wrmsr(GS_BASE, slot as *const AtomicU32 as u64) {
        panic!("WRMSR GS_BASE raised vector {v}");
    }
}

/// Whether hypercalls use `vmcall` (Intel) rather than `vmmcall` (AMD).
pub fn intel() -> bool {
    INTEL.load(Relaxed)
}

/// Interrupt vectors: the event upcall (Linux's 0xf3), the local APIC timer, IPI `n` at
/// `IPI_VECTOR + n`, and the local APIC's spurious vector.
pub const UPCALL_VECTOR: u8 = 0xf3;
pub const TIMER_VECTOR: u8 = 0xef;
pub const IPI_VECTOR: u8 = 0xe0;
const SPURIOUS_VECTOR: u8 = 0xff;
const APIC_BASE: u32 = 0x1b;
const APIC_X2APIC: u64 = 1 << 10;
const X2APIC_TPR: u32 = 0x808;
const X2APIC_EOI: u32 = 0x80b;
const X2APIC_SVR: u32 = 0x80f;
const X2APIC_ICR: u32 = 0x830;
const X2APIC_LVT_TIMER: u32 = 0x832;
const TSC_DEADLINE: u32 = 0x6e0;
const LVT_TSC_DEADLINE: u64 = 2 << 17;

/// The upcall arrives through the per-vCPU vector (EOI'd) rather than Xen's callback
/// vector (`keel.upcall=callback`).
static UPCALL_THROUGH_APIC: AtomicBool = AtomicBool::new(true);

pub fn wrmsr_or_panic(index: u32, value: u64) {
    if let Err(v) = traps::wrmsr(index, value) {
        panic!("WRMSR {index:#x} = {value:#x} raised vector {v}");
    }
}

fn eoi() {
    cpu::wrmsr(X2APIC_EOI, 0);
}

/// An interrupt the platform handles; false if it is unexpected.
pub fn interrupt(vector: u8) -> bool {
    match vector {
        UPCALL_VECTOR => {
            keel_test_guest::irq::upcall(&X86);
            if UPCALL_THROUGH_APIC.load(Relaxed) {
                eoi();
            }
        }
        TIMER_VECTOR => {
            keel_test_guest::irq::timer(&X86);
            eoi();
        }
        v if (IPI_VECTOR..IPI_VECTOR + keel_test_guest::irq::NR_IPIS as u8).contains(&v) => {
            keel_test_guest::irq::ipi(&X86, (v - IPI_VECTOR) as u32);
            eoi();
        }
        SPURIOUS_VECTOR => {}
        _ => return false,
    }
    true
}

/// Switches this CPU's local APIC to x2APIC mode (its registers become MSRs).
pub fn x2apic() {
    let base = traps::rdmsr(APIC_BASE).unwrap_or_else(|v| panic!("RDMSR APIC_BASE raised vector {v}"));
    if base & APIC_X2APIC == 0 {
        wrmsr_or_panic(APIC_BASE, base | APIC_X2APIC);
    }
}

/// Routes this vCPU's event upcall: `HVMOP_set_evtchn_upcall_vector`, or (command line
/// `keel.upcall=callback`, boot CPU) `HVM_PARAM_CALLBACK_IRQ` with vector type.
fn route_upcall(p: &Pvh) {
    use keel_abi::hvm::*;
    let hv = keel_test_guest::hcall::Hv(p);
    let callback = keel_test_guest::cmdline::get(p.cmdline(), "keel.upcall") == Some("callback");
    UPCALL_THROUGH_APIC.store(!callback, Relaxed);
    let r = if callback {
        if p.cpu() != 0 {
            return;
        }
        let value = HVM_PARAM_CALLBACK_TYPE_VECTOR << HVM_PARAM_CALLBACK_TYPE_SHIFT | UPCALL_VECTOR as u64;
        let mut param =
            XenHvmParam { domid: keel_abi::xen::DOMID_SELF, _pad: [0; 2], index: HVM_PARAM_CALLBACK_IRQ, value };
        hv.hvm_op(HVMOP_SET_PARAM, &mut param)
    } else {
        let mut v = XenHvmEvtchnUpcallVector { vcpu: p.cpu(), vector: UPCALL_VECTOR, _pad: [0; 3] };
        hv.hvm_op(HVMOP_SET_EVTCHN_UPCALL_VECTOR, &mut v)
    };
    if r != 0 {
        panic!("routing the upcall ({}) failed: {r}", if callback { "callback vector" } else { "upcall vector" });
    }
}

/// Hypercall `number` through `vmcall` (`intel`) or `vmmcall`, in the registers of
/// `keel_abi::hypercall_registers::X86_64`.
pub fn hypercall_with(intel: bool, number: u64, a: [u64; 5]) -> u64 {
    // SAFETY: a hypercall: Keel reads the registers and writes the result register (and
    // may clobber the argument registers); memory the arguments point at may change.
    unsafe {
        if intel {
            keel_abi::x86_64_hypercall!("vmcall", number, a)
        } else {
            keel_abi::x86_64_hypercall!("vmmcall", number, a)
        }
    }
}

impl Platform for Pvh {
    const ARCH: &'static str = "x86_64";
    const FEATURES: u32 = keel_abi::features::FEATURES_X86_64;
    const LAYOUT: &'static keel_abi::layout::GuestLayout = &keel_abi::layout::X86_64;

    fn cmdline(&self) -> &str {
        let (p, n) = (CMDLINE.0.load(Relaxed), CMDLINE.1.load(Relaxed));
        if p == 0 {
            return "";
        }
        // SAFETY: `init` stored a `&'static str` (the command line in Keel's tables).
        unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(p as *const u8, n)) }
    }

    fn hypercall(&self, number: u64, args: [u64; 5]) -> u64 {
        hypercall_with(intel(), number, args)
    }

    fn cpu(&self) -> u32 {
        let v: u32;
        // SAFETY: GS points at this CPU's index (`set_cpu`); before that at 0, which is
        // mapped and holds the real-mode vector table, never read as an index.
        unsafe { asm!("mov {:e}, gs:[0]", out(reg) v, options(nostack, readonly, preserves_flags)) };
        v
    }

    fn nr_cpus(&self) -> u32 {
        CPUS.load(Relaxed)
    }

    fn ticks(&self) -> u64 {
        cpu::rdtsc()
    }

    fn tick_hz(&self) -> u64 {
        TSC_HZ.load(Relaxed)
    }

    fn gpa(&self, va: usize) -> u64 {
        let va = va as u64;
        if (ALIAS_BASE..ALIAS_BASE + ALIAS_SIZE).contains(&va) {
            va - ALIAS_BASE
        } else {
            va
        }
    }

    fn alias(&self, va: usize) -> Option<usize> {
        ((va as u64) < ALIAS_SIZE).then(|| (va as u64 + ALIAS_BASE) as usize)
    }

    fn unmapped_va(&self) -> usize {
        UNMAPPED as usize
    }

    fn hole(&self) -> (u64, u64) {
        HOLE
    }

    fn tolerate_hole_faults(&self) {
        crate::hole_faults::tolerate();
    }

    fn hole_faults(&self) -> (u64, u64) {
        crate::hole_faults::count()
    }

    /// The low 4 GiB are identity-mapped (the PV console ring at 0xfefff000 among them).
    fn phys_to_virt(&self, gpa: u64) -> Option<usize> {
        (gpa < ALIAS_SIZE).then_some(gpa as usize)
    }

    fn ram(&self) -> (u64, u64) {
        (0, RAM_END.load(Relaxed))
    }

    /// The module lies in RAM below 4 GiB (`start_info::read` checked), identity-mapped.
    fn boot_module(&self) -> Option<&'static [u8]> {
        let (pa, len) = (MODULE.0.load(Relaxed), MODULE.1.load(Relaxed));
        if len == 0 {
            return None;
        }
        // SAFETY: Keel placed the module in this domain's RAM below 4 GiB, which
        // `entry.s` identity-maps, and nothing in the guest allocates from it (the
        // guest's pages are in its .bss).
        Some(unsafe { core::slice::from_raw_parts(pa as usize as *const u8, len as usize) })
    }

    /// The local APIC in x2APIC mode, enabled, TPR 0, its timer in TSC-deadline mode;
    /// the upcall routed.
    fn init_interrupts(&self) {
        x2apic();
        wrmsr_or_panic(X2APIC_SVR, 0x100 | SPURIOUS_VECTOR as u64);
        wrmsr_or_panic(X2APIC_TPR, 0);
        wrmsr_or_panic(X2APIC_LVT_TIMER, LVT_TSC_DEADLINE | TIMER_VECTOR as u64);
        route_upcall(self);
    }

    fn enable_interrupts(&self) {
        cpu::interrupts(true);
    }

    fn disable_interrupts(&self) {
        cpu::interrupts(false);
    }

    /// `sti; hlt` (the interrupt is taken here), then masked again.
    fn wait_for_interrupt(&self) {
        cpu::enable_and_halt();
        cpu::interrupts(false);
    }

    fn set_timer(&self, deadline: u64) {
        wrmsr_or_panic(TSC_DEADLINE, deadline.max(1));
    }

    fn stop_timer(&self) {
        wrmsr_or_panic(TSC_DEADLINE, 0);
    }

    fn send_ipi(&self, cpu: u32, n: u32) {
        let vector = IPI_VECTOR as u64 + (n % keel_test_guest::irq::NR_IPIS) as u64;
        wrmsr_or_panic(X2APIC_ICR, (cpu as u64) << 32 | 1 << 14 | vector);
    }

    fn start_cpu(&self, cpu: u32) -> Result<(), i64> {
        crate::smp::start(self, cpu)
    }

    fn cpu_state(&self, cpu: u32) -> Option<keel_test_guest::CpuState> {
        crate::smp::state(self, cpu)
    }

    fn cpu_off(&self) -> i64 {
        crate::smp::off(self)
    }

    /// XMM0–XMM15.
    fn fp_fill(&self, seed: u64) {
        let pattern = fp_pattern(seed);
        // SAFETY: loads the SSE registers from a buffer; the guest's own code never uses
        // them (soft-float), and CR4.OSFXSR is set at entry.
        unsafe {
            asm!(
                "movdqu xmm0, [{0}]", "movdqu xmm1, [{0} + 16]", "movdqu xmm2, [{0} + 32]",
                "movdqu xmm3, [{0} + 48]", "movdqu xmm4, [{0} + 64]", "movdqu xmm5, [{0} + 80]",
                "movdqu xmm6, [{0} + 96]", "movdqu xmm7, [{0} + 112]", "movdqu xmm8, [{0} + 128]",
                "movdqu xmm9, [{0} + 144]", "movdqu xmm10, [{0} + 160]", "movdqu xmm11, [{0} + 176]",
                "movdqu xmm12, [{0} + 192]", "movdqu xmm13, [{0} + 208]", "movdqu xmm14, [{0} + 224]",
                "movdqu xmm15, [{0} + 240]",
                in(reg) pattern.as_ptr(), options(nostack, readonly)
            )
        };
    }

    fn fp_check(&self, seed: u64) -> Result<(), u32> {
        let mut now = [0u64; 32];
        // SAFETY: stores the SSE registers into a buffer of 256 bytes.
        unsafe {
            asm!(
                "movdqu [{0}], xmm0", "movdqu [{0} + 16], xmm1", "movdqu [{0} + 32], xmm2",
                "movdqu [{0} + 48], xmm3", "movdqu [{0} + 64], xmm4", "movdqu [{0} + 80], xmm5",
                "movdqu [{0} + 96], xmm6", "movdqu [{0} + 112], xmm7", "movdqu [{0} + 128], xmm8",
                "movdqu [{0} + 144], xmm9", "movdqu [{0} + 160], xmm10", "movdqu [{0} + 176], xmm11",
                "movdqu [{0} + 192], xmm12", "movdqu [{0} + 208], xmm13", "movdqu [{0} + 224], xmm14",
                "movdqu [{0} + 240], xmm15",
                in(reg) now.as_mut_ptr(), options(nostack)
            )
        };
        let want = fp_pattern(seed);
        match (0..16).find(|&n| now[2 * n..2 * n + 2] != want[2 * n..2 * n + 2]) {
            Some(n) => Err(n as u32),
            None => Ok(()),
        }
    }

    /// `crate::owned`: the MSRs, bases and debug registers Keel may switch lazily.
    fn owned_regs_fill(&self, seed: u64) -> usize {
        crate::owned::fill(seed)
    }

    fn owned_regs_read(&self, out: &mut [u64]) {
        crate::owned::read(out)
    }

    fn owned_reg_name(&self, i: usize) -> &'static str {
        crate::owned::name(i)
    }

    /// CPUID leaf 0x40000000 (every CPUID exits).
    fn bench_sysreg_read(&self) -> Option<u64> {
        Some(u64::from(cpu::cpuid(0x4000_0000, 0).eax))
    }

    /// A byte from port 0x80 (every port access exits; Keel emulates the port).
    fn bench_mmio_read(&self) -> Option<u64> {
        Some(u64::from(cpu::inb(0x80)))
    }

    fn bench_mmio_name(&self) -> &'static str {
        "emulated port read (inb 0x80)"
    }

    fn probe_write(&self, gpa: u64, value: u64) -> Probe {
        match traps::probe_write(gpa, value) {
            Ok(()) => Probe::Value(0),
            Err(vector) => Probe::Fault(vector as u64),
        }
    }

    /// As on Xen: an HVM/PVH domain's unbacked space reads all ones.
    fn unbacked_reads_all_ones(&self) -> bool {
        true
    }

    /// The host's I/O APIC and HPET, and the page after the local APIC's (the local
    /// APIC's own page, 0xfee00000, is the domain's virtual local APIC in xAPIC mode,
    /// which Keel emulates; `checks` reads it).
    fn host_addresses(&self) -> &'static [u64] {
        &[0xfec0_0000, 0xfed0_0000, 0xfee0_1000]
    }

    /// VMXON, VMRUN, STGI, XSETBV, MONITOR, MWAIT: each #UD. (RDTSCP is refused too, but
    /// QEMU ignores the SVM intercept for it.)
    fn refused_instructions(&self) -> (u32, u32) {
        traps::refused_instructions()
    }

    /// `triple-fault`, `garbage` and `x86-fuzz` (`crate::faults`), `control-registers`
    /// (`crate::control`), `task-switch` (`crate::tasks`), `unbacked` (`crate::unbacked`)
    /// `hvm-params` (`crate::params`), `compat-hypercalls` (`crate::compat`) and
    /// `legacy32` (`crate::legacy32`).
    fn platform_scenario(&self, name: &str) -> Option<keel_test_guest::Outcome> {
        match name {
            "triple-fault" => Some(crate::faults::triple_fault(self)),
            "garbage" => Some(crate::faults::garbage(self)),
            "x86-fuzz" => Some(crate::faults::machine_fuzz(self)),
            "control-registers" => Some(crate::control::run(self)),
            "task-switch" => Some(crate::tasks::run(self)),
            "unbacked" => Some(crate::unbacked::run(self)),
            "hvm-params" => Some(crate::params::run(self)),
            "compat-hypercalls" => Some(crate::compat::run(self)),
            "legacy32" => Some(crate::legacy32::run(self)),
            _ => None,
        }
    }

    /// An IDT in the hole (mapped by the guest, not backed by Keel).
    fn wreck(&self) -> ! {
        traps::wreck(HOLE.0 + 0x80_0000)
    }

    fn probe_read(&self, gpa: u64) -> Probe {
        match traps::probe_read(gpa) {
            Ok(v) => Probe::Value(v),
            Err(vector) => Probe::Fault(vector as u64),
        }
    }
}

/// What [`Platform::fp_fill`] puts in XMM0–XMM15 (two 64-bit halves each).
fn fp_pattern(seed: u64) -> [u64; 32] {
    core::array::from_fn(|i| seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i as u32) ^ i as u64)
}

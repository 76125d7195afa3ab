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

/// An interrupt the platform handles; false if it is unexpected.
pub fn interrupt(_vector: u8) -> bool {
    false
}

/// Hypercall `number` through `vmcall` (`intel`) or `vmmcall`.
pub fn hypercall_with(intel: bool, number: u64, a: [u64; 5]) -> u64 {
    let ret: u64;
    // SAFETY: a hypercall: Keel reads the registers and writes RAX (and may clobber the
    // argument registers); memory the arguments point at may change.
    unsafe {
        if intel {
            asm!("vmcall", inout("rax") number => ret, inout("rdi") a[0] => _, inout("rsi") a[1] => _,
                 inout("rdx") a[2] => _, inout("r10") a[3] => _, inout("r8") a[4] => _, options(nostack));
        } else {
            asm!("vmmcall", inout("rax") number => ret, inout("rdi") a[0] => _, inout("rsi") a[1] => _,
                 inout("rdx") a[2] => _, inout("r10") a[3] => _, inout("r8") a[4] => _, options(nostack));
        }
    }
    ret
}

impl Platform for Pvh {
    const ARCH: &'static str = "x86_64";
    const FEATURES: u32 = keel_abi::features::FEATURES_X86_64;

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

    fn ram(&self) -> (u64, u64) {
        (0, RAM_END.load(Relaxed))
    }

    fn init_interrupts(&self) {
        panic!("interrupts need the virtual local APIC, which this Keel does not offer yet");
    }

    fn enable_interrupts(&self) {
        cpu::interrupts(true);
    }

    fn disable_interrupts(&self) {
        cpu::interrupts(false);
    }

    fn wait_for_interrupt(&self) {
        cpu::halt();
    }

    fn set_timer(&self, _deadline: u64) {
        panic!("the local APIC timer is not offered yet");
    }

    fn stop_timer(&self) {}

    fn send_ipi(&self, _cpu: u32) {
        panic!("IPIs need the virtual local APIC, which this Keel does not offer yet");
    }

    fn start_cpu(&self, _cpu: u32) -> Result<(), i64> {
        Err(-(keel_abi::Errno::ENOSYS.code() as i64))
    }

    fn cpu_off(&self) -> i64 {
        -(keel_abi::Errno::ENOSYS.code() as i64)
    }

    fn probe_read(&self, gpa: u64) -> Probe {
        match traps::probe_read(gpa) {
            Ok(v) => Probe::Value(v),
            Err(vector) => Probe::Fault(vector as u64),
        }
    }
}

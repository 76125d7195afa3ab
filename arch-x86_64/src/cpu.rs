//! Processor identity, features, per-CPU state and idling. A leaf: starting other CPUs
//! and powering off stand above it (`smp.rs`, `power.rs`).
//!
//! Every CPU's GS base points at its [`PerCpu`] block, so the logical CPU index is one
//! load (`gs:` at the offset of [`PerCpu`]'s index). The boot CPU's block is static; secondaries get theirs from the heap.

use crate::irq::per_cpu::CpuIrq;
use crate::regs::{self, cpuid};
use crate::vcpu::per_cpu::CpuVirt;
use core::arch::asm;
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use spin::Once;

/// The most CPUs Keel starts; further MADT entries are ignored (with a warning).
pub const MAX_CPUS: usize = 64;

/// The CPUID features Keel depends on or reports, read once on the boot CPU.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    vendor_id: [u8; 12],
    pub max_leaf: u32,
    pub max_extended_leaf: u32,
    /// CPUID.1:ECX.VMX[5].
    pub vmx: bool,
    /// CPUID.80000001h:ECX.SVM[2].
    pub svm: bool,
    /// CPUID.1:ECX.x2APIC[21].
    pub x2apic: bool,
    /// CPUID.1:ECX.TSC-Deadline[24].
    pub tsc_deadline: bool,
    /// CPUID.80000001h:EDX.Page1GB[26].
    pub huge_1g: bool,
    /// CPUID.80000001h:EDX.NX[20].
    pub nx: bool,
}

impl Features {
    fn detect() -> Features {
        let leaf0 = cpuid(0, 0);
        let mut vendor_id = [0u8; 12];
        vendor_id[0..4].copy_from_slice(&leaf0.ebx.to_le_bytes());
        vendor_id[4..8].copy_from_slice(&leaf0.edx.to_le_bytes());
        vendor_id[8..12].copy_from_slice(&leaf0.ecx.to_le_bytes());
        let leaf1 = cpuid(1, 0);
        let max_extended_leaf = cpuid(0x8000_0000, 0).eax;
        let ext1 = if max_extended_leaf >= 0x8000_0001 { cpuid(0x8000_0001, 0) } else { cpuid(0, 0) };
        let has_ext1 = max_extended_leaf >= 0x8000_0001;
        Features {
            vendor_id,
            max_leaf: leaf0.eax,
            max_extended_leaf,
            vmx: leaf1.ecx & (1 << 5) != 0,
            svm: has_ext1 && ext1.ecx & (1 << 2) != 0,
            x2apic: leaf1.ecx & (1 << 21) != 0,
            tsc_deadline: leaf1.ecx & (1 << 24) != 0,
            huge_1g: has_ext1 && ext1.edx & (1 << 26) != 0,
            nx: has_ext1 && ext1.edx & (1 << 20) != 0,
        }
    }

    /// The CPUID vendor string ("GenuineIntel", "AuthenticAMD", ...).
    pub fn vendor_id(&self) -> &str {
        core::str::from_utf8(&self.vendor_id).unwrap_or("unknown")
    }
}

static FEATURES: Once<Features> = Once::new();

/// The boot CPU's features (all CPUs are assumed alike).
pub fn features() -> &'static Features {
    FEATURES.call_once(Features::detect)
}

/// One CPU's private state, reached through its GS base.
#[repr(C)]
pub struct PerCpu {
    /// Logical index (read through GS by [`current_index`]).
    index: u32,
    /// Local APIC id.
    apic_id: AtomicU32,
    /// This block's own address (read through GS by [`this_cpu`]).
    self_addr: AtomicUsize,
    /// Set while this CPU reports a fatal exception (a second one powers off at once).
    pub in_fatal: AtomicBool,
    /// Hardware-virtualisation state of this CPU.
    pub virt: CpuVirt,
    /// Interrupts taken but not yet acknowledged.
    pub irq: CpuIrq,
}

impl PerCpu {
    pub const fn new(index: u32) -> PerCpu {
        PerCpu {
            index,
            apic_id: AtomicU32::new(u32::MAX),
            self_addr: AtomicUsize::new(0),
            in_fatal: AtomicBool::new(false),
            virt: CpuVirt::new(),
            irq: CpuIrq::new(),
        }
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Relaxed)
    }

    pub fn set_apic_id(&self, id: u32) {
        self.apic_id.store(id, Ordering::Relaxed);
    }
}

/// Every online CPU's block, by logical index.
static CPUS: [AtomicPtr<PerCpu>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];

/// Makes `block` the calling CPU's per-CPU block (GS base) and registers it.
///
/// # Safety
/// Must be called once per CPU, before anything reads `gs:`; `block` lives forever.
pub unsafe fn install(block: &'static PerCpu) {
    let addr = block as *const PerCpu as usize;
    block.self_addr.store(addr, Ordering::Release);
    // SAFETY: IA32_GS_BASE exists on every x86_64 CPU; Keel never uses GS otherwise.
    unsafe { regs::wrmsr(regs::msr::IA32_GS_BASE, addr as u64) };
    let index = block.index as usize;
    CPUS[index].store(addr as *mut PerCpu, Ordering::Release);
}

/// The calling CPU's logical index.
pub fn current_index() -> u32 {
    let index: u32;
    // SAFETY: GS points at this CPU's PerCpu block (installed first thing at boot).
    unsafe {
        asm!("mov {:e}, gs:[{at}]", out(reg) index, at = const offset_of!(PerCpu, index),
             options(nostack, readonly, preserves_flags))
    };
    index
}

/// The calling CPU's block.
pub fn this_cpu() -> &'static PerCpu {
    let addr: usize;
    // SAFETY: GS points at this CPU's PerCpu block, whose `self_addr` is its address.
    unsafe {
        asm!("mov {}, gs:[{at}]", out(reg) addr, at = const offset_of!(PerCpu, self_addr),
             options(nostack, readonly, preserves_flags))
    };
    // SAFETY: the address is a live, never-freed PerCpu.
    unsafe { &*(addr as *const PerCpu) }
}

/// The block of CPU `index`, if it is online.
pub fn cpu(index: u32) -> Option<&'static PerCpu> {
    let p = CPUS.get(index as usize)?.load(Ordering::Acquire);
    // SAFETY: non-null entries point at never-freed PerCpu blocks.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Processor control: [`CpuOps`](keel_kernel::arch::CpuOps), implemented where the
/// backend is composed (`lib.rs`) from [`current_index`], [`halt`] and the start-up and
/// power-off paths above this module.
pub struct X86Cpu;

/// Waits for an interrupt with interrupts enabled only for the wait.
pub fn halt() {
    // STI's one-instruction shadow makes `sti; hlt` atomic: an interrupt pending now
    // wakes the HLT instead of being taken before it.
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}

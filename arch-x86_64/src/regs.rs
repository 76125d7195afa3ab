//! Raw processor registers: CPUID, model-specific registers, control registers, the TSC
//! and port I/O. Everything else in the backend reaches these through the functions
//! here (VMX and SVM instructions live in `vcpu/*/instructions.rs`).

use core::arch::x86_64::CpuidResult;
use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

/// Model-specific register numbers (Intel SDM vol. 4, AMD APM vol. 2 appendix A).
pub mod msr {
    pub const IA32_APIC_BASE: u32 = 0x1b;
    pub const IA32_FEATURE_CONTROL: u32 = 0x3a;
    pub const IA32_SYSENTER_CS: u32 = 0x174;
    pub const IA32_SYSENTER_ESP: u32 = 0x175;
    pub const IA32_SYSENTER_EIP: u32 = 0x176;
    pub const IA32_PAT: u32 = 0x277;
    pub const IA32_VMX_BASIC: u32 = 0x480;
    pub const IA32_VMX_PINBASED_CTLS: u32 = 0x481;
    pub const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
    pub const IA32_VMX_EXIT_CTLS: u32 = 0x483;
    pub const IA32_VMX_ENTRY_CTLS: u32 = 0x484;
    pub const IA32_VMX_MISC: u32 = 0x485;
    pub const IA32_VMX_CR0_FIXED0: u32 = 0x486;
    pub const IA32_VMX_CR0_FIXED1: u32 = 0x487;
    pub const IA32_VMX_CR4_FIXED0: u32 = 0x488;
    pub const IA32_VMX_CR4_FIXED1: u32 = 0x489;
    pub const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48b;
    pub const IA32_VMX_EPT_VPID_CAP: u32 = 0x48c;
    pub const IA32_VMX_TRUE_PINBASED_CTLS: u32 = 0x48d;
    pub const IA32_VMX_TRUE_PROCBASED_CTLS: u32 = 0x48e;
    pub const IA32_VMX_TRUE_EXIT_CTLS: u32 = 0x48f;
    pub const IA32_VMX_TRUE_ENTRY_CTLS: u32 = 0x490;
    pub const IA32_TSC_DEADLINE: u32 = 0x6e0;
    /// The first x2APIC register; register `r` of the xAPIC MMIO page is MSR `0x800 + r / 16`.
    pub const X2APIC_BASE: u32 = 0x800;
    pub const IA32_EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const SFMASK: u32 = 0xc000_0084;
    pub const IA32_FS_BASE: u32 = 0xc000_0100;
    pub const IA32_GS_BASE: u32 = 0xc000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const VM_CR: u32 = 0xc001_0114;
    pub const VM_HSAVE_PA: u32 = 0xc001_0117;
}

/// The power-on value of IA32_PAT: entries WB, WT, UC-, UC (twice). Keel's page tables
/// select UC with PCD|PWT (entry 3) and WB with neither.
pub const PAT_DEFAULT: u64 = 0x0007_0406_0007_0406;

/// EFER bits.
pub mod efer {
    pub const LME: u64 = 1 << 8;
    pub const LMA: u64 = 1 << 10;
    pub const NXE: u64 = 1 << 11;
    pub const SVME: u64 = 1 << 12;
}

/// Executes CPUID with `leaf` and `subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    core::arch::x86_64::__cpuid_count(leaf, subleaf)
}

/// Reads MSR `index`.
///
/// # Safety
/// The MSR must exist on this processor (else #GP) and reading it must have no side effect
/// the caller does not expect.
pub unsafe fn rdmsr(index: u32) -> u64 {
    // SAFETY: the caller guarantees the MSR exists and may be read.
    unsafe { Msr::new(index).read() }
}

/// Writes MSR `index`.
///
/// # Safety
/// The MSR must exist and `value` must be valid for it; the write must not break Keel's
/// own execution environment (paging, segmentation, the current stack).
pub unsafe fn wrmsr(index: u32, value: u64) {
    // SAFETY: the caller guarantees the MSR exists and the value is harmless to Keel.
    unsafe { Msr::new(index).write(value) }
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the counter; CR4.TSD is clear at CPL 0 anyway.
    unsafe { core::arch::x86_64::_rdtsc() }
}

pub fn read_cr0() -> u64 {
    x86_64::registers::control::Cr0::read_raw()
}

pub fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

pub fn read_cr3() -> u64 {
    let (frame, flags) = x86_64::registers::control::Cr3::read_raw();
    frame.start_address().as_u64() | flags as u64
}

pub fn read_cr4() -> u64 {
    x86_64::registers::control::Cr4::read_raw()
}

/// Writes CR0.
///
/// # Safety
/// The new value must keep protected mode, paging and caching consistent with the
/// running code.
pub unsafe fn write_cr0(value: u64) {
    // SAFETY: the caller guarantees the value is consistent with the running code.
    unsafe { x86_64::registers::control::Cr0::write_raw(value) }
}

/// Writes CR4.
///
/// # Safety
/// The new value must keep PAE paging and the features Keel relies on enabled.
pub unsafe fn write_cr4(value: u64) {
    // SAFETY: the caller guarantees the value is consistent with the running code.
    unsafe { x86_64::registers::control::Cr4::write_raw(value) }
}

pub fn read_efer() -> u64 {
    x86_64::registers::model_specific::Efer::read_raw()
}

/// Reads a byte from I/O port `port`.
pub fn inb(port: u16) -> u8 {
    // SAFETY: port reads Keel performs (UART status, PIT, keyboard controller) have no
    // side effects beyond the device's documented behaviour.
    unsafe { Port::<u8>::new(port).read() }
}

/// Reads a 32-bit word from I/O port `port`.
pub fn inl(port: u16) -> u32 {
    // SAFETY: as for `inb` (used for the ACPI PM timer).
    unsafe { Port::<u32>::new(port).read() }
}

/// Writes a byte to I/O port `port`.
///
/// # Safety
/// The write must be meaningful for the device at `port` (it may reset or power off
/// the machine, which is sometimes the point).
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller guarantees the write is intended for the device at `port`.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Writes a 16-bit word to I/O port `port`.
///
/// # Safety
/// As for [`outb`].
pub unsafe fn outw(port: u16, value: u16) {
    // SAFETY: the caller guarantees the write is intended for the device at `port`.
    unsafe { Port::<u16>::new(port).write(value) }
}

/// Writes a 32-bit word to I/O port `port`.
///
/// # Safety
/// As for [`outb`].
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller guarantees the write is intended for the device at `port`.
    unsafe { Port::<u32>::new(port).write(value) }
}

//! Instructions the guest uses, each wrapped once.

use core::arch::asm;
use core::arch::x86_64::CpuidResult;

pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    core::arch::x86_64::__cpuid_count(leaf, subleaf)
}

pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Waits for an interrupt with interrupts masked (they are taken once enabled).
pub fn halt() {
    // SAFETY: HLT only waits.
    unsafe { asm!("hlt", options(nomem, nostack)) };
}

/// `sti; hlt`: STI's shadow makes the pair atomic, so a pending interrupt ends the HLT.
pub fn enable_and_halt() {
    // SAFETY: the IDT handles every vector.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
}

pub fn interrupts(on: bool) {
    // SAFETY: the IDT handles every vector.
    unsafe {
        if on {
            asm!("sti", options(nomem, nostack));
        } else {
            asm!("cli", options(nomem, nostack));
        }
    }
}

/// Reads port `port` (one byte).
pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: port reads have no effect on the guest's memory.
    unsafe { asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack)) };
    v
}

pub fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: as for `inb`.
    unsafe { asm!("in eax, dx", in("dx") port, out("eax") v, options(nomem, nostack)) };
    v
}

pub fn outb(port: u16, v: u8) {
    // SAFETY: the ports the guest writes (Xen's debug port, unclaimed ones) have no
    // effect on its memory.
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack)) };
}

/// `rep outsb` of `bytes` to `port`.
pub fn outsb(port: u16, bytes: &[u8]) {
    // SAFETY: reads `bytes`; the port has no effect on the guest's memory.
    unsafe {
        asm!("rep outsb", in("dx") port, inout("rsi") bytes.as_ptr() => _, inout("rcx") bytes.len() => _,
             options(nostack, readonly))
    };
}

/// WRMSR of an MSR that cannot fault (x2APIC EOI in x2APIC mode), for interrupt handlers:
/// the probing `traps::wrmsr` is not reentrant.
pub fn wrmsr(index: u32, value: u64) {
    // SAFETY: the caller names an MSR that exists in the guest's current mode.
    unsafe { asm!("wrmsr", in("ecx") index, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack)) };
}

pub fn read_cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effect.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack)) };
    v
}

pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effect.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack)) };
    v
}

pub fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effect.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack)) };
    v
}

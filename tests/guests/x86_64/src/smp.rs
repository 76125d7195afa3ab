//! Secondary CPUs: started with INIT and a start-up IPI through the local APIC (real mode
//! at the trampoline page, as Linux does), or, with `keel.ap-start=vcpuop`, with Xen's
//! `VCPUOP_initialise` (32-bit protected mode at `guest_ap_entry32`) and `VCPUOP_up`;
//! stopped with `VCPUOP_down`.

use crate::cpu;
use crate::platform::{self, wrmsr_or_panic, X86};
use crate::traps;
use crate::MAX_CPUS;
use core::sync::atomic::{AtomicU32, Ordering};
use keel_abi::hypercall::VCPU_OP;
use keel_abi::vcpu::{VCPUOP_DOWN, VCPUOP_INITIALISE, VCPUOP_IS_UP, VCPUOP_UP};
use keel_abi::Errno;
use keel_test_guest::hcall::{err, Hv};
use keel_test_guest::{CpuState, Platform};

extern "C" {
    static guest_ap_trampoline: u8;
    static guest_ap_trampoline_end: u8;
    static guest_ap_entry32: u8;
    static mut guest_ap_cpu: u32;
}

/// Where the trampoline is copied: a page of low RAM the guest does not use otherwise.
const TRAMPOLINE: u64 = 0x8000;
const X2APIC_ICR: u32 = 0x830;
const ICR_INIT: u64 = 5 << 8 | 1 << 14;
const ICR_STARTUP: u64 = 6 << 8 | 1 << 14;
/// Per CPU: how many times it reached long mode.
static BOOTED: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// A secondary CPU in long mode, on its stack.
pub fn secondary_main(cpu: u32) -> ! {
    traps::init_cpu(cpu);
    platform::set_cpu(cpu);
    BOOTED[cpu as usize % MAX_CPUS].fetch_add(1, Ordering::AcqRel);
    keel_test_guest::secondary(&X86)
}

fn by_vcpuop(p: &impl Platform) -> bool {
    keel_test_guest::cmdline::get(p.cmdline(), "keel.ap-start") == Some("vcpuop")
}

/// Starts `cpu` (see the module); returns once it reached long mode, or fails.
pub fn start(p: &impl Platform, cpu: u32) -> Result<(), i64> {
    if cpu == 0 || cpu >= p.nr_cpus() || cpu as usize >= MAX_CPUS {
        return Err(err(Errno::EINVAL));
    }
    if state(p, cpu) == Some(CpuState::On) {
        return Err(err(Errno::EEXIST));
    }
    let booted = BOOTED[cpu as usize].load(Ordering::Acquire);
    if by_vcpuop(p) {
        let hv = Hv(p);
        let r = hv.raw(VCPU_OP, [VCPUOP_INITIALISE, cpu as u64, context(cpu).as_ptr() as u64, 0, 0]);
        // A vCPU that was initialised before resumes where it went down (`cpu_off`).
        if r != 0 && r != err(Errno::EEXIST) {
            return Err(r);
        }
        let r = hv.raw(VCPU_OP, [VCPUOP_UP, cpu as u64, 0, 0, 0]);
        if r != 0 {
            return Err(r);
        }
        return wait_booted(p, cpu, booted, false);
    }
    copy_trampoline();
    platform::x2apic();
    // SAFETY: read by the started CPU's trampoline; only this CPU writes it, and it waits
    // below until that CPU has read it.
    unsafe { core::ptr::write_volatile(&raw mut guest_ap_cpu, cpu) };
    let dest = (cpu as u64) << 32;
    wrmsr_or_panic(X2APIC_ICR, dest | ICR_INIT);
    let vector = TRAMPOLINE >> 12;
    wrmsr_or_panic(X2APIC_ICR, dest | ICR_STARTUP | vector);
    if wait_booted(p, cpu, booted, true).is_ok() {
        return Ok(());
    }
    // As the MP specification says: a second start-up IPI if the first was missed.
    wrmsr_or_panic(X2APIC_ICR, dest | ICR_STARTUP | vector);
    wait_booted(p, cpu, booted, false)
}

/// Waits for `cpu` to boot (10 ms when `short`, else 10 s of TSC time).
fn wait_booted(p: &impl Platform, cpu: u32, before: u32, short: bool) -> Result<(), i64> {
    let limit = if short { p.tick_hz() / 100 } else { 10 * p.tick_hz() };
    let start = cpu::rdtsc();
    while BOOTED[cpu as usize].load(Ordering::Acquire) == before {
        if cpu::rdtsc() - start > limit {
            return Err(err(Errno::ETIME));
        }
        core::hint::spin_loop();
    }
    Ok(())
}

fn copy_trampoline() {
    let start = &raw const guest_ap_trampoline as usize;
    let len = &raw const guest_ap_trampoline_end as usize - start;
    // SAFETY: the trampoline's bytes, to a low page of guest RAM that nothing else uses
    // (identity-mapped); copying the same bytes again is harmless.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, TRAMPOLINE as *mut u8, len) };
}

/// Xen's `vcpu_hvm_context` for `cpu`: 32-bit protected mode at `guest_ap_entry32` with
/// flat segments and paging off, EBX = `cpu`.
fn context(cpu: u32) -> [u8; 128] {
    let mut b = [0u8; 128];
    let r = &mut b[8..];
    let put32 = |r: &mut [u8], off: usize, v: u32| r[off..off + 4].copy_from_slice(&v.to_le_bytes());
    put32(r, 12, cpu); // ebx
    put32(r, 32, &raw const guest_ap_entry32 as u32); // eip
    put32(r, 36, 2); // eflags
    put32(r, 40, 0x11); // cr0: PE | ET
    for n in 0..5 {
        put32(r, 84 + 4 * n, if n == 4 { 0x67 } else { u32::MAX }); // limits
    }
    let attrs: [u16; 5] = [0xc9b, 0xc93, 0xc93, 0xc93, 0x8b]; // CS, DS, SS, ES, TR
    for (n, a) in attrs.iter().enumerate() {
        r[104 + 2 * n..106 + 2 * n].copy_from_slice(&a.to_le_bytes());
    }
    b
}

/// `VCPUOP_is_up`.
pub fn state(p: &impl Platform, cpu: u32) -> Option<CpuState> {
    match Hv(p).raw(VCPU_OP, [VCPUOP_IS_UP, cpu as u64, 0, 0, 0]) {
        0 => Some(CpuState::Off),
        1 => Some(CpuState::On),
        _ => None,
    }
}

/// `VCPUOP_down` for the calling CPU. If `VCPUOP_up` (`keel.ap-start=vcpuop`) brings it
/// back, it continues here and starts over as a secondary CPU.
pub fn off(p: &impl Platform) -> i64 {
    let r = Hv(p).raw(VCPU_OP, [VCPUOP_DOWN, p.cpu() as u64, 0, 0, 0]);
    if r != 0 {
        return r;
    }
    BOOTED[p.cpu() as usize % MAX_CPUS].fetch_add(1, Ordering::AcqRel);
    keel_test_guest::secondary(&X86)
}

//! The IDT: exceptions and interrupts reach [`guest_trap`] through the stubs in
//! `entry.s`. An exception raised by one of the probing instructions (`guest_rdmsr`,
//! `guest_wrmsr`, `guest_probe_read`) resumes after it and is recorded; interrupts go to
//! the platform; anything else fails the scenario.

use crate::platform::{self, X86};
use crate::MAX_CPUS;
use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use keel_test_guest::hcall::Hv;
use keel_test_guest::Platform;

/// What `guest_trap_common` saves (the last seven are the stub's and the CPU's).
#[repr(C)]
pub struct Frame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

extern "C" {
    static guest_trap_stubs: u8;
    static guest_rdmsr_insn: u8;
    static guest_rdmsr_resume: u8;
    static guest_wrmsr_insn: u8;
    static guest_wrmsr_resume: u8;
    static guest_probe_insn: u8;
    static guest_probe_resume: u8;
    static guest_probe_write_insn: u8;
    static guest_probe_write_resume: u8;
    static guest_write_cr0_insn: u8;
    static guest_write_cr0_resume: u8;
    static guest_write_cr4_insn: u8;
    static guest_write_cr4_resume: u8;
    static guest_unbacked_insn: u8;
    static guest_unbacked_resume: u8;
    static guest_refuse_stubs: u8;
    static guest_refuse_stubs_end: u8;
    fn guest_rdmsr(index: u32) -> u64;
    fn guest_wrmsr(index: u32, value: u64);
    fn guest_probe_read(address: u64) -> u64;
    fn guest_probe_write(address: u64, value: u64);
    fn guest_write_cr0(value: u64);
    fn guest_write_cr4(value: u64);
}

#[repr(C, align(16))]
struct Idt(UnsafeCell<[u64; 512]>);

// SAFETY: written only by the boot CPU before any other CPU starts.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([0; 512]));
/// Per CPU: the vector (plus one) of the last exception a probe caught, 0 for none.
static CAUGHT: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Per CPU: the page-fault address of the last caught #PF.
static FAULT_ADDRESS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Fills the IDT (boot CPU) and loads it (every CPU).
pub fn init_cpu(cpu: u32) {
    let stubs = &raw const guest_trap_stubs as u64;
    if cpu == 0 {
        for v in 0..256u64 {
            let handler = stubs + 16 * v;
            let low = (handler & 0xffff) | 0x08 << 16 | 0x8e00 << 32 | ((handler >> 16) & 0xffff) << 48;
            // SAFETY: the boot CPU fills the table before loading it; no other CPU runs.
            unsafe {
                let t = IDT.0.get() as *mut u64;
                t.add(2 * v as usize).write_volatile(low);
                t.add(2 * v as usize + 1).write_volatile(handler >> 32);
            }
        }
    }
    let pointer: [u16; 5] = {
        let base = IDT.0.get() as u64;
        [4095, base as u16, (base >> 16) as u16, (base >> 32) as u16, (base >> 48) as u16]
    };
    // SAFETY: the IDT covers every vector with a stub.
    unsafe { asm!("lidt [{}]", in(reg) pointer.as_ptr(), options(nostack, readonly)) };
}

fn slot() -> usize {
    (X86.cpu() as usize).min(MAX_CPUS - 1)
}

/// Runs a probing instruction; `Err(vector)` if it raised an exception.
fn probe(f: impl FnOnce() -> u64) -> Result<u64, u8> {
    CAUGHT[slot()].store(0, Relaxed);
    let v = f();
    match CAUGHT[slot()].load(Relaxed) {
        0 => Ok(v),
        n => Err((n - 1) as u8),
    }
}

/// RDMSR; `Err(vector)` if it faulted.
pub fn rdmsr(index: u32) -> Result<u64, u8> {
    // SAFETY: a fault resumes after the instruction with RAX = 0 (`guest_trap`).
    probe(|| unsafe { guest_rdmsr(index) })
}

/// WRMSR; `Err(vector)` if it faulted.
pub fn wrmsr(index: u32, value: u64) -> Result<(), u8> {
    probe(|| {
        // SAFETY: as for `rdmsr`; the MSRs written are ones the checks mean to write.
        unsafe { guest_wrmsr(index, value) };
        0
    })
    .map(|_| ())
}

/// Runs `f`, which makes the probing instruction of `crate::unbacked`; `Err(vector)` if
/// it faulted.
pub fn probe_unbacked(f: impl FnOnce()) -> Result<(), u8> {
    probe(|| {
        f();
        0
    })
    .map(|_| ())
}

/// Reads 8 bytes at `address`; `Err(vector)` if that faulted.
pub fn probe_read(address: u64) -> Result<u64, u8> {
    // SAFETY: as for `rdmsr`.
    probe(|| unsafe { guest_probe_read(address) })
}

#[no_mangle]
extern "C" fn guest_trap(f: &mut Frame) {
    if f.vector >= 32 {
        if platform::interrupt(f.vector as u8) {
            return;
        }
        fatal(f, "an unexpected interrupt");
    }
    let resumes = [
        (&raw const guest_rdmsr_insn as u64, &raw const guest_rdmsr_resume as u64),
        (&raw const guest_wrmsr_insn as u64, &raw const guest_wrmsr_resume as u64),
        (&raw const guest_probe_insn as u64, &raw const guest_probe_resume as u64),
        (&raw const guest_probe_write_insn as u64, &raw const guest_probe_write_resume as u64),
        (&raw const guest_write_cr0_insn as u64, &raw const guest_write_cr0_resume as u64),
        (&raw const guest_write_cr4_insn as u64, &raw const guest_write_cr4_resume as u64),
        (&raw const guest_unbacked_insn as u64, &raw const guest_unbacked_resume as u64),
    ];
    if let Some(&(_, resume)) = resumes.iter().find(|(insn, _)| *insn == f.rip) {
        if f.vector == 14 {
            let cr2: u64;
            // SAFETY: reading CR2 has no side effect.
            unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack)) };
            FAULT_ADDRESS[slot()].store(cr2, Relaxed);
        }
        CAUGHT[slot()].store(f.vector as u32 + 1, Relaxed);
        f.rip = resume;
        f.rax = 0;
        f.rdx = 0;
        return;
    }
    let stubs = &raw const guest_refuse_stubs as u64..&raw const guest_refuse_stubs_end as u64;
    if stubs.contains(&f.rip) {
        CAUGHT[slot()].store(f.vector as u32 + 1, Relaxed);
        // Return from the slot, as its `ret` would.
        // SAFETY: the slot was called: the return address is on top of its stack.
        f.rip = unsafe { core::ptr::read(f.rsp as *const u64) };
        f.rsp += 8;
        return;
    }
    if crate::hole_faults::skip(f) {
        return;
    }
    fatal(f, "an unexpected exception");
}

/// Writes 8 bytes at `address`; `Err(vector)` if that faulted.
pub fn probe_write(address: u64, value: u64) -> Result<(), u8> {
    probe(|| {
        // SAFETY: as for `rdmsr`; the caller picks memory no Rust code uses.
        unsafe { guest_probe_write(address, value) };
        0
    })
    .map(|_| ())
}

/// MOV to CR0; `Err(vector)` if it faulted.
pub fn write_cr0(value: u64) -> Result<(), u8> {
    probe(|| {
        // SAFETY: the caller writes values that keep the guest running (or that fault).
        unsafe { guest_write_cr0(value) };
        0
    })
    .map(|_| ())
}

/// MOV to CR4; `Err(vector)` if it faulted.
pub fn write_cr4(value: u64) -> Result<(), u8> {
    probe(|| {
        // SAFETY: as for `write_cr0`.
        unsafe { guest_write_cr4(value) };
        0
    })
    .map(|_| ())
}

/// Runs each slot of `guest_refuse_stubs`: `(slots, slots that raised #UD)`.
pub fn refused_instructions() -> (u32, u32) {
    let base = &raw const guest_refuse_stubs as usize;
    let n = (&raw const guest_refuse_stubs_end as usize - base) / 16;
    let mut undefined = 0;
    for i in 0..n {
        // SAFETY: slot `i` is code ending in `ret` (or an exception that returns like it).
        let slot: extern "C" fn() = unsafe { core::mem::transmute(base + 16 * i) };
        let r = probe(|| {
            slot();
            0
        });
        if r == Err(6) {
            undefined += 1;
        }
    }
    (n as u32, undefined)
}

/// Loads an IDT of limit 0: no exception can be delivered any more.
pub fn empty_idt() {
    let pointer: [u16; 5] = [0; 5];
    // SAFETY: the caller gives up exception handling on this CPU.
    unsafe { asm!("lidt [{}]", in(reg) pointer.as_ptr(), options(nostack, readonly)) };
}

/// Points the IDT at guest-physical space Keel does not back and raises #UD: the CPU
/// cannot deliver it, and Keel must end the domain.
pub fn wreck(unbacked: u64) -> ! {
    let pointer: [u16; 5] =
        [4095, unbacked as u16, (unbacked >> 16) as u16, (unbacked >> 32) as u16, (unbacked >> 48) as u16];
    // SAFETY: the guest gives up: its next exception cannot be delivered.
    unsafe { asm!("lidt [{}]", "ud2", in(reg) pointer.as_ptr(), options(nostack, noreturn)) }
}

fn fatal(f: &Frame, what: &str) -> ! {
    keel_test_guest::say!(
        &X86,
        "FAIL {what}: vector {} error {:#x} at RIP {:#x} (RSP {:#x})",
        f.vector,
        f.error,
        f.rip,
        f.rsp
    );
    let _ = Hv(&X86).shutdown(keel_abi::sched::SHUTDOWN_CRASH);
    loop {
        crate::cpu::halt();
    }
}

//! `keel.test=unbacked`, the instructions that compare: SETcc to unbacked memory (the
//! byte is dropped), CMPXCHG8B and CMPXCHG16B against all ones (equal: ZF and the store
//! dropped; not equal: all ones loaded), and CMPS/SCAS with REPE/REPNE between the hole
//! and RAM, stopping where the processor stops.

use core::arch::asm;
use keel_test_guest::pages::Page;
use keel_test_guest::{ensure, expect_eq, Failure};

const ZF: u64 = 1 << 6;
const CF: u64 = 1;
const ONES: u64 = u64::MAX;

fn read(a: u64) -> u64 {
    let v: u64;
    // SAFETY: a read Keel emulates (or of the guest's own RAM).
    unsafe { asm!("mov {}, [{}]", out(reg) v, in(reg) a, options(nostack, readonly)) };
    v
}

/// SETcc with ZF set then clear: the stores vanish. Returns how many were checked.
fn set_conditions(a: u64) -> Result<u32, Failure> {
    // SAFETY: byte stores to the unbacked address, which Keel drops.
    unsafe {
        asm!("xor {t:e}, {t:e}", "sete byte ptr [{a}]", "setne byte ptr [{a} + 1]", "stc", "setb byte ptr [{a} + 2]",
             a = in(reg) a, t = out(reg) _, options(nostack));
    }
    expect_eq!(read(a), ONES, "a load after SETcc to the hole (the bytes must be dropped)");
    Ok(3)
}

/// CMPXCHG8B and CMPXCHG16B on all ones. Returns how many were checked.
fn compare_exchange_double(a: u64) -> Result<u32, Failure> {
    let (mut rax, mut rdx, flags): (u64, u64, u64);
    (rax, rdx) = (0xffff_ffff, 0xffff_ffff);
    // SAFETY: a CMPXCHG8B of the unbacked address, which Keel emulates; RBX, reserved by
    // the compiler, is swapped with a scratch register around it and restored.
    unsafe {
        asm!("xchg {b}, rbx", "lock cmpxchg8b [{a}]", "pushfq", "pop {f}", "xchg {b}, rbx",
             a = in(reg) a, b = inout(reg) 1u64 => _, f = out(reg) flags,
             inout("rax") rax, inout("rdx") rdx, in("rcx") 2u64);
    }
    ensure!(
        flags & ZF != 0 && (rax, rdx) == (0xffff_ffff, 0xffff_ffff),
        "lock cmpxchg8b [all ones] (equal): flags {flags:#x}"
    );
    expect_eq!(read(a), ONES, "a load after a CMPXCHG8B that stored (the store must be dropped)");
    let flags: u64;
    (rax, rdx) = (0x1234_0000_0005, 0x5678_0000_0006);
    // SAFETY: as above.
    unsafe {
        asm!("xchg {b}, rbx", "cmpxchg8b [{a}]", "pushfq", "pop {f}", "xchg {b}, rbx",
             a = in(reg) a, b = inout(reg) 1u64 => _, f = out(reg) flags,
             inout("rax") rax, inout("rdx") rdx, in("rcx") 2u64);
    }
    ensure!(
        flags & ZF == 0 && (rax, rdx) == (0xffff_ffff, 0xffff_ffff),
        "cmpxchg8b [all ones] (not equal): rax {rax:#x}, rdx {rdx:#x} (upper halves cleared), flags {flags:#x}"
    );
    let cx16 = core::arch::x86_64::__cpuid(1).ecx & (1 << 13) != 0;
    if !cx16 {
        return Ok(2);
    }
    let flags: u64;
    (rax, rdx) = (5, 6);
    // SAFETY: a CMPXCHG16B of the unbacked address (16-byte aligned; CPUID offers it).
    unsafe {
        asm!("xchg {b}, rbx", "lock cmpxchg16b [{a}]", "pushfq", "pop {f}", "xchg {b}, rbx",
             a = in(reg) a, b = inout(reg) 1u64 => _, f = out(reg) flags,
             inout("rax") rax, inout("rdx") rdx, in("rcx") 2u64);
    }
    ensure!(flags & ZF == 0 && (rax, rdx) == (ONES, ONES), "lock cmpxchg16b [all ones] (not equal): flags {flags:#x}");
    Ok(3)
}

/// REPE CMPSB between RAM and the hole stops at the first byte that is not 0xff (0x7f,
/// below: CF); REPNE
/// SCASB for a byte the hole never holds runs out its count; REPE SCASD for all ones
/// runs through and SCASQ of 0 against all ones sets CF. Returns how many were checked.
fn compare_strings(hole: u64, ram: &Page) -> Result<u32, Failure> {
    let buf = ram.va() as u64;
    ram.fill(0, &[0xff; 40]);
    ram.fill(40, &[0x7f; 4]);
    let (mut rcx, mut rsi, mut rdi, flags): (u64, u64, u64, u64);
    (rcx, rsi, rdi) = (100, buf, hole);
    // SAFETY: compares 100 bytes at most of the guest's page with the hole.
    unsafe {
        asm!("repe cmpsb", "pushfq", "pop {f}", f = out(reg) flags,
             inout("rcx") rcx, inout("rsi") rsi, inout("rdi") rdi, options(readonly));
    }
    ensure!(
        rcx == 59 && rsi == buf + 41 && rdi == hole + 41 && flags & (ZF | CF) == CF,
        "repe cmpsb (RAM, hole): stops after byte 40: rcx {rcx}, rsi {rsi:#x}, rdi {rdi:#x}, flags {flags:#x}"
    );
    let flags: u64;
    (rcx, rdi) = (3000, hole);
    // SAFETY: scans 3000 bytes of the hole for a byte it never holds.
    unsafe {
        asm!("repne scasb", "pushfq", "pop {f}", f = out(reg) flags,
             in("al") 0x5au8, inout("rcx") rcx, inout("rdi") rdi, options(readonly));
    }
    ensure!(
        rcx == 0 && rdi == hole + 3000 && flags & ZF == 0,
        "repne scasb for 0x5a in the hole: rcx {rcx}, flags {flags:#x}"
    );
    let flags: u64;
    (rcx, rdi) = (2000, hole);
    // SAFETY: scans 8000 bytes of the hole for all ones.
    unsafe {
        asm!("repe scasd", "pushfq", "pop {f}", f = out(reg) flags,
             in("eax") 0xffff_ffffu32, inout("rcx") rcx, inout("rdi") rdi, options(readonly));
    }
    ensure!(
        rcx == 0 && rdi == hole + 8000 && flags & ZF != 0,
        "repe scasd for all ones in the hole: rcx {rcx}, flags {flags:#x}"
    );
    let flags: u64;
    rdi = hole;
    // SAFETY: one SCASQ of the hole.
    unsafe {
        asm!("scasq", "pushfq", "pop {f}", f = out(reg) flags, in("rax") 0u64, inout("rdi") rdi, options(readonly));
    }
    ensure!(rdi == hole + 8 && flags & (CF | ZF) == CF, "scasq of 0 against all ones: flags {flags:#x}");
    Ok(4)
}

/// All of them; returns how many were checked.
pub fn run(hole: u64, ram: &Page) -> Result<u32, Failure> {
    Ok(set_conditions(hole)? + compare_exchange_double(hole + 0x100)? + compare_strings(hole + 0x1000, ram)?)
}

//! Linux arm64's system-call convention (`svc #0`, number in x8, result in x0, a negative
//! errno on failure), its call numbers, the entry point and the virtual counter.

use core::arch::asm;

pub const SYS_IOCTL: u64 = 29;
pub const SYS_OPENAT: u64 = 56;
pub const SYS_READ: u64 = 63;
pub const SYS_WRITE: u64 = 64;
pub const SYS_EXIT_GROUP: u64 = 94;
pub const SYS_CLOCK_GETTIME: u64 = 113;

/// Makes system call `n` with up to four arguments.
///
/// # Safety
/// Every argument the call reads or writes through must be valid for that access.
pub unsafe fn syscall(n: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: i64;
    // SAFETY: `svc #0` enters the kernel, which preserves every register but x0; the
    // caller vouches for the memory the arguments name.
    unsafe {
        asm!("svc #0", inlateout("x0") a0 => ret, in("x1") a1, in("x2") a2, in("x3") a3, in("x8") n,
             options(nostack));
    }
    ret
}

// The kernel enters with sp at argc, followed by the argv pointers.
core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".globl _start",
    "_start:",
    "mov x0, sp",
    "bl {entry}",
    "brk #0",
    entry = sym crate::start::entry,
);

/// The virtual counter and its frequency (`CNTVCT_EL0`, `CNTFRQ_EL0`; Linux lets EL0
/// read both, as its vDSO does).
#[allow(dead_code)] // only cntvct reads it
pub fn counter() -> Option<(u64, u64)> {
    let (count, freq): (u64, u64);
    // SAFETY: reading the counter and its frequency has no side effects.
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", out(reg) count, options(nomem, nostack));
        asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack));
    }
    Some((count, freq))
}

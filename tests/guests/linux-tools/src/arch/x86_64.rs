//! Linux x86_64's system-call convention (`syscall`, number in rax, arguments in rdi, rsi,
//! rdx, r10, result in rax, a negative errno on failure; rcx and r11 clobbered), its call
//! numbers and the entry point. No counter: `cntvct` is arm64's.

use core::arch::asm;

pub const SYS_READ: u64 = 0;
pub const SYS_WRITE: u64 = 1;
pub const SYS_IOCTL: u64 = 16;
pub const SYS_CLOCK_GETTIME: u64 = 228;
pub const SYS_EXIT_GROUP: u64 = 231;
pub const SYS_OPENAT: u64 = 257;

/// Makes system call `n` with up to four arguments.
///
/// # Safety
/// Every argument the call reads or writes through must be valid for that access.
pub unsafe fn syscall(n: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: i64;
    // SAFETY: `syscall` enters the kernel, which preserves every register but rax, rcx
    // and r11; the caller vouches for the memory the arguments name.
    unsafe {
        asm!("syscall", inlateout("rax") n as i64 => ret, in("rdi") a0, in("rsi") a1, in("rdx") a2, in("r10") a3,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

// The kernel enters with rsp at argc, followed by the argv pointers; the call wants rsp
// 16-byte aligned before it pushes the return address.
core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".globl _start",
    "_start:",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym crate::start::entry,
);

/// No counter readable as arm64's: `None`.
#[allow(dead_code)] // only cntvct reads it
pub fn counter() -> Option<(u64, u64)> {
    None
}

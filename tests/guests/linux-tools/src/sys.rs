//! The few Linux arm64 system calls these programs make (`svc #0`, number in x8, result in
//! x0, a negative errno on failure), wrapped so that callers pass only slices and values.

use core::arch::asm;
use core::ffi::CStr;

/// A failed call: the errno Linux returned.
pub type Errno = i64;

const SYS_IOCTL: u64 = 29;
const SYS_OPENAT: u64 = 56;
const SYS_READ: u64 = 63;
const SYS_WRITE: u64 = 64;
const SYS_EXIT_GROUP: u64 = 94;
const SYS_CLOCK_GETTIME: u64 = 113;

const AT_FDCWD: i64 = -100;
pub const O_RDWR: u64 = 2;
const CLOCK_MONOTONIC: u64 = 1;

/// Makes system call `n` with up to four arguments.
///
/// # Safety
/// Every argument the call reads or writes through must be valid for that access.
unsafe fn syscall(n: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: i64;
    // SAFETY: `svc #0` enters the kernel, which preserves every register but x0; the
    // caller vouches for the memory the arguments name.
    unsafe {
        asm!("svc #0", inlateout("x0") a0 => ret, in("x1") a1, in("x2") a2, in("x3") a3, in("x8") n,
             options(nostack));
    }
    ret
}

fn check(ret: i64) -> Result<i64, Errno> {
    if (-4095..0).contains(&ret) {
        Err(-ret)
    } else {
        Ok(ret)
    }
}

/// Opens `path` with `flags`; returns the descriptor.
pub fn open(path: &CStr, flags: u64) -> Result<i32, Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check(unsafe { syscall(SYS_OPENAT, AT_FDCWD as u64, path.as_ptr() as u64, flags, 0) }).map(|fd| fd as i32)
}

/// Reads into `buf`; returns how many bytes came.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    check(unsafe { syscall(SYS_READ, fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, 0) }).map(|n| n as usize)
}

/// Writes `buf`; returns how many bytes went.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    check(unsafe { syscall(SYS_WRITE, fd as u64, buf.as_ptr() as u64, buf.len() as u64, 0) }).map(|n| n as usize)
}

/// `ioctl(fd, request, &arg)` for the requests whose argument is one `unsigned int`.
pub fn ioctl_u32(fd: i32, request: u64, arg: &mut u32) -> Result<i64, Errno> {
    // SAFETY: every request used here reads or writes exactly the one u32 `arg` names.
    check(unsafe { syscall(SYS_IOCTL, fd as u64, request, arg as *mut u32 as u64, 0) })
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: clock_gettime writes one `struct timespec` (two 64-bit fields) into `ts`.
    let ret = unsafe { syscall(SYS_CLOCK_GETTIME, CLOCK_MONOTONIC, ts.as_mut_ptr() as u64, 0, 0) };
    if ret != 0 {
        return 0;
    }
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

/// Ends the program with status `code`.
pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit_group takes no pointer and does not return.
        unsafe { syscall(SYS_EXIT_GROUP, code as u64, 0, 0, 0) };
    }
}

//! The few Linux system calls these programs make, wrapped so that callers pass only
//! slices and values; `arch` is the architecture's calling convention, chosen by the
//! target's own `cfg(target_arch)`. (Keel's rule of one `cfg(target_arch)`, in `platform/`,
//! is for Keel's crates; these are Linux programs, built once for each architecture.)

#[cfg_attr(target_arch = "aarch64", path = "arch/aarch64.rs")]
#[cfg_attr(target_arch = "x86_64", path = "arch/x86_64.rs")]
pub mod arch;

use arch::{syscall, SYS_CLOCK_GETTIME, SYS_EXIT_GROUP, SYS_IOCTL, SYS_OPENAT, SYS_READ, SYS_WRITE};
use core::ffi::CStr;

/// A failed call: the errno Linux returned.
pub type Errno = i64;

const AT_FDCWD: i64 = -100;
pub const O_RDWR: u64 = 2;
const CLOCK_MONOTONIC: u64 = 1;

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

//! Linux's `/dev/xen/privcmd`: `IOCTL_PRIVCMD_HYPERCALL` issues one hypercall from this
//! process (`include/uapi/xen/privcmd.h`, `drivers/xen/privcmd.c`). Pointer arguments are
//! addresses in this process: Keel translates them through the caller's stage 1 (arm64:
//! `AT S1E1*`, which user pages pass) or page tables, so the pages must be present and
//! writable when the call is made, and stay so: each call first locks its buffers
//! (`mlock`, which also faults them in writable; the locks last until the process ends).
//!
//! The only `unsafe` of keelctl lives here: `ioctl` and `mlock`.
//!
//! `KEELCTL_DEBUG` in the environment prints each step (open, hypercall, result) on stderr.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

/// The device.
pub const DEVICE: &str = "/dev/xen/privcmd";

/// `struct privcmd_hypercall { __u64 op; __u64 arg[5]; }`.
#[repr(C)]
#[derive(Debug, Default)]
struct PrivcmdHypercall {
    op: u64,
    arg: [u64; 5],
}

const _: () = assert!(std::mem::size_of::<PrivcmdHypercall>() == 48);

/// `_IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))`.
pub const IOCTL_PRIVCMD_HYPERCALL: u32 = ioc_none(b'P', 0, 48);

/// Linux's `_IOC` with direction `_IOC_NONE` (0): size in bits 16..30, type in 8..16,
/// number in 0..8.
const fn ioc_none(ty: u8, nr: u8, size: u32) -> u32 {
    (size << 16) | ((ty as u32) << 8) | nr as u32
}

/// An open privcmd device.
#[derive(Debug)]
pub struct Privcmd {
    file: File,
    /// `KEELCTL_DEBUG` is set: each hypercall and its result go to stderr.
    debug: bool,
}

/// Why the device could not be used.
#[derive(Debug)]
pub enum OpenError {
    /// No such device node: the driver is not loaded (or this is not a Xen guest).
    Missing,
    Other(io::Error),
}

impl Privcmd {
    /// Opens the device.
    pub fn open() -> Result<Privcmd, OpenError> {
        let debug = std::env::var_os("KEELCTL_DEBUG").is_some();
        if debug {
            eprintln!("keelctl: opening {DEVICE}");
        }
        let file = OpenOptions::new().read(true).write(true).open(DEVICE).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => OpenError::Missing,
            _ => OpenError::Other(e),
        })?;
        if debug {
            eprintln!("keelctl: {DEVICE} open");
        }
        Ok(Privcmd { file, debug })
    }

    /// Issues hypercall `op` with `args`; the buffers the arguments point into are
    /// `buffers`, locked first. Returns the hypercall's
    /// result, or the positive errno of a negative one.
    pub fn hypercall(&self, op: u64, args: [u64; 5], buffers: &mut [&mut [u8]]) -> Result<i64, i32> {
        for b in buffers.iter().filter(|b| !b.is_empty()) {
            // SAFETY: the range is a live slice of this process; mlock only pins its pages.
            if unsafe { libc::mlock(b.as_ptr().cast(), b.len()) } != 0 {
                return Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::ENOMEM));
            }
        }
        if self.debug {
            eprintln!("keelctl: buffers locked");
        }
        let mut call = PrivcmdHypercall { op, arg: args };
        if self.debug {
            eprintln!("keelctl: hypercall {op} ({:#x}, {:#x})", args[0], args[1]);
        }
        // SAFETY: the request is IOCTL_PRIVCMD_HYPERCALL, whose argument is a struct
        // privcmd_hypercall that lives across the call; the pointers inside it name
        // buffers the caller keeps alive (and mutably borrowed where written) until this
        // returns.
        let ret = unsafe {
            libc::ioctl(self.file.as_raw_fd(), IOCTL_PRIVCMD_HYPERCALL as _, &mut call as *mut PrivcmdHypercall)
        };
        let result = if ret < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
        } else {
            Ok(i64::from(ret))
        };
        if self.debug {
            eprintln!("keelctl: hypercall {op}: {result:?}");
        }
        result
    }
}

impl crate::keel_control::Hypervisor for Privcmd {
    fn call(&mut self, op: u64, a0: u64, arg: &mut [u8], data: &mut [u8]) -> Result<i64, i32> {
        let a1 = if arg.is_empty() { 0 } else { arg.as_mut_ptr() as u64 };
        self.hypercall(op, [a0, a1, 0, 0, 0], &mut [arg, data])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number_is_linuxs() {
        // Linux: #define IOCTL_PRIVCMD_HYPERCALL _IOC(_IOC_NONE, 'P', 0, sizeof(privcmd_hypercall_t))
        assert_eq!(IOCTL_PRIVCMD_HYPERCALL, 0x0030_5000);
    }
}

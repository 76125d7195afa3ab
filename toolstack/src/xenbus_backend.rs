//! Linux's `/dev/xen/xenbus_backend` (`drivers/xen/xenbus/xenbus_dev_backend.c`, the
//! initial domain only): `IOCTL_XENBUS_BACKEND_SETUP(domid)` makes the kernel, whose
//! xenbus serves its own store page (`XS_LOCAL`), grant that page to domain `domid` as
//! grant entry 1 and allocate a port unbound toward it, and returns the port — what
//! Xen's `init-xenstore-domain` does before it starts a xenstore domain.
#![allow(unsafe_code)]

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

/// The device.
pub const DEVICE: &str = "/dev/xen/xenbus_backend";

/// `_IOC(_IOC_NONE, 'B', 1, 0)`.
pub const IOCTL_XENBUS_BACKEND_SETUP: u32 = (b'B' as u32) << 8 | 1;

/// Hands this domain's xenstore ring to domain `xenstore`; returns the new port.
pub fn setup(xenstore: u16) -> io::Result<u32> {
    let file = OpenOptions::new().read(true).write(true).open(DEVICE)?;
    // SAFETY: IOCTL_XENBUS_BACKEND_SETUP takes its argument (the domain id) by value and
    // touches no memory of this process.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), IOCTL_XENBUS_BACKEND_SETUP as _, libc::c_ulong::from(xenstore)) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    u32::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number_is_linuxs() {
        // include/uapi/xen/xenbus_dev.h: #define IOCTL_XENBUS_BACKEND_SETUP _IOC(_IOC_NONE, 'B', 1, 0)
        assert_eq!(IOCTL_XENBUS_BACKEND_SETUP, 0x4201);
    }
}

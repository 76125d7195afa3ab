//! Error numbers returned by hypercalls: Xen's, which use the Linux numbering.
//! A hypercall fails by returning the negated number in the result register.

/// A Xen error number (positive; the hypercall returns its negation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(u16);

macro_rules! errnos {
    ($($(#[$m:meta])* $name:ident = $v:literal,)*) => {
        impl Errno {
            $( $(#[$m])* pub const $name: Errno = Errno($v); )*
            /// Every error number this ABI defines.
            pub const ALL: &'static [Errno] = &[$(Errno::$name),*];
        }
        impl Errno {
            /// The symbolic name (`"EINVAL"`).
            pub const fn name(self) -> &'static str {
                match self.0 {
                    $( $v => stringify!($name), )*
                    _ => "E?",
                }
            }
        }
    };
}

errnos! {
    /// Operation not permitted.
    EPERM = 1,
    /// No such entry.
    ENOENT = 2,
    /// No such domain.
    ESRCH = 3,
    /// Interrupted.
    EINTR = 4,
    /// I/O error.
    EIO = 5,
    /// No such device or address (e.g. a guest area crossing a page).
    ENXIO = 6,
    /// Argument list too long.
    E2BIG = 7,
    /// Bad file descriptor.
    EBADF = 9,
    /// Try again.
    EAGAIN = 11,
    /// Out of memory.
    ENOMEM = 12,
    /// Permission denied.
    EACCES = 13,
    /// Bad address: guest memory could not be accessed.
    EFAULT = 14,
    /// Resource busy.
    EBUSY = 16,
    /// Already exists.
    EEXIST = 17,
    /// No such device.
    ENODEV = 19,
    /// Invalid argument.
    EINVAL = 22,
    /// No space left (out of ports, handles, frames).
    ENOSPC = 28,
    /// Result out of range.
    ERANGE = 34,
    /// Function not implemented: unknown hypercall or sub-op.
    ENOSYS = 38,
    /// Timer expired.
    ETIME = 62,
    /// Operation not supported.
    EOPNOTSUPP = 95,
}

impl Errno {
    /// The positive error number.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// The value a failing hypercall leaves in the result register: `-code` as a 64-bit
    /// two's-complement number.
    pub const fn to_return(self) -> u64 {
        (-(self.0 as i64)) as u64
    }

    /// The error a hypercall result register denotes, if it is one this ABI defines.
    pub fn from_return(value: u64) -> Option<Errno> {
        let v = value as i64;
        if !(-4095..0).contains(&v) {
            return None;
        }
        let e = Errno(u16::try_from(-v).ok()?);
        Errno::ALL.contains(&e).then_some(e)
    }
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_round_trip() {
        assert_eq!(Errno::ENOSYS.to_return(), (-38i64) as u64);
        for &e in Errno::ALL {
            assert_eq!(Errno::from_return(e.to_return()), Some(e));
        }
        assert_eq!(Errno::from_return(0), None);
        assert_eq!(Errno::from_return(8u64.wrapping_neg()), None);
        assert_eq!(Errno::EINVAL.name(), "EINVAL");
    }
}

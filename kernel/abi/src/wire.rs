//! Safe little-endian encoding of ABI structs, so the hypervisor and guests copy them to
//! and from shared memory without `unsafe`.
//!
//! Every ABI struct is declared with [`wire_struct!`], which also asserts at compile time
//! that its `#[repr(C)]` size and every field offset equal the numbers Xen's C headers
//! give (the offsets are written next to each field).

/// A fixed-size value that can live inside an ABI struct.
pub trait Field: Sized + Copy {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// The all-zero value.
    const ZERO: Self;
    /// Decodes the value at `off` in `b`; `None` if `b` is too short.
    fn read(b: &[u8], off: usize) -> Option<Self>;
    /// Encodes the value at `off` in `b`; `None` if `b` is too short.
    fn write(&self, b: &mut [u8], off: usize) -> Option<()>;
}

/// An ABI struct: a [`Field`] with a documented layout.
pub trait Wire: Field {
    /// Decodes a struct from the first `SIZE` bytes of `bytes`; `None` if there are fewer.
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Self::read(bytes, 0)
    }
    /// Encodes the struct into the first `SIZE` bytes of `out`; `None` if there are fewer.
    fn write_bytes(&self, out: &mut [u8]) -> Option<()> {
        self.write(out, 0)
    }
}

/// The `N` bytes at `off` in `b`; bytes past the end of `b` read as zero.
fn bytes_at<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = b.get(off..) {
        let n = src.len().min(N);
        out[..n].copy_from_slice(&src[..n]);
    }
    out
}

/// The little-endian `u16` at `off` in `b`. For byte formats that are not ABI structs
/// (ELF headers, ACPI tables, multiboot2 tags): bytes past the end of `b` read as zero,
/// so a short buffer never panics; a caller checks the length where a short read matters.
pub fn read_u16_le(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(bytes_at(b, off))
}

/// The little-endian `u32` at `off` in `b` (see [`read_u16_le`]).
pub fn read_u32_le(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(bytes_at(b, off))
}

/// The little-endian `u64` at `off` in `b` (see [`read_u16_le`]).
pub fn read_u64_le(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(bytes_at(b, off))
}

fn range(len: usize, off: usize, size: usize) -> Option<core::ops::Range<usize>> {
    let end = off.checked_add(size)?;
    (end <= len).then_some(off..end)
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            const ZERO: Self = 0;
            fn read(b: &[u8], off: usize) -> Option<Self> {
                let r = range(b.len(), off, Self::SIZE)?;
                Some(<$t>::from_le_bytes(b[r].try_into().ok()?))
            }
            fn write(&self, b: &mut [u8], off: usize) -> Option<()> {
                let r = range(b.len(), off, Self::SIZE)?;
                b[r].copy_from_slice(&self.to_le_bytes());
                Some(())
            }
        }
    )*};
}
int_field!(u8, u16, u32, u64, i8, i16, i32, i64);

/// A `uint64_t` inside a 32-bit x86 caller's struct (Xen's compat layouts, built under
/// `#pragma pack(4)`): 8 little-endian bytes at a 4-aligned offset. Its alignment is 4, so
/// a `#[repr(C)]` struct holding it has the compat offsets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct U64Align4([u32; 2]);

impl U64Align4 {
    /// The value `v`.
    pub const fn new(v: u64) -> Self {
        let b = v.to_le_bytes();
        U64Align4([u32::from_le_bytes([b[0], b[1], b[2], b[3]]), u32::from_le_bytes([b[4], b[5], b[6], b[7]])])
    }

    /// The value.
    pub const fn get(self) -> u64 {
        (self.0[1] as u64) << 32 | self.0[0] as u64
    }
}

impl Field for U64Align4 {
    const SIZE: usize = 8;
    const ZERO: Self = U64Align4([0; 2]);
    fn read(b: &[u8], off: usize) -> Option<Self> {
        u64::read(b, off).map(U64Align4::new)
    }
    fn write(&self, b: &mut [u8], off: usize) -> Option<()> {
        self.get().write(b, off)
    }
}

impl<T: Field, const N: usize> Field for [T; N] {
    const SIZE: usize = T::SIZE * N;
    const ZERO: Self = [T::ZERO; N];
    fn read(b: &[u8], off: usize) -> Option<Self> {
        range(b.len(), off, Self::SIZE)?;
        let mut out = [T::ZERO; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = T::read(b, off + i * T::SIZE)?;
        }
        Some(out)
    }
    fn write(&self, b: &mut [u8], off: usize) -> Option<()> {
        range(b.len(), off, Self::SIZE)?;
        for (i, v) in self.iter().enumerate() {
            v.write(b, off + i * T::SIZE)?;
        }
        Some(())
    }
}

/// Declares a `#[repr(C)]` ABI struct with its size and field offsets, asserted at
/// compile time, and implements [`Field`], [`Wire`], `Default` and `to_bytes` for it.
///
/// ```ignore
/// wire_struct! {
///     /// `evtchn_send`.
///     pub struct EvtchnSend: 4 { pub port: u32 = 0 }
/// }
/// ```
#[macro_export]
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident : $size:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty = $off:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        const _: () = {
            assert!(core::mem::size_of::<$name>() == $size, "ABI size");
            $( assert!(core::mem::offset_of!($name, $field) == $off, "ABI offset"); )*
        };

        impl $name {
            /// The encoded size in bytes.
            pub const SIZE: usize = $size;
            /// The all-zero value.
            pub const ZERO: Self = $name { $( $field: <$ty as $crate::wire::Field>::ZERO ),* };
            /// The little-endian encoding.
            #[allow(clippy::wrong_self_convention)]
            pub fn to_bytes(&self) -> [u8; $size] {
                let mut out = [0u8; $size];
                // Cannot fail: the buffer has exactly the asserted size.
                let _ = $crate::wire::Field::write(self, &mut out, 0);
                out
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::ZERO
            }
        }

        impl $crate::wire::Field for $name {
            const SIZE: usize = $size;
            const ZERO: Self = $name::ZERO;
            #[allow(unused_variables)]
            fn read(b: &[u8], off: usize) -> Option<Self> {
                let end = off.checked_add($size)?;
                if end > b.len() {
                    return None;
                }
                Some($name { $( $field: $crate::wire::Field::read(b, off + $off)? ),* })
            }
            #[allow(unused_variables)]
            fn write(&self, b: &mut [u8], off: usize) -> Option<()> {
                let end = off.checked_add($size)?;
                if end > b.len() {
                    return None;
                }
                $( $crate::wire::Field::write(&self.$field, b, off + $off)?; )*
                Some(())
            }
        }

        impl $crate::wire::Wire for $name {}
    };
}

#[cfg(test)]
#[allow(dead_code)]
mod tests {
    use super::*;

    wire_struct! {
        /// A test struct with padding (fields read through `to_bytes`).
        pub struct Sample: 16 {
            pub a: u16 = 0,
            pub _pad: [u8; 2] = 2,
            pub b: u32 = 4,
            pub c: i64 = 8,
        }
    }

    #[test]
    fn readers_are_little_endian_and_total() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(read_u16_le(&b, 1), 0x0302);
        assert_eq!(read_u32_le(&b, 0), 0x0403_0201);
        assert_eq!(read_u64_le(&b, 1), 0x0908_0706_0504_0302);
        // Past the end: the missing bytes are zero, nothing panics.
        assert_eq!(read_u32_le(&b, 7), 0x0908);
        assert_eq!(read_u64_le(&b, 9), 0);
        assert_eq!(read_u16_le(&b, usize::MAX), 0);
    }

    #[test]
    fn round_trips_little_endian() {
        let s = Sample { a: 0x1234, _pad: [0; 2], b: 0xdead_beef, c: -2 };
        let bytes = s.to_bytes();
        assert_eq!(&bytes[..8], &[0x34, 0x12, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(&bytes[8..], &(-2i64).to_le_bytes());
        assert_eq!(Sample::from_bytes(&bytes), Some(s));
        assert_eq!(Sample::from_bytes(&bytes[..15]), None);
        let mut small = [0u8; 15];
        assert_eq!(s.write_bytes(&mut small), None);
        assert_eq!(Sample::default(), Sample::ZERO);
    }

    #[test]
    fn reads_prefix_of_longer_buffer() {
        let mut buf = [0xffu8; 32];
        buf[..16].copy_from_slice(&Sample { a: 1, _pad: [0; 2], b: 2, c: 3 }.to_bytes());
        assert_eq!(Sample::from_bytes(&buf).map(|s| s.c), Some(3));
        assert_eq!(<[u32; 2]>::read(&buf, 30), None);
        assert_eq!(u8::read(&buf, usize::MAX), None);
    }
}

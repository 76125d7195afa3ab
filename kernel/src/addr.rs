//! Address types: host-physical and guest-physical addresses never mix implicitly.
//!
//! A leaf: it imports nothing from the crate, so the architecture traits ([`crate::arch`])
//! and the memory services ([`crate::mm`]) can both name addresses without importing each
//! other ([`crate::mm`] re-exports everything here).

/// The translation granule: 4 KiB.
pub const PAGE_SIZE: u64 = 4096;

/// [`PAGE_SIZE`] as a byte count for buffers and slices.
pub const PAGE_BYTES: usize = 4096;
const _: () = assert!(PAGE_BYTES as u64 == PAGE_SIZE);

/// `PAGE_SIZE - (a % PAGE_SIZE)`: the bytes from `a` to the end of its page (1..=4096).
pub const fn bytes_to_page_end(a: u64) -> usize {
    // The remainder is below 4096: the mask states it and the cast cannot truncate.
    PAGE_BYTES - (a & (PAGE_SIZE - 1)) as usize
}

/// A host-physical address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(pub u64);

/// A guest-physical address (IPA on arm64, GPA on x86).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestPhysAddr(pub u64);

macro_rules! address_ops {
    ($t:ident) => {
        impl $t {
            /// The address `bytes` further on, or `None` on overflow.
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(a) => Some(Self(a)),
                    None => None,
                }
            }
            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
            /// The address rounded down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align - 1))
            }
        }
        impl core::fmt::Display for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}
address_ops!(PhysAddr);
address_ops!(GuestPhysAddr);

/// A half-open range of physical addresses `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

impl Region {
    /// The range `[start, start + size)`, saturating at the top of the address space.
    pub const fn new(start: u64, size: u64) -> Self {
        Region { start, end: start.saturating_add(size) }
    }
    pub const fn size(&self) -> u64 {
        self.end - self.start
    }
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

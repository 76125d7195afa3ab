//! Atomic read-modify-write on words of guest memory the guest may change concurrently.
//!
//! Built on the [`HostMemory::Frame`] accesses: a word is a page handle and an offset,
//! so the page is checked against the frame pool once, when the word is made
//! ([`GuestWord32::at`]), or never, for a word of a page whose handle the caller keeps
//! ([`GuestWord32::in_frame`]: the event words). A loop retries at most
//! [`MAX_RETRIES`] times: a guest that keeps changing a word faster than the hypervisor
//! can update it gets [`Unstable`], never a hang.

use crate::arch::memory::Frame;
use crate::arch::{Arch, HostMemory};
use crate::mm::{PhysAddr, PAGE_BYTES, PAGE_SIZE};
use core::marker::PhantomData;

/// Compare-and-swap attempts before giving up on a word the guest keeps changing.
pub const MAX_RETRIES: u32 = 16;

/// The guest changed the word on every attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unstable;

macro_rules! guest_word {
    ($name:ident, $t:ty, $load:ident, $cas:ident) => {
        /// A naturally aligned word of guest memory: a page handle and the offset in it.
        /// The page must stay allocated to the guest (pinned, or the domain's own
        /// hypervisor page) while the word is used.
        pub struct $name<A: Arch> {
            frame: Frame<A>,
            offset: usize,
            _arch: PhantomData<A>,
        }

        impl<A: Arch> Clone for $name<A> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<A: Arch> Copy for $name<A> {}

        impl<A: Arch> core::fmt::Debug for $name<A> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.address())
            }
        }

        impl<A: Arch> $name<A> {
            /// The word at host address `pa` (naturally aligned): its page is checked now.
            pub fn at(pa: PhysAddr) -> Self {
                let offset = usize::try_from(pa.0 % PAGE_SIZE).unwrap_or(0);
                Self::in_frame(A::Memory::frame(pa.align_down(PAGE_SIZE)), offset)
            }

            /// The word at `offset` (naturally aligned, below the page size: the backend
            /// refuses anything else) of the page `frame`.
            #[inline]
            pub fn in_frame(frame: Frame<A>, offset: usize) -> Self {
                debug_assert!(offset < PAGE_BYTES);
                $name { frame, offset, _arch: PhantomData }
            }

            pub fn address(&self) -> PhysAddr {
                PhysAddr(A::Memory::frame_address(self.frame).0 + self.offset as u64)
            }

            /// Atomically reads the word.
            #[inline]
            pub fn load(&self) -> $t {
                A::Memory::$load(self.frame, self.offset)
            }

            /// Replaces the word with `new` if it holds `current`; returns what it held.
            #[inline]
            pub fn compare_exchange(&self, current: $t, new: $t) -> $t {
                A::Memory::$cas(self.frame, self.offset, current, new)
            }

            /// Applies `f` to the word atomically; returns the old value. `f` returning
            /// `None` leaves the word alone and returns the value seen.
            pub fn update(&self, mut f: impl FnMut($t) -> Option<$t>) -> Result<$t, Unstable> {
                let mut seen = self.load();
                for _ in 0..MAX_RETRIES {
                    let Some(new) = f(seen) else { return Ok(seen) };
                    let found = self.compare_exchange(seen, new);
                    if found == seen {
                        return Ok(seen);
                    }
                    seen = found;
                }
                Err(Unstable)
            }

            /// Sets `bits`; returns the old value.
            pub fn fetch_or(&self, bits: $t) -> Result<$t, Unstable> {
                self.update(|w| if w & bits == bits { None } else { Some(w | bits) })
            }

            /// Clears `bits`; returns the old value.
            pub fn fetch_clear(&self, bits: $t) -> Result<$t, Unstable> {
                self.update(|w| if w & bits == 0 { None } else { Some(w & !bits) })
            }

            /// Sets bit `bit`; returns whether it was already set.
            pub fn test_and_set(&self, bit: u32) -> Result<bool, Unstable> {
                let mask = (1 as $t) << bit;
                self.fetch_or(mask).map(|old| old & mask != 0)
            }

            /// Clears bit `bit`; returns whether it was set.
            pub fn test_and_clear(&self, bit: u32) -> Result<bool, Unstable> {
                let mask = (1 as $t) << bit;
                self.fetch_clear(mask).map(|old| old & mask != 0)
            }

            /// Whether bit `bit` is set.
            #[inline]
            pub fn test(&self, bit: u32) -> bool {
                self.load() & ((1 as $t) << bit) != 0
            }

            /// Stores `value` atomically if the guest lets the swap succeed; otherwise a
            /// plain aligned store, which the hardware performs in one access.
            pub fn store(&self, value: $t) {
                if self.update(|_| Some(value)).is_err() {
                    A::Memory::write(self.address(), &value.to_le_bytes());
                }
            }
        }
    };
}

guest_word!(GuestWord32, u32, frame_load_u32, frame_compare_exchange_u32);
guest_word!(GuestWord64, u64, frame_load_u64, frame_compare_exchange_u64);

impl<A: Arch> PartialEq for GuestWord32<A> {
    fn eq(&self, other: &Self) -> bool {
        self.address() == other.address()
    }
}

impl<A: Arch> PartialEq for GuestWord64<A> {
    fn eq(&self, other: &Self) -> bool {
        self.address() == other.address()
    }
}

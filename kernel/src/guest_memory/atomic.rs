//! Atomic read-modify-write on words of guest memory the guest may change concurrently.
//!
//! Built on [`HostMemory::compare_exchange_u32`]/`_u64`. A loop retries at most
//! [`MAX_RETRIES`] times: a guest that keeps changing a word faster than the hypervisor
//! can update it gets [`Unstable`], never a hang.

use crate::arch::{Arch, HostMemory};
use crate::mm::PhysAddr;
use core::marker::PhantomData;

/// Compare-and-swap attempts before giving up on a word the guest keeps changing.
pub const MAX_RETRIES: u32 = 16;

/// The guest changed the word on every attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unstable;

macro_rules! guest_word {
    ($name:ident, $t:ty, $cas:ident) => {
        /// A naturally aligned word of guest memory, by host address. The frame must stay
        /// allocated to the guest (pinned, or the domain's own hypervisor page).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name<A: Arch> {
            pa: PhysAddr,
            _arch: PhantomData<A>,
        }

        impl<A: Arch> $name<A> {
            /// The word at `pa` (naturally aligned).
            pub fn at(pa: PhysAddr) -> Self {
                $name { pa, _arch: PhantomData }
            }

            pub fn address(&self) -> PhysAddr {
                self.pa
            }

            /// Atomically reads the word.
            pub fn load(&self) -> $t {
                A::Memory::$cas(self.pa, 0, 0)
            }

            /// Replaces the word with `new` if it holds `current`; returns what it held.
            pub fn compare_exchange(&self, current: $t, new: $t) -> $t {
                A::Memory::$cas(self.pa, current, new)
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
            pub fn test(&self, bit: u32) -> bool {
                self.load() & ((1 as $t) << bit) != 0
            }

            /// Stores `value` atomically if the guest lets the swap succeed; otherwise a
            /// plain aligned store, which the hardware performs in one access.
            pub fn store(&self, value: $t) {
                if self.update(|_| Some(value)).is_err() {
                    A::Memory::write(self.pa, &value.to_le_bytes());
                }
            }
        }
    };
}

guest_word!(GuestWord32, u32, compare_exchange_u32);
guest_word!(GuestWord64, u64, compare_exchange_u64);

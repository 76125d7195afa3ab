//! Remote stage-2 TLB flushes for backends whose CPUs drop a guest's cached translations
//! only at their next guest entry (x86: INVEPT/INVVPID or the VMCB's TLB_CONTROL), as
//! Xen's `flush_tlb_mask` does with the domain's dirty CPU mask.
//!
//! A [`FlushGate`] holds a stage-2 generation and, per CPU, what that CPU runs: nothing
//! (host mode), or an address space entered at a generation. The contract:
//!
//! - A CPU calls [`FlushGate::enter`] right before it enters guest mode for `space` (with
//!   its interrupts masked), drops the vCPU's cached translations if the generation it
//!   returns differs from the one the vCPU last flushed at, and calls [`FlushGate::exit`]
//!   right after the guest exits, before it takes any lock or waits for anything.
//! - [`FlushGate::flush`] returns only when no CPU other than the caller is in guest mode
//!   for `space` with translations older than the change: each one that was is kicked
//!   (an interrupt, which makes it leave guest mode) and has exited or re-entered after
//!   dropping them. So a frame unmapped before the call may be freed once it returns.
//!
//! Ordering (Dekker): `enter` publishes its slot, then reads the generation; `flush`
//! advances the generation, then reads the slots; all four are sequentially consistent.
//! Either the flusher sees the slot (and waits for it) or the entering CPU sees the new
//! generation (and flushes before it enters).
//!
//! Deadlock: the waiting CPU waits only for CPUs in guest mode, which leave it on the
//! kick in hardware, whatever locks the waiter holds; between `enter` and the entry and
//! between the exit and `exit` a CPU takes no lock and waits for nothing. A CPU that waits
//! is in host mode (its slot is empty), so two flushers never wait for each other.

use crate::arch::SpaceId;
use core::sync::atomic::{AtomicU64, Ordering::*};

/// The slot of a CPU in host mode.
const HOST: u64 = 0;
const SPACE_BITS: u32 = 16;

/// A slot: the generation plus one (0 is host mode) above the address space. The
/// generation keeps 48 bits (2^48 flushes before it wraps).
fn slot(generation: u64, space: SpaceId) -> u64 {
    (generation.wrapping_add(1) << SPACE_BITS) | u64::from(space.0)
}

/// The stage-2 generation and what each of up to `N` CPUs runs (module documentation).
pub struct FlushGate<const N: usize> {
    generation: AtomicU64,
    cpus: [AtomicU64; N],
}

impl<const N: usize> Default for FlushGate<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FlushGate<N> {
    pub const fn new() -> Self {
        FlushGate { generation: AtomicU64::new(0), cpus: [const { AtomicU64::new(HOST) }; N] }
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(SeqCst)
    }

    /// CPU `cpu` is about to enter guest mode for `space`: returns the generation whose
    /// changes the vCPU must have dropped from its cached translations before it enters.
    pub fn enter(&self, cpu: usize, space: SpaceId) -> u64 {
        loop {
            let generation = self.generation.load(SeqCst);
            self.cpus[cpu].swap(slot(generation, space), SeqCst);
            if self.generation.load(SeqCst) == generation {
                return generation;
            }
        }
    }

    /// CPU `cpu` left guest mode.
    pub fn exit(&self, cpu: usize) {
        self.cpus[cpu].store(HOST, Release);
    }

    /// Whether CPU `cpu` may run `space` with translations older than `generation`.
    fn holds(&self, cpu: usize, space: SpaceId, generation: u64) -> bool {
        let s = self.cpus[cpu].load(SeqCst);
        s != HOST && (s & 0xffff) as u16 == space.0 && (s >> SPACE_BITS).wrapping_sub(1) < generation
    }

    /// After `space`'s tables changed on CPU `me`: advances the generation, kicks every
    /// other CPU that may use older translations of `space` and waits (`relax` between
    /// looks) until each has left guest mode or entered again at the new generation.
    /// Returns the new generation.
    pub fn flush(&self, me: usize, space: SpaceId, mut kick: impl FnMut(usize), mut relax: impl FnMut()) -> u64 {
        let generation = self.generation.fetch_add(1, SeqCst) + 1;
        let others = || (0..N).filter(move |&c| c != me);
        for cpu in others() {
            if self.holds(cpu, space, generation) {
                kick(cpu);
            }
        }
        for cpu in others() {
            while self.holds(cpu, space, generation) {
                relax();
            }
        }
        generation
    }
}

#[cfg(test)]
#[path = "remote_flush_tests.rs"]
mod tests;

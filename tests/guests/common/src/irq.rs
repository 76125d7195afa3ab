//! Interrupts as scenarios see them: the platform's interrupt handler calls these, and
//! scenarios wait on the counters.

use crate::Platform;
use core::sync::atomic::{AtomicU32, Ordering};

/// Most CPUs a test guest tracks.
pub const MAX_CPUS: usize = 8;

/// Per CPU: event upcalls taken.
pub static UPCALLS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Per CPU: timer interrupts taken.
pub static TIMER_TICKS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Per CPU: IPIs taken.
pub static IPIS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

fn slot(p: &impl Platform) -> usize {
    (p.cpu() as usize).min(MAX_CPUS - 1)
}

/// The event-channel upcall interrupt (arm64 PPI 31).
pub fn upcall<P: Platform>(p: &P) {
    UPCALLS[slot(p)].fetch_add(1, Ordering::AcqRel);
}

/// The CPU's timer interrupt.
pub fn timer<P: Platform>(p: &P) {
    TIMER_TICKS[slot(p)].fetch_add(1, Ordering::AcqRel);
}

/// An IPI from another CPU.
pub fn ipi<P: Platform>(p: &P) {
    IPIS[slot(p)].fetch_add(1, Ordering::AcqRel);
}

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
/// Distinct IPIs a platform provides ([`Platform::send_ipi`]).
pub const NR_IPIS: u32 = 8;
/// Per CPU and IPI number: IPIs taken.
pub static IPIS: [[AtomicU32; NR_IPIS as usize]; MAX_CPUS] =
    [const { [const { AtomicU32::new(0) }; NR_IPIS as usize] }; MAX_CPUS];

fn slot(p: &impl Platform) -> usize {
    (p.cpu() as usize).min(MAX_CPUS - 1)
}

/// The event-channel upcall interrupt (arm64 PPI 31).
pub fn upcall<P: Platform>(p: &P) {
    UPCALLS[slot(p)].fetch_add(1, Ordering::AcqRel);
    crate::events::on_upcall(p);
}

/// The CPU's timer interrupt.
pub fn timer<P: Platform>(p: &P) {
    TIMER_TICKS[slot(p)].fetch_add(1, Ordering::AcqRel);
}

/// IPI number `n` from a CPU.
pub fn ipi<P: Platform>(p: &P, n: u32) {
    if let Some(c) = IPIS[slot(p)].get(n as usize) {
        c.fetch_add(1, Ordering::AcqRel);
    }
}

/// IPIs number `n` this CPU took.
pub fn ipis(cpu: u32, n: u32) -> u32 {
    IPIS.get(cpu as usize).and_then(|c| c.get(n as usize)).map_or(0, |c| c.load(Ordering::Acquire))
}

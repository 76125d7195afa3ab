//! Interrupts as scenarios see them: the platform's interrupt handler calls these, and
//! scenarios wait on the counters.

use crate::Platform;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

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

/// Per CPU: the address of its registered `vcpu_info` (0: none yet).
pub static VCPU_INFO: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// The event-channel upcall interrupt (arm64 PPI 31, x86 the upcall vector). As Linux
/// does, it first clears `evtchn_upcall_pending` in the CPU's `vcpu_info`: the upcall is
/// level-like, so Keel raises it again for as long as that flag is set.
pub fn upcall<P: Platform>(p: &P) {
    let vcpu_info = VCPU_INFO[slot(p)].load(Ordering::Acquire);
    if vcpu_info != 0 {
        // SAFETY: the address of this CPU's registered vcpu_info (`events::Events`), a
        // static the guest never frees; byte 0 is evtchn_upcall_pending.
        unsafe { core::ptr::write_volatile(vcpu_info as *mut u8, 0) };
    }
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

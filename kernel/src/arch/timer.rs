//! The hypervisor's per-CPU timer.

use super::IrqNumber;

/// A monotonic counter with a one-shot deadline interrupt, per CPU.
pub trait Timer {
    /// The current counter value, in ticks.
    fn now() -> u64;
    /// Ticks per second.
    fn frequency() -> u64;
    /// Arms this CPU's deadline interrupt to fire once the counter reaches `ticks`.
    fn set_deadline(ticks: u64);
    /// Disarms this CPU's deadline interrupt.
    fn cancel();
    /// The interrupt the deadline raises, as
    /// [`InterruptController::acknowledge`](super::InterruptController::acknowledge)
    /// returns it.
    fn irq() -> IrqNumber;

    /// Nanoseconds since the counter started, without overflow for centuries.
    fn now_ns() -> u64 {
        let f = Self::frequency().max(1);
        let t = Self::now();
        (t / f) * 1_000_000_000 + (t % f) * 1_000_000_000 / f
    }
}

//! The host's physical interrupt controller.

use super::CpuId;

/// A physical interrupt number as the host's interrupt controller numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqNumber(pub u32);

/// The physical interrupt controller of the calling CPU.
pub trait InterruptController {
    /// Sets up this CPU's interface to the controller (called once per CPU).
    fn init_cpu();
    /// Unmasks `irq` for the calling CPU.
    fn enable(irq: IrqNumber);
    /// Masks `irq` for the calling CPU.
    fn disable(irq: IrqNumber);
    /// Takes the highest-priority pending interrupt, if any.
    fn acknowledge() -> Option<IrqNumber>;
    /// Signals the end of handling `irq`.
    fn end_of_interrupt(irq: IrqNumber);
    /// Ends the calling CPU's handling of `irq`, a device interrupt passed through to a
    /// guest, but leaves it active: the guest's completion of the virtual interrupt
    /// linked to it deactivates it, so the device cannot interrupt again before the
    /// guest handled it. The default, for controllers that cannot split the two, ends it.
    fn end_for_guest(irq: IrqNumber) {
        Self::end_of_interrupt(irq);
    }
    /// Takes back `irq` from a guest that is gone: masks it and clears an active state
    /// the guest never completed, from any CPU. The default masks it.
    fn reclaim(irq: IrqNumber) {
        Self::disable(irq);
    }
    /// Sends the hypervisor's wake-up IPI to `target`.
    fn send_ipi(target: CpuId);
    /// The interrupt number [`InterruptController::send_ipi`] raises, as
    /// [`InterruptController::acknowledge`] returns it.
    fn ipi_irq() -> IrqNumber;
}

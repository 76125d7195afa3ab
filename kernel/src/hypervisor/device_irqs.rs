//! Forwarding host interrupts passed through to domains (device passthrough): routed
//! when a domain that was given them is built, forwarded to its backend when they fire,
//! taken back when it is destroyed.

use super::Hypervisor;
use crate::arch::{Arch, GuestDomain, InterruptController, IrqNumber};
use crate::domain::Domain;
use alloc::string::String;
use keel_abi::xen::DomId;

impl<A: Arch> Hypervisor<'_, A> {
    /// Starts forwarding `d`'s passed-through interrupts ([`Domain::device_irqs`]): routes
    /// them to it and unmasks them at the host's controller. Refuses, naming it, an
    /// interrupt routed to another live domain, and then routes none.
    pub fn route_device_irqs(&self, d: &Domain<A>) -> Result<(), String> {
        let irqs = d.device_irqs();
        if irqs.is_empty() {
            return Ok(());
        }
        self.irq_routes.lock().add(d.id(), &irqs)?;
        for &irq in &irqs {
            A::Irq::enable(IrqNumber(irq));
        }
        log::info!("d{}: host interrupts {irqs:?} forwarded to it", d.id());
        Ok(())
    }

    /// Stops forwarding domain `id`'s interrupts: each is masked and its active state
    /// cleared (the guest may have died before completing it).
    pub fn unroute_device_irqs(&self, id: DomId) {
        let irqs = self.irq_routes.lock().remove(id);
        for &irq in &irqs {
            A::Irq::reclaim(IrqNumber(irq));
        }
        if !irqs.is_empty() {
            log::info!("d{id}: host interrupts {irqs:?} taken back");
        }
    }

    /// Whether host interrupt `irq` is routed to a domain.
    pub fn is_device_irq(&self, irq: u32) -> bool {
        self.irq_routes.lock().owner(irq).is_some()
    }

    /// Host interrupt `irq`, acknowledged and ended with
    /// [`InterruptController::end_for_guest`], goes to the domain it is routed to, whose
    /// vCPUs that now have it to receive are woken. Returns false if no live domain has
    /// it (it was destroyed meanwhile): the caller takes it back.
    pub fn forward_device_irq(&self, irq: u32) -> bool {
        let Some(d) = self.irq_routes.lock().owner(irq).and_then(|id| self.domain(id)) else { return false };
        let vcpus = d.arch().device_interrupt(irq);
        for v in (0..d.nr_vcpus()).filter(|&v| v < 128 && vcpus & (1u128 << v) != 0) {
            self.wake_vcpu(&d, v, true);
        }
        true
    }
}

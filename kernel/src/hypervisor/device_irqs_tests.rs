//! Passed-through host interrupts: one live domain each, unmasked while routed, taken
//! back when the domain is destroyed.

use crate::arch::{CpuId, IrqNumber};
use crate::domain::NoHooks;
use crate::hypervisor::Hypervisor;
use crate::mock::{sim, MockArch};
use crate::test_support::{guest, pool};
use alloc::boxed::Box;
use keel_abi::layout::AARCH64;

#[test]
fn a_device_interrupt_goes_to_one_domain_until_it_is_destroyed() {
    sim::reset(1, 0);
    let hv: &'static Hypervisor<'static, MockArch> = Box::leak(Box::new(Hypervisor::new(pool(), &NoHooks)));
    let (a, b) = (guest(hv, &AARCH64, 1, 16), guest(hv, &AARCH64, 1, 16));
    let irq = IrqNumber(40);
    assert!(hv.route_device_irqs(&a).is_ok(), "no interrupts: nothing to route");
    assert!(!hv.is_device_irq(40));
    a.set_device_irqs(alloc::vec![40]);
    b.set_device_irqs(alloc::vec![41, 40]);
    hv.route_device_irqs(&a).unwrap();
    sim::raise(CpuId(0), irq);
    assert!(sim::interrupt_pending(), "unmasked once routed");
    assert_eq!(hv.route_device_irqs(&b), Err(alloc::format!("host interrupt 40 is routed to domain {}", a.id())));
    assert!(!hv.is_device_irq(41), "refused: none of its interrupts routed");
    assert!(hv.forward_device_irq(40));
    crate::run::destroy_domain(hv, a.id()).unwrap();
    assert!(!sim::interrupt_pending(), "masked once its domain is gone");
    assert!(!hv.is_device_irq(40) && !hv.forward_device_irq(40));
    hv.route_device_irqs(&b).unwrap();
    assert!(hv.is_device_irq(40) && hv.is_device_irq(41));
}

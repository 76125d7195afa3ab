//! What the event scenarios share.

use crate::events::Events;
use crate::{expect_eq, Outcome, Platform};
use core::sync::atomic::Ordering;
use keel_abi::event::*;
use keel_abi::xen::DOMID_SELF;

/// IPI events each event scenario sends itself.
pub const ROUNDS: u32 = 200;

/// Upcall interrupts this CPU has taken.
pub fn upcalls<P: Platform>(p: &P) -> u32 {
    crate::irq::UPCALLS[(p.cpu() as usize).min(crate::irq::MAX_CPUS - 1)].load(Ordering::Acquire)
}

pub fn unmask<P: Platform>(ev: &Events<'_, P>, port: u32) -> i64 {
    ev.hv.event_op(EVTCHNOP_UNMASK, &mut EvtchnPort { port })
}

/// An interdomain pair within the domain (`alloc_unbound` + `bind_interdomain`), each
/// direction sent and received. Returns `(unbound end, bound end)`.
pub fn loopback<P: Platform>(ev: &Events<'_, P>) -> Result<(u32, u32), crate::Failure> {
    let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 };
    expect_eq!(ev.hv.event_op(EVTCHNOP_ALLOC_UNBOUND, &mut a), 0, "EVTCHNOP_alloc_unbound");
    let mut b = EvtchnBindInterdomain { remote_dom: DOMID_SELF, _pad: [0; 2], remote_port: a.port, local_port: 0 };
    expect_eq!(ev.hv.event_op(EVTCHNOP_BIND_INTERDOMAIN, &mut b), 0, "EVTCHNOP_bind_interdomain");
    let (a, b) = (a.port, b.local_port);
    ev.wait(b);
    ev.send(a)?;
    ev.wait(b);
    ev.send(b)?;
    ev.wait(a);
    Ok((a, b))
}

/// Closes `bound`; its peer `unbound` must be unbound again.
pub fn close<P: Platform>(ev: &Events<'_, P>, unbound: u32, bound: u32) -> Outcome {
    expect_eq!(ev.hv.event_op(EVTCHNOP_CLOSE, &mut EvtchnPort { port: bound }), 0, "EVTCHNOP_close");
    let mut s = EvtchnStatus { dom: DOMID_SELF, _pad: [0; 2], port: unbound, status: 0, vcpu: 0, u0: 0, u1: 0 };
    expect_eq!(ev.hv.event_op(EVTCHNOP_STATUS, &mut s), 0, "EVTCHNOP_status");
    expect_eq!(s.status, EVTCHNSTAT_UNBOUND, "status of the peer of a closed port");
    Ok(())
}

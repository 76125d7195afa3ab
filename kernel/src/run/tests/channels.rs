//! Static event channels (`xen,evtchn-v1`) connect the domains the builder made.

use super::programs::worker;
use super::world::{describe_linked, Guest, World};
use crate::event::interdomain::send;
use crate::event::{Binding, PortStatus};

extern crate std;

#[test]
fn linked_ports_are_connected_after_building() {
    let mut w = World::new(1);
    let guests = [Guest::new("a", worker(10)), Guest::new("b", worker(10)), Guest::new("c", worker(10))];
    // a:10 <-> b:11, and a:5000 <-> c:7 (above the 2-level limit: usable after FIFO).
    let built = w.boot(&describe_linked(&guests, &[(0, 10, 1, 11), (0, 5000, 2, 7)]));
    assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
    let hv = w.m.hypervisor();
    let (a, b, c) = (hv.domain(1).unwrap(), hv.domain(2).unwrap(), hv.domain(3).unwrap());
    let binding = |d: &crate::domain::Domain<_>, port| d.events.lock().ports.get(port).map(|p| p.binding);
    assert_eq!(binding(&a, 10), Some(Binding::Interdomain { remote: 2, remote_port: 11 }));
    assert_eq!(binding(&b, 11), Some(Binding::Interdomain { remote: 1, remote_port: 10 }));
    assert_eq!(binding(&a, 5000), Some(Binding::Interdomain { remote: 3, remote_port: 7 }));
    assert_eq!(binding(&c, 7), Some(Binding::Interdomain { remote: 1, remote_port: 5000 }));
    assert!(!b.events.lock().is_pending(11), "nothing is raised when connecting");
    assert_eq!(b.events.lock().status(11), Ok(PortStatus { status: 2, vcpu: 0, u0: 1, u1: 10 }));
    send(hv, &a, 10).unwrap();
    assert!(b.events.lock().is_pending(11));
    assert!(b.upcall_pending(0));
    // The next free port of `a` skips the static ones.
    assert_eq!(a.events.lock().free_port(), Ok(1));
    let ends = w.run(10_000_000);
    assert!(ends.iter().all(|e| e.is_clean()), "{ends:?}");
}

#[test]
fn a_channel_to_a_domain_not_built_is_dropped() {
    let mut w = World::new(1);
    let mut big = Guest::new("big", worker(10));
    big.memory_kib = 512 << 10; // more than the 256 MiB pool: not built
    let built = w.boot(&describe_linked(&[Guest::new("a", worker(10)), big], &[(0, 3, 1, 3)]));
    assert!(built[0].result.is_ok() && built[1].result.is_err(), "{built:?}");
    let a = w.m.hypervisor().domain(1).unwrap();
    assert_eq!(a.events.lock().ports.get(3).map(|p| p.binding), Some(Binding::Free));
    w.run(10_000_000);
}

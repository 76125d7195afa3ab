//! Two domains exchange interdomain events.

use super::programs::{ping, pong, static_side};
use super::world::{describe, lines_of, Guest, World};
use crate::domain::{DomainState, ShutdownReason};
use crate::event::PortStatus;
use keel_abi::event::{EVTCHNSTAT_CLOSED, EVTCHNSTAT_INTERDOMAIN};

const N: u64 = 10_000;

/// Runs the ping-pong on `cpus` CPUs; returns the world after both domains ended.
fn ping_pong(cpus: usize) -> World {
    let mut w = World::new(cpus);
    let before = w.pool.stats().allocated;
    let built = w.boot(&describe(&[Guest::new("pong", pong(N, 2)), Guest::new("ping", ping(N, 1, 1))]));
    assert_eq!((built[0].result.clone(), built[1].result.clone()), (Ok(1), Ok(2)));
    let ends = w.run(60_000_000_000);
    let expect = alloc::format!("count={N:016x}");
    assert_eq!(lines_of(1), core::slice::from_ref(&expect));
    assert_eq!(lines_of(2), [expect]);
    assert_eq!(ends.len(), 2);
    assert!(ends.iter().all(|e| e.state == DomainState::ShutDown(ShutdownReason::Poweroff)), "{ends:?}");
    assert_eq!(w.pool.stats().allocated, before);
    std::eprintln!(
        "ping-pong on {cpus} CPU(s): {N} round trips in {} ms of simulated time, {} vCPU switches; \
         (CPU, domain) entered: {:?}; idle steps {:?}",
        w.elapsed() / 1_000_000,
        crate::mock::sim::loads(),
        w.ran_on,
        w.idle_steps
    );
    w
}

#[test]
fn two_domains_ping_pong_ten_thousand_round_trips_on_two_cpus() {
    let answered = crate::mock::fast_answers();
    let w = ping_pong(2);
    assert!(crate::mock::fast_answers() > answered + N, "the sends took the fast path");
    let cpus: alloc::collections::BTreeSet<u32> = w.ran_on.iter().map(|&(c, _)| c).collect();
    assert_eq!(cpus.len(), 2, "both CPUs ran guests: {:?}", w.ran_on);
    // Some waits found the partner's answer only after the CPU went idle: those took a
    // real switch out, a halt, and a wake-up by IPI.
    assert!(w.idle_steps.iter().sum::<u64>() > 0 && crate::mock::sim::loads() > 2, "{:?}", w.idle_steps);
}

/// The same with vCPUs that do not latch the upcall level (the core sets it before
/// every entry and never takes its short return path), as a backend may choose.
#[test]
fn two_domains_ping_pong_on_two_cpus_without_the_short_return_path() {
    crate::mock::latch_upcall(false);
    let w = ping_pong(2);
    crate::mock::latch_upcall(true);
    assert_eq!(w.ran_on.iter().map(|&(c, _)| c).collect::<alloc::collections::BTreeSet<u32>>().len(), 2);
}

/// The same with every hypercall an exit to the loop (no fast path), as a backend may
/// run; with it (the default), the sends and the polls' checks are answered in the vCPU.
#[test]
fn two_domains_ping_pong_on_two_cpus_without_the_fast_path() {
    crate::mock::fast_path(false);
    let answered = crate::mock::fast_answers();
    let w = ping_pong(2);
    crate::mock::fast_path(true);
    assert_eq!(crate::mock::fast_answers(), answered);
    assert_eq!(w.ran_on.iter().map(|&(c, _)| c).collect::<alloc::collections::BTreeSet<u32>>().len(), 2);
}

#[test]
fn two_domains_ping_pong_on_one_cpu_block_and_switch() {
    let w = ping_pong(1);
    assert_eq!(w.ran_on.len(), 2);
    // Every round trip blocks each side once and switches to the other.
    assert!(crate::mock::sim::loads() >= 2 * N, "{} switches", crate::mock::sim::loads());
}

/// Two domains connected by a static event channel (`xen,evtchn-v1` on both sides):
/// the builder binds the ports before either runs, and they ping-pong over them.
#[test]
fn static_event_channel_connects_two_domains_before_they_run() {
    let mut w = World::new(2);
    let a = Guest { evtchn: alloc::vec![(10, 1, 11)], ..Guest::new("alpha", static_side(1000, 10, true)) };
    let b = Guest { evtchn: alloc::vec![(11, 0, 10)], ..Guest::new("beta", static_side(1000, 11, false)) };
    let built = w.boot(&describe(&[a, b]));
    assert_eq!((built[0].result.clone(), built[1].result.clone()), (Ok(1), Ok(2)));
    let hv = w.m.hypervisor();
    let status = |d: u16, port: u32| hv.domain(d).unwrap().events.lock().status(port).unwrap();
    assert_eq!(status(1, 10), PortStatus { status: EVTCHNSTAT_INTERDOMAIN, vcpu: 0, u0: 2, u1: 11 });
    assert_eq!(status(2, 11), PortStatus { status: EVTCHNSTAT_INTERDOMAIN, vcpu: 0, u0: 1, u1: 10 });
    let ends = w.run(10_000_000_000);
    assert!(ends.iter().all(|e| e.state == DomainState::ShutDown(ShutdownReason::Poweroff)), "{ends:?}");
    let expect = alloc::format!("count={:016x}", 1000);
    assert_eq!(lines_of(1), core::slice::from_ref(&expect));
    assert_eq!(lines_of(2), [expect]);
}

/// A static channel whose port is taken, out of the 2-level range, or whose peer was
/// not built is left unconnected; the domains still run.
#[test]
fn static_event_channels_that_cannot_connect_are_skipped() {
    let w = World::new(1);
    let a = Guest { evtchn: alloc::vec![(5000, 1, 7)], ..Guest::new("alpha", static_side(1, 5000, false)) };
    let b = Guest { evtchn: alloc::vec![(7, 0, 5000)], ..Guest::new("beta", static_side(1, 7, false)) };
    let built = w.boot(&describe(&[a, b]));
    assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
    let hv = w.m.hypervisor();
    // Port 5000 is beyond the 2-level ABI in force at build: neither side is bound.
    assert_eq!(hv.domain(2).unwrap().events.lock().status(7).map(|s| s.status), Ok(EVTCHNSTAT_CLOSED));
    assert!(hv.domain(1).unwrap().events.lock().status(5000).is_err());
}

extern crate std;

//! Two domains exchange interdomain events.

use super::programs::{ping, pong};
use super::world::{describe, lines_of, Guest, World};
use crate::domain::{DomainState, ShutdownReason};

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
    let w = ping_pong(2);
    let cpus: alloc::collections::BTreeSet<u32> = w.ran_on.iter().map(|&(c, _)| c).collect();
    assert_eq!(cpus.len(), 2, "both CPUs ran guests: {:?}", w.ran_on);
    // Some waits found the partner's answer only after the CPU went idle: those took a
    // real switch out, a halt, and a wake-up by IPI.
    assert!(w.idle_steps.iter().sum::<u64>() > 0 && crate::mock::sim::loads() > 2, "{:?}", w.idle_steps);
}

#[test]
fn two_domains_ping_pong_on_one_cpu_block_and_switch() {
    let w = ping_pong(1);
    assert_eq!(w.ran_on.len(), 2);
    // Every round trip blocks each side once and switches to the other.
    assert!(crate::mock::sim::loads() >= 2 * N, "{} switches", crate::mock::sim::loads());
}

extern crate std;

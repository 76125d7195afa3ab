//! vCPU timers: `SCHEDOP_poll` timeouts and the one-shot timer's VIRQ_TIMER.

use super::programs::{poll_signalled, poll_timeout, signaller, singleshot};
use super::world::{describe, lines_of, Guest, World};

fn printed(domain: u16, prefix: &str) -> u64 {
    let lines = lines_of(domain);
    let line = lines.iter().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix} in {lines:?}"));
    let ns = u64::from_str_radix(line, 16).unwrap();
    std::eprintln!("d{domain} {prefix}{ns} ns");
    ns
}

extern crate std;

#[test]
fn poll_with_a_timeout_returns_after_the_timeout() {
    let mut w = World::new(2);
    w.boot(&describe(&[Guest::new("poller", poll_timeout(5_000_000))]));
    let ends = w.run(50_000_000);
    assert!(ends[0].is_clean(), "{ends:?}");
    let waited = printed(1, "polled=");
    assert!((5_000_000..5_200_000).contains(&waited), "waited {waited} ns");
}

#[test]
fn poll_returns_when_the_polled_port_becomes_pending() {
    let mut w = World::new(2);
    // The signaller spins 10 000 steps (2 ms) after binding, then sends.
    w.boot(&describe(&[
        Guest::new("poller", poll_signalled(50_000_000, 2)),
        Guest::new("sig", signaller(1, 1, 10_000)),
    ]));
    let ends = w.run(100_000_000);
    assert!(ends.iter().all(|e| e.is_clean()), "{ends:?}");
    let waited = printed(1, "polled=");
    assert!((2_000_000..3_000_000).contains(&waited), "waited {waited} ns");
}

#[test]
fn the_singleshot_timer_raises_virq_timer() {
    let mut w = World::new(1);
    w.boot(&describe(&[Guest::new("timer", singleshot(2_000_000))]));
    let ends = w.run(50_000_000);
    assert!(ends[0].is_clean(), "{ends:?}");
    let took = printed(1, "fired=");
    assert!((2_000_000..2_200_000).contains(&took), "fired after {took} ns");
}

/// A halt with the guest's own timer armed (`Vcpu::halt_deadline`) ends when that timer
/// is due, though nothing else wakes the vCPU.
#[test]
fn a_halt_ends_at_the_guests_own_timer() {
    let mut w = super::world::World::new(1);
    let built =
        w.boot(&super::world::describe(&[super::world::Guest::new("nap", super::programs::sleeper(5_000_000))]));
    assert_eq!(built[0].result, Ok(1));
    let ends = w.run(1_000_000_000);
    assert!(ends[0].is_clean(), "{ends:?}");
    let line = super::world::lines_of(1).pop().unwrap();
    let slept = u64::from_str_radix(line.trim_start_matches("slept="), 16).unwrap();
    assert!((5_000_000..6_000_000).contains(&slept), "the shortest halt took {slept} ns");
}

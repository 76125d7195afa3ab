//! The run loop's short return path (`run/pending.rs`): whatever happens while a vCPU
//! loops on exits that take it, from whichever CPU, reaches the vCPU.

use super::programs::{timer_spinner, upcall_spinner, worker};
use super::world::{describe, lines_of, Guest, World};
use crate::arch::CpuId;
use crate::event::Wake;
use crate::mock::sim;
use core::cell::Cell;
use proptest::prelude::*;

extern crate std;

const SEEN: &str = "seen=0000000000000001";

/// Boots the spinner (domain 1), beside a worker on another domain if `noise`; runs
/// until it is ready and `after` more steps passed.
fn spinning(cpus: usize, noise: bool, after: u64) -> World {
    let mut w = World::new(cpus);
    let mut guests = alloc::vec![Guest::new("spin", upcall_spinner())];
    if noise {
        guests.push(Guest::new("noise", worker(100_000)));
    }
    w.boot(&describe(&guests));
    let steps = Cell::new(0u64);
    let ready = w.run_until(50_000_000, |_| {
        if !lines_of(1).is_empty() {
            steps.set(steps.get() + 1);
        }
        steps.get() > after
    });
    assert!(ready && lines_of(1) == ["ready=0000000000000001"], "{:?}", lines_of(1));
    w
}

/// Marks domain 1's vCPU 0 upcall as an event sent on CPU `from` would.
fn send_upcall(w: &World, from: u32) {
    sim::set_current(CpuId(from));
    let d = w.m.guest(1).unwrap().domain.clone();
    let marked = d.events.lock().mark_pending(0);
    w.m.hypervisor().apply(&d, Wake { upcall: marked.then_some(0), pending_port: None });
}

#[test]
fn an_event_reaches_a_vcpu_that_only_makes_hypercalls() {
    let mut w = spinning(1, false, 100);
    send_upcall(&w, 0);
    let ends = w.run(50_000_000);
    assert!(ends[0].is_clean(), "{ends:?}");
    assert_eq!(lines_of(1).last().map(|s| s.as_str()), Some(SEEN));
}

/// A vCPU whose hypercalls the fast path answers still loses its CPU at its slice's
/// end: two spinners that make nothing but null hypercalls share one CPU and both get
/// to print `ready`.
#[test]
fn two_vcpus_that_only_make_fast_hypercalls_share_one_cpu() {
    let mut w = World::new(1);
    let answered = crate::mock::fast_answers();
    w.boot(&describe(&[Guest::new("one", upcall_spinner()), Guest::new("two", upcall_spinner())]));
    let both = w.run_until(500_000_000, |_| !lines_of(1).is_empty() && !lines_of(2).is_empty());
    assert!(both, "{:?} {:?}", lines_of(1), lines_of(2));
    assert!(crate::mock::fast_answers() > answered + 1000, "the spinners' calls took the fast path");
    assert!(crate::mock::sim::loads() >= 2, "the CPU switched between them");
}

/// Without the fast path (every hypercall an exit to the loop), as a backend may run.
#[test]
fn an_event_reaches_a_vcpu_that_only_makes_hypercalls_without_the_fast_path() {
    crate::mock::fast_path(false);
    let answered = crate::mock::fast_answers();
    let mut w = spinning(1, false, 100);
    send_upcall(&w, 0);
    let ends = w.run(50_000_000);
    crate::mock::fast_path(true);
    assert!(ends[0].is_clean(), "{ends:?}");
    assert_eq!(lines_of(1).last().map(|s| s.as_str()), Some(SEEN));
    assert_eq!(crate::mock::fast_answers(), answered);
}

#[test]
fn a_timer_armed_by_a_hypercall_fires_while_the_vcpu_only_makes_hypercalls() {
    let mut w = World::new(1);
    w.boot(&describe(&[Guest::new("timer", timer_spinner(2_000_000))]));
    let ends = w.run(50_000_000);
    assert!(ends[0].is_clean(), "{ends:?}");
    assert_eq!(lines_of(1), ["fired=0000000000000001"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Over interleavings of the spinner's exits with an event sent from either CPU at
    /// any step, on one or two CPUs, with or without another domain taking timer and
    /// scheduling work, with hypercalls answered on the fast path or not: the event is
    /// never lost (the spinner would spin for ever).
    #[test]
    fn an_event_sent_at_any_step_from_any_cpu_is_never_lost(
        cpus in 1usize..=2,
        from in 0u32..2,
        after in 0u64..400,
        noise in any::<bool>(),
        fast in any::<bool>(),
    ) {
        crate::mock::fast_path(fast);
        let mut w = spinning(cpus, noise, after);
        send_upcall(&w, from % cpus as u32);
        let ends = w.run(200_000_000);
        crate::mock::fast_path(true);
        prop_assert!(ends.iter().all(|e| e.is_clean()), "{:?}", ends);
        let lines = lines_of(1);
        prop_assert_eq!(lines.last().map(|s| s.as_str()), Some(SEEN));
    }
}

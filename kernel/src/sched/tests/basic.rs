//! Semantics of single operations: block, wake, poll timeouts, pause, shutdown, yield,
//! affinity, caps and parameter validation.

use crate::arch::CpuId;
use crate::sched::{BlockOutcome, CpuMask, RunState, SchedConfig, SchedError, Scheduler, VcpuKey, VcpuParams};

const MS: u64 = 1_000_000;

fn key(d: u16, v: u32) -> VcpuKey {
    VcpuKey::new(d, v)
}

fn pinned(cpu: u32) -> VcpuParams {
    VcpuParams { affinity: CpuMask::of(&[cpu]), ..Default::default() }
}

/// A scheduler with `keys` started, each pinned to CPU 0.
fn one_cpu(keys: &[VcpuKey]) -> Scheduler {
    let s = Scheduler::new(1, SchedConfig::default()).unwrap();
    for &k in keys {
        s.add_vcpu(k, pinned(0)).unwrap();
        s.start(k, 0).unwrap();
    }
    s
}

#[test]
fn validates_parameters() {
    let s = Scheduler::new(2, SchedConfig::default()).unwrap();
    let k = key(1, 0);
    assert_eq!(s.add_vcpu(k, VcpuParams { weight: 0, ..Default::default() }), Err(SchedError::InvalidWeight));
    assert_eq!(s.add_vcpu(k, VcpuParams { cap: 101, ..Default::default() }), Err(SchedError::InvalidCap));
    assert_eq!(
        s.add_vcpu(k, VcpuParams { affinity: CpuMask::of(&[2, 7]), ..Default::default() }),
        Err(SchedError::EmptyAffinity)
    );
    assert_eq!(s.add_vcpu(k, VcpuParams::default()), Ok(()));
    assert_eq!(s.add_vcpu(k, VcpuParams::default()), Err(SchedError::DuplicateVcpu));
    assert_eq!(s.set_affinity(k, CpuMask::EMPTY, 0), Err(SchedError::EmptyAffinity));
    assert_eq!(s.unpause(k, 0), Err(SchedError::NotPaused));
    assert_eq!(s.wake(key(9, 9), 0), None);
    assert_eq!(s.pause(key(9, 9)), Err(SchedError::UnknownVcpu));
    assert_eq!(Scheduler::new(0, SchedConfig::default()).err(), Some(SchedError::InvalidCpuCount));
    assert_eq!(Scheduler::new(257, SchedConfig::default()).err(), Some(SchedError::InvalidCpuCount));
}

#[test]
fn offline_vcpus_never_run_until_started() {
    let s = Scheduler::new(1, SchedConfig::default()).unwrap();
    let k = key(1, 0);
    s.add_vcpu(k, VcpuParams::default()).unwrap();
    assert_eq!(s.pick_next(CpuId(0), 0).run, None);
    assert_eq!(s.wake(k, 0), None, "waking an offline vCPU does nothing");
    assert_eq!(s.start(k, 1).unwrap(), Some(CpuId(0)), "the idle CPU is kicked");
    assert_eq!(s.pick_next(CpuId(0), 2).run, Some(k));
    assert_eq!(s.shutdown(k).unwrap(), Some(CpuId(0)), "its CPU must switch away");
    assert_eq!(s.remove_vcpu(k), Err(SchedError::VcpuOnCpu));
    let d = s.pick_next(CpuId(0), 3);
    assert_eq!((d.run, d.until), (None, None), "idle with nothing to wait for");
    assert_eq!(s.info(k).unwrap().state, RunState::Offline);
    assert_eq!(s.remove_vcpu(k), Ok(()));
    assert_eq!(s.info(k), None);
    s.check_invariants().unwrap();
}

#[test]
fn block_wake_and_pending_events() {
    let (a, b) = (key(1, 0), key(2, 0));
    let s = one_cpu(&[a, b]);
    let first = s.pick_next(CpuId(0), 0).run.unwrap();
    let other = if first == a { b } else { a };
    let r = s.block(first, MS, || true).unwrap();
    assert_eq!((r.outcome, r.resched), (BlockOutcome::EventPending, None), "a pending event prevents blocking");
    assert_eq!(s.info(first).unwrap().state, RunState::Runnable);
    let r = s.block(first, MS, || false).unwrap();
    assert_eq!((r.outcome, r.resched), (BlockOutcome::Blocked, Some(CpuId(0))));
    assert_eq!(s.pick_next(CpuId(0), MS).run, Some(other));
    for t in 2..20 {
        assert_eq!(s.pick_next(CpuId(0), t * MS).run, Some(other), "a blocked vCPU is never picked");
    }
    assert_eq!(s.wake(first, 20 * MS), Some(CpuId(0)), "a boosted wake preempts the busy CPU");
    assert_eq!(s.wake(first, 20 * MS), None, "a second wake is a no-op");
    let d = s.pick_next(CpuId(0), 20 * MS + 1);
    assert_eq!(d.run, Some(first), "{d:?}");
    s.check_invariants().unwrap();
}

#[test]
fn poll_timeout_wakes_at_the_deadline() {
    let a = key(1, 0);
    let s = one_cpu(&[a]);
    assert_eq!(s.pick_next(CpuId(0), 0).run, Some(a));
    let r = s.block_until(a, MS, Some(MS), || false).unwrap();
    assert_eq!(r.outcome, BlockOutcome::TimedOut, "a deadline already reached does not block");
    let r = s.block_until(a, MS, Some(5 * MS), || false).unwrap();
    assert_eq!(r.outcome, BlockOutcome::Blocked);
    let d = s.pick_next(CpuId(0), MS);
    assert_eq!((d.run, d.until), (None, Some(5 * MS)), "idle until the poll deadline");
    assert_eq!(s.pick_next(CpuId(0), 5 * MS - 1).run, None);
    assert_eq!(s.pick_next(CpuId(0), 5 * MS).run, Some(a), "the timeout woke it");
    // Woken by an event before the deadline: the timer is gone.
    s.block_until(a, 6 * MS, Some(9 * MS), || false).unwrap();
    assert_eq!(s.pick_next(CpuId(0), 6 * MS).until, Some(9 * MS));
    assert_eq!(s.wake(a, 7 * MS), Some(CpuId(0)));
    assert_eq!(s.pick_next(CpuId(0), 7 * MS).run, Some(a));
    s.block(a, 8 * MS, || false).unwrap();
    assert_eq!(s.pick_next(CpuId(0), 8 * MS), crate::sched::Decision { run: None, until: None, kick: CpuMask::EMPTY });
    assert_eq!(s.pick_next(CpuId(0), 9 * MS).run, None, "the cancelled deadline does not fire");
    s.check_invariants().unwrap();
}

#[test]
fn pause_nests_and_holds_off_the_cpu() {
    let (a, b) = (key(1, 0), key(1, 1));
    let s = one_cpu(&[a, b]);
    let first = s.pick_next(CpuId(0), 0).run.unwrap();
    assert_eq!(s.pause(first).unwrap(), Some(CpuId(0)), "pausing a running vCPU reschedules its CPU");
    assert_eq!(s.pause(first).unwrap(), Some(CpuId(0)));
    assert!(s.info(first).unwrap().on_cpu, "still on the CPU until it decides");
    let other = s.pick_next(CpuId(0), MS).run.unwrap();
    assert_ne!(other, first);
    assert!(!s.info(first).unwrap().on_cpu);
    assert_eq!(s.unpause(first, 2 * MS).unwrap(), None, "paused twice, unpaused once");
    for t in 2..30 {
        assert_ne!(s.pick_next(CpuId(0), t * MS).run, Some(first), "a paused vCPU is never picked");
    }
    // A paused vCPU that blocks and is woken stays off the CPU.
    s.block(first, 30 * MS, || false).unwrap();
    assert_eq!(s.wake(first, 30 * MS), None);
    assert!(s.unpause(first, 31 * MS).unwrap().is_some());
    let picked: alloc::vec::Vec<_> = (31..40).map(|t| s.pick_next(CpuId(0), t * MS).run).collect();
    assert!(picked.contains(&Some(first)), "runs again after the last unpause: {picked:?}");
    s.check_invariants().unwrap();
}

#[test]
fn yield_lets_the_others_run_once() {
    let (a, b) = (key(1, 0), key(2, 0));
    let s = one_cpu(&[a]);
    assert_eq!(s.pick_next(CpuId(0), 0).run, Some(a));
    assert_eq!(s.yield_now(CpuId(0), MS).run, Some(a), "alone, a yield changes nothing");
    s.add_vcpu(b, pinned(0)).unwrap();
    s.start(b, MS).unwrap();
    let d = s.pick_next(CpuId(0), MS + 1);
    let cur = d.run.unwrap();
    let other = if cur == a { b } else { a };
    assert_eq!(s.yield_now(CpuId(0), MS + 2).run, Some(other));
    // Only once: when the other's slice ends, the yielder runs again.
    let slice = SchedConfig::default().slice_ns;
    assert_eq!(s.pick_next(CpuId(0), MS + 2 + slice).run, Some(cur), "the yielder is not passed over again");
    s.check_invariants().unwrap();
}

#[test]
fn affinity_change_moves_running_and_waiting_vcpus() {
    let s = Scheduler::new(2, SchedConfig::default()).unwrap();
    let (a, b) = (key(1, 0), key(1, 1));
    s.add_vcpu(a, pinned(0)).unwrap();
    s.add_vcpu(b, pinned(0)).unwrap();
    s.start(a, 0).unwrap();
    s.start(b, 0).unwrap();
    let cur = s.pick_next(CpuId(0), 0).run.unwrap();
    let waiting = if cur == a { b } else { a };
    // The waiting one moves at once and CPU 1 (idle) is kicked.
    assert_eq!(s.set_affinity(waiting, CpuMask::of(&[1]), MS).unwrap(), Some(CpuId(1)));
    assert_eq!(s.info(waiting).unwrap().cpu, CpuId(1));
    assert_eq!(s.pick_next(CpuId(1), MS).run, Some(waiting));
    // The running one moves when its CPU decides; CPU 1 is then kicked to take it.
    assert_eq!(s.set_affinity(cur, CpuMask::of(&[1]), 2 * MS).unwrap(), Some(CpuId(0)));
    let d = s.pick_next(CpuId(0), 2 * MS);
    assert_eq!(d.run, None);
    assert!(d.kick.contains(CpuId(1)), "{d:?}");
    assert_eq!(s.info(cur).unwrap().cpu, CpuId(1));
    s.check_invariants().unwrap();
}

#[test]
fn cap_throttles_until_the_next_period() {
    let cfg = SchedConfig::default();
    let s = Scheduler::new(1, cfg).unwrap();
    let k = key(1, 0);
    s.add_vcpu(k, VcpuParams { cap: 30, ..Default::default() }).unwrap();
    s.start(k, 0).unwrap();
    let d = s.pick_next(CpuId(0), 0);
    assert_eq!((d.run, d.until), (Some(k), Some(3 * MS)), "runs until its budget is spent");
    let d = s.pick_next(CpuId(0), 3 * MS);
    assert_eq!((d.run, d.until), (None, Some(cfg.cap_period_ns)), "idle until the refill");
    assert!(s.info(k).unwrap().throttled);
    assert!(s.account(CpuId(0), cfg.cap_period_ns));
    let d = s.pick_next(CpuId(0), cfg.cap_period_ns);
    assert_eq!(d.run, Some(k));
    // Lifting the cap lets it run on.
    s.set_weight_cap(k, 256, 0, cfg.cap_period_ns + MS).unwrap();
    assert_eq!(s.pick_next(CpuId(0), cfg.cap_period_ns + 4 * MS).until, None);
    s.check_invariants().unwrap();
}

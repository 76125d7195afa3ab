//! Per-CPU pending work: what makes a CPU's run loop do more than enter its vCPU again
//! (Xen's softirqs).
//!
//! Whoever makes a condition true that a CPU's loop must act on raises its bit for that
//! CPU, where the condition arises, and then interrupts that CPU if it is another one
//! (the wake-up IPI makes a running guest exit). The loop's short return path re-enters
//! the guest only while no bit is raised for its CPU ([`PendingWork::peek`]); the full
//! iteration takes every bit at its start ([`PendingWork::take`]) and then does all of
//! its work, so a bit raised at any moment is acted on by the first full iteration that
//! starts after it: never lost, at worst handled once more than needed.

use crate::arch::CpuId;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, Ordering};

/// A set of kinds of pending work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work(u32);

impl Work {
    /// Nothing.
    pub const NONE: Work = Work(0);
    /// Call the scheduler's `pick_next` before entering a guest again.
    pub const RESCHED: Work = Work(1);
    /// The running vCPU yields: decide with `yield_now`.
    pub const YIELD: Work = Work(1 << 1);
    /// The vCPU timers filed under the CPU changed: fire the due ones, arm the timer again.
    pub const TIMERS: Work = Work(1 << 2);
    /// The running vCPU's event upcall level (or its route) may have changed: read it again.
    pub const UPCALL: Work = Work(1 << 3);
    /// A domain stopped: reap it once its vCPUs are off every CPU.
    pub const REAP: Work = Work(1 << 4);

    /// Whether every kind in `other` is in `self`.
    pub fn contains(self, other: Work) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets.
    pub fn with(self, other: Work) -> Work {
        Work(self.0 | other.0)
    }

    /// `self` without the kinds in `other`.
    pub fn without(self, other: Work) -> Work {
        Work(self.0 & !other.0)
    }
}

/// One word of pending work per CPU.
#[derive(Debug)]
pub struct PendingWork {
    cpus: Box<[AtomicU32]>,
}

impl PendingWork {
    /// No work pending on CPUs `0..nr_cpus`.
    pub fn new(nr_cpus: usize) -> Self {
        PendingWork { cpus: (0..nr_cpus.max(1)).map(|_| AtomicU32::new(0)).collect() }
    }

    /// Raises `work` for `cpu` (a CPU out of range has none and is ignored). What the
    /// caller changed before raising is seen by the loop that takes the bit.
    pub fn raise(&self, cpu: CpuId, work: Work) {
        if let Some(w) = self.cpus.get(cpu.0 as usize) {
            w.fetch_or(work.0, Ordering::AcqRel);
        }
    }

    /// Raises `work` for every CPU.
    pub fn raise_all(&self, work: Work) {
        for w in self.cpus.iter() {
            w.fetch_or(work.0, Ordering::AcqRel);
        }
    }

    /// The work pending for `cpu`, left pending.
    pub fn peek(&self, cpu: CpuId) -> Work {
        self.cpus.get(cpu.0 as usize).map_or(Work::NONE, |w| Work(w.load(Ordering::Acquire)))
    }

    /// Takes the work pending for `cpu`: afterwards none is, until raised again.
    pub fn take(&self, cpu: CpuId) -> Work {
        self.cpus.get(cpu.0 as usize).map_or(Work::NONE, |w| Work(w.swap(0, Ordering::AcqRel)))
    }

    /// Takes only the kinds in `work` pending for `cpu`; returns those that were.
    pub fn take_some(&self, cpu: CpuId, work: Work) -> Work {
        self.cpus.get(cpu.0 as usize).map_or(Work::NONE, |w| Work(w.fetch_and(!work.0, Ordering::AcqRel) & work.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KINDS: [Work; 5] = [Work::RESCHED, Work::YIELD, Work::TIMERS, Work::UPCALL, Work::REAP];

    /// What may happen on the machine, in any order.
    #[derive(Clone, Copy, Debug)]
    enum Event {
        /// Something raises a kind of work for a CPU.
        Raise { cpu: u32, kind: usize },
        /// That CPU's guest exits: its loop peeks, and re-enters at once if nothing is
        /// pending, else runs a full iteration (which takes the work first).
        Exit { cpu: u32 },
        /// The loop takes only the upcall kind (the loop's middle path).
        TakeUpcall { cpu: u32 },
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0u32..3, 0usize..KINDS.len()).prop_map(|(cpu, kind)| Event::Raise { cpu, kind }),
            (0u32..3).prop_map(|cpu| Event::Exit { cpu }),
            (0u32..3).prop_map(|cpu| Event::TakeUpcall { cpu }),
        ]
    }

    proptest! {
        /// Over any interleaving of raises and exits, every raised kind is handed to
        /// exactly the first iteration of its CPU that takes it after the raise: the
        /// short path never swallows work, and a raise is never handed out twice.
        #[test]
        fn a_raised_kind_is_never_lost(events in proptest::collection::vec(event(), 1..200)) {
            let p = PendingWork::new(3);
            // The model: per CPU and kind, raised and not yet handed to an iteration.
            let mut owed = [[false; KINDS.len()]; 3];
            for e in events {
                match e {
                    Event::Raise { cpu, kind } => {
                        p.raise(CpuId(cpu), KINDS[kind]);
                        owed[cpu as usize][kind] = true;
                    }
                    Event::Exit { cpu } => {
                        let pending = p.peek(CpuId(cpu));
                        let any = owed[cpu as usize].iter().any(|&o| o);
                        prop_assert_eq!(pending.is_empty(), !any, "the short path must see owed work");
                        if !pending.is_empty() {
                            let got = p.take(CpuId(cpu));
                            for (k, kind) in KINDS.iter().enumerate() {
                                prop_assert_eq!(got.contains(*kind), owed[cpu as usize][k]);
                                owed[cpu as usize][k] = false;
                            }
                            prop_assert!(p.peek(CpuId(cpu)).is_empty());
                        }
                    }
                    Event::TakeUpcall { cpu } => {
                        let k = 3;
                        let got = p.take_some(CpuId(cpu), Work::UPCALL);
                        prop_assert_eq!(got.contains(Work::UPCALL), owed[cpu as usize][k]);
                        owed[cpu as usize][k] = false;
                        for (o, kind) in KINDS.iter().enumerate().filter(|&(o, _)| o != k) {
                            prop_assert_eq!(p.peek(CpuId(cpu)).contains(*kind), owed[cpu as usize][o]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn raise_all_reaches_every_cpu_and_out_of_range_is_ignored() {
        let p = PendingWork::new(2);
        p.raise(CpuId(7), Work::RESCHED);
        assert_eq!(p.peek(CpuId(7)), Work::NONE);
        p.raise_all(Work::REAP);
        assert!(p.take(CpuId(0)).contains(Work::REAP));
        assert!(p.take(CpuId(1)).contains(Work::REAP));
        assert!(p.take(CpuId(1)).is_empty());
    }
}

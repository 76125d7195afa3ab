//! The scheduler's internal invariants, checked after every step of the tests.

use crate::arch::CpuId;
use crate::sched::types::RunState;
use crate::sched::{Location, Scheduler};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

impl Scheduler {
    /// Checks, with no operation in flight:
    /// - the directory and the run queues agree: every vCPU is owned by exactly one queue;
    /// - a queued vCPU can run (started, not blocked, not paused, within its cap) on that
    ///   queue's CPU, and is not the running one; the queue counts match;
    /// - a vCPU that can run is queued, running, or waiting for its cap refill (none is
    ///   lost); a blocked vCPU has a timer exactly when it has a deadline;
    /// - a vCPU that is not running sits in a queue its affinity allows.
    pub fn check_invariants(&self) -> Result<(), String> {
        // Lock order: every run queue, then the directory.
        let queues: Vec<_> = self.queues.iter().map(|q| q.lock()).collect();
        let dir = self.directory.lock();
        let mut owned = 0;
        for (cpu, rq) in queues.iter().enumerate() {
            let here = CpuId(cpu as u32);
            let mut queued = 0;
            if let Some(c) = rq.current() {
                rq.get(c).ok_or(format!("cpu{cpu}: current slot {c} is empty"))?;
            }
            for (slot, e) in rq.entities() {
                owned += 1;
                let k = e.key;
                let want = Location { cpu: cpu as u32, slot };
                if dir.get(&k) != Some(&want) {
                    return Err(format!("{k}: directory says {:?}, found at {want:?}", dir.get(&k)));
                }
                if e.in_transit {
                    return Err(format!("{k}: left in transit"));
                }
                let running = rq.current() == Some(slot);
                if rq.is_queued(slot) {
                    queued += 1;
                    if running || !e.wants_cpu() || e.throttled() || !e.params.affinity.contains(here) {
                        return Err(format!("{k}: queued on cpu{cpu} but cannot run there: {e:?}"));
                    }
                } else if !running && e.wants_cpu() && !e.throttled() {
                    return Err(format!("{k}: runnable on cpu{cpu} but neither queued nor running: {e:?}"));
                }
                if !running && e.wants_cpu() && e.throttled() && !rq.has_timer(slot) {
                    return Err(format!("{k}: throttled without a refill timer"));
                }
                if e.state == RunState::Blocked && e.deadline.is_some() != rq.has_timer(slot) {
                    return Err(format!("{k}: blocked, deadline {:?}, timer {}", e.deadline, rq.has_timer(slot)));
                }
                if !running && !e.params.affinity.contains(here) {
                    return Err(format!("{k}: waits on cpu{cpu} outside its affinity {:?}", e.params.affinity));
                }
            }
            if queued != rq.waiting() {
                return Err(format!("cpu{cpu}: {queued} queued vCPUs, queue length {}", rq.waiting()));
            }
        }
        if owned != dir.len() {
            return Err(format!("{owned} vCPUs in queues, {} in the directory", dir.len()));
        }
        Ok(())
    }
}

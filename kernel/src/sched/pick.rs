//! The per-CPU decision: charge the running vCPU, fire due timers, choose what runs
//! next, balance, and say how long until the next decision.

use super::types::{CpuMask, Decision};
use super::Scheduler;
use crate::arch::CpuId;
use core::sync::atomic::Ordering;
use spin::MutexGuard;

use super::runqueue::RunQueue;

impl Scheduler {
    /// Decides what `cpu` runs from `now` on. Call it when the timer armed for the last
    /// decision fires, after the wake-up IPI, and whenever the running vCPU blocked,
    /// yielded, was paused or shut down. If `run` is the vCPU already running, resume it.
    pub fn pick_next(&self, cpu: CpuId, now: u64) -> Decision {
        let c = cpu.0 as usize;
        let mut kick = CpuMask::EMPTY;
        let Some(queue) = self.queues.get(c) else {
            return Decision { run: None, until: None, kick };
        };
        let mut rq = queue.lock();
        rq.account(now);
        rq.expire_timers(now);
        if rq.keeps_current(now) {
            rq.renew_slice(now);
            return self.decide(c, rq, now, kick);
        }
        if let Some(exile) = rq.switch_out(now) {
            let key = rq.get(exile).map(|e| e.key);
            drop(rq);
            if let Some(k) = key.and_then(|key| self.relocate(c, exile, key, now, false)) {
                kick.insert(k);
            }
            rq = queue.lock();
        }
        if rq.waiting() == 0 {
            // Announce idleness before looking for work, so that a CPU queueing work
            // concurrently either is seen here or sees this CPU idle and kicks it.
            self.idle[c].store(true, Ordering::SeqCst);
            self.publish(c, &rq);
            drop(rq);
            self.steal(c, now);
            rq = queue.lock();
        }
        rq.switch_in(now);
        if rq.waiting() > 0 && now >= rq.next_balance {
            rq.next_balance = now.saturating_add(self.cfg.balance_interval_ns);
            self.publish(c, &rq);
            drop(rq);
            if let Some(k) = self.push_excess(c, now) {
                kick.insert(k);
            }
            rq = queue.lock();
        }
        kick.remove(cpu);
        self.decide(c, rq, now, kick)
    }

    fn decide(&self, cpu: usize, mut rq: MutexGuard<'_, RunQueue>, now: u64, kick: CpuMask) -> Decision {
        let run = rq.current().and_then(|s| rq.get(s)).map(|e| e.key);
        let until = rq.until(now);
        rq.armed = until;
        self.idle[cpu].store(run.is_none(), Ordering::SeqCst);
        self.publish(cpu, &rq);
        Decision { run, until, kick }
    }

    /// Charges the vCPU running on `cpu` up to `now`. Returns whether `cpu` should call
    /// [`Scheduler::pick_next`]: its slice or budget ran out, a timer is due, a boosted
    /// vCPU waits, or the running vCPU can no longer run here.
    pub fn account(&self, cpu: CpuId, now: u64) -> bool {
        let Some(queue) = self.queues.get(cpu.0 as usize) else { return false };
        let mut rq = queue.lock();
        rq.account(now);
        match rq.current() {
            None => rq.timers_due(now) || rq.waiting() > 0,
            Some(_) => rq.timers_due(now) || !rq.keeps_current(now),
        }
    }

    /// `SCHEDOP_yield`: the vCPU running on `cpu` lets every other vCPU waiting there
    /// run first, once, without losing its place in virtual time; then decides.
    pub fn yield_now(&self, cpu: CpuId, now: u64) -> Decision {
        if let Some(queue) = self.queues.get(cpu.0 as usize) {
            queue.lock().yield_current();
        }
        self.pick_next(cpu, now)
    }
}

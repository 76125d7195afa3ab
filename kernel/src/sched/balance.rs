//! Placement and migration between run queues: where a waking vCPU goes, moving a vCPU
//! whose affinity changed, idle CPUs stealing work, overloaded CPUs pushing it away.

use super::runqueue::RunQueue;
use super::types::{CpuMask, RunState};
use super::{Found, Location, Scheduler, VcpuKey};
use crate::arch::CpuId;
use core::sync::atomic::Ordering;

impl Scheduler {
    fn is_idle(&self, cpu: usize) -> bool {
        self.idle[cpu].load(Ordering::SeqCst) && self.load[cpu].load(Ordering::SeqCst) == 0
    }

    /// Where a vCPU that becomes runnable should wait: its queue's CPU if that is idle;
    /// else another idle CPU it may use; else its queue's CPU if allowed; else the
    /// least loaded allowed CPU.
    pub(super) fn place(&self, home: usize, affinity: &CpuMask) -> usize {
        let allowed = affinity.and(&self.online);
        let n = self.nr_cpus();
        let ok = |c: usize| allowed.contains(CpuId::from_index(c));
        if ok(home) && self.is_idle(home) {
            return home;
        }
        if let Some(c) = (1..n).map(|i| (home + i) % n).find(|&c| ok(c) && self.is_idle(c)) {
            return c;
        }
        if ok(home) {
            return home;
        }
        allowed.iter().map(|c| c.0 as usize).min_by_key(|&c| self.load[c].load(Ordering::SeqCst)).unwrap_or(home)
    }

    /// Queues a vCPU that just became able to run (woken, unpaused, started) where
    /// [`Scheduler::place`] says. Returns the CPU to kick.
    pub(super) fn make_runnable(&self, found: Found<'_>, now: u64, woken: bool) -> Option<CpuId> {
        let (cpu, mut rq, slot) = found;
        let period = self.cfg.cap_period_ns;
        let on_cpu = rq.current() == Some(slot);
        let e = rq.get_mut(slot)?;
        let key = e.key;
        e.refill(now, period);
        let allowed_here = e.params.affinity.contains(CpuId::from_index(cpu));
        let stays = !e.wants_cpu() || e.in_transit || (e.throttled() && allowed_here);
        let target = if stays || on_cpu { cpu } else { self.place(cpu, &e.params.affinity) };
        if target == cpu {
            rq.make_ready(slot, now, woken);
            return self.kick_if_needed(cpu, &rq, now);
        }
        rq.get_mut(slot)?.in_transit = true;
        drop(rq);
        self.relocate(cpu, slot, key, now, woken)
    }

    /// Moves a vCPU that its queue's owner marked in transit (and took off every queue)
    /// to the CPU [`Scheduler::place`] picks, and queues it there if it can run.
    /// Returns the CPU to kick.
    pub(super) fn relocate(&self, from: usize, slot: u32, key: VcpuKey, now: u64, woken: bool) -> Option<CpuId> {
        let moving = |rq: &RunQueue| rq.get(slot).filter(|e| e.key == key && e.in_transit).map(|e| e.params.affinity);
        loop {
            let affinity = moving(&self.queues[from].lock())?;
            let target = self.place(from, &affinity);
            if target == from {
                let mut rq = self.queues[from].lock();
                moving(&rq)?;
                rq.get_mut(slot)?.in_transit = false;
                rq.make_ready(slot, now, woken);
                return self.kick_if_needed(from, &rq, now);
            }
            let (mut src, mut dst) = self.lock_two(from, target);
            if !moving(&src)?.contains(CpuId::from_index(target)) {
                continue; // The affinity changed meanwhile: place again.
            }
            self.transfer(&mut src, slot, &mut dst, now, woken);
            self.publish(from, &src);
            return self.kick_if_needed(target, &dst, now);
        }
    }

    /// Moves the vCPU in `slot` (not on a CPU) from `src` to `dst`, keeping its lag
    /// behind `src`'s virtual clock, its poll deadline and its cap timer.
    fn transfer(&self, src: &mut RunQueue, slot: u32, dst: &mut RunQueue, now: u64, woken: bool) {
        src.account(now);
        dst.account(now);
        let Some(mut e) = src.take(slot) else { return };
        e.in_transit = false;
        let lag = e.vtime as i128 - src.min_vtime() as i128;
        e.vtime = (dst.min_vtime() as i128 + lag).max(0) as u128;
        let deadline = e.deadline.filter(|_| e.state == RunState::Blocked);
        let key = e.key;
        let new = dst.insert(e);
        self.directory.lock().insert(key, Location { cpu: dst.cpu.0, slot: new });
        if let Some(d) = deadline {
            dst.arm_timer(new, d);
        }
        dst.make_ready(new, now, woken);
    }

    /// Moves one waiting vCPU from `src_cpu` to `dst_cpu` if one may run there and
    /// `worth_it(src, dst)` still holds under both locks. Returns whether one moved.
    fn migrate_one(
        &self,
        src_cpu: usize,
        dst_cpu: usize,
        now: u64,
        worth_it: impl Fn(&RunQueue, &RunQueue) -> bool,
    ) -> bool {
        let (mut src, mut dst) = self.lock_two(src_cpu, dst_cpu);
        if !worth_it(&src, &dst) {
            return false;
        }
        let Some(slot) = src.migration_candidate(dst.cpu) else { return false };
        self.transfer(&mut src, slot, &mut dst, now, false);
        self.publish(src_cpu, &src);
        self.publish(dst_cpu, &dst);
        true
    }

    /// An idle CPU takes a waiting vCPU from the busiest queue that has one it may run,
    /// trying the others in turn. Returns whether it found one.
    pub(super) fn steal(&self, cpu: usize, now: u64) -> bool {
        let n = self.nr_cpus();
        let waiting = |c: usize| {
            let load = self.load[c].load(Ordering::SeqCst);
            let running = !self.idle[c].load(Ordering::SeqCst) as u32;
            load.saturating_sub(running)
        };
        let others = || (1..n).map(|i| (cpu + i) % n);
        let busiest = others().filter(|&c| waiting(c) > 0).max_by_key(|&c| waiting(c));
        let candidates = busiest.into_iter().chain(others().filter(|&c| Some(c) != busiest && waiting(c) > 0));
        for victim in candidates {
            if self.migrate_one(victim, cpu, now, |src, _| src.waiting() > 0) {
                return true;
            }
        }
        false
    }

    /// A CPU with at least two runnable vCPUs more than the least loaded CPU pushes one
    /// waiting vCPU there. Returns the CPU to kick.
    pub(super) fn push_excess(&self, cpu: usize, now: u64) -> Option<CpuId> {
        let n = self.nr_cpus();
        let load = |c: usize| self.load[c].load(Ordering::SeqCst);
        let target = (1..n).map(|i| (cpu + i) % n).min_by_key(|&c| load(c))?;
        if load(cpu) < load(target) + 2 {
            return None;
        }
        let moved = self.migrate_one(cpu, target, now, |src, dst| src.load() >= dst.load() + 2);
        if !moved {
            return None;
        }
        let dst = self.queues[target].lock();
        self.kick_if_needed(target, &dst, now)
    }
}

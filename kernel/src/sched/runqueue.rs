//! One physical CPU's run queue: the vCPUs it owns, who waits, who runs, and the
//! timers (poll timeouts, cap refills). Everything here is local to one queue; moving
//! vCPUs between queues is [`super::balance`]'s business.

use super::entity::{vcost, Entity, VTIME_ORIGIN};
use super::heap::IndexedHeap;
use super::types::{RunState, SchedConfig};
use crate::arch::CpuId;
use alloc::vec::Vec;

/// Order of waiting vCPUs: virtual time, then arrival.
type ReadyKey = (u128, u64);

/// How many waiting vCPUs a balancing pass inspects for one that may move.
const MIGRATE_SCAN: usize = 16;

pub(super) struct RunQueue {
    pub cpu: CpuId,
    cfg: SchedConfig,
    slots: Vec<Option<Entity>>,
    free: Vec<u32>,
    /// Woken vCPUs that are not ahead of their share; served before `ready`.
    boosted: IndexedHeap<ReadyKey>,
    ready: IndexedHeap<ReadyKey>,
    /// Blocked vCPUs with a deadline and throttled vCPUs, by the time to look at them.
    timers: IndexedHeap<u64>,
    current: Option<u32>,
    slice_start: u64,
    slice_end: u64,
    last_account: u64,
    /// The queue's virtual clock: never decreases; the least virtual time among the
    /// vCPUs that compete here.
    min_vtime: u128,
    seq: u64,
    /// A boosted vCPU is waiting: switch once the current one has run `min_run_ns`.
    preempt: bool,
    /// The deadline of the last decision (what the CPU's timer is armed for).
    pub armed: Option<u64>,
    pub next_balance: u64,
}

/// `a` comes strictly before `b`, where `None` is "never".
pub(super) fn earlier(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn min_time(a: Option<u64>, b: u64) -> Option<u64> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl RunQueue {
    pub fn new(cpu: CpuId, cfg: SchedConfig) -> Self {
        RunQueue {
            cpu,
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            boosted: IndexedHeap::new(),
            ready: IndexedHeap::new(),
            timers: IndexedHeap::new(),
            current: None,
            slice_start: 0,
            slice_end: 0,
            last_account: 0,
            min_vtime: VTIME_ORIGIN,
            seq: 0,
            preempt: false,
            armed: None,
            next_balance: 0,
        }
    }

    // ---- ownership -------------------------------------------------------------------

    /// Takes ownership of `e`; returns its slot.
    pub fn insert(&mut self, e: Entity) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(e);
                slot
            }
            None => {
                self.slots.push(Some(e));
                u32::try_from(self.slots.len() - 1).expect("run-queue slots are numbered by u32")
            }
        }
    }

    /// Gives up a vCPU that is not on the CPU: out of every queue and timer.
    pub fn take(&mut self, slot: u32) -> Option<Entity> {
        debug_assert_ne!(self.current, Some(slot));
        let e = self.slots.get_mut(slot as usize)?.take()?;
        self.dequeue(slot);
        self.timers.remove(slot);
        self.free.push(slot);
        Some(e)
    }

    pub fn get(&self, slot: u32) -> Option<&Entity> {
        self.slots.get(slot as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Entity> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    #[cfg(test)]
    pub fn entities(&self) -> impl Iterator<Item = (u32, &Entity)> {
        self.slots.iter().enumerate().filter_map(|(i, e)| Some((i as u32, e.as_ref()?)))
    }

    pub fn current(&self) -> Option<u32> {
        self.current
    }

    pub fn is_queued(&self, slot: u32) -> bool {
        self.ready.contains(slot) || self.boosted.contains(slot)
    }

    #[cfg(test)]
    pub fn has_timer(&self, slot: u32) -> bool {
        self.timers.contains(slot)
    }

    pub fn waiting(&self) -> usize {
        self.ready.len() + self.boosted.len()
    }

    /// Runnable vCPUs here: the waiting ones and the running one.
    pub fn load(&self) -> usize {
        let running = self.current.and_then(|c| self.get(c)).is_some_and(Entity::wants_cpu);
        self.waiting() + running as usize
    }

    pub fn min_vtime(&self) -> u128 {
        self.min_vtime
    }

    // ---- queueing --------------------------------------------------------------------

    /// Queues a vCPU that became able to run. A `woken` one (wake, unpause, start) may
    /// bank at most `wake_credit_ns` of lag, and is boosted if that leaves it no more
    /// than one slice ahead of the queue's clock. A throttled one waits for its refill.
    pub fn make_ready(&mut self, slot: u32, now: u64, woken: bool) {
        // Bring the queue's clock up to date: the running vCPU may not have been charged
        // for a long time if it runs alone.
        self.account(now);
        let (cfg, min, cpu, current) = (self.cfg, self.min_vtime, self.cpu, self.current);
        let Some(e) = self.get_mut(slot) else { return };
        if current == Some(slot) || !e.wants_cpu() || e.in_transit || !e.params.affinity.contains(cpu) {
            return;
        }
        e.refill(now, cfg.cap_period_ns);
        if e.throttled() {
            let at = e.period_end;
            self.timers.push(slot, at);
            return;
        }
        if woken {
            let w = e.params.weight;
            e.vtime = e.vtime.max(min.saturating_sub(vcost(cfg.wake_credit_ns, w)));
            e.boosted = e.vtime <= min + vcost(cfg.slice_ns, w);
        }
        let boosted = e.boosted;
        self.enqueue(slot);
        if boosted && current.is_some() {
            self.preempt = true;
        }
    }

    fn enqueue(&mut self, slot: u32) {
        let Some(e) = self.slots[slot as usize].as_ref() else { return };
        let key = (e.vtime, self.seq);
        self.seq += 1;
        if e.boosted {
            self.boosted.push(slot, key);
        } else {
            self.ready.push(slot, key);
        }
    }

    /// Removes `slot` from the waiting queues (not from the timers).
    pub fn dequeue(&mut self, slot: u32) {
        self.ready.remove(slot);
        self.boosted.remove(slot);
    }

    pub fn arm_timer(&mut self, slot: u32, at: u64) {
        self.timers.push(slot, at);
    }

    pub fn disarm_timer(&mut self, slot: u32) {
        self.timers.remove(slot);
    }

    fn pop_waiting(&mut self) -> Option<u32> {
        self.boosted.pop().or_else(|| self.ready.pop()).map(|(_, s)| s)
    }

    /// A waiting vCPU allowed on `cpu`, among the first [`MIGRATE_SCAN`] inspected,
    /// preferring the unboosted ones with the most virtual time (they lose least by
    /// waiting for a new queue's turn).
    pub fn migration_candidate(&self, cpu: CpuId) -> Option<u32> {
        let allowed = |&&(_, s): &&(ReadyKey, u32)| self.get(s).is_some_and(|e| e.params.affinity.contains(cpu));
        let pick = |h: &IndexedHeap<ReadyKey>| {
            h.entries().iter().rev().take(MIGRATE_SCAN).filter(allowed).max_by_key(|(k, _)| *k).map(|&(_, s)| s)
        };
        pick(&self.ready).or_else(|| pick(&self.boosted))
    }

    // ---- time ------------------------------------------------------------------------

    /// Charges the running vCPU for the time since it was last charged.
    pub fn account(&mut self, now: u64) {
        let delta = now.saturating_sub(self.last_account);
        self.last_account = self.last_account.max(now);
        if let Some(e) = self.current.and_then(|c| self.slots[c as usize].as_mut()) {
            e.charge(delta);
        }
        self.refresh_min();
    }

    fn refresh_min(&mut self) {
        // The smallest of three optional values, one by one (this runs at every guest
        // entry; an iterator over them copied its state through memcpy).
        let mut min = self.current.and_then(|c| self.get(c)).filter(|e| e.wants_cpu()).map(|e| e.vtime);
        if let Some(((v, _), _)) = self.ready.peek() {
            min = Some(min.map_or(v, |m| m.min(v)));
        }
        if let Some(((v, _), _)) = self.boosted.peek() {
            min = Some(min.map_or(v, |m| m.min(v)));
        }
        if let Some(m) = min {
            self.min_vtime = self.min_vtime.max(m);
        }
    }

    pub fn timers_due(&self, now: u64) -> bool {
        self.timers.peek().is_some_and(|(t, _)| t <= now)
    }

    /// Handles every timer due by `now`: poll timeouts wake their vCPU, cap refills
    /// return theirs to the queue.
    pub fn expire_timers(&mut self, now: u64) {
        while let Some((at, slot)) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.remove(slot);
            let Some(e) = self.get_mut(slot) else { continue };
            let woken = e.state == RunState::Blocked && e.deadline.is_some_and(|d| d <= now);
            if woken {
                e.state = RunState::Runnable;
                e.deadline = None;
            }
            self.make_ready(slot, now, woken);
        }
    }

    // ---- switching -------------------------------------------------------------------

    /// Whether the running vCPU goes on running at `now`.
    pub fn keeps_current(&self, now: u64) -> bool {
        let Some(e) = self.current.and_then(|c| self.get(c)) else { return false };
        if !e.wants_cpu() || e.throttled() || !e.params.affinity.contains(self.cpu) {
            return false;
        }
        if self.waiting() == 0 {
            return true;
        }
        !e.yielded && now < self.slice_end && !(self.preempt && now >= self.slice_start + self.cfg.min_run_ns)
    }

    /// Marks the running vCPU as yielding; returns whether there was one.
    pub fn yield_current(&mut self) -> bool {
        match self.current.and_then(|c| self.slots[c as usize].as_mut()) {
            Some(e) => {
                e.yielded = true;
                true
            }
            None => false,
        }
    }

    /// Starts a new slice for the running vCPU if it used up its slice alone.
    pub fn renew_slice(&mut self, now: u64) {
        if self.waiting() > 0 {
            return;
        }
        self.preempt = false;
        if let Some(e) = self.current.and_then(|c| self.slots[c as usize].as_mut()) {
            e.yielded = false;
        }
        if now >= self.slice_end {
            self.slice_start = now;
            self.slice_end = now.saturating_add(self.cfg.slice_ns);
        }
    }

    /// Takes the running vCPU off the CPU. If its affinity no longer includes this CPU,
    /// it is returned, marked in transit, for the caller to move (whatever its state);
    /// otherwise it goes back to the queue if it can run, or to the timers if throttled.
    pub fn switch_out(&mut self, now: u64) -> Option<u32> {
        let slot = self.current.take()?;
        let (cpu, period) = (self.cpu, self.cfg.cap_period_ns);
        let e = self.slots[slot as usize].as_mut()?;
        e.boosted = false;
        if !e.params.affinity.contains(cpu) {
            e.in_transit = true;
            return Some(slot);
        }
        if !e.wants_cpu() {
            return None;
        }
        e.refill(now, period);
        if e.throttled() {
            let at = e.period_end;
            self.timers.push(slot, at);
            return None;
        }
        self.enqueue(slot);
        None
    }

    /// Puts the first waiting vCPU on the CPU (a yielding one only if it is alone). A
    /// yielder passed over this once competes normally again.
    pub fn switch_in(&mut self, now: u64) -> Option<u32> {
        let mut next = self.pop_waiting();
        if let Some(s) = next.filter(|&s| self.slots[s as usize].as_ref().is_some_and(|e| e.yielded)) {
            if let Some(other) = self.pop_waiting() {
                if let Some(e) = self.slots[s as usize].as_mut() {
                    e.yielded = false;
                }
                self.enqueue(s);
                next = Some(other);
            }
        }
        self.preempt = false;
        if let Some(s) = next {
            if let Some(e) = self.slots[s as usize].as_mut() {
                e.yielded = false;
                e.boosted = false;
            }
            self.current = Some(s);
            self.slice_start = now;
            self.slice_end = now.saturating_add(self.cfg.slice_ns);
            self.last_account = now;
        }
        self.refresh_min();
        next
    }

    /// When this CPU must decide again at the latest: the slice end if others wait
    /// (sooner if a boosted vCPU may preempt), the cap budget's end, the next timer.
    pub fn until(&self, now: u64) -> Option<u64> {
        let mut until = self.timers.peek().map(|(t, _)| t);
        if let Some(e) = self.current.and_then(|c| self.get(c)) {
            if self.waiting() > 0 {
                until = min_time(until, self.slice_end);
                if self.preempt {
                    until = min_time(until, self.slice_start + self.cfg.min_run_ns);
                }
            }
            if e.capped() {
                until = min_time(until, now.saturating_add(e.budget.max(0) as u64));
            }
        }
        until
    }

    /// Whether a change made by another CPU needs this CPU to decide again: it has
    /// work while idle, or its decision must come sooner than its timer is armed for.
    pub fn needs_kick(&self, now: u64) -> bool {
        match self.current {
            None => self.waiting() > 0 || earlier(self.until(now), self.armed),
            Some(_) => earlier(self.until(now), self.armed),
        }
    }
}

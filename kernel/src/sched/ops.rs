//! Life-cycle operations on one vCPU: start, shutdown, block, wake, pause, affinity,
//! weight and cap. They map onto `SCHEDOP_*`, `VCPUOP_up/down` and domain pause.

use super::types::{BlockOutcome, Blocking, CpuMask, RunState, SchedError};
use super::{Scheduler, VcpuKey};
use crate::arch::CpuId;

impl Scheduler {
    /// Brings an offline vCPU into scheduling (domain start, `VCPUOP_up`). It starts with
    /// the queue's virtual time, boosted. Returns the CPU to kick.
    pub fn start(&self, key: VcpuKey, now: u64) -> Result<Option<CpuId>, SchedError> {
        let (cpu, mut rq, slot) = self.locate(key).ok_or(SchedError::UnknownVcpu)?;
        let period = self.cfg.cap_period_ns;
        let Some(e) = rq.get_mut(slot).filter(|e| e.state == RunState::Offline) else { return Ok(None) };
        e.state = RunState::Runnable;
        e.deadline = None;
        e.vtime = 0;
        e.reset_budget(now, period);
        Ok(self.make_runnable((cpu, rq, slot), now, true))
    }

    /// Takes a vCPU out of scheduling (`SCHEDOP_shutdown`, `VCPUOP_down`). If it is on a
    /// CPU, returns that CPU, which must call `pick_next` to switch away from it.
    pub fn shutdown(&self, key: VcpuKey) -> Result<Option<CpuId>, SchedError> {
        let (cpu, mut rq, slot) = self.locate(key).ok_or(SchedError::UnknownVcpu)?;
        let e = rq.get_mut(slot).ok_or(SchedError::UnknownVcpu)?;
        e.state = RunState::Offline;
        e.deadline = None;
        e.yielded = false;
        rq.dequeue(slot);
        rq.disarm_timer(slot);
        self.publish(cpu, &rq);
        Ok((rq.current() == Some(slot)).then_some(CpuId::from_index(cpu)))
    }

    /// `SCHEDOP_block`: blocks `key` until [`Scheduler::wake`], unless `event_pending`
    /// (evaluated after the vCPU is marked blocked, under the queue lock, so an event
    /// sent concurrently is either seen here or wakes the vCPU afterwards).
    pub fn block(&self, key: VcpuKey, now: u64, event_pending: impl FnOnce() -> bool) -> Result<Blocking, SchedError> {
        self.block_until(key, now, None, event_pending)
    }

    /// `SCHEDOP_poll`: like [`Scheduler::block`], and the vCPU also wakes by itself at
    /// `deadline` (absolute ns). The event layer wakes it earlier when a polled port
    /// becomes pending.
    pub fn block_until(
        &self,
        key: VcpuKey,
        now: u64,
        deadline: Option<u64>,
        event_pending: impl FnOnce() -> bool,
    ) -> Result<Blocking, SchedError> {
        let (cpu, mut rq, slot) = self.locate(key).ok_or(SchedError::UnknownVcpu)?;
        let on_cpu = rq.current() == Some(slot);
        let e = rq.get_mut(slot).ok_or(SchedError::UnknownVcpu)?;
        let was_blocked = match e.state {
            RunState::Offline => return Ok(Blocking { outcome: BlockOutcome::Offline, resched: None }),
            state => state == RunState::Blocked,
        };
        let outcome = if deadline.is_some_and(|d| d <= now) {
            BlockOutcome::TimedOut
        } else {
            e.state = RunState::Blocked;
            e.deadline = deadline;
            if event_pending() {
                BlockOutcome::EventPending
            } else {
                BlockOutcome::Blocked
            }
        };
        if outcome != BlockOutcome::Blocked {
            e.state = RunState::Runnable;
            e.deadline = None;
            if !was_blocked {
                return Ok(Blocking { outcome, resched: None });
            }
            rq.disarm_timer(slot);
            return Ok(Blocking { outcome, resched: self.make_runnable((cpu, rq, slot), now, true) });
        }
        rq.dequeue(slot);
        rq.disarm_timer(slot);
        if let Some(d) = deadline {
            rq.arm_timer(slot, d);
        }
        let kick = self.kick_if_needed(cpu, &rq, now);
        let resched = if on_cpu { Some(CpuId::from_index(cpu)) } else { kick };
        Ok(Blocking { outcome, resched })
    }

    /// Makes a blocked vCPU runnable (an event arrived for it). Returns the CPU that must
    /// call `pick_next`: an idle CPU it was placed on, or a busy one it should preempt.
    /// Waking a vCPU that is not blocked (or unknown) does nothing.
    pub fn wake(&self, key: VcpuKey, now: u64) -> Option<CpuId> {
        let (cpu, mut rq, slot) = self.locate(key)?;
        let e = rq.get_mut(slot).filter(|e| e.state == RunState::Blocked)?;
        e.state = RunState::Runnable;
        e.deadline = None;
        rq.disarm_timer(slot);
        self.make_runnable((cpu, rq, slot), now, true)
    }

    /// Holds a vCPU off every CPU (domain pause); nests. If it is on a CPU, returns that
    /// CPU, which must call `pick_next`; wait for [`VcpuInfo::on_cpu`](super::VcpuInfo)
    /// to clear before touching its state.
    pub fn pause(&self, key: VcpuKey) -> Result<Option<CpuId>, SchedError> {
        let (cpu, mut rq, slot) = self.locate(key).ok_or(SchedError::UnknownVcpu)?;
        let e = rq.get_mut(slot).ok_or(SchedError::UnknownVcpu)?;
        e.paused = e.paused.checked_add(1).ok_or(SchedError::PauseOverflow)?;
        rq.dequeue(slot);
        self.publish(cpu, &rq);
        Ok((rq.current() == Some(slot)).then_some(CpuId::from_index(cpu)))
    }

    /// Undoes one [`Scheduler::pause`]. Returns the CPU to kick if the vCPU can run again.
    pub fn unpause(&self, key: VcpuKey, now: u64) -> Result<Option<CpuId>, SchedError> {
        let (cpu, mut rq, slot) = self.locate(key).ok_or(SchedError::UnknownVcpu)?;
        let e = rq.get_mut(slot).ok_or(SchedError::UnknownVcpu)?;
        e.paused = e.paused.checked_sub(1).ok_or(SchedError::NotPaused)?;
        if e.paused > 0 {
            return Ok(None);
        }
        Ok(self.make_runnable((cpu, rq, slot), now, true))
    }

    /// Sets a vCPU's hard affinity. A waiting or blocked vCPU moves at once if its queue's
    /// CPU is no longer allowed; a running one moves when its CPU next calls
    /// `pick_next` (the CPU returned). Returns the CPU to kick.
    pub fn set_affinity(&self, key: VcpuKey, mask: CpuMask, now: u64) -> Result<Option<CpuId>, SchedError> {
        if mask.and(&self.online).is_empty() {
            return Err(SchedError::EmptyAffinity);
        }
        let (cpu, mut rq, slot) = self.locate(key).ok_or(SchedError::UnknownVcpu)?;
        let here = CpuId::from_index(cpu);
        let on_cpu = rq.current() == Some(slot);
        let e = rq.get_mut(slot).ok_or(SchedError::UnknownVcpu)?;
        e.params.affinity = mask;
        if on_cpu {
            return Ok((!mask.contains(here)).then_some(here));
        }
        if e.in_transit || mask.contains(here) {
            return Ok(None);
        }
        e.in_transit = true;
        rq.dequeue(slot);
        drop(rq);
        Ok(self.relocate(cpu, slot, key, now, false))
    }

    /// Changes a vCPU's weight and cap. A changed cap starts a new cap period with a full
    /// budget. Returns the CPU to kick.
    pub fn set_weight_cap(&self, key: VcpuKey, weight: u16, cap: u8, now: u64) -> Result<Option<CpuId>, SchedError> {
        if weight == 0 {
            return Err(SchedError::InvalidWeight);
        }
        if cap > 100 {
            return Err(SchedError::InvalidCap);
        }
        let (cpu, mut rq, slot) = self.locate(key).ok_or(SchedError::UnknownVcpu)?;
        let (on_cpu, queued) = (rq.current() == Some(slot), rq.is_queued(slot));
        let period = self.cfg.cap_period_ns;
        let e = rq.get_mut(slot).ok_or(SchedError::UnknownVcpu)?;
        e.params.weight = weight;
        if e.params.cap != cap {
            e.params.cap = cap;
            e.reset_budget(now, period);
        }
        if !on_cpu && !queued && e.wants_cpu() && !e.in_transit {
            // It was waiting for a cap refill that is no longer needed.
            rq.disarm_timer(slot);
            rq.make_ready(slot, now, false);
        }
        Ok(self.kick_if_needed(cpu, &rq, now))
    }
}

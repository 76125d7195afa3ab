//! The vCPU scheduler: per-CPU run queues, weighted fair sharing in virtual time, caps,
//! wake-up boosts, block/poll with timeouts, pause, hard affinity and load balancing.
//!
//! The policy and its bounds are in `docs/scheduler.md`. The scheduler never reads a
//! clock or touches hardware: every call takes `now` in nanoseconds from the caller's
//! monotonic clock, and the answers say what the caller must do:
//!
//! - [`Scheduler::pick_next`] returns a [`Decision`]: the vCPU to run (or none: halt),
//!   the deadline to arm the CPU's timer for, and other CPUs to send the wake-up IPI.
//! - Calls that may give a CPU work ([`Scheduler::wake`], [`Scheduler::unpause`], ...)
//!   return the CPU that must call `pick_next` soon: if it is another CPU, send it the
//!   IPI; if it is the caller's own, reschedule before returning to the guest.
//!
//! Each run queue sits behind its own lock; a directory maps a [`VcpuKey`] to the queue
//! that owns the vCPU. Lock order: run queues by ascending CPU index, then the directory.

mod balance;
mod entity;
mod heap;
mod ops;
mod pick;
mod runqueue;
mod types;

#[cfg(test)]
mod tests;

pub use types::{
    BlockOutcome, Blocking, CpuMask, Decision, RunState, SchedConfig, SchedError, VcpuInfo, VcpuKey, VcpuParams,
    DEFAULT_WEIGHT,
};

use crate::arch::CpuId;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use entity::Entity;
use runqueue::RunQueue;
use spin::{Mutex, MutexGuard};

/// Which run queue owns a vCPU, and where in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Location {
    cpu: u32,
    slot: u32,
}

/// The scheduler of one machine.
pub struct Scheduler {
    cfg: SchedConfig,
    online: CpuMask,
    queues: Box<[Mutex<RunQueue>]>,
    /// Published by each CPU's `pick_next`: it decided to halt.
    idle: Box<[AtomicBool]>,
    /// Runnable vCPUs per queue (waiting + running), published after every change.
    load: Box<[AtomicU32]>,
    directory: Mutex<BTreeMap<VcpuKey, Location>>,
}

/// A locked run queue with the position of one of its vCPUs.
type Found<'a> = (usize, MutexGuard<'a, RunQueue>, u32);

impl Scheduler {
    /// A scheduler for CPUs `0..nr_cpus`.
    pub fn new(nr_cpus: usize, cfg: SchedConfig) -> Result<Self, SchedError> {
        if nr_cpus == 0 || nr_cpus > CpuMask::CAPACITY {
            return Err(SchedError::InvalidCpuCount);
        }
        let cpus = 0..u32::try_from(nr_cpus).map_err(|_| SchedError::InvalidCpuCount)?;
        Ok(Scheduler {
            cfg,
            online: CpuMask::first_n(nr_cpus),
            queues: cpus.clone().map(|c| Mutex::new(RunQueue::new(CpuId(c), cfg))).collect(),
            idle: cpus.clone().map(|_| AtomicBool::new(true)).collect(),
            load: cpus.map(|_| AtomicU32::new(0)).collect(),
            directory: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn nr_cpus(&self) -> usize {
        self.queues.len()
    }

    pub fn config(&self) -> SchedConfig {
        self.cfg
    }

    /// Registers a vCPU, offline: it is scheduled once [`Scheduler::start`] is called.
    pub fn add_vcpu(&self, key: VcpuKey, params: VcpuParams) -> Result<(), SchedError> {
        self.validate(&params)?;
        if self.directory.lock().contains_key(&key) {
            return Err(SchedError::DuplicateVcpu);
        }
        let allowed = params.affinity.and(&self.online);
        let home = allowed.iter().min_by_key(|c| self.load[c.0 as usize].load(Ordering::Relaxed)).map_or(0, |c| c.0);
        let mut rq = self.queues[home as usize].lock();
        let slot = rq.insert(Entity::new(key, params));
        let mut dir = self.directory.lock();
        if dir.contains_key(&key) {
            drop(dir);
            rq.take(slot);
            return Err(SchedError::DuplicateVcpu);
        }
        dir.insert(key, Location { cpu: home, slot });
        Ok(())
    }

    /// Forgets a vCPU. Refused while a CPU still runs it: shut it down (or pause it),
    /// let its CPU call `pick_next`, then remove it.
    pub fn remove_vcpu(&self, key: VcpuKey) -> Result<(), SchedError> {
        let (cpu, mut rq, slot) = self.locate(key).ok_or(SchedError::UnknownVcpu)?;
        if rq.current() == Some(slot) {
            return Err(SchedError::VcpuOnCpu);
        }
        rq.take(slot);
        self.directory.lock().remove(&key);
        self.publish(cpu, &rq);
        Ok(())
    }

    /// A snapshot of a vCPU's state.
    pub fn info(&self, key: VcpuKey) -> Option<VcpuInfo> {
        let (cpu, rq, slot) = self.locate(key)?;
        let e = rq.get(slot)?;
        Some(VcpuInfo {
            state: e.state,
            pause_count: e.paused,
            cpu: CpuId::from_index(cpu),
            on_cpu: rq.current() == Some(slot),
            throttled: e.throttled(),
            runtime_ns: e.runtime,
            params: e.params,
        })
    }

    /// The vCPU `cpu` decided to run last, if any.
    pub fn current(&self, cpu: CpuId) -> Option<VcpuKey> {
        let rq = self.queues.get(cpu.0 as usize)?.lock();
        rq.current().and_then(|s| rq.get(s)).map(|e| e.key)
    }

    fn validate(&self, params: &VcpuParams) -> Result<(), SchedError> {
        if params.weight == 0 {
            return Err(SchedError::InvalidWeight);
        }
        if params.cap > 100 {
            return Err(SchedError::InvalidCap);
        }
        if params.affinity.and(&self.online).is_empty() {
            return Err(SchedError::EmptyAffinity);
        }
        Ok(())
    }

    /// Finds and locks the run queue owning `key`.
    fn locate(&self, key: VcpuKey) -> Option<Found<'_>> {
        loop {
            let loc = *self.directory.lock().get(&key)?;
            let rq = self.queues[loc.cpu as usize].lock();
            if rq.get(loc.slot).is_some_and(|e| e.key == key) {
                return Some((loc.cpu as usize, rq, loc.slot));
            }
            // Moved between the directory look-up and the lock: look again.
        }
    }

    /// Locks two different run queues in index order; returns them as `(a, b)`.
    fn lock_two(&self, a: usize, b: usize) -> (MutexGuard<'_, RunQueue>, MutexGuard<'_, RunQueue>) {
        debug_assert_ne!(a, b);
        if a < b {
            let ga = self.queues[a].lock();
            (ga, self.queues[b].lock())
        } else {
            let gb = self.queues[b].lock();
            (self.queues[a].lock(), gb)
        }
    }

    /// Publishes a queue's load for placement and balancing on other CPUs.
    fn publish(&self, cpu: usize, rq: &RunQueue) {
        self.load[cpu].store(u32::try_from(rq.load()).unwrap_or(u32::MAX), Ordering::SeqCst);
    }

    /// The CPU to tell, if a change to `rq` needs it to decide again.
    fn kick_if_needed(&self, cpu: usize, rq: &RunQueue, now: u64) -> Option<CpuId> {
        self.publish(cpu, rq);
        rq.needs_kick(now).then_some(CpuId::from_index(cpu))
    }

    /// Every vCPU key, in order (diagnostics).
    pub fn vcpus(&self) -> Vec<VcpuKey> {
        self.directory.lock().keys().copied().collect()
    }
}

//! The core's [`Hooks`] backed by the [`Scheduler`]: how hypercalls, events and timers
//! reach the per-CPU run loops.
//!
//! - `kick` wakes a blocked vCPU and interrupts the CPU that must decide again, or the CPU
//!   running the vCPU so that it re-reads the upcall level before re-entering the guest;
//! - `block` blocks the vCPU in the scheduler, re-checking the core's state under the run
//!   queue's lock (see [`Hooks::block`]);
//! - `yield_vcpu` makes the calling CPU call [`Scheduler::yield_now`];
//! - `timer_changed` files the vCPU's deadline under the calling CPU ([`TimerTable`]);
//! - `vcpu_online` starts or shuts down the vCPU in the scheduler;
//! - `domain_stopped` shuts down every vCPU of the domain and marks the domain for the
//!   run loops to reap;
//! - `domain_paused` pauses or unpauses every vCPU of the domain in the scheduler;
//!   `sched_params`, `set_weight_cap` and `set_affinity` read and change its vCPUs'
//!   parameters there;
//! - `console_line` and `console_raw` go to the configured sinks (by default the log,
//!   and the physical console as it is).
//!
//! A CPU that must act is told through its word of [`PendingWork`] (raised where the
//! condition arises: `pick_next` due, a yield, its timers changed, the running vCPU's
//! upcall level to read again, a domain to reap), and through the wake-up IPI if it is
//! not the calling CPU and must act before its guest exits by itself.

use super::pending::{PendingWork, Work};
use super::timers::TimerTable;
use crate::arch::{Arch, CpuId, CpuOps, InterruptController};
use crate::domain::Hooks;
use crate::sched::{CpuMask, SchedConfig, SchedError, Scheduler, VcpuKey, VcpuParams};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use keel_abi::xen::DomId;
use keel_abi::Errno;
use spin::Mutex;

/// Where a domain's console lines go.
pub type LineSink = fn(DomId, &str);
/// Where the raw output of the domain that has console input goes.
pub type RawSink = fn(DomId, &[u8]);

fn log_line(domain: DomId, line: &str) {
    log::info!("(d{domain}) {line}");
}

fn console_raw(_domain: DomId, bytes: &[u8]) {
    crate::console::raw(bytes);
}

/// What the hooks know about a registered domain.
#[derive(Clone, Copy, Debug)]
struct Registered {
    vcpus: u32,
    stopped: bool,
}

/// [`Hooks`] implemented with the scheduler, for the CPUs of architecture `A`.
pub struct SchedHooks<A: Arch> {
    sched: Scheduler,
    clock: fn() -> u64,
    console: LineSink,
    /// Per CPU: what its loop must do before entering a guest again.
    pending: PendingWork,
    raw_console: RawSink,
    timers: Mutex<TimerTable>,
    /// Per CPU: the earliest deadline in `timers` (`u64::MAX`: none), read without the lock.
    earliest: Box<[AtomicU64]>,
    domains: Mutex<BTreeMap<DomId, Registered>>,
    /// Registered domains that stopped, read without the lock.
    stopped: AtomicU32,
    _arch: PhantomData<fn() -> A>,
}

impl<A: Arch> SchedHooks<A> {
    /// Hooks with a scheduler for CPUs `0..nr_cpus`, reading time (ns) from `clock`.
    pub fn new(nr_cpus: usize, cfg: SchedConfig, clock: fn() -> u64) -> Result<Self, SchedError> {
        Ok(SchedHooks {
            sched: Scheduler::new(nr_cpus, cfg)?,
            clock,
            console: log_line,
            pending: PendingWork::new(nr_cpus),
            raw_console: console_raw,
            timers: Mutex::new(TimerTable::new(nr_cpus)),
            earliest: (0..nr_cpus).map(|_| AtomicU64::new(u64::MAX)).collect(),
            domains: Mutex::new(BTreeMap::new()),
            stopped: AtomicU32::new(0),
            _arch: PhantomData,
        })
    }

    /// Sends console lines to `sink` instead of the log.
    pub fn with_console(mut self, sink: LineSink) -> Self {
        self.console = sink;
        self
    }

    /// Sends raw console output to `sink` instead of the physical console.
    pub fn with_raw_console(mut self, sink: RawSink) -> Self {
        self.raw_console = sink;
        self
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Registers the vCPUs of `domain` with the scheduler, offline, one per entry of
    /// `params`. All or nothing.
    pub fn register(&self, domain: DomId, params: &[VcpuParams]) -> Result<(), SchedError> {
        // Domains have at most MAX_VCPUS vCPUs; the zip below stops at u32::MAX regardless.
        let vcpus = u32::try_from(params.len()).unwrap_or(u32::MAX);
        for (v, p) in (0u32..).zip(params) {
            if let Err(e) = self.sched.add_vcpu(VcpuKey::new(domain, v), *p) {
                for undo in 0..v {
                    let _ = self.sched.remove_vcpu(VcpuKey::new(domain, undo));
                }
                return Err(e);
            }
        }
        self.domains.lock().insert(domain, Registered { vcpus, stopped: false });
        Ok(())
    }

    /// Forgets a domain's vCPUs and timers. Returns false (and keeps what is left) while
    /// one of its vCPUs is still on a CPU; call it again once that CPU switched away.
    pub fn unregister(&self, domain: DomId) -> bool {
        let Some(r) = self.domains.lock().get(&domain).copied() else { return true };
        for v in 0..r.vcpus {
            match self.sched.remove_vcpu(VcpuKey::new(domain, v)) {
                Ok(()) | Err(SchedError::UnknownVcpu) => {}
                Err(_) => return false,
            }
        }
        if self.domains.lock().remove(&domain).is_some_and(|r| r.stopped) {
            self.stopped.fetch_sub(1, Ordering::AcqRel);
        }
        self.remove_timers(domain);
        true
    }

    /// Registered domains that have stopped (shut down or crashed) and wait to be reaped.
    pub fn stopped(&self) -> Vec<DomId> {
        if self.stopped.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        self.domains.lock().iter().filter(|(_, r)| r.stopped).map(|(&id, _)| id).collect()
    }

    /// Whether `cpu` was asked to decide again; clears the request.
    pub fn take_resched(&self, cpu: CpuId) -> bool {
        self.pending.take_some(cpu, Work::RESCHED).contains(Work::RESCHED)
    }

    /// Whether a request to decide again is pending for `cpu` (not cleared).
    pub fn resched_pending(&self, cpu: CpuId) -> bool {
        self.pending.peek(cpu).contains(Work::RESCHED)
    }

    /// Whether the vCPU running on `cpu` yielded; clears it.
    pub fn take_yield(&self, cpu: CpuId) -> bool {
        self.pending.take_some(cpu, Work::YIELD).contains(Work::YIELD)
    }

    /// The work pending for `cpu`, left pending (the loop's short return path).
    pub fn peek_work(&self, cpu: CpuId) -> Work {
        self.pending.peek(cpu)
    }

    /// Takes the work pending for `cpu` (a full iteration of its loop).
    pub fn take_work(&self, cpu: CpuId) -> Work {
        self.pending.take(cpu)
    }

    /// Takes only the kinds in `work` pending for `cpu`.
    pub fn take_some_work(&self, cpu: CpuId, work: Work) -> Work {
        self.pending.take_some(cpu, work)
    }

    /// Raises `work` for `cpu`, without interrupting it.
    pub fn raise(&self, cpu: CpuId, work: Work) {
        self.pending.raise(cpu, work);
    }

    /// Removes and returns the vCPUs whose timers filed under `cpu` are due at `now`.
    pub fn due_timers(&self, cpu: CpuId, now: u64) -> Vec<VcpuKey> {
        if self.next_timer(cpu).is_none_or(|t| t > now) {
            return Vec::new();
        }
        let mut t = self.timers.lock();
        let due = t.take_due(cpu, now);
        self.publish(&t, [Some(cpu.0 as usize), None]);
        due
    }

    /// The earliest vCPU deadline filed under `cpu`.
    pub fn next_timer(&self, cpu: CpuId) -> Option<u64> {
        let t = self.earliest.get(cpu.0 as usize)?.load(Ordering::Acquire);
        (t != u64::MAX).then_some(t)
    }

    /// Publishes the earliest deadline of the CPUs in `touched` (under the table's lock).
    fn publish(&self, t: &TimerTable, touched: [Option<usize>; 2]) {
        for c in touched.into_iter().flatten() {
            if let Some(e) = self.earliest.get(c) {
                e.store(t.next(CpuId::from_index(c)).unwrap_or(u64::MAX), Ordering::Release);
            }
        }
    }

    fn remove_timers(&self, domain: DomId) {
        let mut t = self.timers.lock();
        t.remove_domain(domain);
        for c in 0..t.nr_cpus() {
            self.publish(&t, [Some(c), None]);
        }
    }

    /// Makes `cpu` call `pick_next` soon: a flag, and the wake-up IPI if it is another CPU.
    pub fn resched(&self, cpu: CpuId) {
        self.pending.raise(cpu, Work::RESCHED);
        if cpu != A::Cpu::current() {
            A::Irq::send_ipi(cpu);
        }
    }

    fn resched_opt(&self, cpu: Option<CpuId>) {
        if let Some(c) = cpu {
            self.resched(c);
        }
    }

    /// Whether `domain` is registered and has not stopped.
    fn live(&self, domain: DomId) -> bool {
        self.domains.lock().get(&domain).is_some_and(|r| !r.stopped)
    }

    /// The number of vCPUs of `domain` if it is registered and has not stopped.
    fn live_vcpus(&self, domain: DomId) -> Option<u32> {
        self.domains.lock().get(&domain).filter(|r| !r.stopped).map(|r| r.vcpus)
    }
}

fn sched_errno(e: SchedError) -> Errno {
    match e {
        SchedError::UnknownVcpu => Errno::ESRCH,
        _ => Errno::EINVAL,
    }
}

impl<A: Arch> Hooks for SchedHooks<A> {
    fn kick(&self, domain: DomId, vcpu: u32) {
        let key = VcpuKey::new(domain, vcpu);
        if let Some(cpu) = self.sched.wake(key, self.now()) {
            self.resched(cpu);
            return;
        }
        // Not blocked: the CPU running it reads the upcall level again before entering
        // the guest again; if that is another CPU, it is made to exit the guest now.
        if let Some(info) = self.sched.info(key) {
            if info.on_cpu {
                self.pending.raise(info.cpu, Work::UPCALL);
                if info.cpu != A::Cpu::current() {
                    A::Irq::send_ipi(info.cpu);
                }
            }
        }
    }

    fn yield_vcpu(&self, _domain: DomId, _vcpu: u32) {
        self.pending.raise(A::Cpu::current(), Work::YIELD);
    }

    fn block(&self, domain: DomId, vcpu: u32, still_blocked: &dyn Fn() -> bool) {
        let key = VcpuKey::new(domain, vcpu);
        if let Ok(b) = self.sched.block(key, self.now(), || !still_blocked()) {
            self.resched_opt(b.resched);
        }
    }

    fn timer_changed(&self, domain: DomId, vcpu: u32, deadline_ns: Option<u64>) {
        if !self.live(domain) {
            return;
        }
        let mut t = self.timers.lock();
        let touched = t.set(VcpuKey::new(domain, vcpu), deadline_ns, A::Cpu::current());
        self.publish(&t, touched);
        // The calling CPU arms its timer for its earliest deadline again (and fires what
        // is due already); a CPU whose deadline moved away fires early and finds none.
        self.pending.raise(A::Cpu::current(), Work::TIMERS);
    }

    fn vcpu_online(&self, domain: DomId, vcpu: u32, online: bool) {
        if online && !self.live(domain) {
            return;
        }
        let key = VcpuKey::new(domain, vcpu);
        let cpu = if online { self.sched.start(key, self.now()) } else { self.sched.shutdown(key) };
        if let Ok(cpu) = cpu {
            self.resched_opt(cpu);
        }
    }

    fn domain_stopped(&self, domain: DomId) {
        let vcpus = {
            let mut domains = self.domains.lock();
            match domains.get_mut(&domain) {
                Some(r) if !r.stopped => {
                    r.stopped = true;
                    self.stopped.fetch_add(1, Ordering::AcqRel);
                    r.vcpus
                }
                _ => return,
            }
        };
        for v in 0..vcpus {
            if let Ok(cpu) = self.sched.shutdown(VcpuKey::new(domain, v)) {
                self.resched_opt(cpu);
            }
        }
        // Any CPU's next full iteration may reap it (none is interrupted for that).
        self.pending.raise_all(Work::REAP);
        self.remove_timers(domain);
    }

    fn domain_paused(&self, domain: DomId, paused: bool) {
        let Some(vcpus) = self.live_vcpus(domain) else { return };
        for v in 0..vcpus {
            let key = VcpuKey::new(domain, v);
            let cpu = if paused { self.sched.pause(key) } else { self.sched.unpause(key, self.now()) };
            if let Ok(cpu) = cpu {
                self.resched_opt(cpu);
            }
        }
    }

    fn sched_params(&self, domain: DomId, vcpu: u32) -> Option<VcpuParams> {
        self.sched.info(VcpuKey::new(domain, vcpu)).map(|i| i.params)
    }

    fn set_weight_cap(&self, domain: DomId, weight: u16, cap: u8) -> Result<(), Errno> {
        if weight == 0 || cap > 100 {
            return Err(Errno::EINVAL);
        }
        let vcpus = self.live_vcpus(domain).ok_or(Errno::ESRCH)?;
        for v in 0..vcpus {
            let cpu = self.sched.set_weight_cap(VcpuKey::new(domain, v), weight, cap, self.now());
            self.resched_opt(cpu.map_err(sched_errno)?);
        }
        Ok(())
    }

    fn set_affinity(&self, domain: DomId, vcpu: u32, mask: CpuMask) -> Result<(), Errno> {
        if self.live_vcpus(domain).is_none_or(|n| vcpu >= n) {
            return Err(Errno::ESRCH);
        }
        let cpu = self.sched.set_affinity(VcpuKey::new(domain, vcpu), mask, self.now());
        self.resched_opt(cpu.map_err(sched_errno)?);
        Ok(())
    }

    fn console_line(&self, domain: DomId, line: &str) {
        (self.console)(domain, line);
    }

    fn console_raw(&self, domain: DomId, bytes: &[u8]) {
        (self.raw_console)(domain, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockArch;
    use crate::sched::{BlockOutcome, RunState};

    fn hooks() -> SchedHooks<MockArch> {
        fn clock() -> u64 {
            1_000
        }
        let h = SchedHooks::new(2, SchedConfig::default(), clock).unwrap();
        h.register(7, &[VcpuParams::default(), VcpuParams::default()]).unwrap();
        h
    }

    #[test]
    fn block_rechecks_the_core_state_and_kick_wakes() {
        let h = hooks();
        let key = VcpuKey::new(7, 0);
        h.vcpu_online(7, 0, true);
        let d = h.sched.pick_next(CpuId(0), 1_000);
        assert_eq!(d.run, Some(key));
        // Woken between the core's mark and the scheduler's: stays runnable.
        h.block(7, 0, &|| false);
        assert_eq!(h.sched.info(key).unwrap().state, RunState::Runnable);
        h.block(7, 0, &|| true);
        assert_eq!(h.sched.info(key).unwrap().state, RunState::Blocked);
        assert!(h.take_resched(CpuId(0)), "the blocking CPU must decide again");
        assert!(!h.take_resched(CpuId(0)));
        h.kick(7, 0);
        assert_eq!(h.sched.info(key).unwrap().state, RunState::Runnable);
        let b = h.sched.block(key, 1_000, || true).unwrap();
        assert_eq!(b.outcome, BlockOutcome::EventPending);
    }

    #[test]
    fn stopping_a_domain_shuts_its_vcpus_and_forgets_timers() {
        let h = hooks();
        h.vcpu_online(7, 0, true);
        h.vcpu_online(7, 1, true);
        h.timer_changed(7, 1, Some(5_000));
        h.timer_changed(8, 0, Some(5_000));
        assert_eq!(h.next_timer(CpuId(0)), Some(5_000), "only registered domains have timers");
        assert_eq!(h.sched.pick_next(CpuId(0), 1_000).run, Some(VcpuKey::new(7, 0)));
        h.domain_stopped(7);
        h.domain_stopped(7);
        assert_eq!(h.stopped(), [7]);
        assert_eq!(h.next_timer(CpuId(0)), None);
        assert_eq!(h.sched.info(VcpuKey::new(7, 1)).unwrap().state, RunState::Offline);
        assert!(!h.unregister(7), "vCPU 0 is still on CPU 0");
        assert_eq!(h.sched.pick_next(CpuId(0), 2_000).run, None);
        assert!(h.unregister(7));
        assert!(h.stopped().is_empty());
        assert!(h.sched.vcpus().is_empty());
        h.vcpu_online(7, 0, true);
        assert!(h.sched.vcpus().is_empty(), "an unregistered domain cannot start vCPUs");
    }

    #[test]
    fn kicking_a_vcpu_that_runs_on_another_cpu_interrupts_that_cpu() {
        crate::mock::sim::reset(2, 0);
        let h = hooks();
        h.vcpu_online(7, 0, true);
        h.vcpu_online(7, 1, true);
        let on = |cpu| h.sched.pick_next(CpuId(cpu), 1_000).run.map(|k| k.vcpu);
        let (a, b) = (on(0), on(1));
        assert_eq!((a.is_some(), b.is_some()), (true, true), "one vCPU per CPU");
        let remote = b.unwrap();
        // Starting the vCPUs kicked CPU 1 already; take that IPI.
        crate::mock::sim::set_current(CpuId(1));
        crate::mock::sim::set_enabled(crate::mock::sim::IPI_IRQ, true);
        while crate::mock::sim::acknowledge().is_some() {}
        h.take_resched(CpuId(1));
        crate::mock::sim::set_current(CpuId(0));
        h.take_work(CpuId(0));
        h.kick(7, a.unwrap());
        assert!(!crate::mock::sim::is_raised(CpuId(1), crate::mock::sim::IPI_IRQ));
        assert_eq!(h.take_work(CpuId(0)), Work::UPCALL, "the same CPU: the upcall is read again, no IPI");
        h.kick(7, remote);
        assert!(crate::mock::sim::is_raised(CpuId(1), crate::mock::sim::IPI_IRQ));
        assert_eq!(h.peek_work(CpuId(1)), Work::UPCALL, "another CPU: one IPI, and only the upcall to read");
        assert!(!h.take_resched(CpuId(1)), "running, not blocked: no scheduling decision");
    }

    #[test]
    fn yield_is_a_per_cpu_request() {
        let h = hooks();
        h.yield_vcpu(7, 0);
        assert!(!h.take_yield(CpuId(1)));
        assert!(h.take_yield(CpuId(0)));
        assert!(!h.take_yield(CpuId(0)));
    }
}

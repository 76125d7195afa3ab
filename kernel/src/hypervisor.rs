//! The hypervisor's portable state: the domain table, and the services that act on
//! domains: creation, destruction, event delivery, timers, hypercalls.

use crate::arch::{Arch, DomainServices, GuestDomain, Timer};
use crate::domain::{Domain, DomainConfig, DomainState, DomainTable, Expired, Hooks, Poll, RunState, ShutdownReason};
use crate::event::Wake;
use crate::mm::FramePool;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use keel_abi::xen::{DomId, DOMID_FIRST_RESERVED, VIRQ_CONSOLE, VIRQ_TIMER};
use keel_abi::Errno;
use spin::Mutex;

/// Keel's domains and the services the hypercalls use.
pub struct Hypervisor<'a, A: Arch> {
    pub(crate) pool: &'a FramePool,
    pub(crate) hooks: &'a dyn Hooks,
    clock: fn() -> u64,
    domains: Mutex<BTreeMap<DomId, Arc<Domain<A>>>>,
    /// Destroyed domains whose memory is freed once nothing refers to them.
    dying: Mutex<BTreeMap<DomId, Arc<Domain<A>>>>,
    /// Dying domains whose memory [`Hypervisor::reap`] is freeing now: no lookup finds
    /// them any more, but the control interface still lists them and their ids stay taken
    /// until their memory is back. Locked after `dying`.
    freeing: Mutex<BTreeMap<DomId, Arc<Domain<A>>>>,
    /// Domains being built through the control interface (`control/create.rs`).
    pub(crate) builds: crate::control::builds::Builds,
    /// Which domain each passed-through host interrupt goes to (`device_irqs.rs`).
    irq_routes: Mutex<crate::passthrough::route::IrqRoutes>,
}

impl<'a, A: Arch> Hypervisor<'a, A> {
    /// A hypervisor with no domains, allocating from `pool`, telling `hooks` about
    /// changes, and reading time from the architecture's timer.
    pub fn new(pool: &'a FramePool, hooks: &'a dyn Hooks) -> Self {
        Hypervisor {
            pool,
            hooks,
            clock: A::Timer::now_ns,
            domains: Mutex::new(BTreeMap::new()),
            dying: Mutex::new(BTreeMap::new()),
            freeing: Mutex::new(BTreeMap::new()),
            builds: crate::control::builds::Builds::new(),
            irq_routes: Mutex::new(crate::passthrough::route::IrqRoutes::new()),
        }
    }

    /// Replaces the clock (system time in ns), for tests.
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = clock;
        self
    }

    /// System time in nanoseconds.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    pub fn pool(&self) -> &'a FramePool {
        self.pool
    }

    pub fn hooks(&self) -> &'a dyn Hooks {
        self.hooks
    }

    /// Creates a domain.
    pub fn create_domain(&self, config: DomainConfig) -> Result<Arc<Domain<A>>, Errno> {
        let mut table = self.domains.lock();
        let dying = self.dying.lock();
        let freeing = self.freeing.lock();
        let taken = |id: DomId| table.contains_key(&id) || dying.contains_key(&id) || freeing.contains_key(&id);
        let id = match config.id {
            Some(id) if id >= DOMID_FIRST_RESERVED => return Err(Errno::EINVAL),
            Some(id) if taken(id) => return Err(Errno::EEXIST),
            Some(id) => id,
            None => (1..DOMID_FIRST_RESERVED).find(|&id| !taken(id)).ok_or(Errno::ENOSPC)?,
        };
        drop(freeing);
        drop(dying);
        let d = Arc::new(Domain::new(self.pool, id, config, self.now())?);
        let services: Weak<dyn DomainServices> = Arc::downgrade(&d) as Weak<Domain<A>>;
        GuestDomain::attach(&**Domain::arch(&d), services);
        table.insert(id, d.clone());
        Ok(d)
    }

    /// The live domain `id`.
    pub fn domain(&self, id: DomId) -> Option<Arc<Domain<A>>> {
        self.domains.lock().get(&id).cloned()
    }

    /// The domain `id`, live or being destroyed.
    pub(crate) fn domain_any(&self, id: DomId) -> Option<Arc<Domain<A>>> {
        self.domain(id).or_else(|| self.dying.lock().get(&id).cloned())
    }

    /// The live domain named `id` by `caller` (`DOMID_SELF` is the caller).
    pub(crate) fn resolve(&self, caller: &Arc<Domain<A>>, id: DomId) -> Option<Arc<Domain<A>>> {
        <Self as DomainTable<A>>::resolve(self, caller, id)
    }

    /// Ids of the live domains.
    pub fn domain_ids(&self) -> Vec<DomId> {
        self.domains.lock().keys().copied().collect()
    }

    /// Ids of the destroyed domains whose memory is not back in the pool yet.
    pub(crate) fn dying_ids(&self) -> Vec<DomId> {
        let mut ids: Vec<DomId> = self.dying.lock().keys().copied().collect();
        ids.extend(self.freeing.lock().keys().copied());
        ids
    }

    /// The destroyed domain `id` whose memory is not back in the pool yet, to report it.
    pub(crate) fn dying_domain(&self, id: DomId) -> Option<Arc<Domain<A>>> {
        let d = self.dying.lock().get(&id).cloned();
        d.or_else(|| self.freeing.lock().get(&id).cloned())
    }

    /// Takes domain `id` out of the live table: from now on only [`DomainTable::domain_any`]
    /// finds it, its state is `Dying` and the hooks are told it stopped. The first step of
    /// [`crate::run::destroy_domain`], which sequences the rest. None of its vCPUs may be
    /// running.
    pub fn retire(&self, id: DomId) -> Result<Arc<Domain<A>>, Errno> {
        let d = self.domains.lock().remove(&id).ok_or(Errno::ESRCH)?;
        d.set_state(DomainState::Dying);
        self.dying.lock().insert(id, d.clone());
        self.hooks.domain_stopped(id);
        Ok(d)
    }

    /// Frees the memory of destroyed domains nothing refers to any more; returns how
    /// many were freed. The scheduler calls it now and then.
    pub fn reap(&self) -> usize {
        let ready: Vec<(DomId, Arc<Domain<A>>)> = {
            let mut dying = self.dying.lock();
            let mut freeing = self.freeing.lock();
            let ids: Vec<DomId> = dying
                .iter()
                .filter(|(_, d)| Arc::strong_count(d) == 1 && d.grants.lock().active.is_empty())
                .map(|(&id, _)| id)
                .collect();
            let mut ready = Vec::new();
            for id in ids {
                if let Some(d) = dying.remove(&id) {
                    freeing.insert(id, d.clone());
                    ready.push((id, d));
                }
            }
            ready
        };
        let n = ready.len();
        for (_, d) in &ready {
            d.grants.lock().free_frames(self.pool);
            d.mm.lock().teardown(self.pool);
            self.pool.free(d.shared_info_frame(), 1);
            if let Some(&ring) = d.console_ring.get() {
                self.pool.free(ring, 1);
            }
        }
        // Listed (dying) until here: a toolstack that saw it go finds its memory free.
        let mut freeing = self.freeing.lock();
        for (id, _) in &ready {
            freeing.remove(id);
        }
        n
    }

    /// Acts on what an event delivery asked for, with no lock held. Inlined: most
    /// deliveries ask for nothing (a masked or already pending port, no poller), and
    /// that test costs less than a call's frame.
    #[inline]
    pub(crate) fn apply(&self, d: &Domain<A>, w: Wake) {
        if let Some(v) = w.upcall {
            self.wake_vcpu(d, v, true);
        }
        if let Some(port) = w.pending_port {
            if d.pollers.load(Ordering::Acquire) != 0 {
                self.wake_pollers(d, port);
            }
        }
    }

    /// Makes a blocked or polling `vcpu` runnable and kicks it.
    pub fn wake_vcpu(&self, d: &Domain<A>, vcpu: u32, kick: bool) {
        let Some(v) = d.vcpus.get(vcpu as usize) else { return };
        let mut woke = false;
        {
            let mut v = v.lock();
            if v.run_state() == RunState::Blocked {
                if v.poll.take().is_some() {
                    d.pollers.fetch_sub(1, Ordering::AcqRel);
                }
                v.halt_until = None;
                v.set_run_state(RunState::Runnable, self.now());
                woke = true;
            }
        }
        if woke || kick {
            self.hooks.kick(d.id(), vcpu);
        }
    }

    /// Blocks `vcpu` of `d` until an event upcall is pending for it (`SCHEDOP_block`, and
    /// WFI/HLT as Xen treats them), or, with `poll`, until one of the polled ports (any
    /// port if not exactly one) is pending, an upcall is marked or the poll's deadline
    /// passes (`SCHEDOP_poll`). Leaves it runnable if an upcall is already pending.
    ///
    /// No wake-up is lost: the vCPU is marked blocked first, the scheduler re-checks
    /// under its own lock that nobody woke it meanwhile ([`Hooks::block`]), and only then
    /// is the upcall level read, so an event raised at any point either is seen here or
    /// wakes the blocked vCPU.
    pub fn block(&self, d: &Domain<A>, vcpu: u32, poll: Option<Poll>) {
        let Some(state) = d.vcpus.get(vcpu as usize) else { return };
        let polling = poll.is_some();
        {
            let mut s = state.lock();
            s.set_run_state(RunState::Blocked, self.now());
            if let Some(p) = poll {
                if s.poll.replace(p).is_none() {
                    d.pollers.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        let still_blocked = || state.lock().run_state() == RunState::Blocked;
        self.hooks.block(d.id(), vcpu, &still_blocked);
        if polling {
            self.timers_changed(d, vcpu);
        }
        if d.upcall_pending(vcpu) || d.arch().interrupt_pending(vcpu) {
            self.wake_vcpu(d, vcpu, true);
        }
    }

    /// A halt (WFI, HLT): blocks `vcpu` as [`Hypervisor::block`] does, and, if the
    /// guest's own timer will fire at system time `until` (ns), wakes it then.
    pub fn halt(&self, d: &Domain<A>, vcpu: u32, until: Option<u64>) {
        if let Some(v) = d.vcpus.get(vcpu as usize) {
            v.lock().halt_until = until;
        }
        if until.is_some() {
            self.timers_changed(d, vcpu);
        }
        self.block(d, vcpu, None);
    }

    /// Takes `vcpu` of `d` offline (`VCPUOP_down`, PSCI `CPU_OFF`). If it was the last
    /// online vCPU, the domain shuts down (poweroff), as Xen does.
    pub fn vcpu_down(&self, d: &Domain<A>, vcpu: u32) {
        let Some(state) = d.vcpus.get(vcpu as usize) else { return };
        let others_up = (0..d.nr_vcpus()).any(|o| o != vcpu && d.vcpus[o as usize].lock().online);
        if !others_up {
            self.shutdown_guest(d, ShutdownReason::Poweroff);
            return;
        }
        {
            let mut s = state.lock();
            s.online = false;
            s.set_run_state(RunState::Offline, self.now());
        }
        self.hooks.vcpu_online(d.id(), vcpu, false);
    }

    /// Wakes the vCPUs of `d` polling `port` (`apply` calls it only if some vCPU polls).
    #[inline(never)]
    fn wake_pollers(&self, d: &Domain<A>, port: u32) {
        for vcpu in 0..d.nr_vcpus() {
            let wants =
                d.vcpus[vcpu as usize].lock().poll.as_ref().is_some_and(|p| p.ports.len() != 1 || p.ports[0] == port);
            if wants {
                self.wake_vcpu(d, vcpu, false);
            }
        }
    }

    /// Raises `virq` for `vcpu` of domain `d` (per-vCPU VIRQs) or for the domain.
    pub fn send_virq(&self, d: &Domain<A>, vcpu: u32, virq: u32) {
        let w = d.events.lock().send_virq(vcpu, virq);
        self.apply(d, w);
    }

    /// Fires every timer of `d` that is due at `now`: one-shot and periodic timers raise
    /// VIRQ_TIMER, expired polls and halts end; the scheduler hears of each vCPU's next deadline
    /// through [`Hooks::timer_changed`]. A watchdog that expired instead shuts the running
    /// domain down (reason watchdog, unless `SCHEDOP_shutdown_code` recorded another, as
    /// Xen's `domain_shutdown` does) and is returned for the caller to report.
    pub fn fire_timers(&self, d: &Domain<A>, now: u64) -> Option<Expired> {
        // The watchdogs' lock is released before shutting down, which takes the vCPUs'.
        let expired = d.watchdogs.lock().expired(now);
        if let Some(expired) = expired {
            if matches!(d.state(), DomainState::Running | DomainState::Paused) {
                self.shutdown_guest(d, ShutdownReason::Watchdog);
                return Some(expired);
            }
        }
        for vcpu in 0..d.nr_vcpus() {
            let (fire, poll_over, device) = {
                let mut v = d.vcpus[vcpu as usize].lock();
                let mut fire = false;
                let device = v.device_deadline.is_some_and(|t| t <= now);
                if device {
                    v.device_deadline = None;
                }
                if v.singleshot_ns.is_some_and(|t| t <= now) {
                    v.singleshot_ns = None;
                    fire = true;
                }
                if let Some(p) = &mut v.periodic {
                    if p.next_ns <= now {
                        let missed = (now - p.next_ns) / p.period_ns;
                        p.next_ns += (missed + 1) * p.period_ns;
                        fire = true;
                    }
                }
                let poll_over = v.poll.as_ref().and_then(|p| p.deadline).is_some_and(|t| t <= now);
                let halt_over = v.halt_until.is_some_and(|t| t <= now);
                if halt_over {
                    v.halt_until = None;
                }
                (fire, poll_over || halt_over, device)
            };
            if fire {
                self.send_virq(d, vcpu, VIRQ_TIMER);
            }
            if poll_over || device {
                self.wake_vcpu(d, vcpu, device);
            }
            if fire || poll_over || device {
                self.timers_changed(d, vcpu);
            }
        }
        None
    }

    /// Sets `vcpu`'s device timer ([`VmExit::DeviceTimer`](crate::arch::VmExit)): at
    /// `deadline` it is woken and its CPU interrupted.
    pub fn set_device_deadline(&self, d: &Domain<A>, vcpu: u32, deadline: Option<u64>) {
        let Some(v) = d.vcpus.get(vcpu as usize) else { return };
        v.lock().device_deadline = deadline;
        self.timers_changed(d, vcpu);
    }

    /// Tells the scheduler about `vcpu`'s earliest deadline after a change. vCPU 0's
    /// includes the domain's watchdogs: call this for vCPU 0 when they change.
    ///
    /// The vCPU's lock is held until the hook has filed the deadline: when two CPUs report
    /// for the same vCPU at once (one sets a timer while the other fires the old one), the
    /// report filed last is then the one that read the latest deadline. Lock order: vCPU,
    /// then watchdogs, then the hooks' own locks.
    pub(crate) fn timers_changed(&self, d: &Domain<A>, vcpu: u32) {
        let Some(v) = d.vcpus.get(vcpu as usize) else { return };
        let v = v.lock();
        let watchdog = if vcpu == 0 { d.watchdogs.lock().next_deadline() } else { None };
        self.hooks.timer_changed(d.id(), vcpu, v.next_deadline().into_iter().chain(watchdog).min());
        drop(v);
    }

    /// Delivers console input to domain `d`: for `CONSOLEIO_read` (raising VIRQ_CONSOLE
    /// if bound) and into its PV console ring if it has one (raising the console port).
    /// A domain with an emulated UART gets it there instead
    /// ([`GuestDomain::uart_input`]).
    pub fn console_input(&self, d: &Domain<A>, bytes: &[u8]) {
        if let Some(vcpus) = d.arch().uart_input(bytes) {
            for v in (0..d.nr_vcpus()).filter(|&v| vcpus & (1u128 << v) != 0) {
                self.wake_vcpu(d, v, true);
            }
            return;
        }
        d.console.lock().push_input(bytes);
        self.send_virq(d, 0, VIRQ_CONSOLE);
        self.pv_console_input(d, bytes);
    }

    /// Shuts `d` down for `reason` (the guest asked, or the hypervisor crashed it).
    pub fn shutdown(&self, d: &Domain<A>, state: DomainState) {
        {
            let mut s = d.state.lock();
            if matches!(*s, DomainState::Dying) {
                return;
            }
            *s = state;
        }
        let now = self.now();
        for v in &d.vcpus {
            v.lock().set_run_state(RunState::Offline, now);
        }
        self.hooks.domain_stopped(d.id());
        self.notify_dom_exc();
    }

    /// Shuts `d` down because its guest asked to; a reason recorded earlier with
    /// `SCHEDOP_shutdown_code` wins.
    pub fn shutdown_guest(&self, d: &Domain<A>, reason: ShutdownReason) {
        let code = d.shutdown_code.load(Ordering::Acquire);
        let reason = ShutdownReason::from_abi(code).unwrap_or(reason);
        self.shutdown(d, DomainState::ShutDown(reason));
    }

    /// Crashes `d` (e.g. on [`VmExit::GuestCrash`](crate::arch::VmExit::GuestCrash)).
    pub fn crash(&self, d: &Domain<A>) {
        log::warn!("d{} crashed", d.id());
        self.shutdown(d, DomainState::Crashed);
    }
}

mod device_irqs;
#[cfg(test)]
mod device_irqs_tests;
#[cfg(test)]
mod tests;

impl<A: Arch> DomainTable<A> for Hypervisor<'_, A> {
    fn domain(&self, id: DomId) -> Option<Arc<Domain<A>>> {
        Hypervisor::domain(self, id)
    }

    fn domain_any(&self, id: DomId) -> Option<Arc<Domain<A>>> {
        Hypervisor::domain_any(self, id)
    }

    #[inline]
    fn apply(&self, d: &Domain<A>, w: Wake) {
        Hypervisor::apply(self, d, w);
    }

    fn console_output(&self, d: &Domain<A>) {
        self.pv_console_output(d);
    }

    fn frame_pool(&self) -> &FramePool {
        self.pool
    }
}

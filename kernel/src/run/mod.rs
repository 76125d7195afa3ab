//! Running domains: the scheduler wired to the core ([`SchedHooks`]), the running
//! domains with their backend vCPU objects, and the per-CPU run loop ([`CpuLoop`]) that
//! drives the backends through the architecture traits.
//!
//! One [`System`] is shared by all CPUs. Each CPU runs its own [`CpuLoop`]:
//!
//! ```text
//! loop {
//!     short return path, after an exit whose consequences the hooks raised as pending
//!     work (pending.rs), if the backend latches the upcall level:
//!         nothing pending for this CPU: Vcpu::run again, handle the exit; next
//!         only UPCALL pending: Vcpu::set_event_upcall(level, route), Vcpu::run; next
//!     full iteration: take this CPU's pending work, then
//!     fire this CPU's due vCPU timers               (Hypervisor::fire_timers)
//!     if asked, or the scheduler says a decision is due (account):
//!         pick_next / yield_now; IPI the CPUs it kicked
//!         switch out the old vCPU: runstate, Vcpu::put, park its object
//!     reap stopped domains whose vCPUs are off every CPU; all gone: finished
//!     switch in the new vCPU: take its object, Vcpu::load, runstate
//!     nothing to run: arm the timer (slice end, vCPU timers), CpuOps::halt, interrupts
//!     else: Vcpu::set_event_upcall(level, route), arm the timer, Vcpu::run, handle the exit
//! }
//! ```
//!
//! The whole of one iteration is [`CpuLoop::step`], which never waits for another CPU,
//! so tests can drive several simulated CPUs from one thread.

mod build;
mod cpu;
mod create;
mod exit;
mod fast;
mod guests;
mod input;
mod pending;
mod reap;
mod sched_hooks;
mod static_ram;
mod store;
mod timers;

pub use build::{build_all, build_domain, rebuild, BuildError, Described};
pub use cpu::{CpuLoop, Step};
pub use create::{serve as serve_create, Creator};
pub use guests::Guest;
pub use input::{Action as InputAction, InputRouter};
pub use pending::{PendingWork, Work};
pub use reap::{destroy_domain, DomainEnd};
pub use sched_hooks::{LineSink, RawSink, SchedHooks};
pub use static_ram::reserve_static_ram;
pub use timers::TimerTable;

use crate::arch::{Arch, CpuId};
use crate::config::DomainConfig as BootConfig;
use crate::domain::{Domain, DomainState, Hooks};
use crate::hypervisor::Hypervisor;
use crate::sched::{CpuMask, SchedError, Scheduler, VcpuParams};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use guests::Guests;
use keel_abi::xen::DomId;
use spin::Mutex;

/// Everything the CPUs share while they run domains.
pub struct System<'a, A: Arch> {
    hv: Hypervisor<'a, A>,
    hooks: &'a SchedHooks<A>,
    guests: Guests<A>,
    ends: Mutex<Vec<DomainEnd>>,
    /// A domain was added: an empty table now means every domain ended.
    started: AtomicBool,
    /// One CPU took the final report.
    reported: AtomicBool,
    /// Held by the CPU that reaps stopped domains.
    reaping: Mutex<()>,
    /// System time (ns) at which domains still running are crashed (`keel.timeout`); 0:
    /// none. Set once the boot's domains are built ([`System::set_deadline`]).
    deadline: AtomicU64,
    /// The deadline passed and was acted on.
    timed_out: AtomicBool,
    /// The CPUs that run loops: vCPUs are confined to them.
    online: CpuMask,
    /// Where physical console input goes.
    input: Mutex<InputRouter>,
    /// A CPU loop took the physical console's input interrupt.
    input_taken: AtomicBool,
    /// The domain that has input gets its output raw ([`System::with_raw_console`]).
    raw_console: bool,
    /// The domain whose output passes through raw now.
    raw_focus: Mutex<Option<DomId>>,
    /// Builds a domain again when its guest reboots ([`System::with_restarts`]).
    restarter: Option<Restarter<A>>,
    /// Restarts allowed per domain.
    /// The initial domain gets no store page ([`System::with_local_dom0_store`]).
    dom0_store_local: bool,
    restart_limit: u32,
    /// What each running domain was built from, for restarting it.
    descriptions: Mutex<BTreeMap<DomId, Description>>,
    /// Domains between their removal and their rebuild.
    restarting: AtomicU32,
    /// Serves the control interface's `CTL_CREATE` and `CTL_START` (`create.rs`).
    creator: Option<Creator<A>>,
}

/// Builds and starts a domain from its description on the machine (see
/// [`build::rebuild`]); the flag makes it the global VIRQ handler.
pub type Restarter<A> = for<'m, 'a> fn(&'m System<'a, A>, &BootConfig, bool) -> Result<DomId, BuildError>;

/// A running domain's description, kept to restart it.
#[derive(Clone, Debug)]
struct Description {
    config: BootConfig,
    global_virq_handler: bool,
    restarts: u32,
}

impl<'a, A: Arch> System<'a, A> {
    /// A machine for `hv`, whose hooks must be `hooks`.
    pub fn new(hv: Hypervisor<'a, A>, hooks: &'a SchedHooks<A>) -> Self {
        System {
            hv,
            hooks,
            guests: Guests::new(),
            ends: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            reported: AtomicBool::new(false),
            reaping: Mutex::new(()),
            deadline: AtomicU64::new(0),
            timed_out: AtomicBool::new(false),
            online: CpuMask::first_n(hooks.scheduler().nr_cpus()),
            input: Mutex::new(InputRouter::new()),
            input_taken: AtomicBool::new(false),
            raw_console: false,
            raw_focus: Mutex::new(None),
            restarter: None,
            restart_limit: 0,
            dom0_store_local: false,
            descriptions: Mutex::new(BTreeMap::new()),
            restarting: AtomicU32::new(0),
            creator: None,
        }
    }

    /// Builds a domain whose guest reboots again with `restarter` (at most `limit` times
    /// per domain, `keel.restarts`); without this, a reboot ends the domain.
    pub fn with_restarts(mut self, limit: u32, restarter: Restarter<A>) -> Self {
        self.restart_limit = limit;
        self.restarter = Some(restarter);
        self
    }

    /// Builds the initial domain without a store page or port (`keel.dom0_xenstore=local`):
    /// its kernel serves its own store until the control domain hands it over.
    pub fn with_local_dom0_store(mut self) -> Self {
        self.dom0_store_local = true;
        self
    }

    /// Whether the initial domain is built without a store page.
    pub fn dom0_store_local(&self) -> bool {
        self.dom0_store_local
    }

    /// Passes the output of the domain that has console input through raw
    /// (`keel.console=raw`): see [`System::console_input`].
    pub fn with_raw_console(mut self, raw: bool) -> Self {
        self.raw_console = raw;
        self
    }

    /// Records what domain `id` was built from (and how often it was restarted), so that
    /// a reboot can build it again.
    pub(super) fn remember(&self, id: DomId, config: &BootConfig, global_virq_handler: bool, restarts: u32) {
        let d = Description { config: config.clone(), global_virq_handler, restarts };
        self.descriptions.lock().insert(id, d);
    }

    /// Whether domain `id`, which ended with a reboot, is to be built again (a restarter
    /// is set and its restarts are below the limit).
    pub(super) fn may_restart(&self, id: DomId) -> bool {
        self.restarter.is_some() && self.descriptions.lock().get(&id).is_some_and(|d| d.restarts < self.restart_limit)
    }

    /// Builds domain `id`, which just ended with a reboot and was destroyed, again from
    /// its description. False if it may not (no restarter, the limit reached) or cannot
    /// (the build failed, logged): then the reboot ends it.
    pub(super) fn restart(&self, id: DomId, name: &str) -> bool {
        let Some(d) = self.descriptions.lock().remove(&id) else { return false };
        let Some(restarter) = self.restarter else { return false };
        if d.restarts >= self.restart_limit {
            log::warn!("domain {id} ({name}): rebooted after {} restart(s) (keel.restarts); not again", d.restarts);
            return false;
        }
        // Its memory goes back to the pool first.
        self.hv.reap();
        match restarter(self, &d.config, d.global_virq_handler) {
            Ok(new) => {
                log::info!(
                    "domain {id} ({name}): restarted as domain {new} (restart {} of {})",
                    d.restarts + 1,
                    self.restart_limit
                );
                self.remember(new, &d.config, d.global_virq_handler, d.restarts + 1);
                if self.input.lock().retarget(id, new) {
                    self.focus_output(Some(new));
                }
                true
            }
            Err(e) => {
                log::error!("domain {id} ({name}): cannot restart: {e}");
                false
            }
        }
    }

    /// Confines vCPUs to `online`: the CPUs that will run loops (a CPU that was started
    /// but never came online must not be given vCPUs).
    pub fn with_online(mut self, online: CpuMask) -> Self {
        self.online = online.and(&CpuMask::first_n(self.scheduler().nr_cpus()));
        self
    }

    /// Crashes every domain still running (or paused) at system time `ns`
    /// (`keel.timeout`), so that the run ends even if a guest never does.
    pub fn with_deadline(self, ns: u64) -> Self {
        self.set_deadline(ns);
        self
    }

    /// [`System::with_deadline`] on a machine already shared: set before its CPUs run
    /// domains, so that the time spent building them (a kernel decompressed under an
    /// emulator takes minutes) does not count.
    pub fn set_deadline(&self, ns: u64) {
        self.deadline.store(ns.max(1), Ordering::Release);
    }

    /// The deadline, unless it passed already.
    pub(super) fn pending_deadline(&self) -> Option<u64> {
        let deadline = self.deadline.load(Ordering::Acquire);
        (deadline != 0 && !self.timed_out.load(Ordering::Acquire)).then_some(deadline)
    }

    /// If the deadline passed (and nobody acted on it yet), crashes every domain left.
    pub(super) fn check_deadline(&self, now: u64) {
        let Some(deadline) = self.pending_deadline() else { return };
        if now < deadline || self.timed_out.swap(true, Ordering::AcqRel) {
            return;
        }
        log::info!("keel.timeout: acted {} us after the deadline", now.saturating_sub(deadline) / 1000);
        for id in self.guests.ids() {
            let Some(g) = self.guests.get(id) else { continue };
            if matches!(g.domain.state(), DomainState::Running | DomainState::Paused) {
                log::warn!("domain {id} ({}): still running at keel.timeout; crashing it", g.name);
                self.hv.shutdown(&g.domain, crate::domain::DomainState::Crashed);
            }
        }
    }

    /// The CPUs vCPUs may run on.
    pub fn online(&self) -> CpuMask {
        self.online
    }

    pub fn hypervisor(&self) -> &Hypervisor<'a, A> {
        &self.hv
    }

    pub fn hooks(&self) -> &'a SchedHooks<A> {
        self.hooks
    }

    pub fn scheduler(&self) -> &'a Scheduler {
        self.hooks.scheduler()
    }

    /// Makes `domain` run: registers its vCPUs with the scheduler (one entry of `params`
    /// per vCPU), keeps `boot` as vCPU 0's object and starts vCPU 0. The other vCPUs stay
    /// offline until the guest starts them ([`VmExit::StartVcpu`](crate::arch::VmExit)).
    pub fn add_guest(
        &self,
        name: String,
        domain: Arc<Domain<A>>,
        boot: A::Vcpu,
        params: &[VcpuParams],
    ) -> Result<(), SchedError> {
        let id = domain.id();
        if params.len() != domain.nr_vcpus() as usize {
            return Err(SchedError::UnknownVcpu);
        }
        self.hooks.register(id, params)?;
        self.guests.insert(Guest::new(name, domain, boot));
        self.started.store(true, Ordering::Release);
        self.hooks.vcpu_online(id, 0, true);
        Ok(())
    }

    /// The running domain `id`.
    pub fn guest(&self, id: u16) -> Option<Arc<Guest<A>>> {
        self.guests.get(id)
    }

    /// Ids of the domains still running (or stopped but not yet reaped).
    pub fn guest_ids(&self) -> Vec<u16> {
        self.guests.ids()
    }

    /// Every domain that ended so far, in the order they ended.
    pub fn ends(&self) -> Vec<DomainEnd> {
        self.ends.lock().clone()
    }

    /// Whether every domain added has ended and been reaped.
    pub fn is_finished(&self) -> bool {
        // A domain being restarted is off the table for a moment: not finished then.
        self.started.load(Ordering::Acquire) && self.guests.is_empty() && self.restarting.load(Ordering::SeqCst) == 0
    }

    /// Routes input from the physical console to the domain that has it (three Ctrl-A
    /// switch to the next domain): see [`InputRouter`]. With a raw console, the domain
    /// that has input gets its output passed through raw; the others' stays prefixed.
    pub fn console_input(&self, bytes: &[u8]) {
        let mut live: Vec<u16> = self.guests.ids();
        live.retain(|&id| self.guests.get(id).is_some_and(|g| g.domain.state() == DomainState::Running));
        live.sort_unstable();
        let (actions, target) = {
            let mut input = self.input.lock();
            let actions = input.feed(bytes, &live);
            (actions, input.current())
        };
        for action in actions {
            match action {
                InputAction::Deliver(id, bytes) => {
                    if let Some(g) = self.guests.get(id) {
                        self.hv.console_input(&g.domain, &bytes);
                    }
                }
                InputAction::Switched(id) => {
                    self.announce_input(id);
                    self.focus_output(Some(id));
                }
            }
        }
        self.focus_output(target);
    }

    /// Makes `target`'s output raw and the previous raw domain's prefixed again (with a
    /// raw console; otherwise nothing is raw).
    fn focus_output(&self, target: Option<DomId>) {
        if !self.raw_console {
            return;
        }
        let mut focus = self.raw_focus.lock();
        if *focus == target {
            return;
        }
        if let Some(old) = focus.and_then(|id| self.guests.get(id)) {
            self.hv.set_console_raw(&old.domain, false);
        }
        if let Some(new) = target.and_then(|id| self.guests.get(id)) {
            self.hv.set_console_raw(&new.domain, true);
        }
        *focus = target;
    }

    /// The domain whose output passes through raw, if any.
    pub fn raw_focus(&self) -> Option<DomId> {
        *self.raw_focus.lock()
    }

    /// Says on the console which domain gets input.
    fn announce_input(&self, id: u16) {
        let name = self.guests.get(id).map(|g| g.name.clone()).unwrap_or_default();
        log::info!("console input goes to domain {id} ({name}); Ctrl-A three times switches");
    }

    /// The first CPU loop to ask takes the physical console's input interrupt.
    pub(super) fn take_console_input(&self) -> bool {
        !self.input_taken.swap(true, Ordering::AcqRel)
    }

    /// Announces where input goes first, once the domains are built.
    pub(super) fn announce_first_input(&self) {
        let mut live = self.guests.ids();
        live.sort_unstable();
        let target = self.input.lock().target(&live);
        if let Some(id) = target {
            self.announce_input(id);
            self.focus_output(Some(id));
        }
    }

    /// The run loop of `cpu`; call it on that CPU.
    pub fn cpu(&self, cpu: CpuId) -> CpuLoop<'_, 'a, A> {
        CpuLoop::new(self, cpu)
    }
}

#[cfg(test)]
mod tests;

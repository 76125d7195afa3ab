//! The per-CPU run loop.

use super::guests::{Guest, Take};
use super::pending::Work;
use super::{DomainEnd, System};
use crate::arch::{Arch, CpuId, CpuOps, InterruptController, IrqNumber, Timer, Vcpu, VcpuTranslation};
use crate::domain::Hooks;
use crate::hypercall::update_runstate_area;
use crate::sched::VcpuKey;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// What one [`CpuLoop::step`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Entered the guest (or decided again).
    Ran,
    /// Nothing to run: halted until an interrupt.
    Idle,
    /// The vCPU to run is still being switched away from on another CPU; this CPU gave
    /// way to it ([`CpuOps::relax`]); step again.
    Waiting,
    /// Every domain ended. The CPU that reaped the last one gets their ends (once).
    Finished(Option<Vec<DomainEnd>>),
}

/// The vCPU this CPU has loaded.
pub(super) struct Running<A: Arch> {
    pub key: VcpuKey,
    pub guest: Arc<Guest<A>>,
    pub vcpu: A::Vcpu,
}

/// One physical CPU's run loop: it owns the vCPU object it runs while it runs it.
pub struct CpuLoop<'m, 'a, A: Arch> {
    pub(super) m: &'m System<'a, A>,
    pub(super) cpu: CpuId,
    pub(super) current: Option<Running<A>>,
    /// Chosen by the scheduler, object not taken yet.
    want: Option<VcpuKey>,
    /// Call `pick_next` before entering a guest.
    pub(super) decide: bool,
    /// The scheduler's deadline for the next decision.
    until: Option<u64>,
    /// What the hardware timer is armed for (ns).
    pub(super) armed: Option<u64>,
    /// The physical console's input interrupt, if this CPU takes it.
    console_irq: Option<IrqNumber>,
    /// The last exit left nothing for the full iteration but what [`Work`] flags say:
    /// the short return path may enter the guest again.
    pub(super) settled: bool,
}

/// `ns` in timer ticks, rounded up, so that the timer never fires before `ns`.
fn ticks<A: Arch>(ns: u64) -> u64 {
    let t = (u128::from(ns) * u128::from(A::Timer::frequency())).div_ceil(1_000_000_000);
    u64::try_from(t).unwrap_or(u64::MAX)
}

impl<'m, 'a, A: Arch> CpuLoop<'m, 'a, A> {
    /// The loop of `cpu`; enables the timer and wake-up interrupts on the calling CPU.
    pub(super) fn new(m: &'m System<'a, A>, cpu: CpuId) -> Self {
        A::Irq::enable(A::Timer::irq());
        A::Irq::enable(A::Irq::ipi_irq());
        let console_irq = if m.take_console_input() { A::console_input_start() } else { None };
        let this = CpuLoop {
            m,
            cpu,
            current: None,
            want: None,
            decide: true,
            until: None,
            armed: None,
            console_irq,
            settled: false,
        };
        if let Some(irq) = console_irq {
            m.announce_first_input();
            A::Irq::enable(irq);
            // What arrived before the interrupt was on.
            this.read_console();
            // The same interrupt drains the console's output.
            crate::console::transmit_interrupt_routed();
        }
        this
    }

    /// Runs until every domain ended. Returns their ends on the CPU that reaped the last
    /// domain, `None` on the others.
    pub fn run(mut self) -> Option<Vec<DomainEnd>> {
        loop {
            match self.step() {
                Step::Finished(report) => return report,
                Step::Ran | Step::Idle | Step::Waiting => {}
            }
        }
    }

    /// The vCPU this CPU has loaded.
    pub fn current(&self) -> Option<VcpuKey> {
        self.current.as_ref().map(|r| r.key)
    }

    /// One iteration: one guest entry after the short return path, or the full
    /// iteration: timers, scheduling decision, reaping, then one guest entry (or a halt).
    pub fn step(&mut self) -> Step {
        match self.short_step() {
            Some(step) => step,
            None => self.full_step(),
        }
    }

    /// The short return path (Xen's: softirqs, then back to the guest): after an exit
    /// that left nothing for the full iteration, with no work pending for this CPU but
    /// perhaps the upcall level to read again, enters the same vCPU again. `None`: the
    /// full iteration must run.
    fn short_step(&mut self) -> Option<Step> {
        if !self.settled || self.decide {
            return None;
        }
        let hooks = self.m.hooks;
        let work = hooks.peek_work(self.cpu);
        if !work.without(Work::UPCALL).is_empty() {
            return None;
        }
        // A deadline that passed is work even before its interrupt is taken: a host that
        // reports no interrupt exits (Bochs's SVM) would otherwise never end the slice of a
        // guest that only makes hypercalls.
        if self.armed.is_some_and(|at| self.m.hv.now() >= at) {
            return None;
        }
        if work.contains(Work::UPCALL) && hooks.take_some_work(self.cpu, Work::UPCALL).contains(Work::UPCALL) {
            self.refresh_upcall();
        }
        let exit = self.run_current()?;
        self.handle_exit(exit);
        Some(Step::Ran)
    }

    /// Gives the running vCPU its upcall level and route as they are now.
    #[inline(never)]
    fn refresh_upcall(&mut self) {
        if let Some(cur) = self.current.as_mut() {
            let (domain, v) = (&cur.guest.domain, cur.key.vcpu);
            cur.vcpu.set_event_upcall(domain.upcall_pending(v), domain.upcall_route(v));
        }
    }

    fn full_step(&mut self) -> Step {
        self.settled = false;
        let hooks = self.m.hooks;
        // Everything raised so far is done below; what is raised from now on stays
        // pending for the next iteration.
        let work = hooks.take_work(self.cpu);
        let now = self.m.hv.now();
        self.m.check_deadline(now);
        self.fire_timers(now);
        // What firing the timers raised for this CPU is done in this iteration: the
        // decision below comes after the wake-ups, and the timer is armed after the
        // deadlines were filed again. Left pending, each would cost a second iteration
        // (a second decision) before the woken vCPU runs.
        let fired = hooks.take_some_work(self.cpu, Work::RESCHED.with(Work::TIMERS));
        let yielded = work.contains(Work::YIELD);
        let asked = work.contains(Work::RESCHED) || fired.contains(Work::RESCHED);
        if asked || yielded || self.decide || self.m.scheduler().account(self.cpu, now) {
            self.decide(now, yielded);
        }
        if let Some(report) = self.m.reap() {
            return Step::Finished(Some(report));
        }
        if self.m.is_finished() {
            return Step::Finished(None);
        }
        if let Some(key) = self.want {
            if !self.switch_in(key, now) {
                // Another CPU still holds the vCPU's object (it is between its decision
                // and parking the vCPU): give way to it. On one host thread for every
                // CPU (QEMU's round robin, as under -icount) a spin-loop hint spins out
                // this CPU's whole time slice before that CPU can park it.
                A::Cpu::relax();
                return Step::Waiting;
            }
        }
        if hooks.resched_pending(self.cpu) {
            return Step::Ran;
        }
        self.arm_timer();
        let Some(cur) = self.current.as_mut() else {
            // Free destroyed domains whose last references went away meanwhile.
            self.m.hv.reap();
            // An idle CPU sends what the console holds; it sleeps unless the UART's
            // transmit interrupt cannot wake anyone for the rest.
            crate::console::pump();
            if !crate::console::needs_polling() {
                A::Cpu::halt();
            }
            self.handle_interrupts();
            return Step::Idle;
        };
        let (domain, v) = (&cur.guest.domain, cur.key.vcpu);
        cur.vcpu.set_event_upcall(domain.upcall_pending(v), domain.upcall_route(v));
        if let Some(exit) = self.run_current() {
            self.handle_exit(exit);
        }
        Step::Ran
    }

    /// Fires the vCPU timers filed under this CPU that are due, and reports a watchdog
    /// that shut its domain down.
    ///
    /// Every vCPU taken from the table is filed again with what it waits for now: its
    /// entry was the earliest of several deadlines (vCPU 0's include the watchdogs), and
    /// the one that came due may be stale (a halt ended early by an event), while the
    /// others still wait.
    fn fire_timers(&mut self, now: u64) {
        let due = self.m.hooks.due_timers(self.cpu, now);
        let mut fired: Vec<u16> = Vec::new();
        for key in due {
            let Some(d) = self.m.hv.domain(key.domain) else { continue };
            // Once per domain: that fires every due timer of its vCPUs.
            if !fired.contains(&key.domain) {
                fired.push(key.domain);
                if let Some(e) = self.m.hv.fire_timers(&d, now) {
                    let name = self.m.guests.get(key.domain).map(|g| g.name.clone()).unwrap_or_default();
                    log::warn!(
                        "domain {} ({name}): crashed: watchdog {} not petted for {} s; shutting it down",
                        key.domain,
                        e.id,
                        e.timeout_s
                    );
                }
            }
            self.m.hv.timers_changed(&d, key.vcpu);
        }
    }

    fn decide(&mut self, now: u64, yielded: bool) {
        let sched = self.m.scheduler();
        let d = if yielded { sched.yield_now(self.cpu, now) } else { sched.pick_next(self.cpu, now) };
        for c in d.kick.iter() {
            self.m.hooks.resched(c);
        }
        self.until = d.until;
        self.decide = false;
        let current = self.current();
        if d.run != current {
            self.switch_out(now);
        } else if let Some(r) = &self.current {
            // The same vCPU goes on (a block that returned at once, a yield with nobody
            // else to run): as Xen does when it picks the vCPU it had, it is running
            // again, and its runstate area says so.
            if r.guest.domain.set_running(r.key.vcpu, true, now) {
                update_runstate_area(&self.m.hv, &r.guest.domain, r.key.vcpu, &VcpuTranslation(&r.vcpu));
            }
        }
        self.want = d.run.filter(|&k| Some(k) != current);
    }

    fn switch_out(&mut self, now: u64) {
        let Some(mut r) = self.current.take() else { return };
        let (d, v) = (&r.guest.domain, r.key.vcpu);
        d.set_running(v, false, now);
        update_runstate_area(&self.m.hv, d, v, &VcpuTranslation(&r.vcpu));
        r.vcpu.put();
        r.guest.park(v, r.vcpu);
    }

    /// Takes and loads `key`'s object; false if another CPU still has it.
    fn switch_in(&mut self, key: VcpuKey, now: u64) -> bool {
        let Some(guest) = self.m.guests.get(key.domain) else {
            self.want = None;
            self.decide = true;
            return true;
        };
        let mut taken = guest.take(key.vcpu, self.cpu);
        if matches!(taken, Take::Missing) && self.m.create_from_context(&guest, key.vcpu) {
            taken = guest.take(key.vcpu, self.cpu);
        }
        match taken {
            Take::Busy => false,
            Take::Missing => {
                log::error!("{key} was scheduled but has no vCPU; taking it offline");
                self.want = None;
                self.m.hooks.vcpu_online(key.domain, key.vcpu, false);
                true
            }
            Take::Got(mut vcpu) => {
                vcpu.load();
                let d = &guest.domain;
                d.set_running(key.vcpu, true, now);
                update_runstate_area(&self.m.hv, d, key.vcpu, &VcpuTranslation(&vcpu));
                self.current = Some(Running { key, guest, vcpu });
                self.want = None;
                true
            }
        }
    }

    /// Arms the hardware timer for the earlier of the scheduler's deadline and this
    /// CPU's vCPU timers.
    fn arm_timer(&mut self) {
        let timer = self.m.hooks.next_timer(self.cpu);
        let next = [self.until, timer, self.m.pending_deadline()].into_iter().flatten().min();
        if next == self.armed {
            return;
        }
        match next {
            Some(at) => A::Timer::set_deadline(ticks::<A>(at)),
            None => A::Timer::cancel(),
        }
        self.armed = next;
    }

    /// Routes what the physical console received.
    fn read_console(&self) {
        let mut buf = [0u8; 64];
        loop {
            let n = A::console_read(&mut buf);
            if n == 0 {
                break;
            }
            self.m.console_input(&buf[..n]);
        }
    }

    /// Takes every pending host interrupt: the timer makes this CPU decide again; the
    /// wake-up IPI only made the guest exit (who sent it raised this CPU's pending work
    /// first); a device interrupt passed through to a guest goes to it; anything else is
    /// unexpected and masked.
    #[inline(never)]
    pub(super) fn handle_interrupts(&mut self) {
        while let Some(irq) = A::Irq::acknowledge() {
            if irq == A::Irq::ipi_irq() {
                // The work it stands for is in this CPU's pending word.
            } else if irq == A::Timer::irq() {
                // Disarm it: a level-triggered timer (arm64) would otherwise assert again
                // at once. The next step arms it for the next deadline.
                A::Timer::cancel();
                self.armed = None;
                self.decide = true;
            } else if Some(irq) == self.console_irq {
                // Input, or room in the transmitter: the UART's one interrupt line.
                self.read_console();
                crate::console::pump();
            } else if self.m.hypervisor().is_device_irq(irq.0) {
                // A device passed through to a guest: it stays active until the guest
                // completes it (or the guest's domain is gone and it is taken back).
                A::Irq::end_for_guest(irq);
                if !self.m.hypervisor().forward_device_irq(irq.0) {
                    A::Irq::reclaim(irq);
                }
                continue;
            } else {
                log::warn!("cpu{}: unexpected host interrupt {}; masking it", self.cpu, irq.0);
                A::Irq::disable(irq);
            }
            A::Irq::end_of_interrupt(irq);
        }
    }
}

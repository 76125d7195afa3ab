//! Ending domains: once a stopped domain's vCPUs are off every CPU, its vCPU objects are
//! dropped, the scheduler forgets them, the domain is destroyed and its end recorded.
//! When the last domain ended, one CPU gets the report.
//!
//! [`destroy_domain`] is the one place that sequences a domain's teardown.

use super::System;
use crate::arch::Arch;
use crate::domain::{DomainState, ShutdownReason};
use crate::hypervisor::Hypervisor;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use keel_abi::xen::DomId;
use keel_abi::Errno;

/// How a domain ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainEnd {
    pub id: DomId,
    pub name: String,
    /// [`DomainState::ShutDown`] or [`DomainState::Crashed`].
    pub state: DomainState,
    /// Created at run time through the control interface (not one the boot
    /// description promised).
    pub created: bool,
}

impl DomainEnd {
    /// The guest powered itself off.
    pub fn is_clean(&self) -> bool {
        self.state == DomainState::ShutDown(ShutdownReason::Poweroff)
    }

    /// `shut down (poweroff)`, `crashed (watchdog expired)`, `crashed` (a fault), ...
    pub fn describe(&self) -> &'static str {
        match self.state {
            DomainState::ShutDown(r) => match r {
                ShutdownReason::Poweroff => "shut down (poweroff)",
                ShutdownReason::Reboot => "shut down (reboot)",
                ShutdownReason::Suspend => "shut down (suspend)",
                // A crash the guest reported itself (SCHEDOP_shutdown), and one Keel saw:
                // the guest stopped petting its watchdog (a panicked Linux on arm64
                // reports nothing else).
                ShutdownReason::Crash => "crashed (reported by the guest)",
                ShutdownReason::Watchdog => "crashed (watchdog expired)",
                ShutdownReason::SoftReset => "shut down (soft_reset)",
            },
            DomainState::Crashed => "crashed",
            DomainState::Running | DomainState::Paused | DomainState::Dying => "destroyed",
        }
    }
}

impl DomainEnd {
    /// Whether the `CTL_START_KEEP_*` bits `keep` ask to keep a domain that ended so.
    /// A destroyed domain is never kept.
    pub fn kept_by(&self, keep: u32) -> bool {
        use keel_abi::control::{CTL_START_KEEP_CRASH, CTL_START_KEEP_POWEROFF, CTL_START_KEEP_REBOOT};
        let bit = match self.state {
            DomainState::ShutDown(ShutdownReason::Poweroff) => CTL_START_KEEP_POWEROFF,
            DomainState::ShutDown(ShutdownReason::Reboot | ShutdownReason::SoftReset) => CTL_START_KEEP_REBOOT,
            DomainState::ShutDown(ShutdownReason::Crash | ShutdownReason::Watchdog) | DomainState::Crashed => {
                CTL_START_KEEP_CRASH
            }
            DomainState::ShutDown(ShutdownReason::Suspend)
            | DomainState::Running
            | DomainState::Paused
            | DomainState::Dying => 0,
        };
        keep & bit != 0
    }
}

impl core::fmt::Display for DomainEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "domain {} ({}): {}", self.id, self.name, self.describe())
    }
}

/// Destroys domain `id`, in this order:
/// 1. the table: it leaves the live table (no new lookup finds it) and is `Dying`; the
///    host interrupts passed through to it are masked and deactivated;
/// 2. events: no new ports, every port closed (peers' ports become unbound), FIFO and
///    `vcpu_info` pages unpinned;
/// 3. grants: its mappings of other domains' grants removed, and other domains' mappings
///    of its grants revoked;
/// 4. memory: [`Hypervisor::reap`] frees its P2M, RAM and special pages once nothing
///    refers to it any more, and the table forgets it;
/// 5. control domains that bound `VIRQ_DOM_EXC` are told a domain changed state.
///
/// None of its vCPUs may be running.
pub fn destroy_domain<A: Arch>(hv: &Hypervisor<'_, A>, id: DomId) -> Result<(), Errno> {
    let d = hv.retire(id)?;
    hv.unroute_device_irqs(id);
    crate::event::interdomain::teardown(hv, &d);
    crate::grant::ops::teardown(hv, &d);
    drop(d);
    hv.reap();
    hv.notify_dom_exc();
    Ok(())
}

impl<A: Arch> System<'_, A> {
    /// Reaps every stopped domain whose vCPUs no CPU holds. Returns the report of all
    /// ends to exactly one caller: the one that reaped the last domain.
    ///
    ///
    /// One CPU reaps at a time (the others wait for it): two CPUs must not both reap the
    /// same domain, and the report must not be taken between a domain's removal and the
    /// recording of its end.
    pub(super) fn reap(&self) -> Option<Vec<DomainEnd>> {
        if self.hooks.stopped().is_empty() {
            return None;
        }
        let _reaping = self.reaping.lock();
        for id in self.hooks.stopped() {
            let Some(guest) = self.guests.get(id) else {
                self.hooks.unregister(id);
                continue;
            };
            // A CPU still holds a vCPU object, or the scheduler still has one of its
            // vCPUs on a CPU (decided, not yet switched away): try again later.
            if guest.in_use() || !self.hooks.unregister(id) {
                continue;
            }
            let end = DomainEnd { id, name: guest.name.clone(), state: guest.domain.state(), created: guest.created };
            let kept = guest.created && end.kept_by(guest.keep);
            if kept {
                log::info!("{end}; kept until the control domain destroys it");
            } else {
                log::info!("{end}");
            }
            let rebooted = end.state == DomainState::ShutDown(ShutdownReason::Reboot);
            // Counted before it leaves the table, so that no CPU sees the machine
            // finished while it is rebuilt.
            let restarting = rebooted && self.may_restart(id);
            if restarting {
                self.restarting.fetch_add(1, Ordering::SeqCst);
            }
            drop(guest);
            drop(self.guests.remove(id));
            // A kept domain loses its vCPUs and its place in the scheduler, nothing else:
            // it stays listed with its state, and `CTL_DESTROY` releases it (as one the
            // scheduler does not know).
            if !kept {
                let _ = destroy_domain(&self.hv, id);
            }
            if !(rebooted && self.restart(id, &end.name)) {
                self.descriptions.lock().remove(&id);
                self.ends.lock().push(end);
            }
            if restarting {
                self.restarting.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.hv.reap();
        let last = self.is_finished() && !self.reported.swap(true, Ordering::AcqRel);
        last.then(|| self.ends())
    }
}

//! Pause, unpause, shutdown and destroy at a control domain's request, and the
//! `VIRQ_DOM_EXC` notification of the control domains.

use super::{is_control, not_self, STATE_CHANGES};
use crate::arch::Arch;
use crate::domain::{Domain, DomainState, ShutdownReason};
use crate::hypervisor::Hypervisor;
use alloc::sync::Arc;
use keel_abi::xen::VIRQ_DOM_EXC;
use keel_abi::Errno;

impl<A: Arch> Hypervisor<'_, A> {
    /// Holds a running domain's vCPUs off every CPU. Pausing a paused domain does
    /// nothing; one that is not running is `-EINVAL`.
    pub fn control_pause(&self, caller: &Domain<A>, d: &Domain<A>) -> Result<(), Errno> {
        not_self(caller, d)?;
        self.not_being_built(d)?;
        let _serial = STATE_CHANGES.lock();
        {
            let mut s = d.state.lock();
            match *s {
                DomainState::Paused => return Ok(()),
                DomainState::Running => *s = DomainState::Paused,
                _ => return Err(Errno::EINVAL),
            }
        }
        self.hooks.domain_paused(d.id(), true);
        Ok(())
    }

    /// Lets a paused domain run again. Unpausing a running domain does nothing; one
    /// that is neither is `-EINVAL`.
    pub fn control_unpause(&self, caller: &Domain<A>, d: &Domain<A>) -> Result<(), Errno> {
        not_self(caller, d)?;
        self.not_being_built(d)?;
        let _serial = STATE_CHANGES.lock();
        {
            let mut s = d.state.lock();
            match *s {
                DomainState::Running => return Ok(()),
                DomainState::Paused => *s = DomainState::Running,
                _ => return Err(Errno::EINVAL),
            }
        }
        self.hooks.domain_paused(d.id(), false);
        Ok(())
    }

    /// Shuts a running or paused domain down for `reason` (a `SHUTDOWN_*` number), as
    /// `SCHEDOP_remote_shutdown` does: its vCPUs stop and it ends as if its guest had
    /// asked (a boot-time domain that reboots is built again). `-EINVAL` for another
    /// reason or a domain that already stopped.
    pub fn control_shutdown(&self, caller: &Domain<A>, d: &Domain<A>, reason: u32) -> Result<(), Errno> {
        not_self(caller, d)?;
        self.not_being_built(d)?;
        let reason = ShutdownReason::from_abi(reason).ok_or(Errno::EINVAL)?;
        let _serial = STATE_CHANGES.lock();
        if !matches!(d.state(), DomainState::Running | DomainState::Paused) {
            return Err(Errno::EINVAL);
        }
        self.shutdown(d, DomainState::ShutDown(reason));
        Ok(())
    }

    /// Destroys a domain in any state: its vCPUs stop at once; once no CPU holds them,
    /// its event channels, grants, memory and id are released through
    /// [`crate::run::destroy_domain`] (by the run loops for a scheduled domain, here for
    /// one the scheduler does not know). Destroying a dying domain does nothing; one
    /// being built loses its staged modules too. Takes the caller's reference, so that
    /// the memory can go at once.
    pub fn control_destroy(&self, caller: &Domain<A>, d: Arc<Domain<A>>) -> Result<(), Errno> {
        not_self(caller, &d)?;
        self.forget_build(d.id());
        let scheduled = self.hooks.sched_params(d.id(), 0).is_some();
        {
            let _serial = STATE_CHANGES.lock();
            if d.state() == DomainState::Dying {
                return Ok(());
            }
            self.shutdown(&d, DomainState::Dying);
        }
        if !scheduled {
            let id = d.id();
            drop(d);
            crate::run::destroy_domain(self, id)?;
        }
        Ok(())
    }

    /// `-EINVAL` for a domain being built (`CTL_CREATE` done, `CTL_START` not yet).
    fn not_being_built(&self, d: &Domain<A>) -> Result<(), Errno> {
        if self.is_being_built(d.id()) {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Raises `VIRQ_DOM_EXC` in every live control or xenstore domain (one that bound it
    /// gets the event): a domain shut down, crashed or was destroyed.
    pub(crate) fn notify_dom_exc(&self) {
        for id in self.domain_ids() {
            if let Some(d) = self.domain(id).filter(|d| is_control(d) || super::is_xenstore(d)) {
                self.send_virq(&d, 0, VIRQ_DOM_EXC);
            }
        }
    }
}

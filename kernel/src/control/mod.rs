//! Keel's control interface, portable part: what a control domain may do to the other
//! domains (`docs/control-abi.md`). The hypercall (`hypercall/control.rs`) checks the
//! caller's capability and decodes the arguments; these operations act on domains
//! through the core and the scheduler hooks:
//!
//! - [`info`]: what `CTL_LIST` and `CTL_QUERY` report of a domain;
//! - [`lifecycle`]: pause, unpause, shutdown, destroy, and `VIRQ_DOM_EXC` to the
//!   control domains when a domain changes state;
//! - [`sched`]: weight, cap and hard affinity;
//! - [`console`]: a domain's recent console output, and console input for it;
//! - [`create`]: domains created at run time (create, load their modules, start).
//!
//! A control domain may not pause, shut down or destroy itself (`-EINVAL`): it has
//! `SCHEDOP_shutdown` for that.

pub mod builds;
pub mod console;
pub mod create;
pub mod info;
pub mod lifecycle;
pub mod sched;

use crate::arch::Arch;
use crate::domain::Domain;
use crate::hypervisor::Hypervisor;
use alloc::sync::Arc;
use keel_abi::control::{CAP_CONTROL, CAP_XENSTORE};
use keel_abi::xen::DomId;
use keel_abi::Errno;

/// Serialises the control operations that change a domain's state, so that a pause
/// and an unpause reach the scheduler in the order they changed the state.
static STATE_CHANGES: spin::Mutex<()> = spin::Mutex::new(());

/// Whether `d` holds the control capability.
pub fn is_control<A: Arch>(d: &Domain<A>) -> bool {
    d.config().capabilities & CAP_CONTROL != 0
}

/// Whether `d` holds the xenstore capability.
pub fn is_xenstore<A: Arch>(d: &Domain<A>) -> bool {
    d.config().capabilities & CAP_XENSTORE != 0
}

impl<A: Arch> Hypervisor<'_, A> {
    /// The live domain `id` names for `caller` (`DOMID_SELF` is the caller); `-ESRCH`
    /// if there is none.
    pub fn control_target(&self, caller: &Arc<Domain<A>>, id: DomId) -> Result<Arc<Domain<A>>, Errno> {
        self.resolve(caller, id).ok_or(Errno::ESRCH)
    }

    /// As [`Self::control_target`], or the destroyed domain `id` whose memory is not back
    /// in the pool yet (`CTL_QUERY` reports it as dying until it is).
    pub fn control_query_target(&self, caller: &Arc<Domain<A>>, id: DomId) -> Result<Arc<Domain<A>>, Errno> {
        self.resolve(caller, id).or_else(|| self.dying_domain(id)).ok_or(Errno::ESRCH)
    }
}

/// `-EINVAL` if `target` is the caller itself.
fn not_self<A: Arch>(caller: &Domain<A>, target: &Domain<A>) -> Result<(), Errno> {
    if caller.id() == target.id() {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

#[cfg(test)]
mod tests;

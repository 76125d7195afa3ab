//! How the core asks the rest of Keel to act: the scheduler, the CPUs running vCPUs,
//! and the console. The scheduler implements [`Hooks`]; every method has a default so
//! host tests can pass [`NoHooks`].
//!
//! The state itself lives in the core ([`VcpuState`](super::VcpuState)): a hook only
//! says that something changed. Hooks are called with no core lock held, so they may
//! call back into the core.

use crate::sched::{CpuMask, VcpuParams};
use keel_abi::xen::DomId;
use keel_abi::Errno;

/// Notifications from the core.
pub trait Hooks: Sync {
    /// `vcpu` became runnable or has a new event upcall: wake it if blocked and, if it is
    /// running on another CPU, interrupt that CPU so the backend re-reads
    /// [`Domain::upcall_pending`](super::Domain::upcall_pending) before re-entering.
    fn kick(&self, _domain: DomId, _vcpu: u32) {}
    /// The calling vCPU asked to yield (`SCHEDOP_yield`).
    fn yield_vcpu(&self, _domain: DomId, _vcpu: u32) {}
    /// The calling vCPU blocked (`SCHEDOP_block`, `SCHEDOP_poll`, WFI/HLT): deschedule it
    /// when the hypercall or exit has been handled, until a `kick`.
    ///
    /// The core has already marked the vCPU blocked. `still_blocked` tells whether it
    /// still is: a wake-up between that mark and the scheduler's own (an event raised on
    /// another CPU) sets it runnable again and then calls `kick`. The scheduler evaluates
    /// `still_blocked` under the lock its `kick` takes, after marking the vCPU blocked, so
    /// it either sees the wake-up or is woken by the `kick` (no lost wake-up).
    fn block(&self, _domain: DomId, _vcpu: u32, _still_blocked: &dyn Fn() -> bool) {}
    /// The vCPU's earliest timer deadline changed (absolute system time in ns, or none).
    /// The scheduler calls [`Hypervisor::fire_timers`](crate::Hypervisor::fire_timers)
    /// when it passes.
    fn timer_changed(&self, _domain: DomId, _vcpu: u32, _deadline_ns: Option<u64>) {}
    /// A vCPU went online or offline (`VCPUOP_up`/`down`).
    fn vcpu_online(&self, _domain: DomId, _vcpu: u32, _online: bool) {}
    /// The domain stopped running (shutdown, crash): stop scheduling its vCPUs.
    fn domain_stopped(&self, _domain: DomId) {}
    /// The control interface paused (`paused`) or unpaused the domain: hold all its
    /// vCPUs off every CPU until it is unpaused, whatever else wakes or starts them.
    fn domain_paused(&self, _domain: DomId, _paused: bool) {}
    /// The scheduling parameters of a vCPU; `None` if the scheduler does not know it.
    fn sched_params(&self, _domain: DomId, _vcpu: u32) -> Option<VcpuParams> {
        None
    }
    /// Sets the weight (1..=65535) and cap (0..=100 % of one CPU) of every vCPU of the
    /// domain: `-EINVAL` for values outside those, `-ESRCH` for an unknown domain.
    fn set_weight_cap(&self, _domain: DomId, _weight: u16, _cap: u8) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    /// Sets the hard affinity of one vCPU: `-EINVAL` if it has no online CPU, `-ESRCH`
    /// for an unknown vCPU.
    fn set_affinity(&self, _domain: DomId, _vcpu: u32, _mask: CpuMask) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    /// One line of a domain's console output (`console_io` write), without the newline.
    fn console_line(&self, domain: DomId, line: &str) {
        log::info!("(d{domain}) {line}");
    }
    /// Output of a domain whose console passes through raw (it has console input): the
    /// bytes as the guest wrote them, to reach the terminal unchanged and at once.
    fn console_raw(&self, domain: DomId, bytes: &[u8]) {
        let mut line = bytes.to_vec();
        super::sanitise(&mut line);
        log::info!("(d{domain}) {}", core::str::from_utf8(&line).unwrap_or(""));
    }
}

/// Hooks that do nothing but log console lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}

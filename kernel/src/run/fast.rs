//! The run loop's side of a backend's fast path ([`FastPath`]): a hypercall answered
//! while the vCPU stays in the backend, as the loop's hypercall exit and its short
//! return path would have answered it, with nothing else in between.

use super::cpu::CpuLoop;
use super::sched_hooks::SchedHooks;
use crate::arch::{Arch, CpuId, FastAnswer, FastPath, HypercallArgs, Vcpu, VmExit};
use crate::domain::Domain;
use crate::guest_memory::GuestTranslate;
use crate::hypervisor::Hypervisor;
use alloc::sync::Arc;
use keel_abi::control::KEEL_CONTROL_OP;
use keel_abi::hypercall::HVM_OP;

/// Whether hypercall `number` may be answered on the fast path: every call whose exit the
/// loop handles with [`Hypervisor::hypercall`] alone (each of its consequences for the
/// loop is raised as pending work where it arises). Not Keel's control call (the loop
/// serves the domain builder after it) nor `hvm_op` (it may choose another upcall route,
/// which the loop reads again).
pub fn is_fast(number: u64) -> bool {
    number != KEEL_CONTROL_OP && number != HVM_OP
}

/// What the running vCPU's fast path asks of the core.
pub(super) struct FastCalls<'c, 'h, A: Arch> {
    hv: &'c Hypervisor<'h, A>,
    hooks: &'c SchedHooks<A>,
    domain: &'c Arc<Domain<A>>,
    vcpu: u32,
    cpu: CpuId,
    /// What the hardware timer is armed for: once passed, the loop has work.
    armed: Option<u64>,
}

impl<A: Arch> FastPath for FastCalls<'_, '_, A> {
    /// The call as the loop's hypercall exit makes it; then the guest goes on if what the
    /// short return path checks holds, with no upcall to read again: no work pending for
    /// this CPU (raised by the call or before it) and the armed deadline not passed.
    /// Else the loop sees [`VmExit::Answered`], settled as the hypercall exit is.
    fn hypercall(&self, args: &HypercallArgs, translate: &dyn GuestTranslate) -> FastAnswer {
        if !is_fast(args.number) {
            return FastAnswer::Declined;
        }
        let value = self.hv.hypercall(self.domain, self.vcpu, args, translate);
        if self.hooks.peek_work(self.cpu).is_empty() && self.armed.is_none_or(|at| self.hv.now() < at) {
            FastAnswer::Resume(value)
        } else {
            FastAnswer::Exit(value)
        }
    }
}

impl<A: Arch> CpuLoop<'_, '_, A> {
    /// Runs the current vCPU, with the fast path; `None` if there is none.
    pub(super) fn run_current(&mut self) -> Option<VmExit> {
        let cur = self.current.as_mut()?;
        let fast = FastCalls {
            hv: &self.m.hv,
            hooks: self.m.hooks,
            domain: &cur.guest.domain,
            vcpu: cur.key.vcpu,
            cpu: self.cpu,
            armed: self.armed,
        };
        Some(cur.vcpu.run_fast(&fast))
    }
}

#[cfg(test)]
mod tests {
    use super::is_fast;
    use keel_abi::hypercall as nr;

    #[test]
    fn only_the_calls_the_loop_follows_up_leave_the_fast_path() {
        assert!(!is_fast(keel_abi::control::KEEL_CONTROL_OP));
        assert!(!is_fast(nr::HVM_OP));
        for n in [nr::XEN_VERSION, nr::EVENT_CHANNEL_OP, nr::SCHED_OP, nr::MEMORY_OP, nr::GRANT_TABLE_OP, 999] {
            assert!(is_fast(n), "{n}");
        }
    }
}

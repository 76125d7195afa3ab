//! What the control interface reports of a domain (`CTL_LIST`, `CTL_QUERY`).

use crate::arch::Arch;
use crate::domain::{Domain, DomainState, RunState, ShutdownReason};
use crate::hypervisor::Hypervisor;
use alloc::vec::Vec;
use keel_abi::control::*;
use keel_abi::sched::*;
use keel_abi::xen::DomId;

/// The `SHUTDOWN_*` number of a reason.
pub fn reason_code(r: ShutdownReason) -> u32 {
    match r {
        ShutdownReason::Poweroff => SHUTDOWN_POWEROFF,
        ShutdownReason::Reboot => SHUTDOWN_REBOOT,
        ShutdownReason::Suspend => SHUTDOWN_SUSPEND,
        ShutdownReason::Crash => SHUTDOWN_CRASH,
        ShutdownReason::Watchdog => SHUTDOWN_WATCHDOG,
        ShutdownReason::SoftReset => SHUTDOWN_SOFT_RESET,
    }
}

impl<A: Arch> Hypervisor<'_, A> {
    /// What the control interface reports of `d` now.
    pub fn control_info(&self, d: &Domain<A>) -> CtlDomainInfo {
        let now = self.now();
        let (mut online, mut blocked, mut cpu_time) = (0u32, 0u32, 0u64);
        for v in &d.vcpus {
            let v = v.lock();
            if v.online {
                online += 1;
                blocked += u32::from(v.run_state() == RunState::Blocked);
            }
            cpu_time = cpu_time.saturating_add(v.runstate(now).time[0]);
        }
        let (state, reason) = match d.state() {
            DomainState::Running if online == blocked => (CTL_STATE_BLOCKED, CTL_NO_REASON),
            DomainState::Running => (CTL_STATE_RUNNING, CTL_NO_REASON),
            DomainState::Paused => (CTL_STATE_PAUSED, CTL_NO_REASON),
            DomainState::ShutDown(r) => (CTL_STATE_SHUTDOWN, u8::try_from(reason_code(r)).unwrap_or(CTL_NO_REASON)),
            DomainState::Crashed => (CTL_STATE_CRASHED, CTL_NO_REASON),
            DomainState::Dying => (CTL_STATE_DYING, CTL_NO_REASON),
        };
        let mut name = [0u8; CTL_NAME_LEN];
        let given = d.config().name.as_bytes();
        let n = given.len().min(CTL_NAME_LEN);
        name[..n].copy_from_slice(&given[..n]);
        CtlDomainInfo {
            domid: d.id(),
            state,
            shutdown_reason: reason,
            caps: d.config().capabilities,
            vcpus: d.nr_vcpus(),
            vcpus_online: online,
            tot_pages: d.tot_pages(),
            max_pages: d.config().max_pages,
            cpu_time_ns: cpu_time,
            name,
        }
    }

    /// The domains with ids from `start` on, in id order, at most `max`: the live ones
    /// and the destroyed ones whose memory is not back in the pool yet (state dying; a
    /// mapping of their grants holds them), so that a toolstack sees when a destroy is
    /// complete.
    pub fn control_list(&self, start: DomId, max: usize) -> Vec<CtlDomainInfo> {
        let mut ids = self.domain_ids();
        ids.extend(self.dying_ids());
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter(|&id| id >= start)
            .filter_map(|id| self.domain(id).or_else(|| self.dying_domain(id)))
            .take(max)
            .map(|d| self.control_info(&d))
            .collect()
    }
}

//! Per-vCPU scheduling state kept by the core: run state and its accounting (the Xen
//! runstate), timers, polling, online state. The scheduler reads it and is told about
//! changes through [`Hooks`](super::Hooks).

use alloc::vec::Vec;
use keel_abi::vcpu::{VcpuRunstateInfo, RUNSTATE_BLOCKED, RUNSTATE_OFFLINE, RUNSTATE_RUNNABLE, RUNSTATE_RUNNING};

/// What a vCPU is doing, as the guest's runstate area reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// On a physical CPU.
    Running,
    /// Ready, waiting for a CPU.
    Runnable,
    /// Waiting for an event (`SCHEDOP_block`, `SCHEDOP_poll`).
    Blocked,
    /// Down, not yet started, or its domain is paused or shut down.
    Offline,
}

impl RunState {
    /// The `RUNSTATE_*` number.
    pub const fn abi(self) -> u32 {
        match self {
            RunState::Running => RUNSTATE_RUNNING,
            RunState::Runnable => RUNSTATE_RUNNABLE,
            RunState::Blocked => RUNSTATE_BLOCKED,
            RunState::Offline => RUNSTATE_OFFLINE,
        }
    }
}

/// An outstanding `SCHEDOP_poll`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poll {
    /// Ports that end the poll when they become pending (empty: any event does).
    pub ports: Vec<u32>,
    /// Absolute system time (ns) at which the poll ends anyway.
    pub deadline: Option<u64>,
}

/// A periodic timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Periodic {
    pub period_ns: u64,
    pub next_ns: u64,
}

/// The core's view of one vCPU.
#[derive(Clone, Debug)]
pub struct VcpuState {
    /// Started at least once (boot vCPU, or brought up by the backend's PSCI/SIPI path).
    pub initialised: bool,
    /// Not taken down with `VCPUOP_down`.
    pub online: bool,
    run: RunState,
    entry_ns: u64,
    time_ns: [u64; 4],
    pub poll: Option<Poll>,
    pub singleshot_ns: Option<u64>,
    pub periodic: Option<Periodic>,
    /// Guest virtual address of the registered runstate area.
    pub runstate_area: Option<u64>,
    /// x86: per-vCPU upcall vector from `HVMOP_set_evtchn_upcall_vector`.
    pub upcall_vector: Option<u8>,
    /// The backend's device timer ([`VmExit::DeviceTimer`](crate::arch::VmExit)).
    pub device_deadline: Option<u64>,
    /// The `VCPUOP_initialise` state the vCPU is created in when it first runs.
    pub context: Option<crate::arch::VcpuContext>,
    /// A halt (WFI/HLT) ends at this system time (ns): the guest's own timer fires then.
    pub halt_until: Option<u64>,
}

impl VcpuState {
    /// A vCPU that is offline until started (`boot`: the first vCPU, which starts runnable).
    pub fn new(boot: bool, now: u64) -> Self {
        VcpuState {
            initialised: boot,
            online: boot,
            run: if boot { RunState::Runnable } else { RunState::Offline },
            entry_ns: now,
            time_ns: [0; 4],
            poll: None,
            singleshot_ns: None,
            periodic: None,
            runstate_area: None,
            upcall_vector: None,
            context: None,
            device_deadline: None,
            halt_until: None,
        }
    }

    pub fn run_state(&self) -> RunState {
        self.run
    }

    /// Moves to `state` at time `now`, accounting the time spent in the old state.
    pub fn set_run_state(&mut self, state: RunState, now: u64) {
        if state == self.run {
            return;
        }
        let old = self.run.abi() as usize;
        self.time_ns[old] = self.time_ns[old].saturating_add(now.saturating_sub(self.entry_ns));
        self.entry_ns = now.max(self.entry_ns);
        self.run = state;
    }

    /// The runstate as `VCPUOP_get_runstate_info` reports it at time `now`.
    pub fn runstate(&self, now: u64) -> VcpuRunstateInfo {
        let mut time = self.time_ns;
        let cur = self.run.abi() as usize;
        time[cur] = time[cur].saturating_add(now.saturating_sub(self.entry_ns));
        VcpuRunstateInfo { state: self.run.abi(), _pad: [0; 4], state_entry_time: self.entry_ns, time }
    }

    /// The earliest timer, poll, device or halt deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.singleshot_ns,
            self.periodic.map(|p| p.next_ns),
            self.poll.as_ref().and_then(|p| p.deadline),
            self.device_deadline,
            self.halt_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runstate_accounts_time() {
        let mut v = VcpuState::new(true, 100);
        v.set_run_state(RunState::Running, 150);
        v.set_run_state(RunState::Blocked, 400);
        let r = v.runstate(1000);
        assert_eq!(r.state, RUNSTATE_BLOCKED);
        assert_eq!(r.state_entry_time, 400);
        assert_eq!(r.time, [250, 50, 600, 0]);
        assert_eq!(VcpuState::new(false, 0).run_state(), RunState::Offline);
    }
}

//! `vcpu_op`: sub-ops, runstate, timers, `vcpu_info` registration.

/// Set up a vCPU's initial context (unsupported: -ENOSYS).
pub const VCPUOP_INITIALISE: u64 = 0;
/// Bring an initialised vCPU online.
pub const VCPUOP_UP: u64 = 1;
/// Take a vCPU offline (the last one shuts the domain down: poweroff).
pub const VCPUOP_DOWN: u64 = 2;
/// Returns 1 if the vCPU is online, else 0.
pub const VCPUOP_IS_UP: u64 = 3;
/// Copy the vCPU's [`VcpuRunstateInfo`].
pub const VCPUOP_GET_RUNSTATE_INFO: u64 = 4;
/// Register a guest-virtual address that Keel keeps updated with the runstate.
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;
/// Start a periodic timer.
pub const VCPUOP_SET_PERIODIC_TIMER: u64 = 6;
/// Stop the periodic timer.
pub const VCPUOP_STOP_PERIODIC_TIMER: u64 = 7;
/// Arm the one-shot timer (calling vCPU only).
pub const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
/// Disarm the one-shot timer (calling vCPU only).
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u64 = 9;
/// Place the vCPU's `vcpu_info` in a guest page.
pub const VCPUOP_REGISTER_VCPU_INFO: u64 = 10;
/// Unsupported: -ENOSYS.
pub const VCPUOP_SEND_NMI: u64 = 11;
/// Unsupported: -ENOSYS.
pub const VCPUOP_GET_PHYSID: u64 = 12;
/// Unsupported: -ENOSYS.
pub const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u64 = 13;
/// Unsupported: -ENOSYS.
pub const VCPUOP_REGISTER_RUNSTATE_PHYS_AREA: u64 = 14;
/// Unsupported: -ENOSYS.
pub const VCPUOP_REGISTER_VCPU_TIME_PHYS_AREA: u64 = 15;

/// Runstate: running on a physical CPU.
pub const RUNSTATE_RUNNING: u32 = 0;
/// Runstate: runnable, waiting for a CPU.
pub const RUNSTATE_RUNNABLE: u32 = 1;
/// Runstate: blocked (waiting for an event or timer).
pub const RUNSTATE_BLOCKED: u32 = 2;
/// Runstate: offline (down, or the domain is paused/shut down).
pub const RUNSTATE_OFFLINE: u32 = 3;
/// Set in `state_entry_time` while Keel updates the area (with the vm_assist enabled).
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;
/// `vcpu_set_singleshot_timer.flags`: historical "must be in the future" flag; accepted
/// and ignored (an expired timeout fires at once), as in current Xen.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1;

wire_struct! {
    /// `vcpu_runstate_info`.
    pub struct VcpuRunstateInfo: 48 {
        /// `RUNSTATE_*`.
        pub state: u32 = 0,
        pub _pad: [u8; 4] = 4,
        /// System time (ns) when `state` was entered.
        pub state_entry_time: u64 = 8,
        /// Nanoseconds spent in each state.
        pub time: [u64; 4] = 16,
    }
}

wire_struct! {
    /// `vcpu_runstate_info` as a 32-bit x86 caller lays it out
    /// (`compat_vcpu_runstate_info`, `#pragma pack(4)`): no padding after `state`.
    pub struct VcpuRunstateInfoCompat: 44 {
        /// `RUNSTATE_*`.
        pub state: u32 = 0,
        /// System time (ns) when `state` was entered.
        pub state_entry_time: crate::wire::U64Align4 = 4,
        /// Nanoseconds spent in each state.
        pub time: [crate::wire::U64Align4; 4] = 12,
    }
}

impl VcpuRunstateInfoCompat {
    /// Offset of `state_entry_time`.
    pub const STATE_ENTRY_TIME: usize = 4;

    /// `info` in the compat layout.
    pub fn narrow(info: &VcpuRunstateInfo) -> Self {
        use crate::wire::U64Align4;
        VcpuRunstateInfoCompat {
            state: info.state,
            state_entry_time: U64Align4::new(info.state_entry_time),
            time: info.time.map(U64Align4::new),
        }
    }
}

wire_struct! {
    /// `vcpu_register_runstate_memory_area`.
    pub struct VcpuRegisterRunstateMemoryArea: 8 {
        /// A guest *virtual* address.
        pub addr: u64 = 0,
    }
}

wire_struct! {
    /// `vcpu_set_periodic_timer`.
    pub struct VcpuSetPeriodicTimer: 8 {
        pub period_ns: u64 = 0,
    }
}

wire_struct! {
    /// `vcpu_set_singleshot_timer`.
    pub struct VcpuSetSingleshotTimer: 16 {
        /// Absolute system time (ns).
        pub timeout_abs_ns: u64 = 0,
        pub flags: u32 = 8,
        pub _pad: [u8; 4] = 12,
    }
}

wire_struct! {
    /// `vcpu_register_vcpu_info`.
    pub struct VcpuRegisterVcpuInfo: 16 {
        /// Guest frame number of the page.
        pub mfn: u64 = 0,
        /// Offset in the page (8-aligned; the area must not cross the page).
        pub offset: u32 = 8,
        pub rsvd: u32 = 12,
    }
}

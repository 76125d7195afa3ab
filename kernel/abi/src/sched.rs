//! `sched_op`: sub-ops, shutdown reasons, argument structs.

/// Give up the CPU.
pub const SCHEDOP_YIELD: u64 = 0;
/// Block until an event is pending.
pub const SCHEDOP_BLOCK: u64 = 1;
/// Shut the calling domain down with a reason ([`SchedShutdown`]).
pub const SCHEDOP_SHUTDOWN: u64 = 2;
/// Block until one of a set of ports is pending or a timeout passes ([`SchedPoll`]).
pub const SCHEDOP_POLL: u64 = 3;
/// Shut another domain down (privileged: -EPERM).
pub const SCHEDOP_REMOTE_SHUTDOWN: u64 = 4;
/// Record the reason a later shutdown will report ([`SchedShutdown`]).
pub const SCHEDOP_SHUTDOWN_CODE: u64 = 5;
/// Create, re-arm or destroy one of the domain's watchdogs ([`SchedWatchdog`]).
pub const SCHEDOP_WATCHDOG: u64 = 6;
/// Hardware-domain pinning (privileged: -EPERM).
pub const SCHEDOP_PIN_OVERRIDE: u64 = 7;

/// Shutdown reason: normal exit.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// Shutdown reason: restart.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// Shutdown reason: suspend (save state).
pub const SHUTDOWN_SUSPEND: u32 = 2;
/// Shutdown reason: the guest crashed.
pub const SHUTDOWN_CRASH: u32 = 3;
/// Shutdown reason: the watchdog expired.
pub const SHUTDOWN_WATCHDOG: u32 = 4;
/// Shutdown reason: soft reset.
pub const SHUTDOWN_SOFT_RESET: u32 = 5;
/// Highest valid reason.
pub const SHUTDOWN_MAX: u32 = 5;

/// Why a domain stopped, as `SCHEDOP_shutdown` and the control interface name it
/// (the `SHUTDOWN_*` numbers above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    Poweroff,
    Reboot,
    Suspend,
    Crash,
    Watchdog,
    SoftReset,
}

impl ShutdownReason {
    /// The reason for `SHUTDOWN_*` number `n`.
    pub const fn from_abi(n: u32) -> Option<Self> {
        Some(match n {
            SHUTDOWN_POWEROFF => ShutdownReason::Poweroff,
            SHUTDOWN_REBOOT => ShutdownReason::Reboot,
            SHUTDOWN_SUSPEND => ShutdownReason::Suspend,
            SHUTDOWN_CRASH => ShutdownReason::Crash,
            SHUTDOWN_WATCHDOG => ShutdownReason::Watchdog,
            SHUTDOWN_SOFT_RESET => ShutdownReason::SoftReset,
            _ => return None,
        })
    }
}

/// The most ports one `SCHEDOP_poll` may wait on.
pub const SCHED_POLL_MAX_PORTS: u32 = 128;

/// Watchdogs a domain may have at once (Xen's `NR_DOMAIN_WATCHDOG_TIMERS`).
pub const NR_DOMAIN_WATCHDOG_TIMERS: u32 = 2;

wire_struct! {
    /// `sched_shutdown`.
    pub struct SchedShutdown: 4 {
        pub reason: u32 = 0,
    }
}

wire_struct! {
    /// `sched_poll`.
    pub struct SchedPoll: 24 {
        /// Guest handle of a `u32` port array.
        pub ports: u64 = 0,
        pub nr_ports: u32 = 8,
        pub _pad: [u8; 4] = 12,
        /// Absolute system time (ns); 0 waits forever.
        pub timeout: u64 = 16,
    }
}

wire_struct! {
    /// `sched_poll` as a 32-bit x86 caller lays it out (`compat_sched_poll`): a 32-bit
    /// guest handle, and `timeout` 4-aligned at 8.
    pub struct SchedPollCompat: 16 {
        /// Guest handle of a `u32` port array.
        pub ports: u32 = 0,
        pub nr_ports: u32 = 4,
        /// Absolute system time (ns); 0 waits forever.
        pub timeout: crate::wire::U64Align4 = 8,
    }
}

wire_struct! {
    /// `sched_remote_shutdown`.
    pub struct SchedRemoteShutdown: 8 {
        pub domain_id: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub reason: u32 = 4,
    }
}

wire_struct! {
    /// `sched_watchdog`.
    pub struct SchedWatchdog: 8 {
        /// 0: create one (the result is its id); else the watchdog (1-based) to re-arm
        /// or, with a zero `timeout`, to destroy.
        pub id: u32 = 0,
        /// Seconds until it expires.
        pub timeout: u32 = 4,
    }
}

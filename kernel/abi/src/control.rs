//! Keel's control interface: Keel's own, versioned separately from the guest ABI, reached
//! through one hypercall number and usable only by a domain holding the control
//! capability (`docs/control-abi.md`).
//!
//! `control_op(cmd, arg)`: `cmd` is a `CTL_*` sub-op (an `unsigned int`: the low 32 bits
//! count), `arg` the guest-virtual address of the sub-op's struct (unused by
//! [`CTL_VERSION`]). Every struct is little-endian with its layout asserted here; padding
//! must be zero. Errors are Xen's errno values ([`Errno`](crate::Errno)).

use crate::version::AbiVersion;

/// The hypercall number: not one Xen assigns (Xen uses 0..=42 and `__HYPERVISOR_arch_*`
/// 48..=55), below 64 (Keel's table) and 128 (an x86 hypercall page's stubs), so Linux's
/// `IOCTL_PRIVCMD_HYPERCALL` reaches it on both architectures.
pub const KEEL_CONTROL_OP: u64 = 60;

// Free in Xen (0..=42 used, `__HYPERVISOR_arch_*` 48..=55), inside Keel's table and an
// x86 hypercall page.
const _: () = {
    assert!(KEEL_CONTROL_OP > 42 && (KEEL_CONTROL_OP < 48 || KEEL_CONTROL_OP > 55));
    assert!(KEEL_CONTROL_OP < crate::hypercall::TABLE_SIZE);
    assert!(KEEL_CONTROL_OP < 4096 / crate::hypercall::X86_HYPERCALL_STUB_SIZE as u64);
};

/// The control interface this build implements (independent of the guest ABI's version).
pub const CONTROL_VERSION: AbiVersion = AbiVersion { major: 1, minor: 4 };

/// Capability bit: the domain may use [`KEEL_CONTROL_OP`] (Xen's `DOMAIN_CAPS_CONTROL`).
pub const CAP_CONTROL: u32 = 0x1;
/// Capability bit: the hardware domain (Xen's `DOMAIN_CAPS_HARDWARE`); reported only.
pub const CAP_HARDWARE: u32 = 0x2;
/// Capability bit: the xenstore domain (Xen's `DOMAIN_CAPS_XENSTORE`); reported only.
pub const CAP_XENSTORE: u32 = 0x4;

/// Returns [`CONTROL_VERSION`] packed as `major << 16 | minor`; `arg` is ignored.
pub const CTL_VERSION: u32 = 0;
/// Fills an array with [`CtlDomainInfo`] of domains from an id on ([`CtlList`]);
/// returns how many.
pub const CTL_LIST: u32 = 1;
/// Fills one [`CtlDomainInfo`] whose `domid` the caller set.
pub const CTL_QUERY: u32 = 2;
/// Holds a running domain's vCPUs off every CPU ([`CtlDomain`]).
pub const CTL_PAUSE: u32 = 3;
/// Lets a paused domain run again ([`CtlDomain`]).
pub const CTL_UNPAUSE: u32 = 4;
/// Shuts a domain down with a reason, as `SCHEDOP_remote_shutdown` ([`CtlShutdown`]).
pub const CTL_SHUTDOWN: u32 = 5;
/// Destroys a domain: its events, grants, memory and id are released ([`CtlDomain`]).
pub const CTL_DESTROY: u32 = 6;
/// Reads the weight and cap of a domain's vCPU 0 ([`CtlSched`]).
pub const CTL_GET_SCHED: u32 = 7;
/// Sets the weight and cap of every vCPU of a domain ([`CtlSched`]).
pub const CTL_SET_SCHED: u32 = 8;
/// Sets one vCPU's hard affinity ([`CtlAffinity`]).
pub const CTL_SET_AFFINITY: u32 = 9;
/// Copies a domain's recent console output to the caller ([`CtlConsole`]).
pub const CTL_CONSOLE_READ: u32 = 10;
/// Gives a domain console input from the caller ([`CtlConsole`]).
pub const CTL_CONSOLE_WRITE: u32 = 11;
/// Reads a domain's xenstore page and event channel ([`CtlStore`]).
pub const CTL_STORE_INFO: u32 = 12;
/// Creates a domain that is being built: its id, RAM and room for its kernel and
/// ramdisk are reserved ([`CtlCreate`]); since 1.1.
pub const CTL_CREATE: u32 = 13;
/// Copies one chunk of a domain-being-built's kernel or ramdisk from the caller
/// ([`CtlLoad`]); since 1.1.
pub const CTL_LOAD: u32 = 14;
/// Loads a domain-being-built's kernel with the boot-time loaders and starts it, running
/// or paused ([`CtlStart`]); since 1.1.
pub const CTL_START: u32 = 15;
/// Reports the host's memory ([`CtlPhysInfo`]); since 1.1.
pub const CTL_PHYSINFO: u32 = 16;
/// Hands a domain's xenstore connection over to a port it allocated toward the xenstore
/// domain ([`CtlStore`], `gfn` 0): the late-init handoff of a control domain whose kernel
/// serves its own store page (Linux's `IOCTL_XENBUS_BACKEND_SETUP`). Since 1.1.
pub const CTL_STORE_CONNECT: u32 = 17;

/// Most entries one [`CTL_LIST`] call may ask for.
pub const CTL_LIST_MAX: u32 = 64;
/// Most bytes one [`CTL_CONSOLE_READ`] or [`CTL_CONSOLE_WRITE`] may move.
pub const CTL_CONSOLE_MAX: u32 = 4096;
/// Bytes of console output Keel keeps per domain for [`CTL_CONSOLE_READ`].
pub const CTL_CONSOLE_HISTORY: u32 = 16384;
/// [`CtlAffinity::vcpu`]: every vCPU of the domain.
pub const CTL_ALL_VCPUS: u32 = u32::MAX;

/// [`CtlDomainInfo::state`]: its vCPUs may run and at least one is not blocked.
pub const CTL_STATE_RUNNING: u8 = 0;
/// Every online vCPU waits for an event.
pub const CTL_STATE_BLOCKED: u8 = 1;
/// Paused by [`CTL_PAUSE`].
pub const CTL_STATE_PAUSED: u8 = 2;
/// Shut down; [`CtlDomainInfo::shutdown_reason`] says why.
pub const CTL_STATE_SHUTDOWN: u8 = 3;
/// Crashed (a fault Keel saw).
pub const CTL_STATE_CRASHED: u8 = 4;
/// Being destroyed: its resources are released once no CPU runs its vCPUs.
pub const CTL_STATE_DYING: u8 = 5;
/// [`CtlDomainInfo::shutdown_reason`] when the domain is not shut down.
pub const CTL_NO_REASON: u8 = 0xff;

/// Bytes of a domain's name in [`CtlDomainInfo`] (NUL-padded, truncated).
pub const CTL_NAME_LEN: usize = 24;

/// Bytes of [`CtlCreate::name`]: a name of 1..=64 letters, digits, `-`, `_`, `.`,
/// NUL-padded.
pub const CTL_CREATE_NAME_LEN: usize = 64;
/// Most vCPUs [`CTL_CREATE`] gives a domain.
pub const CTL_CREATE_MAX_VCPUS: u32 = 128;
/// Most bytes of a command line ([`CtlCreate::cmdline_len`]).
pub const CTL_CMDLINE_MAX: u32 = 4096;
/// Largest kernel [`CTL_CREATE`] accepts (bytes as handed over, compressed or not).
pub const CTL_KERNEL_MAX: u64 = 256 << 20;
/// Largest ramdisk [`CTL_CREATE`] accepts.
pub const CTL_RAMDISK_MAX: u64 = 1 << 30;
/// Most bytes one [`CTL_LOAD`] call copies.
pub const CTL_LOAD_MAX: u32 = 1 << 20;
/// [`CtlLoad::module`]: the kernel.
pub const CTL_MODULE_KERNEL: u8 = 0;
/// [`CtlLoad::module`]: the ramdisk.
pub const CTL_MODULE_RAMDISK: u8 = 1;
/// [`CtlStart::flags`]: the domain starts paused ([`CTL_UNPAUSE`] lets it run).
pub const CTL_START_PAUSED: u32 = 0x1;
/// [`CtlStart::flags`]: once the domain powers off (`SHUTDOWN_poweroff`), it is kept
/// (listed as shut down, its memory held) until [`CTL_DESTROY`], as Xen keeps a domain
/// for its toolstack; without the flag Keel destroys it at once. Since 1.3.
pub const CTL_START_KEEP_POWEROFF: u32 = 0x2;
/// [`CtlStart::flags`]: the same once it reboots (`SHUTDOWN_reboot`, `SHUTDOWN_soft_reset`).
pub const CTL_START_KEEP_REBOOT: u32 = 0x4;
/// [`CtlStart::flags`]: the same once it crashes (`SHUTDOWN_crash`, `SHUTDOWN_watchdog`,
/// or a fault Keel ended it for).
pub const CTL_START_KEEP_CRASH: u32 = 0x8;
/// [`CtlCreate::flags`]: the domain gets the architecture's emulated console UART where
/// Xen's guest ABI places one (arm64: the virtual PL011 at `GUEST_PL011_BASE`, xl.cfg's
/// `vuart = "sbsa_uart"`); `-EOPNOTSUPP` where the architecture has none. Since 1.4.
pub const CTL_CREATE_VUART: u8 = 0x1;
/// [`CtlCreate::flags`]: the domain holds the xenstore capability ([`CAP_XENSTORE`]):
/// it is the xenstore domain, as Xen's `init-xenstore-domain` makes one. When it starts,
/// every domain left in late init gets its store page. `-EEXIST` while a xenstore domain
/// exists (live or being built). Since 1.4.
pub const CTL_CREATE_XENSTORE: u8 = 0x2;
/// Every [`CtlCreate::flags`] bit.
pub const CTL_CREATE_FLAGS: u8 = CTL_CREATE_VUART | CTL_CREATE_XENSTORE;
/// Every [`CtlStart::flags`] bit.
pub const CTL_START_FLAGS: u32 =
    CTL_START_PAUSED | CTL_START_KEEP_POWEROFF | CTL_START_KEEP_REBOOT | CTL_START_KEEP_CRASH;

wire_struct! {
    /// One domain, for [`CTL_PAUSE`], [`CTL_UNPAUSE`] and [`CTL_DESTROY`].
    pub struct CtlDomain: 8 {
        pub domid: u16 = 0,
        pub _pad: [u8; 6] = 2,
    }
}

wire_struct! {
    /// What [`CTL_LIST`] and [`CTL_QUERY`] report of a domain.
    pub struct CtlDomainInfo: 64 {
        pub domid: u16 = 0,
        /// `CTL_STATE_*`.
        pub state: u8 = 2,
        /// `SHUTDOWN_*` when `state` is [`CTL_STATE_SHUTDOWN`], else [`CTL_NO_REASON`].
        pub shutdown_reason: u8 = 3,
        /// `CAP_*` bits.
        pub caps: u32 = 4,
        pub vcpus: u32 = 8,
        pub vcpus_online: u32 = 12,
        /// RAM pages it owns.
        pub tot_pages: u64 = 16,
        /// RAM pages it may own.
        pub max_pages: u64 = 24,
        /// Time its vCPUs spent running, summed, in ns.
        pub cpu_time_ns: u64 = 32,
        pub name: [u8; CTL_NAME_LEN] = 40,
    }
}

wire_struct! {
    /// [`CTL_LIST`]: up to `max_entries` (at most [`CTL_LIST_MAX`]) domains with ids from
    /// `start_domid` on, in id order, into the array at guest handle `buffer`.
    pub struct CtlList: 16 {
        pub start_domid: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub max_entries: u32 = 4,
        pub buffer: u64 = 8,
    }
}

wire_struct! {
    /// [`CTL_SHUTDOWN`], laid out as `sched_remote_shutdown`.
    pub struct CtlShutdown: 8 {
        pub domid: u16 = 0,
        pub _pad: [u8; 2] = 2,
        /// `SHUTDOWN_*`.
        pub reason: u32 = 4,
    }
}

wire_struct! {
    /// [`CTL_GET_SCHED`] and [`CTL_SET_SCHED`].
    pub struct CtlSched: 8 {
        pub domid: u16 = 0,
        /// Relative share, 1..=65535 (default 256).
        pub weight: u16 = 2,
        /// Upper limit in percent of one CPU, 0 (none) ..= 100.
        pub cap: u8 = 4,
        pub _pad: [u8; 3] = 5,
    }
}

wire_struct! {
    /// [`CTL_SET_AFFINITY`]: the CPUs (bit n = CPU n) vCPU `vcpu` (or
    /// [`CTL_ALL_VCPUS`]) may run on.
    pub struct CtlAffinity: 40 {
        pub domid: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub vcpu: u32 = 4,
        pub cpumap: [u64; 4] = 8,
    }
}

wire_struct! {
    /// [`CTL_CONSOLE_READ`] and [`CTL_CONSOLE_WRITE`]: `len` bytes (at most
    /// [`CTL_CONSOLE_MAX`]) at guest handle `buffer`. Reading starts at output byte
    /// `offset` (counted from the domain's start); Keel writes back the offset of the
    /// first byte it copied (later than asked if older output was dropped) and returns
    /// the count.
    pub struct CtlConsole: 24 {
        pub domid: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub len: u32 = 4,
        pub buffer: u64 = 8,
        pub offset: u64 = 16,
    }
}

wire_struct! {
    /// [`CTL_STORE_INFO`]: the domain's `HVM_PARAM_STORE_PFN` and `HVM_PARAM_STORE_EVTCHN`
    /// (0 and 0: the domain has no xenstore). [`CTL_STORE_CONNECT`]: the new port in
    /// `evtchn`, `gfn` 0.
    pub struct CtlStore: 16 {
        pub domid: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub evtchn: u32 = 4,
        pub gfn: u64 = 8,
    }
}

wire_struct! {
    /// [`CTL_CREATE`]: what the new domain gets. Keel writes its id to `domid`. Sizes are
    /// of the modules as the caller will hand them over with [`CTL_LOAD`]; `cmdline`
    /// is a guest handle to `cmdline_len` bytes, copied now. `cpumap` all zero: every
    /// CPU.
    pub struct CtlCreate: 144 {
        pub domid: u16 = 0,
        /// Scheduler weight, 1..=65535.
        pub weight: u16 = 2,
        /// Cap in percent of one CPU, 0 (none) ..= 100.
        pub cap: u8 = 4,
        /// [`CTL_CREATE_FLAGS`] bits (since 1.4; zero before).
        pub flags: u8 = 5,
        pub _pad: [u8; 2] = 6,
        /// vCPUs, 1..=[`CTL_CREATE_MAX_VCPUS`]; only vCPU 0 starts, as at boot.
        pub vcpus: u32 = 8,
        /// At most [`CTL_CMDLINE_MAX`].
        pub cmdline_len: u32 = 12,
        /// RAM in KiB, a multiple of 4, at least 4.
        pub memory_kib: u64 = 16,
        /// 1..=[`CTL_KERNEL_MAX`].
        pub kernel_size: u64 = 24,
        /// 0 (none) ..= [`CTL_RAMDISK_MAX`].
        pub ramdisk_size: u64 = 32,
        pub cmdline: u64 = 40,
        /// Hard affinity of every vCPU: bit n of word n / 64 = CPU n.
        pub cpumap: [u64; 4] = 48,
        pub name: [u8; CTL_CREATE_NAME_LEN] = 80,
    }
}

wire_struct! {
    /// [`CTL_LOAD`]: `len` bytes (at most [`CTL_LOAD_MAX`]) at guest handle `buffer` are
    /// bytes `offset..offset + len` of module `module` ([`CTL_MODULE_KERNEL`] or
    /// [`CTL_MODULE_RAMDISK`]); `offset` is what was loaded so far (chunks go in order).
    pub struct CtlLoad: 24 {
        pub domid: u16 = 0,
        pub module: u8 = 2,
        pub _pad: u8 = 3,
        pub len: u32 = 4,
        pub offset: u64 = 8,
        pub buffer: u64 = 16,
    }
}

wire_struct! {
    /// [`CTL_START`]: `flags` of [`CTL_START_FLAGS`].
    pub struct CtlStart: 8 {
        pub domid: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub flags: u32 = 4,
    }
}

wire_struct! {
    /// [`CTL_PHYSINFO`]: the frame pool guests' memory comes from, in 4 KiB pages.
    pub struct CtlPhysInfo: 16 {
        pub total_pages: u64 = 0,
        pub free_pages: u64 = 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Wire;

    #[test]
    fn version_packs_as_xen_packs_versions() {
        assert_eq!(CONTROL_VERSION.packed(), 0x0001_0004);
    }

    #[test]
    fn domain_info_round_trips() {
        let mut name = [0u8; CTL_NAME_LEN];
        name[..4].copy_from_slice(b"dom0");
        let i = CtlDomainInfo {
            domid: 7,
            state: CTL_STATE_PAUSED,
            shutdown_reason: CTL_NO_REASON,
            caps: CAP_CONTROL,
            vcpus: 2,
            vcpus_online: 1,
            tot_pages: 256,
            max_pages: 512,
            cpu_time_ns: 1 << 40,
            name,
        };
        let b = i.to_bytes();
        assert_eq!(&b[..4], &[7, 0, 2, 0xff]);
        assert_eq!(&b[40..44], b"dom0");
        assert_eq!(CtlDomainInfo::from_bytes(&b), Some(i));
    }
}

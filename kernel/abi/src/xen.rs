//! Basic Xen identifiers: domain ids, VIRQs, `console_io` and `vm_assist` commands.

/// A domain id (`domid_t`).
pub type DomId = u16;
/// An event-channel port (`evtchn_port_t`).
pub type Port = u32;
/// A grant reference (`grant_ref_t`).
pub type GrantRef = u32;
/// A grant-mapping handle (`grant_handle_t`).
pub type GrantHandle = u32;

/// The first id that names no real domain.
pub const DOMID_FIRST_RESERVED: DomId = 0x7FF0;
/// The calling domain.
pub const DOMID_SELF: DomId = 0x7FF0;
/// `DOMID_IO`.
pub const DOMID_IO: DomId = 0x7FF1;
/// `DOMID_XEN`.
pub const DOMID_XEN: DomId = 0x7FF2;
/// `DOMID_COW`.
pub const DOMID_COW: DomId = 0x7FF3;
/// No domain.
pub const DOMID_INVALID: DomId = 0x7FF4;
/// `DOMID_ANY`.
pub const DOMID_ANY: DomId = 0x7FF5;
/// The idle domain.
pub const DOMID_IDLE: DomId = 0x7FFF;

/// Per-vCPU: the vCPU's timer fired (`V`).
pub const VIRQ_TIMER: u32 = 0;
/// Per-vCPU: dump debug state (`V`).
pub const VIRQ_DEBUG: u32 = 1;
/// Global: console input arrived (`G`).
pub const VIRQ_CONSOLE: u32 = 2;
/// Global: a domain changed state (`G`).
pub const VIRQ_DOM_EXC: u32 = 3;
/// Global: trace buffer (`G`).
pub const VIRQ_TBUF: u32 = 4;
/// Global: a domain paused for a debugger (`G`).
pub const VIRQ_DEBUGGER: u32 = 6;
/// Per-vCPU: profiling sample (`V`).
pub const VIRQ_XENOPROF: u32 = 7;
/// Global: console ring (`G`).
pub const VIRQ_CON_RING: u32 = 8;
/// Global: physical CPU state changed (`G`).
pub const VIRQ_PCPU_STATE: u32 = 9;
/// Global: memory event (`G`).
pub const VIRQ_MEM_EVENT: u32 = 10;
/// Per-domain: Argo message (`D`).
pub const VIRQ_ARGO: u32 = 11;
/// Global: hypervisor low on memory (`G`).
pub const VIRQ_ENOMEM: u32 = 12;
/// Per-vCPU: PMU interrupt (`V`).
pub const VIRQ_XENPMU: u32 = 13;
/// First architecture-specific VIRQ (`VIRQ_ARCH_0`); they run to 23 and are global.
pub const VIRQ_ARCH_0: u32 = 16;
/// Number of VIRQs.
pub const NR_VIRQS: u32 = 24;

/// How a VIRQ is delivered (Xen's `V`, `G`, `D` classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirqKind {
    /// One binding per vCPU, raised on that vCPU.
    PerVcpu,
    /// One binding per domain, on vCPU 0, re-targetable with `bind_vcpu`; only the
    /// domain that handles global VIRQs may bind it.
    Global,
    /// One binding per domain, on vCPU 0.
    PerDomain,
}

/// The class of `virq` (which must be below [`NR_VIRQS`]).
pub const fn virq_kind(virq: u32) -> VirqKind {
    match virq {
        VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU => VirqKind::PerVcpu,
        VIRQ_ARGO => VirqKind::PerDomain,
        _ => VirqKind::Global,
    }
}

/// `console_io`: write `count` bytes from the buffer to the hypervisor console.
pub const CONSOLEIO_WRITE: u64 = 0;
/// `console_io`: read up to `count` bytes of console input; returns the number read.
pub const CONSOLEIO_READ: u64 = 1;

/// `vm_assist`: enable an assist.
pub const VMASST_CMD_ENABLE: u64 = 0;
/// `vm_assist`: disable an assist.
pub const VMASST_CMD_DISABLE: u64 = 1;
/// `vm_assist` type: set `XEN_RUNSTATE_UPDATE` in `state_entry_time` while the runstate
/// area is being updated (the only assist Keel offers).
pub const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u64 = 5;

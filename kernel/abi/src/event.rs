//! Event channels (`event_channel_op`): sub-ops, argument structs, the FIFO ABI.

/// Connect to a port another domain allocated for us.
pub const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
/// Bind a VIRQ to a new port.
pub const EVTCHNOP_BIND_VIRQ: u64 = 1;
/// Bind a physical IRQ (unsupported: -ENOSYS).
pub const EVTCHNOP_BIND_PIRQ: u64 = 2;
/// Close a port.
pub const EVTCHNOP_CLOSE: u64 = 3;
/// Raise the event at the other end of a port.
pub const EVTCHNOP_SEND: u64 = 4;
/// Describe a port.
pub const EVTCHNOP_STATUS: u64 = 5;
/// Allocate a port another domain may bind to.
pub const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
/// Allocate an inter-vCPU port.
pub const EVTCHNOP_BIND_IPI: u64 = 7;
/// Choose the vCPU that is notified for a port.
pub const EVTCHNOP_BIND_VCPU: u64 = 8;
/// Unmask a port (and deliver it if pending).
pub const EVTCHNOP_UNMASK: u64 = 9;
/// Close every port and return to the 2-level ABI.
pub const EVTCHNOP_RESET: u64 = 10;
/// FIFO: register a vCPU's control block.
pub const EVTCHNOP_INIT_CONTROL: u64 = 11;
/// FIFO: add an event-array page.
pub const EVTCHNOP_EXPAND_ARRAY: u64 = 12;
/// FIFO: set a port's priority.
pub const EVTCHNOP_SET_PRIORITY: u64 = 13;
/// Continuation of `reset` (unsupported: -ENOSYS; Keel's reset never needs one).
pub const EVTCHNOP_RESET_CONT: u64 = 14;

/// `evtchn_status.status`: the port is free.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `evtchn_status.status`: waiting for a remote domain to bind.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `evtchn_status.status`: connected to a remote domain.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `evtchn_status.status`: bound to a physical IRQ (never, in Keel).
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// `evtchn_status.status`: bound to a VIRQ.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `evtchn_status.status`: an IPI port.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// Ports in the 2-level ABI on 64-bit guests: 64 words of 64 bits.
pub const EVTCHN_2L_NR_CHANNELS: u32 = 4096;
/// Ports in the FIFO ABI (`1 << LINK_BITS`); port 0 is never valid.
pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << EVTCHN_FIFO_LINK_BITS;
/// Highest FIFO priority.
pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
/// Priority of a new port.
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
/// Lowest FIFO priority.
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
/// Number of FIFO queues per vCPU.
pub const EVTCHN_FIFO_MAX_QUEUES: usize = 16;
/// Event word bit: the event is pending.
pub const EVTCHN_FIFO_PENDING: u32 = 31;
/// Event word bit: the event is masked.
pub const EVTCHN_FIFO_MASKED: u32 = 30;
/// Event word bit: the event is on a queue.
pub const EVTCHN_FIFO_LINKED: u32 = 29;
/// Event word bit: the hypervisor is updating LINK; the guest must not unmask.
pub const EVTCHN_FIFO_BUSY: u32 = 28;
/// Width of the LINK field.
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
/// The LINK field: the next port on the queue (0 ends it).
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
/// Event words per event-array page.
pub const EVTCHN_FIFO_EVENT_WORDS_PER_PAGE: u32 = 1024;
/// Maximum event-array pages.
pub const EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES: u32 = EVTCHN_FIFO_NR_CHANNELS / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;

wire_struct! {
    /// `evtchn_alloc_unbound`.
    pub struct EvtchnAllocUnbound: 8 {
        /// IN: the domain to allocate in (DOMID_SELF or the caller).
        pub dom: u16 = 0,
        /// IN: the domain that may bind to the port.
        pub remote_dom: u16 = 2,
        /// OUT: the new port.
        pub port: u32 = 4,
    }
}

wire_struct! {
    /// `evtchn_bind_interdomain`.
    pub struct EvtchnBindInterdomain: 12 {
        pub remote_dom: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub remote_port: u32 = 4,
        /// OUT.
        pub local_port: u32 = 8,
    }
}

wire_struct! {
    /// `evtchn_bind_virq`.
    pub struct EvtchnBindVirq: 12 {
        pub virq: u32 = 0,
        pub vcpu: u32 = 4,
        /// OUT.
        pub port: u32 = 8,
    }
}

wire_struct! {
    /// `evtchn_bind_ipi`.
    pub struct EvtchnBindIpi: 8 {
        pub vcpu: u32 = 0,
        /// OUT.
        pub port: u32 = 4,
    }
}

wire_struct! {
    /// `evtchn_close`, `evtchn_send`, `evtchn_unmask`: one port.
    pub struct EvtchnPort: 4 {
        pub port: u32 = 0,
    }
}

/// `evtchn_close`.
pub type EvtchnClose = EvtchnPort;
/// `evtchn_send`.
pub type EvtchnSend = EvtchnPort;
/// `evtchn_unmask`.
pub type EvtchnUnmask = EvtchnPort;

wire_struct! {
    /// `evtchn_status`. The 8-byte union at 16 is `unbound.dom` (u16), `interdomain.dom`
    /// (u16) + `interdomain.port` (u32 at 20), `pirq` or `virq` (u32).
    pub struct EvtchnStatus: 24 {
        /// IN.
        pub dom: u16 = 0,
        pub _pad: [u8; 2] = 2,
        /// IN.
        pub port: u32 = 4,
        /// OUT: `EVTCHNSTAT_*`.
        pub status: u32 = 8,
        /// OUT: the vCPU notified.
        pub vcpu: u32 = 12,
        /// OUT: first union word (`unbound.dom`/`interdomain.dom` in the low 16 bits, or
        /// `virq`/`pirq`).
        pub u0: u32 = 16,
        /// OUT: second union word (`interdomain.port`).
        pub u1: u32 = 20,
    }
}

wire_struct! {
    /// `evtchn_bind_vcpu`.
    pub struct EvtchnBindVcpu: 8 {
        pub port: u32 = 0,
        pub vcpu: u32 = 4,
    }
}

wire_struct! {
    /// `evtchn_reset`.
    pub struct EvtchnReset: 2 {
        pub dom: u16 = 0,
    }
}

wire_struct! {
    /// `evtchn_init_control`.
    pub struct EvtchnInitControl: 24 {
        pub control_gfn: u64 = 0,
        pub offset: u32 = 8,
        pub vcpu: u32 = 12,
        /// OUT: [`EVTCHN_FIFO_LINK_BITS`].
        pub link_bits: u8 = 16,
        pub _pad: [u8; 7] = 17,
    }
}

wire_struct! {
    /// `evtchn_expand_array`.
    pub struct EvtchnExpandArray: 8 {
        pub array_gfn: u64 = 0,
    }
}

wire_struct! {
    /// `evtchn_set_priority`.
    pub struct EvtchnSetPriority: 8 {
        pub port: u32 = 0,
        pub priority: u32 = 4,
    }
}

wire_struct! {
    /// `evtchn_fifo_control_block`: per vCPU, in a guest page given by `init_control`.
    pub struct EvtchnFifoControlBlock: 72 {
        /// Bit `q` set: queue `q` has events.
        pub ready: u32 = 0,
        pub _rsvd: u32 = 4,
        /// First port of each queue (0: empty).
        pub head: [u32; 16] = 8,
    }
}

/// Byte offset of `head[q]` in the control block.
pub const fn fifo_head_offset(queue: usize) -> usize {
    8 + 4 * queue
}

//! Virtual CPUs.

use super::{FastPath, GuestDomain, HypercallArgs, SpaceId, VcpuError, VmExit};
use crate::addr::{GuestPhysAddr, PhysAddr};
use alloc::sync::Arc;

/// Where and how a new virtual CPU starts.
///
/// The initial state is the guest boot protocol's entry state for the architecture:
/// the first instruction at `entry`, `arg` where the protocol passes its boot argument,
/// guest translation off. A `secondary` vCPU is one another vCPU started
/// ([`VmExit::StartVcpu`]) and starts in the state the architecture's CPU start-up
/// mechanism defines for `entry` and `arg`. A vCPU with a `context` starts in the register
/// state the guest gave with `VCPUOP_initialise` instead. Each backend's states are in
/// `docs/architecture.md` ("What each backend does").
#[derive(Clone, Copy, Debug)]
pub struct VcpuInit {
    /// First instruction.
    pub entry: GuestPhysAddr,
    /// Boot argument (the boot protocol's, or the start-up request's).
    pub arg: u64,
    /// Root of the guest-physical translation tables.
    pub stage2_root: PhysAddr,
    /// TLB tag of the address space.
    pub space: SpaceId,
    /// The vCPU's index in its domain (0 is the boot vCPU). The guest-visible CPU
    /// identity is a fixed function of it, the one Xen uses, so that the guest's own
    /// numbering of its CPUs matches the hypercalls' vCPU ids.
    pub vcpu_id: u32,
    /// Started by another vCPU rather than by the domain builder (see above).
    pub secondary: bool,
    /// The register state of `VCPUOP_initialise` ([`Vcpu::CONTEXT_SIZE`] bytes, checked
    /// by [`Vcpu::check_context`]); `entry` and `arg` are then unused.
    pub context: Option<VcpuContext>,
}

/// The most bytes of architectural context `VCPUOP_initialise` may carry: an upper bound
/// for every backend's [`Vcpu::CONTEXT_SIZE`].
pub const VCPU_CONTEXT_MAX: usize = 128;

/// A vCPU's initial register state in the guest ABI's layout, as the guest passed it to
/// `VCPUOP_initialise` (only the first [`Vcpu::CONTEXT_SIZE`] bytes are meaningful).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuContext(pub [u8; VCPU_CONTEXT_MAX]);

impl VcpuInit {
    /// The boot vCPU 0 of a domain (or of a probe guest).
    pub fn boot(entry: GuestPhysAddr, arg: u64, stage2_root: PhysAddr, space: SpaceId) -> Self {
        VcpuInit { entry, arg, stage2_root, space, vcpu_id: 0, secondary: false, context: None }
    }
}

/// How a vCPU's event upcall reaches the guest, as the guest configured it (see
/// `docs/abi.md` §6). The level itself is `evtchn_upcall_pending` of the vCPU's
/// `vcpu_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpcallRoute {
    /// The event interrupt the architecture's guest ABI defines, asserted while the
    /// level is set; where the ABI defines none, nothing is delivered until the guest
    /// names a vector.
    Platform,
    /// `HVM_PARAM_CALLBACK_IRQ` type 2: this vector, injected directly (not through the
    /// guest's interrupt controller, so the guest does not acknowledge it) while the level
    /// is set.
    CallbackVector(u8),
    /// `HVMOP_set_evtchn_upcall_vector`: this vector, raised in the vCPU's virtual
    /// interrupt controller; the guest acknowledges it.
    LapicVector(u8),
}

/// The outcome of a [`VmExit::StartVcpu`] request, for the backend to report to the
/// guest in the terms of the start-up mechanism the guest used ([`Vcpu::set_start_result`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartResult {
    /// The vCPU was created (or reset) at the requested entry and is runnable.
    Started,
    /// The vCPU is already online.
    AlreadyOn,
    /// The vCPU is still leaving a physical CPU after going offline; ask again.
    Pending,
    /// No such vCPU in the domain.
    InvalidTarget,
    /// The entry point is not in the domain's RAM.
    InvalidEntry,
    /// Keel could not create the vCPU (out of memory).
    Failed,
}

/// A virtual CPU.
///
/// It runs on one physical CPU at a time. The run loop calls [`Vcpu::load`] on the CPU
/// that is about to run it and [`Vcpu::put`] before another CPU may load it, so a
/// vCPU moves between physical CPUs as the scheduler balances load:
///
/// ```text
/// new ─▶ load ─▶ (set_event_upcall ─▶ run ─▶ exit handling)* ─▶ put ─▶ load (any CPU) ─▶ …
/// ```
///
/// [`Vcpu::new`] leaves the vCPU loaded on no CPU. `run`, `set_event_upcall`,
/// `hypercall_args`, `set_hypercall_result`, `set_start_result`, `halt_deadline` and
/// `translate_gva` are only called while it is loaded on the calling CPU. It may be
/// dropped on any CPU once put. Between `load` and `put` no other vCPU is loaded on that
/// CPU, so a backend may leave guest state in the CPU across exits and switch it only in
/// `load` and `put`.
pub trait Vcpu: Sized + Send {
    /// The backend's per-domain state this vCPU belongs to.
    type Domain: GuestDomain;

    /// Bytes of the register state `VCPUOP_initialise` takes, in the guest ABI's layout;
    /// 0 (the default): the hypercall is not supported (`-ENOSYS`). At most
    /// [`VCPU_CONTEXT_MAX`].
    const CONTEXT_SIZE: usize = 0;

    /// Checks a `VCPUOP_initialise` context ([`Vcpu::CONTEXT_SIZE`] bytes) before the
    /// core accepts it; the error is the hypercall's (Xen: `-EINVAL` for a bad mode or
    /// inconsistent control registers).
    fn check_context(context: &[u8]) -> Result<(), keel_abi::Errno> {
        let _ = context;
        Err(keel_abi::Errno::ENOSYS)
    }

    /// Creates a virtual CPU of `domain` in the initial state described by `init`. It is
    /// loaded on no CPU.
    fn new(domain: &Arc<Self::Domain>, init: &VcpuInit) -> Result<Self, VcpuError>;
    /// Attaches the vCPU to the calling CPU: afterwards `run` enters the guest here with
    /// all of its state (registers, floating point, timers, TLB tag) as the guest left
    /// it, whichever CPU ran it before. A failure shows as [`VmExit::GuestCrash`] from the
    /// next `run`. Between `load` and `put` the backend may keep guest state in the CPU
    /// across exits, as long as `run`, the register accessors and `translate_gva` see it.
    fn load(&mut self);
    /// Detaches the vCPU from the calling CPU: afterwards none of its state is held only
    /// by this CPU's hardware, so another CPU may load it. Called with the vCPU loaded on
    /// the calling CPU.
    fn put(&mut self);
    /// Runs guest code until the next exit the core must see.
    fn run(&mut self) -> VmExit;
    /// As [`Vcpu::run`], and a hypercall may be answered by `fast` without returning:
    /// the backend passes it the arguments ([`Vcpu::hypercall_args`]) and a translation
    /// of the guest's virtual addresses as [`Vcpu::translate_gva`] makes it, and does what
    /// the [`FastAnswer`](super::FastAnswer) says. The default ignores `fast`.
    fn run_fast(&mut self, fast: &dyn FastPath) -> VmExit {
        let _ = fast;
        self.run()
    }
    /// The arguments of the hypercall that caused the last [`VmExit::Hypercall`].
    fn hypercall_args(&self) -> HypercallArgs;
    /// Sets the hypercall's return value in the convention's result register.
    fn set_hypercall_result(&mut self, value: u64);
    /// Answers the [`VmExit::StageFault`] this vCPU reported last, before it runs again:
    /// `mapped` when the domain's P2M maps the page for that access now (the next `run`
    /// executes the access again, with tables that map it); otherwise the page is a hole
    /// for that access, and the next `run` goes on as the architecture treats an access
    /// to nothing (an emulated result, an exception given to the guest, or
    /// [`VmExit::GuestCrash`]). Without a pending fault, nothing happens.
    fn settle_stage_fault(&mut self, mapped: bool);
    /// The event upcall level and its route, set before every entry into the guest. The
    /// backend asserts the route's interrupt in the guest while `pending` holds (and
    /// after the guest acknowledged it, if the level is still set, it is delivered
    /// again: report [`VmExit::UpcallAck`] so that the core re-reads the level).
    fn set_event_upcall(&mut self, pending: bool, route: UpcallRoute);
    /// Whether the vCPU keeps what [`Vcpu::set_event_upcall`] set across entries: it
    /// asserts the last level and route given until told otherwise, and reports
    /// [`VmExit::UpcallAck`] once the guest has taken (or completed) the upcall
    /// interrupt, so that the core reads the level again. Then the core calls
    /// `set_event_upcall` only when the level or route may have changed (an event was
    /// marked for the vCPU, it was loaded, it acknowledged the upcall, a hypercall that
    /// chooses the route ran) and may enter the guest again after an exit without the rest
    /// of its run loop while no work is pending for the CPU. False (the default): the core
    /// calls it before every entry.
    fn latches_upcall(&self) -> bool {
        false
    }
    /// Reports the outcome of the [`VmExit::StartVcpu`] this vCPU made, as the start-up
    /// mechanism it used returns one (nothing, if that mechanism has no result).
    fn set_start_result(&mut self, result: StartResult);

    /// After a [`VmExit::Halt`]: the system time (ns, as [`Timer::now_ns`](super::Timer::now_ns)
    /// counts) at which a timer the guest owns and the hardware does not wake the core for
    /// would end the halt, if any. The core wakes the vCPU then. The default: none.
    fn halt_deadline(&self) -> Option<u64> {
        None
    }

    /// Translates a guest virtual address with the vCPU's current translation regime
    /// (identity while its MMU is off), for a read or a `write`. Hypercall pointer
    /// arguments and the runstate area are virtual addresses, so a backend must
    /// implement this for guests that enable their MMU; the default translates nothing
    /// (every pointer argument then fails with -EFAULT).
    fn translate_gva(&self, gva: u64, write: bool) -> Option<GuestPhysAddr> {
        let _ = (gva, write);
        None
    }
}

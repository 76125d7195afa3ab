//! Event channels: ports, bindings, and delivery through the 2-level or FIFO ABI.
//!
//! [`EventState`] is one domain's event state, behind the domain's `events` lock. It
//! handles everything local to the domain; operations that involve two domains
//! (`alloc_unbound`, `bind_interdomain`, interdomain `close` and `send`) are in
//! [`interdomain`]. Delivery ends in [`Wake`]: what the domain must do once the lock is
//! released (kick a vCPU, wake pollers).
//!
//! Lock order: `events` of the lower domain id, then of the higher; then a vCPU's state
//! lock; `mm` is a leaf.

mod fifo;
pub mod interdomain;
mod port;
mod setup;
mod two_level;

pub use fifo::Fifo;
pub use port::{Binding, Port, PortTable, BUCKET};

use crate::arch::memory::Frame;
use crate::arch::{Arch, HostMemory};
use crate::mm::PhysAddr;
use alloc::vec::Vec;
use core::marker::PhantomData;
use keel_abi::event::*;
use keel_abi::layout::GuestLayout;
use keel_abi::xen::{virq_kind, DomId, VirqKind, NR_VIRQS};
use keel_abi::Errno;
use two_level::{Outcome, TwoLevel, VcpuInfo};

/// [`EVTCHN_FIFO_LINK_BITS`] as the `u8` of `EVTCHNOP_init_control`'s reply.
pub const LINK_BITS: u8 = 17;
const _: () = assert!(LINK_BITS as u32 == EVTCHN_FIFO_LINK_BITS);

/// Event state of one vCPU.
pub struct VcpuEvents<A: Arch> {
    /// Host address of the vCPU's `vcpu_info` (a shared_info slot or a registered area).
    pub vcpu_info: Option<PhysAddr>,
    /// The same, by its page's handle: what delivery uses (set with `vcpu_info` by
    /// [`VcpuEvents::set_vcpu_info`]).
    info: Option<VcpuInfo<A>>,
    /// The pinned frame of a registered `vcpu_info`.
    pub vcpu_info_frame: Option<PhysAddr>,
    /// Upcall flag for a vCPU without any `vcpu_info`.
    pub dummy_upcall: bool,
    /// VIRQ to port (0: unbound). Global and per-domain VIRQs live in vCPU 0's table.
    pub virqs: [u32; NR_VIRQS as usize],
}

impl<A: Arch> VcpuEvents<A> {
    /// Moves the `vcpu_info` to host address `at` (or nowhere), with the handle of its page.
    fn set_vcpu_info(&mut self, at: Option<PhysAddr>) {
        self.vcpu_info = at;
        self.info = at.map(VcpuInfo::at);
    }
}

/// What to do once the events lock is released.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Wake {
    /// This vCPU's upcall was newly marked pending: kick it.
    pub upcall: Option<u32>,
    /// This port became pending: wake vCPUs polling it.
    pub pending_port: Option<u32>,
}

/// `evtchn_status` contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus {
    pub status: u32,
    pub vcpu: u32,
    pub u0: u32,
    pub u1: u32,
}

/// One domain's event channels.
pub struct EventState<A: Arch> {
    pub ports: PortTable,
    pub fifo: Option<Fifo<A>>,
    pub vcpus: Vec<VcpuEvents<A>>,
    /// The handle of the shared_info page (the domain's own page, freed only when the
    /// domain is reaped), made once: delivery reaches its bitmaps with no pool check.
    shared_frame: Frame<A>,
    layout: &'static GuestLayout,
    max_port: u32,
    global_virq_handler: bool,
    /// Global VIRQs (bit n = VIRQ n) the domain may bind without handling them all.
    allowed_global: u32,
    dying: bool,
    _arch: PhantomData<A>,
}

impl<A: Arch> EventState<A> {
    /// Event state for `vcpus` vCPUs whose shared_info page is at `shared_info`.
    pub fn new(
        layout: &'static GuestLayout,
        shared_info: PhysAddr,
        vcpus: u32,
        max_port: u32,
        global_virq_handler: bool,
    ) -> Self {
        let vcpus = (0..vcpus as usize)
            .map(|v| {
                let mut e = VcpuEvents {
                    vcpu_info: None,
                    info: None,
                    vcpu_info_frame: None,
                    dummy_upcall: false,
                    virqs: [0; NR_VIRQS as usize],
                };
                e.set_vcpu_info(layout.shared_vcpu_info(v).map(|off| PhysAddr(shared_info.0 + off as u64)));
                e
            })
            .collect();
        EventState {
            ports: PortTable::new(),
            fifo: None,
            vcpus,
            shared_frame: A::Memory::frame(shared_info),
            layout,
            max_port: max_port.min(EVTCHN_FIFO_NR_CHANNELS - 1),
            global_virq_handler,
            allowed_global: 0,
            dying: false,
            _arch: PhantomData,
        }
    }

    fn two_level(&self) -> TwoLevel<'static, A> {
        TwoLevel { shared_info: self.shared_frame, layout: self.layout }
    }

    /// The `shared_info`/`vcpu_info` layout the domain's guest sees now.
    pub fn layout(&self) -> &'static GuestLayout {
        self.layout
    }

    /// Switches the `shared_info`/`vcpu_info` layout (an x86 domain whose callers became
    /// 32-bit or 64-bit). Nothing in shared_info is converted, as on Xen; `vcpu_info`s
    /// still in shared_info follow their slots.
    pub fn set_layout(&mut self, layout: &'static GuestLayout) {
        self.layout = layout;
        let shared_info = A::Memory::frame_address(self.shared_frame);
        for (v, ev) in self.vcpus.iter_mut().enumerate() {
            if ev.vcpu_info_frame.is_none() {
                ev.set_vcpu_info(layout.shared_vcpu_info(v).map(|off| PhysAddr(shared_info.0 + off as u64)));
            }
        }
    }

    /// One past the highest port number the current ABI and the domain's limit allow.
    #[inline]
    pub fn limit(&self) -> u32 {
        let abi = if self.fifo.is_some() { EVTCHN_FIFO_NR_CHANNELS } else { self.layout.two_level_ports() };
        abi.min(self.max_port + 1)
    }

    /// Whether `port` names a port slot (bound or free) of this domain.
    #[inline]
    pub fn is_valid(&self, port: u32) -> bool {
        port < self.limit() && port < self.ports.valid_limit()
    }

    /// The port `port`, or -EINVAL.
    pub fn port(&self, port: u32) -> Result<&Port, Errno> {
        if !self.is_valid(port) {
            return Err(Errno::EINVAL);
        }
        self.ports.get(port).ok_or(Errno::EINVAL)
    }

    /// Points `port`, unbound, at another remote domain (the xenstore domain taking over
    /// a late-init store port from the control domain). `-EINVAL` if it is not unbound.
    pub fn redirect_unbound(&mut self, port: u32, remote: DomId) -> Result<(), Errno> {
        if !self.is_valid(port) {
            return Err(Errno::EINVAL);
        }
        match self.ports.get_mut(port) {
            Some(p) if matches!(p.binding, Binding::Unbound { .. }) => {
                p.binding = Binding::Unbound { remote };
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn nr_vcpus(&self) -> u32 {
        u32::try_from(self.vcpus.len()).unwrap_or(u32::MAX)
    }

    pub fn is_dying(&self) -> bool {
        self.dying
    }

    /// Marks the domain dying: no port can be allocated any more.
    pub fn set_dying(&mut self) {
        self.dying = true;
    }

    /// The lowest free port, without taking it.
    pub fn free_port(&self) -> Result<u32, Errno> {
        if self.dying {
            return Err(Errno::EINVAL);
        }
        let fifo = self.fifo.as_ref();
        self.ports.find_free(self.limit(), |p| fifo.is_some_and(|f| f.is_busy(p)))
    }

    /// Allocates a port bound to `binding`, notifying `vcpu`.
    pub fn alloc(&mut self, binding: Binding, vcpu: u32) -> Result<u32, Errno> {
        let port = self.free_port()?;
        self.ports.take(port, binding, vcpu);
        Ok(port)
    }

    /// Raises `port` on its notification vCPU.
    pub fn raise(&mut self, port: u32) -> Wake {
        // The port is changed in place: a copy of it in and out was two byte-wise
        // `memcpy`s on arm64 (strict alignment, built for size), a tenth of a send.
        let Some(vcpu) = self.ports.get(port).map(|p| p.notify_vcpu) else { return Wake::default() };
        let two_level = self.two_level();
        let out = match (&mut self.fifo, self.ports.get_mut(port)) {
            (Some(f), Some(p)) => f.raise(port, p, vcpu),
            (Some(_), None) => Outcome::default(),
            (None, _) if two_level.has_port(port) => {
                let vi = self.vcpus.get(vcpu as usize).and_then(|v| v.info);
                two_level.raise(port, vi)
            }
            (None, _) => Outcome::default(),
        };
        self.finish(out, port, vcpu)
    }

    #[inline]
    fn finish(&mut self, out: Outcome, port: u32, vcpu: u32) -> Wake {
        Wake {
            upcall: (out.upcall && self.mark_pending(vcpu)).then_some(vcpu),
            pending_port: out.newly_pending.then_some(port),
        }
    }

    /// Sets `evtchn_upcall_pending` of `vcpu`; true if it was clear.
    pub fn mark_pending(&mut self, vcpu: u32) -> bool {
        let Some(v) = self.vcpus.get_mut(vcpu as usize) else { return false };
        match v.info {
            Some(vi) => !matches!(vi.upcall_word().test_and_set(0), Ok(true)),
            None => !core::mem::replace(&mut v.dummy_upcall, true),
        }
    }

    /// The level of `vcpu`'s event upcall: `evtchn_upcall_pending` as the guest sees it.
    pub fn upcall_pending(&self, vcpu: u32) -> bool {
        match self.vcpus.get(vcpu as usize) {
            Some(VcpuEvents { info: Some(vi), .. }) => vi.upcall_word().load() & 0xff != 0,
            Some(v) => v.dummy_upcall,
            None => false,
        }
    }

    /// Whether `port` is pending.
    pub fn is_pending(&self, port: u32) -> bool {
        match &self.fifo {
            Some(f) => f.is_pending(port) || self.ports.get(port).is_some_and(|p| p.pending_without_word),
            None => self.two_level().is_pending(port),
        }
    }

    /// Frees a bound port: clears its pending state and VIRQ binding.
    pub fn free(&mut self, port: u32) {
        let Some(mut p) = self.ports.get(port).copied() else { return };
        match &self.fifo {
            Some(f) => f.clear_pending(port, &mut p),
            None => self.two_level().clear_pending(port),
        }
        if let Binding::Virq(virq) = p.binding {
            let owner = if virq_kind(virq) == VirqKind::PerVcpu { p.notify_vcpu } else { 0 };
            if let Some(slot) = self.vcpus.get_mut(owner as usize).and_then(|v| v.virqs.get_mut(virq as usize)) {
                if *slot == port {
                    *slot = 0;
                }
            }
        }
        self.ports.release(port);
    }

    /// Lets the domain bind global VIRQ `virq` (below [`NR_VIRQS`]) though it is not the
    /// global VIRQ handler (a control domain's `VIRQ_DOM_EXC`).
    pub fn allow_global_virq(&mut self, virq: u32) {
        if virq < NR_VIRQS {
            self.allowed_global |= 1 << virq;
        }
    }

    /// `EVTCHNOP_bind_virq`.
    pub fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<u32, Errno> {
        if virq >= NR_VIRQS {
            return Err(Errno::EINVAL);
        }
        let kind = virq_kind(virq);
        if kind != VirqKind::PerVcpu && vcpu != 0 {
            return Err(Errno::EINVAL);
        }
        if vcpu >= self.nr_vcpus() {
            return Err(Errno::ENOENT);
        }
        if kind == VirqKind::Global && !self.global_virq_handler && self.allowed_global & (1 << virq) == 0 {
            return Err(Errno::EBUSY);
        }
        if self.vcpus[vcpu as usize].virqs[virq as usize] != 0 {
            return Err(Errno::EEXIST);
        }
        let port = self.alloc(Binding::Virq(virq), vcpu)?;
        self.vcpus[vcpu as usize].virqs[virq as usize] = port;
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`.
    pub fn bind_ipi(&mut self, vcpu: u32) -> Result<u32, Errno> {
        if vcpu >= self.nr_vcpus() {
            return Err(Errno::ENOENT);
        }
        self.alloc(Binding::Ipi, vcpu)
    }

    /// `EVTCHNOP_bind_vcpu`.
    pub fn bind_vcpu(&mut self, port: u32, vcpu: u32) -> Result<(), Errno> {
        if vcpu >= self.nr_vcpus() {
            return Err(Errno::ENOENT);
        }
        let p = self.port(port)?;
        let ok = match p.binding {
            Binding::Virq(v) => virq_kind(v) != VirqKind::PerVcpu,
            Binding::Unbound { .. } | Binding::Interdomain { .. } | Binding::Console => true,
            _ => false,
        };
        if !ok {
            return Err(Errno::EINVAL);
        }
        if let Some(p) = self.ports.get_mut(port) {
            p.notify_vcpu = vcpu;
        }
        Ok(())
    }

    /// `EVTCHNOP_status` for a port of this domain.
    pub fn status(&self, port: u32) -> Result<PortStatus, Errno> {
        let p = self.port(port)?;
        let (status, u0, u1) = match p.binding {
            Binding::Free | Binding::Reserved => (EVTCHNSTAT_CLOSED, 0, 0),
            Binding::Unbound { remote } => (EVTCHNSTAT_UNBOUND, remote as u32, 0),
            Binding::Interdomain { remote, remote_port } => (EVTCHNSTAT_INTERDOMAIN, remote as u32, remote_port),
            Binding::Virq(v) => (EVTCHNSTAT_VIRQ, v, 0),
            Binding::Ipi => (EVTCHNSTAT_IPI, 0, 0),
            Binding::Console => (EVTCHNSTAT_INTERDOMAIN, keel_abi::xen::DOMID_XEN as u32, 0),
        };
        Ok(PortStatus { status, vcpu: p.notify_vcpu, u0, u1 })
    }

    /// `EVTCHNOP_unmask`.
    pub fn unmask(&mut self, port: u32) -> Result<Wake, Errno> {
        let mut p = *self.port(port)?;
        let vcpu = p.notify_vcpu;
        let out = match &mut self.fifo {
            Some(f) => f.unmask(port, &mut p),
            None => {
                let vi = self.vcpus.get(vcpu as usize).and_then(|v| v.info);
                self.two_level().unmask(port, vi)
            }
        };
        if let Some(slot) = self.ports.get_mut(port) {
            *slot = p;
        }
        Ok(self.finish(out, port, vcpu))
    }

    /// `EVTCHNOP_set_priority`.
    pub fn set_priority(&mut self, port: u32, priority: u32) -> Result<(), Errno> {
        self.port(port)?;
        if self.fifo.is_none() {
            return Err(Errno::ENOSYS);
        }
        if priority > EVTCHN_FIFO_PRIORITY_MIN {
            return Err(Errno::EINVAL);
        }
        if let Some(p) = self.ports.get_mut(port) {
            p.priority = u8::try_from(priority).map_err(|_| Errno::EINVAL)?;
        }
        Ok(())
    }

    /// Raises the port bound to `virq` for `vcpu` (per-vCPU VIRQs) or the domain.
    pub fn send_virq(&mut self, vcpu: u32, virq: u32) -> Wake {
        if virq >= NR_VIRQS {
            return Wake::default();
        }
        let owner = if virq_kind(virq) == VirqKind::PerVcpu { vcpu } else { 0 };
        match self.vcpus.get(owner as usize).map(|v| v.virqs[virq as usize]) {
            Some(port) if port != 0 => self.raise(port),
            _ => Wake::default(),
        }
    }
}

/// The remote end of an interdomain port, as seen by the domain `local`.
pub(crate) fn peer_of(p: &Port) -> Option<(DomId, u32)> {
    match p.binding {
        Binding::Interdomain { remote, remote_port } => Some((remote, remote_port)),
        _ => None,
    }
}

#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod tests;

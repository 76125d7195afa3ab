//! The backend's part of a domain.

use super::SpaceId;
use crate::addr::PhysAddr;
use alloc::sync::Weak;
use keel_abi::layout::VcpuTimeInfo;
use keel_abi::xen::DomId;
use keel_abi::Errno;

/// What a backend learns about a domain when it is created.
#[derive(Clone, Copy, Debug)]
pub struct DomainInit {
    pub id: DomId,
    /// How many vCPUs the domain has (ids `0..vcpus`).
    pub vcpus: u32,
    /// Root of the domain's guest-physical translation tables.
    pub stage2_root: PhysAddr,
    /// TLB tag of its address space.
    pub space: SpaceId,
    /// Emulate the architecture's console UART for the domain, where Xen's guest ABI
    /// places one (the configuration's `vpl011`).
    pub virtual_uart: bool,
}

/// Per-domain backend state shared by the domain's vCPUs: what emulates hardware of
/// the whole virtual machine, such as a virtual interrupt controller's shared part or a
/// virtual UART. The core creates it with the domain
/// ([`Domain::arch`](crate::domain::Domain::arch)), hands it to every
/// [`Vcpu::new`](super::Vcpu::new) of the domain, and drops it when the domain and all
/// its vCPUs are gone. vCPUs on different physical CPUs use it concurrently.
pub trait GuestDomain: Send + Sync + Sized + 'static {
    fn new(init: &DomainInit) -> Result<Self, VcpuError>;

    /// Hands the backend the core's services for this domain, once, right after the
    /// domain was created. It may keep the weak reference: it stops upgrading once the
    /// domain is destroyed. The default ignores it.
    fn attach(&self, services: Weak<dyn DomainServices>) {
        let _ = services;
    }

    /// Whether a virtual interrupt (other than the event upcall, which the core tracks)
    /// is pending for `vcpu` and would end a halt: a halted or blocked vCPU is only kept
    /// blocked while this is false. The default: the backend has no such interrupts.
    fn interrupt_pending(&self, vcpu: u32) -> bool {
        let _ = vcpu;
        false
    }

    /// Host interrupt `irq`, passed through to this domain
    /// ([`Domain::set_device_irqs`](crate::domain::Domain::set_device_irqs)), fired; the
    /// core ended it with
    /// [`InterruptController::end_for_guest`](super::InterruptController::end_for_guest),
    /// so it stays active until the guest completes the virtual interrupt the backend
    /// makes pending here. Returns the vCPUs (bit n = vCPU n) with a new interrupt to
    /// receive. The default: the backend forwards nothing.
    fn device_interrupt(&self, irq: u32) -> u128 {
        let _ = irq;
        0
    }

    /// Console input for the domain's emulated UART ([`DomainInit::virtual_uart`]).
    /// `Some(vcpus)`: the UART took the bytes, and these vCPUs (bit n = vCPU n) have a
    /// new interrupt to receive; `None`: the domain has no such UART, and the input goes
    /// to its PV console and `CONSOLEIO_read` instead. The default: no UART.
    fn uart_input(&self, bytes: &[u8]) -> Option<u128> {
        let _ = bytes;
        None
    }
}

/// What a backend's device models may ask of the core about their domain (to fill a page
/// the guest asked for, to publish its pvclock). Every
/// access goes through the domain's P2M under its memory lock, so it never reaches a
/// frame the domain gave back. Call it with no core lock held (e.g. while handling an
/// exit inside [`Vcpu::run`](super::Vcpu::run)), never from
/// [`Vcpu::translate_gva`](super::Vcpu::translate_gva), which runs under that lock.
pub trait DomainServices: Send + Sync {
    fn domain_id(&self) -> DomId;
    /// Copies from the domain's RAM or hypervisor pages at guest-physical `gpa`.
    fn read_phys(&self, gpa: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copies to the domain's RAM or hypervisor pages at guest-physical `gpa`.
    fn write_phys(&self, gpa: u64, data: &[u8]) -> Result<(), Errno>;
    /// Publishes `vcpu`'s pvclock (see `Domain::write_vcpu_time`); false if it has no
    /// `vcpu_info`.
    fn write_vcpu_time(&self, vcpu: u32, time: &VcpuTimeInfo) -> bool;
    /// Publishes the wall-clock time of system time 0 in shared_info.
    fn set_wallclock(&self, sec: u64, nsec: u32);
    /// Chooses the domain's `shared_info`/`vcpu_info` layout by the mode of the vCPU
    /// asking (`compat`: it runs 32-bit code), at the points where Xen latches it (see
    /// `Domain::latch_shared_layout`).
    fn latch_shared_layout(&self, compat: bool);
    /// `vcpu`'s event upcall level right now (`Domain::upcall_pending`), for delivery
    /// that must follow the level between two of the core's reports.
    fn upcall_pending(&self, vcpu: u32) -> bool;
}

/// Why a virtual CPU (or the domain state its vCPUs share) could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuError {
    /// The hardware has no usable virtualisation extension on this CPU.
    NoVirtualization,
    /// Out of memory for the control structures.
    NoMemory,
}

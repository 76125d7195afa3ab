//! The backend's part of a domain.

use super::{SpaceId, VcpuError};
use crate::mm::PhysAddr;
use keel_abi::xen::DomId;

/// What a backend learns about a domain when it is created.
#[derive(Clone, Copy, Debug)]
pub struct DomainInit {
    pub id: DomId,
    /// How many vCPUs the domain has (ids `0..vcpus`).
    pub vcpus: u32,
    /// Root of the domain's guest-physical translation tables.
    pub stage2_root: PhysAddr,
    /// TLB tag of its address space (VMID, VPID).
    pub space: SpaceId,
    /// Emulate the architecture's console UART for the domain (arm64 Xen `vpl011`: a
    /// PL011 at Xen's `GUEST_PL011_BASE`).
    pub virtual_uart: bool,
}

/// Per-domain backend state shared by the domain's vCPUs: what emulates hardware of
/// the whole virtual machine, such as the virtual interrupt controller's distributor
/// (arm64 vGIC) or a virtual UART. The core creates it with the domain
/// ([`Domain::arch`](crate::domain::Domain::arch)), hands it to every
/// [`Vcpu::new`](super::Vcpu::new) of the domain, and drops it when the domain and all
/// its vCPUs are gone. vCPUs on different physical CPUs use it concurrently.
pub trait GuestDomain: Send + Sync + Sized + 'static {
    fn new(init: &DomainInit) -> Result<Self, VcpuError>;

    /// Whether a virtual interrupt (other than the event upcall, which the core tracks)
    /// is pending for `vcpu` and would end a halt: a halted or blocked vCPU is only kept
    /// blocked while this is false. The default: the backend has no such interrupts.
    fn interrupt_pending(&self, vcpu: u32) -> bool {
        let _ = vcpu;
        false
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

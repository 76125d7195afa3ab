//! What the core needs to know about an architecture's guests, beyond running them.

use super::Vcpu;
use crate::addr::GuestPhysAddr;
use crate::guest_memory::GuestTranslate;
use keel_abi::layout::GuestLayout;

/// The guest ABI an architecture's domains use: the domain builder puts
/// [`GuestAbi::LAYOUT`] into each [`DomainConfig`](crate::domain::DomainConfig). The core
/// itself takes the layout from the domain, so it is tested against every layout on any
/// host.
pub trait GuestAbi {
    const LAYOUT: &'static GuestLayout;
    /// The guest frame where Keel places each domain's PV console ring
    /// (`HVM_PARAM_CONSOLE_PFN`), outside guest RAM; `None`: no PV console.
    const PV_CONSOLE_GFN: Option<u64> = None;
    /// The guest frame where the domain builder places each domain's xenstore page
    /// (`HVM_PARAM_STORE_PFN`), outside guest RAM; `None`: no xenstore.
    const STORE_GFN: Option<u64> = None;
}

/// A vCPU's own translation of its virtual addresses, for hypercall arguments:
/// [`Vcpu::translate_gva`].
pub struct VcpuTranslation<'a, V: Vcpu>(pub &'a V);

impl<V: Vcpu> GuestTranslate for VcpuTranslation<'_, V> {
    fn gva_to_gpa(&self, gva: u64, write: bool) -> Option<GuestPhysAddr> {
        self.0.translate_gva(gva, write)
    }
}

//! The backend's per-domain state ([`GuestDomain`]).
//!
//! Today it only records what the domain was created with. Virtual devices that a
//! domain's vCPUs share (the I/O APIC a PVH guest does not need, a virtual 16550 for
//! the console) will live here.

use keel_kernel::arch::{DomainInit, GuestDomain, VcpuError};

/// An x86_64 domain's backend state.
#[derive(Debug)]
pub struct X86Domain {
    init: DomainInit,
}

impl X86Domain {
    /// How the domain was created.
    pub fn init(&self) -> &DomainInit {
        &self.init
    }
}

impl GuestDomain for X86Domain {
    fn new(init: &DomainInit) -> Result<Self, VcpuError> {
        Ok(X86Domain { init: *init })
    }
}

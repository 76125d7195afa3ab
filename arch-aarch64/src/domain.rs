//! The backend's per-domain state ([`GuestDomain`]).
//!
//! Today it only records what the domain was created with. The virtual GIC distributor
//! (whose redistributors and list registers deliver the event PPI 31 that
//! [`Aarch64Vcpu`](crate::Aarch64Vcpu) records) and the virtual PL011 (`vpl011`) will live
//! here, shared by the domain's vCPUs.

use keel_kernel::arch::{DomainInit, GuestDomain, VcpuError};

/// An arm64 domain's backend state.
#[derive(Debug)]
pub struct Aarch64Domain {
    init: DomainInit,
}

impl Aarch64Domain {
    /// How the domain was created.
    pub fn init(&self) -> &DomainInit {
        &self.init
    }
}

impl GuestDomain for Aarch64Domain {
    fn new(init: &DomainInit) -> Result<Self, VcpuError> {
        Ok(Aarch64Domain { init: *init })
    }
}

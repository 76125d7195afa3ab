//! The backend's per-domain state ([`GuestDomain`]): the virtual GIC's distributor and
//! redistributor state, shared by the domain's vCPUs (each keeps its own list registers).

use crate::irq;
use crate::vgic::{Version, Vgic};
use keel_kernel::arch::{DomainInit, GuestDomain, VcpuError};
use spin::Mutex;

/// An arm64 domain's backend state.
#[derive(Debug)]
pub struct Aarch64Domain {
    init: DomainInit,
    /// The virtual GIC (the host's version).
    pub vgic: Mutex<Vgic>,
}

impl Aarch64Domain {
    /// How the domain was created.
    pub fn init(&self) -> &DomainInit {
        &self.init
    }
}

impl GuestDomain for Aarch64Domain {
    fn new(init: &DomainInit) -> Result<Self, VcpuError> {
        let version = if irq::version() == Some(2) { Version::V2 } else { Version::V3 };
        Ok(Aarch64Domain { init: *init, vgic: Mutex::new(Vgic::new(version, init.vcpus)) })
    }

    /// An interrupt waits for the vCPU, or sits pending in its list registers.
    fn interrupt_pending(&self, vcpu: u32) -> bool {
        self.vgic.lock().has_pending(vcpu)
    }
}

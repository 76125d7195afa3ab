//! What both vendors keep per vCPU, beside their own VMCS or VMCB.

use super::{context, pvclock};
use crate::domain::X86Domain;
use crate::vlapic::{Irr, Vlapic};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use keel_kernel::arch::{MemoryAccess, UpcallRoute, VmExit};

/// What both vendors keep per vCPU.
pub struct Common {
    pub vcpu_id: u32,
    pub domain: Arc<X86Domain>,
    /// The event upcall level and route the core set before this entry.
    pub upcall: (bool, UpcallRoute),
    /// State switched on `load`/`put`.
    pub context: context::Context,
    pub vlapic: Vlapic,
    /// When the pvclock was last written.
    pub pvclock: pvclock::Pvclock,
    /// What the core must hear before the guest runs again ([`VmExit::Kick`],
    /// [`VmExit::DeviceTimer`], [`VmExit::UpcallAck`]), in order.
    pub reports: VecDeque<VmExit>,
    /// The EPT/NPT fault reported as [`VmExit::StageFault`], until the core settles it.
    pub stage_fault: Option<StageFault>,
    /// The remembered walks of the guest's page tables for hypercall arguments.
    pub walks: super::guest_cpu::VcpuWalks,
}

/// An EPT/NPT fault the core settles ([`VmExit::StageFault`]): the access, and whether
/// it happened while the processor delivered an event.
#[derive(Clone, Copy, Debug)]
pub struct StageFault {
    pub gpa: u64,
    pub access: MemoryAccess,
    pub delivering: bool,
}

impl Common {
    /// This vCPU's local-APIC request register.
    pub fn irr(&self) -> &Irr {
        self.domain.irr(self.vcpu_id).expect("a vCPU of its domain")
    }
}

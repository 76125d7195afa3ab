//! The backend's per-domain state ([`GuestDomain`]): what the domain was created with,
//! the core's services for it (guest memory, pvclock), and the devices its vCPUs share
//! (Xen's debug port, the local APICs' request registers).

use crate::vcpu::io::DebugConsole;
use crate::vlapic::{Irr, Shared};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use keel_kernel::arch::{DomainInit, DomainServices, GuestDomain, VcpuError};
use spin::{Mutex, Once};

/// An x86_64 domain's backend state.
pub struct X86Domain {
    init: DomainInit,
    services: Once<Weak<dyn DomainServices>>,
    debug_console: Mutex<DebugConsole>,
    /// Each vCPU's local-APIC state other CPUs see (request register, priority).
    lapics: Vec<Shared>,
}

impl X86Domain {
    /// How the domain was created.
    pub fn init(&self) -> &DomainInit {
        &self.init
    }

    /// vCPU `vcpu`'s local-APIC request register.
    pub fn irr(&self, vcpu: u32) -> Option<&Irr> {
        self.lapic(vcpu).map(|l| &l.irr)
    }

    /// vCPU `vcpu`'s local-APIC state other CPUs see.
    pub fn lapic(&self, vcpu: u32) -> Option<&Shared> {
        self.lapics.get(vcpu as usize)
    }

    /// The core's services for the domain, while it exists.
    pub fn services(&self) -> Option<Arc<dyn DomainServices>> {
        self.services.get()?.upgrade()
    }

    /// A byte written to the debug port; complete lines go to Keel's console.
    pub fn debug_port_write(&self, byte: u8) {
        let line = self.debug_console.lock().push(byte);
        if let Some(line) = line {
            log::info!("(d{}) {line}", self.init.id);
        }
    }
}

/// The local APICs' request registers and published priorities, Xen's debug port, and
/// the core's `DomainServices` (the hypercall page, string I/O, the pvclock).
impl GuestDomain for X86Domain {
    fn new(init: &DomainInit) -> Result<Self, VcpuError> {
        Ok(X86Domain {
            init: *init,
            services: Once::new(),
            debug_console: Mutex::new(DebugConsole::new()),
            lapics: (0..init.vcpus).map(|_| Shared::new()).collect(),
        })
    }

    /// Keeps the core's services and publishes the wall clock of boot in shared_info.
    fn attach(&self, services: Weak<dyn DomainServices>) {
        if let Some(s) = services.upgrade() {
            let (sec, nsec) = crate::rtc::boot_wallclock();
            s.set_wallclock(sec, nsec);
        }
        self.services.call_once(|| services);
    }

    /// A local-APIC interrupt the vCPU would take, or its timer due. (Whether the guest
    /// halted with interrupts enabled is not known here: one that halted with them off is
    /// woken as if they were on, and continues after its HLT.)
    fn interrupt_pending(&self, vcpu: u32) -> bool {
        self.lapic(vcpu).is_some_and(|l| l.pending(crate::regs::rdtsc()))
    }
}

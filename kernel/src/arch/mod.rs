//! The architecture boundary.
//!
//! The portable core asks the hardware for everything through these traits. A backend
//! (`arch-aarch64`, `arch-x86_64`) implements them; `platform/` picks one per image; the
//! [`mock`](crate::mock) architecture implements them on the host for tests. Nothing
//! outside a backend ever sees an exception syndrome, a VMX exit reason or an SVM exit
//! code: backends decode those into the portable [`VmExit`].

mod cpu;
mod domain;
mod exit;
mod fast;
mod guest;
mod hypercall_args;
mod irq;
mod loader;
pub mod memory;
mod stage2;
mod timer;
mod vcpu;

pub use cpu::{CpuId, CpuOps, ExitStatus, PowerOffPath};
pub use domain::{DomainInit, DomainServices, GuestDomain, VcpuError};
pub use exit::{MemoryAccess, VmExit};
pub use fast::{FastAnswer, FastPath};
pub use guest::{GuestAbi, VcpuTranslation};
pub use hypercall_args::HypercallArgs;
pub use irq::{InterruptController, IrqNumber};
pub use loader::{BootEntry, GuestLoader, LoadError, LoadRequest};
pub use memory::HostMemory;
pub use stage2::{Entry, MemType, Perms, SpaceId, Stage2};
pub use timer::Timer;
pub use vcpu::{StartResult, UpcallRoute, Vcpu, VcpuContext, VcpuInit, VCPU_CONTEXT_MAX};

use alloc::string::String;
use alloc::vec::Vec;

/// One architecture backend: the set of hardware services the core is generic over.
///
/// The domain builder and the boot flow also need [`GuestAbi`] (the guests' shared-page
/// layout) and [`GuestLoader`] (the guests' boot protocol), which are separate traits.
pub trait Arch: 'static + Sized + Send + Sync {
    /// A short name for the boot banner (the target architecture's name).
    const NAME: &'static str;

    /// Processor control: identity, idling, secondary start-up, power-off.
    type Cpu: CpuOps;
    /// The per-CPU hypervisor timer.
    type Timer: Timer;
    /// The host's physical interrupt controller.
    type Irq: InterruptController;
    /// Access to host physical memory handed out by the frame pool.
    type Memory: HostMemory;
    /// The guest-physical translation format and its TLB upkeep.
    type Stage2: Stage2;
    /// Per-domain backend state shared by a domain's vCPUs (devices of the whole virtual
    /// machine).
    type Domain: GuestDomain;
    /// A virtual CPU that runs guest code until an exit.
    type Vcpu: Vcpu<Domain = Self::Domain>;

    /// Facts about this machine for the boot banner, as `(key, value)` pairs:
    /// virtualisation extension and its features, interrupt controller, and so on.
    fn facts() -> Vec<(&'static str, String)>;

    /// Machine code of the hypercall probe guest (see [`crate::selftest`]), for the
    /// state [`Vcpu::new`] creates.
    fn probe_guest_code() -> &'static [u8];

    /// Turns on the physical console's receive interrupt (called once, on the CPU that
    /// is to take it); returns its number, or `None` if Keel takes no console input here.
    fn console_input_start() -> Option<IrqNumber> {
        None
    }

    /// Moves what the physical console received into `buf` without waiting; returns
    /// how many bytes.
    fn console_read(buf: &mut [u8]) -> usize {
        let _ = buf;
        0
    }
}

//! Loading a guest kernel into a new domain: the architecture's boot protocol.

use super::Arch;
use crate::addr::{GuestPhysAddr, Region};
use crate::config::DomainConfig as BootConfig;
use crate::domain::Domain;
use alloc::string::String;
use alloc::vec::Vec;
use keel_abi::memory::E820Entry;

/// Where the boot vCPU starts: [`VcpuInit::entry`](super::VcpuInit) and `arg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootEntry {
    pub entry: GuestPhysAddr,
    /// What the boot protocol passes to the kernel (the address of its boot information).
    pub arg: u64,
}

/// What the domain builder asks the backend to load.
#[derive(Clone, Copy, Debug)]
pub struct LoadRequest<'a> {
    /// The domain's description: kernel, ramdisk and device-tree modules (host-physical
    /// regions the boot loader filled), command line, vCPUs, `vpl011`.
    pub config: &'a BootConfig,
    /// The guest-physical RAM banks the builder populated
    /// ([`GuestLoader::guest_ram`]), ascending.
    pub ram: &'a [Region],
    /// The modules are staging blocks of the frame pool that the builder owns until the
    /// call returns (a domain created through the control interface), not modules the
    /// boot loader placed.
    pub staged: bool,
}

/// Why a guest could not be loaded; shown after the domain's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The backend cannot load guests (yet).
    Unsupported(&'static str),
    /// A module is not a kernel, ramdisk or tree this architecture can boot.
    BadImage(String),
    /// A module lies where nothing can have been loaded (outside RAM, over a reserved
    /// region): the boot script named a file it did not load.
    MissingModule(String),
    /// The images do not fit in the domain's RAM.
    TooLarge(String),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::Unsupported(why) => write!(f, "guest loading not supported: {why}"),
            LoadError::BadImage(why) => write!(f, "bad image: {why}"),
            LoadError::MissingModule(why) => write!(f, "missing module: {why}"),
            LoadError::TooLarge(why) => write!(f, "does not fit: {why}"),
        }
    }
}

/// The architecture's guest boot protocol (each backend's is in `docs/architecture.md`).
/// The domain builder creates the domain,
/// populates [`GuestLoader::guest_ram`], then calls [`GuestLoader::load_guest`].
pub trait GuestLoader: Arch {
    /// Whether [`GuestLoader::load_guest`] gives a domain the devices its device-tree
    /// module (`multiboot,device-tree`, Xen's dom0less passthrough) names, or refuses it
    /// by name. Where it is false the builder refuses such a domain itself, so none runs
    /// without the devices it asks for.
    const PASSTHROUGH: bool = false;

    /// Whether the backend emulates a console UART for a domain that asks for one
    /// ([`DomainInit::virtual_uart`](super::DomainInit::virtual_uart): arm64's virtual
    /// PL011). Where it is false, `CTL_CREATE` refuses `CTL_CREATE_VUART`.
    const VIRTUAL_UART: bool = false;

    /// Where a domain with `bytes` of RAM has it in guest-physical space (banks,
    /// ascending, page-aligned, together exactly `bytes`).
    fn guest_ram(bytes: u64) -> Vec<Region>;

    /// What `XENMEM_memory_map` reports for `ram`; empty where the boot protocol tells
    /// guests their memory otherwise (the hypercall then fails with `-ENOSYS`).
    fn memory_map(ram: &[Region]) -> Vec<E820Entry>;

    /// Copies the kernel (and ramdisk, generated tables) into the domain's memory and
    /// says where its boot vCPU starts. The modules lie in host-physical memory: outside
    /// the frame pool where the boot loader put them, or, with
    /// [`LoadRequest::staged`], in frames of the pool; the backend reads them itself.
    fn load_guest(domain: &Domain<Self>, request: &LoadRequest<'_>) -> Result<BootEntry, LoadError>;
}

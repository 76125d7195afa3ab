//! What a domain configuration says, and what can be wrong with it.

use crate::mm::Region;
use crate::sched::{CpuMask, DEFAULT_WEIGHT};
use alloc::string::String;
use alloc::vec::Vec;

/// How the domain was described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainKind {
    /// Modules directly under `/chosen`, as a Xen dom0 is given (QEMU `guest-loader`,
    /// U-Boot scripts). Keel makes it a control domain, as Xen's dom0 (see
    /// `docs/configuration.md`).
    Initial,
    /// A `/chosen` child with `compatible = "xen,domain"` (Xen dom0less).
    Dom0less,
}

/// `xen,enhanced`: which Xen PV interfaces the domain gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enhanced {
    /// Property absent, or `"disabled"`: no PV interfaces.
    Disabled,
    /// `"enabled"` or no value: PV interfaces including xenstore.
    Enabled,
    /// `"legacy"`: as `Enabled`, xenstore page allocated the old way.
    Legacy,
    /// `"no-xenstore"`: grant tables and event channels, no xenstore.
    NoXenstore,
}

/// Domain capabilities (Xen `capabilities`, a bit field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities(pub u32);

impl Capabilities {
    pub const NONE: Capabilities = Capabilities(0);
    /// `DOMAIN_CAPS_CONTROL`: a privileged, control domain.
    pub const CONTROL: u32 = 0x1;
    /// `DOMAIN_CAPS_HARDWARE`: the hardware domain (at most one).
    pub const HARDWARE: u32 = 0x2;
    /// `DOMAIN_CAPS_XENSTORE`: the xenstore domain (at most one).
    pub const XENSTORE: u32 = 0x4;
    pub const MASK: u32 = 0x7;

    pub fn has(&self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

/// A file the boot loader placed in memory for a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// The device-tree path of the module node.
    pub node: String,
    /// Where it lies in host-physical memory.
    pub region: Region,
}

/// A statically connected inter-domain event channel (Xen `xen,evtchn-v1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticEventChannel {
    /// This domain's port.
    pub local_port: u32,
    /// The name of the domain at the other end.
    pub remote_domain: String,
    /// The port at the other end.
    pub remote_port: u32,
}

/// One domain to build at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// `keel,name`, else the node name (`"dom0"` for the initial domain).
    pub name: String,
    /// The device-tree path of the node that describes the domain.
    pub node: String,
    pub kind: DomainKind,
    /// Guest RAM in KiB (`memory`).
    pub memory_kib: u64,
    /// Number of vCPUs (`cpus`).
    pub vcpus: u32,
    /// A virtual PL011 UART (`vpl011`).
    pub vpl011: bool,
    pub enhanced: Enhanced,
    pub capabilities: Capabilities,
    /// The kernel (`multiboot,kernel`).
    pub kernel: Module,
    /// The kernel's command line (`bootargs`).
    pub bootargs: Option<String>,
    /// The initial ramdisk (`multiboot,ramdisk`).
    pub ramdisk: Option<Module>,
    /// A device-tree fragment for passthrough (`multiboot,device-tree`).
    pub device_tree: Option<Module>,
    /// `direct-map`: the host-physical RAM banks (`xen,static-mem`) the domain gets at
    /// the same guest-physical addresses; `None`: Keel places its RAM.
    pub direct_map: Option<Vec<Region>>,
    /// Hard affinity per vCPU (`xen,vcpu` nodes); vCPUs not listed may run anywhere.
    pub vcpu_affinity: Vec<(u32, CpuMask)>,
    pub event_channels: Vec<StaticEventChannel>,
    /// Scheduler weight (`keel,weight`, default 256).
    pub weight: u16,
    /// Scheduler cap in % of one CPU (`keel,cap`, default 0 = none).
    pub cap: u8,
    /// Things Keel ignored in the description (unsupported properties or nodes).
    pub warnings: Vec<String>,
}

impl DomainConfig {
    pub(super) fn new(name: String, node: String, kind: DomainKind, kernel: Module) -> Self {
        DomainConfig {
            name,
            node,
            kind,
            memory_kib: 0,
            vcpus: 0,
            vpl011: false,
            enhanced: Enhanced::Disabled,
            capabilities: Capabilities::NONE,
            kernel,
            bootargs: None,
            ramdisk: None,
            device_tree: None,
            direct_map: None,
            vcpu_affinity: Vec::new(),
            event_channels: Vec::new(),
            weight: DEFAULT_WEIGHT,
            cap: 0,
            warnings: Vec::new(),
        }
    }

    /// Every module of the domain.
    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        core::iter::once(&self.kernel).chain(&self.ramdisk).chain(&self.device_tree)
    }
}

/// A domain that cannot be built, with everything wrong with its description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainError {
    /// The device-tree path of the node that describes the domain.
    pub node: String,
    /// Each message starts with the path of the node at fault (the domain node or one
    /// of its children).
    pub errors: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The domain (or the whole tree) is not built.
    Error,
    /// Something was ignored; the domain is built without it.
    Warning,
}

/// One message about the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// The domain node it concerns (`/chosen` for the initial domain), or the node at
    /// fault for problems that belong to no domain (`/` for the tree itself).
    pub node: String,
    /// What is wrong, starting with the path of the most specific node concerned.
    pub message: String,
}

impl core::fmt::Display for Problem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let what = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{what}: {}", self.message)
    }
}

/// Everything read from a device tree: one result per described domain, in boot order
/// (the initial domain first, then `xen,domain` nodes in tree order), and every message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainSet {
    pub domains: Vec<Result<DomainConfig, DomainError>>,
    pub problems: Vec<Problem>,
}

impl DomainSet {
    /// The domains that can be built.
    pub fn valid(&self) -> impl Iterator<Item = &DomainConfig> {
        self.domains.iter().filter_map(|d| d.as_ref().ok())
    }
}

/// What the machine allows; domains asking for more are refused.
#[derive(Clone, Copy, Debug)]
pub struct Limits<'a> {
    /// Most vCPUs one domain may have.
    pub max_vcpus: u32,
    /// Physical CPUs (ids `0..nr_pcpus` may appear in `hard-affinity`).
    pub nr_pcpus: u32,
    /// Most memory one domain may have, in KiB.
    pub max_memory_kib: u64,
    /// RAM where modules may lie; empty means "do not check".
    pub ram: &'a [Region],
    /// The modules the boot loader passed, in its order (x86: multiboot2 `module2`
    /// lines), which module nodes may name with `module-index`; empty where modules are
    /// found by address only (arm64).
    pub boot_modules: &'a [Region],
    /// Defaults of the initial domain.
    pub initial: InitialDefaults,
}

/// Memory and vCPUs of the initial domain (built from `/chosen` modules), from Xen's
/// `dom0_mem=` and `dom0_max_vcpus=` where given (see [`InitialDefaults::from_cmdline`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitialDefaults {
    pub memory_kib: u64,
    /// vCPUs = number of physical CPUs, clamped to `[min_vcpus, max_vcpus]`.
    pub min_vcpus: u32,
    pub max_vcpus: u32,
}

impl Default for InitialDefaults {
    /// 512 MiB, one vCPU per physical CPU.
    fn default() -> Self {
        InitialDefaults { memory_kib: 512 * 1024, min_vcpus: 1, max_vcpus: u32::MAX }
    }
}

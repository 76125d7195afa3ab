//! The control interface keelctl is written against. The real implementation is
//! [`crate::keel_control::KeelControl`], Keel's control hypercall (`docs/control-abi.md`)
//! through `/dev/xen/privcmd`; where that cannot be opened the program uses
//! [`Unavailable`], which refuses every call and says why.

use std::fmt;

use crate::cpulist::CpuSet;
use crate::domain_config::DomainConfig;

/// A domain id as keelctl and xenstore paths carry it: 32 bits, as libxl's `uint32_t
/// domid`; the control hypercall's `keel_abi::xen::DomId` (16 bits) is reached with
/// `u16::try_from`, so an id that does not fit names no domain.
pub type DomId = u32;

/// Why a domain shut down (xl's state letters `-rscwS`).
pub use keel_abi::sched::ShutdownReason;

/// A domain as `list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    pub id: DomId,
    pub name: String,
    pub memory_kib: u64,
    pub vcpus_online: u32,
    pub running: bool,
    pub blocked: bool,
    pub paused: bool,
    /// Set once the domain has shut down (and is not yet destroyed).
    pub shutdown: Option<ShutdownReason>,
    pub dying: bool,
    pub cpu_time_ns: u64,
}

/// One vCPU as `vcpu-list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcpuInfo {
    pub vcpu: u32,
    pub online: bool,
    pub running: bool,
    pub blocked: bool,
    /// The CPU it last ran on.
    pub cpu: u32,
    pub time_ns: u64,
    pub hard_affinity: CpuSet,
    pub soft_affinity: CpuSet,
}

/// The host as `info` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    pub host: String,
    pub release: String,
    pub machine: String,
    pub nr_cpus: u32,
    pub cpu_mhz: u32,
    pub total_memory_mib: u64,
    pub free_memory_mib: u64,
    /// Free 4 KiB pages exactly (Keel's frame pool; 0 if not reported).
    pub free_pages: u64,
    pub version_major: u32,
    pub version_minor: u32,
    pub version_extra: String,
    pub caps: String,
    pub scheduler: String,
    pub pagesize: u32,
    pub commandline: String,
}

/// Credit scheduler parameters: weight (1..=65535, default 256) and cap (percent of one
/// CPU, 0 = none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sched {
    pub weight: u32,
    pub cap: u32,
}

/// Which ends Keel must keep the domain after (`CTL_START_KEEP_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keep {
    pub poweroff: bool,
    pub reboot: bool,
    pub crash: bool,
}

/// What `create` hands over: the checked configuration and the kernel and ramdisk bytes.
#[derive(Clone, Debug)]
pub struct CreateRequest<'a> {
    pub config: &'a DomainConfig,
    pub kernel: Vec<u8>,
    pub ramdisk: Option<Vec<u8>>,
    /// Leave the domain paused once built (the caller writes its devices, then unpauses
    /// it, as libxl does).
    pub paused: bool,
    /// The ends after which Keel keeps the domain for the toolstack (`CTL_START_KEEP_*`).
    pub keep: Keep,
}

/// An orderly shutdown request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownKind {
    Poweroff,
    Reboot,
}

/// Why a control call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// There is no control interface to talk to (why).
    Unavailable(String),
    NoSuchDomain(DomId),
    NameInUse(String),
    /// Not enough free memory (MiB asked, MiB free).
    NoMemory {
        asked_mib: u64,
        free_mib: u64,
    },
    /// The kernel, ramdisk and boot tables do not fit in the domain's memory (MiB).
    DoesNotFit {
        memory_mib: u64,
    },
    /// The caller lacks the control capability.
    Denied,
    /// The hypervisor refused an argument.
    Invalid(String),
    Failed(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Unavailable(why) => write!(
                f,
                "Keel's control interface is not available: {why} (`keelctl create -n <cfg>` checks a \
                 configuration without it)"
            ),
            ControlError::NoSuchDomain(id) => write!(f, "domain {id} does not exist"),
            ControlError::NameInUse(n) => write!(f, "a domain named `{n}` already exists"),
            ControlError::NoMemory { asked_mib, free_mib } => {
                write!(f, "not enough free memory: {asked_mib} MiB asked, {free_mib} MiB free")
            }
            ControlError::DoesNotFit { memory_mib } => {
                write!(f, "the kernel, ramdisk and boot tables do not fit in {memory_mib} MiB")
            }
            ControlError::Denied => f.write_str("permission denied: this domain lacks the control capability"),
            ControlError::Invalid(m) => write!(f, "invalid argument: {m}"),
            ControlError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ControlError {}

/// Keel's control interface as keelctl uses it.
pub trait Control {
    /// The host and the hypervisor.
    fn host_info(&mut self) -> Result<HostInfo, ControlError>;
    /// Every domain, by id.
    fn list(&mut self) -> Result<Vec<DomainInfo>, ControlError>;
    /// Builds and starts a domain; nothing is left behind on failure.
    fn create(&mut self, request: &CreateRequest) -> Result<DomId, ControlError>;
    /// Ends a domain at once and releases its memory and id.
    fn destroy(&mut self, id: DomId) -> Result<(), ControlError>;
    fn pause(&mut self, id: DomId) -> Result<(), ControlError>;
    fn unpause(&mut self, id: DomId) -> Result<(), ControlError>;
    /// Asks the guest to power off or reboot (xenstore `control/shutdown`); returns at
    /// once.
    fn shutdown(&mut self, id: DomId, kind: ShutdownKind) -> Result<(), ControlError>;
    fn vcpus(&mut self, id: DomId) -> Result<Vec<VcpuInfo>, ControlError>;
    fn pin_vcpu(&mut self, id: DomId, vcpu: u32, hard: &CpuSet) -> Result<(), ControlError>;
    fn sched_credit(&mut self, id: DomId) -> Result<Sched, ControlError>;
    fn set_sched_credit(&mut self, id: DomId, sched: Sched) -> Result<(), ControlError>;
    /// The console output the domain produced since the last call (empty if none);
    /// never blocks.
    fn console_read(&mut self, id: DomId) -> Result<Vec<u8>, ControlError>;
    /// Input for the domain's console.
    fn console_write(&mut self, id: DomId, data: &[u8]) -> Result<(), ControlError>;
    /// Whether domain `id` has a xenstore connection (a store page and port): only then
    /// may its devices be in xenstore. `false` if the interface cannot tell.
    fn has_store(&mut self, id: DomId) -> bool {
        let _ = id;
        false
    }
    /// Hands the calling domain's xenstore connection over to `port`, a port it
    /// allocated toward the xenstore domain (`CTL_STORE_CONNECT`).
    fn store_connect(&mut self, port: u32) -> Result<(), ControlError> {
        let _ = port;
        Err(ControlError::Unavailable("this control interface cannot hand over a xenstore connection".into()))
    }
}

/// No control interface: every call fails with [`ControlError::Unavailable`] and the
/// reason.
#[derive(Clone, Debug)]
pub struct Unavailable(pub String);

impl Unavailable {
    fn refuse<T>(&self) -> Result<T, ControlError> {
        Err(ControlError::Unavailable(self.0.clone()))
    }
}

impl Control for Unavailable {
    fn host_info(&mut self) -> Result<HostInfo, ControlError> {
        self.refuse()
    }
    fn list(&mut self) -> Result<Vec<DomainInfo>, ControlError> {
        self.refuse()
    }
    fn create(&mut self, _: &CreateRequest) -> Result<DomId, ControlError> {
        self.refuse()
    }
    fn destroy(&mut self, _: DomId) -> Result<(), ControlError> {
        self.refuse()
    }
    fn pause(&mut self, _: DomId) -> Result<(), ControlError> {
        self.refuse()
    }
    fn unpause(&mut self, _: DomId) -> Result<(), ControlError> {
        self.refuse()
    }
    fn shutdown(&mut self, _: DomId, _: ShutdownKind) -> Result<(), ControlError> {
        self.refuse()
    }
    fn vcpus(&mut self, _: DomId) -> Result<Vec<VcpuInfo>, ControlError> {
        self.refuse()
    }
    fn pin_vcpu(&mut self, _: DomId, _: u32, _: &CpuSet) -> Result<(), ControlError> {
        self.refuse()
    }
    fn sched_credit(&mut self, _: DomId) -> Result<Sched, ControlError> {
        self.refuse()
    }
    fn set_sched_credit(&mut self, _: DomId, _: Sched) -> Result<(), ControlError> {
        self.refuse()
    }
    fn console_read(&mut self, _: DomId) -> Result<Vec<u8>, ControlError> {
        self.refuse()
    }
    fn console_write(&mut self, _: DomId, _: &[u8]) -> Result<(), ControlError> {
        self.refuse()
    }
}

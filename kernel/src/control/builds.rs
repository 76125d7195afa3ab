//! Creating a domain at run time, in three steps (`docs/control-abi.md` §4a):
//!
//! 1. [`CTL_CREATE`](keel_abi::control::CTL_CREATE): the hypercall checks the arguments
//!    and reads the command line, and queues the request; the run loop of the calling
//!    CPU ([`Builds::take`], `run/create.rs`) creates the domain (paused, no vCPU
//!    registered) with its RAM populated, and reserves one contiguous block of pool
//!    frames for its kernel and one for its ramdisk (the *staging* blocks). The call
//!    returns its id.
//! 2. [`CTL_LOAD`](keel_abi::control::CTL_LOAD), repeated: each call copies at most
//!    1 MiB from the caller's memory into a staging block, in order. The caller's pages
//!    are only read; nothing of the caller is mapped anywhere.
//! 3. [`CTL_START`](keel_abi::control::CTL_START): the hypercall checks the request and
//!    queues it; the run loop of the calling CPU then builds
//!    the domain with the boot-time loaders reading the staging blocks
//!    (`run/create.rs`), frees the blocks, and sets the call's result.
//!
//! A domain being built is reported as paused; pausing, unpausing or shutting it down
//! is `-EINVAL`; destroying it frees its staging blocks with the rest. Every failure
//! leaves nothing behind: the domain, its id and every frame are released.

use crate::mm::{FramePool, PhysAddr, PAGE_SIZE};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use keel_abi::control::*;
use keel_abi::xen::DomId;
use keel_abi::Errno;
use spin::Mutex;

/// Bytes copied from the caller per step of a [`CTL_LOAD`] (the heap buffer's size).
pub(super) const COPY_STEP: usize = 64 << 10;

/// A module's staging block: contiguous pool frames the builder owns.
#[derive(Debug)]
pub struct Staged {
    /// Host-physical start of the block.
    pub at: PhysAddr,
    /// Frames asked of the pool (it rounds them up to a power of two).
    pages: usize,
    /// The module's size in bytes.
    pub len: u64,
    /// Bytes loaded so far (`CTL_LOAD` goes in order).
    pub filled: u64,
}

impl Staged {
    /// Frames the pool hands out for `len` bytes.
    fn pages_for(len: u64) -> Option<usize> {
        usize::try_from(len.div_ceil(PAGE_SIZE)).ok().map(|p| p.max(1).next_power_of_two())
    }

    pub(super) fn reserve(pool: &FramePool, len: u64) -> Result<Staged, Errno> {
        let pages = Self::pages_for(len).ok_or(Errno::ENOMEM)?;
        let at = pool.alloc(pages).ok_or(Errno::ENOMEM)?;
        Ok(Staged { at, pages, len, filled: 0 })
    }

    pub(super) fn release(&self, pool: &FramePool) {
        pool.free(self.at, self.pages);
    }

    /// Whether every byte was loaded.
    pub fn complete(&self) -> bool {
        self.filled == self.len
    }
}

/// A domain being built: what `CTL_CREATE` asked for and the staged modules.
#[derive(Debug)]
pub struct Pending {
    pub domid: DomId,
    pub args: CreateArgs,
    pub kernel: Staged,
    pub ramdisk: Option<Staged>,
    /// The hard affinity of each vCPU at `CTL_START` (all zero: any CPU): `args.cpumap`
    /// for every vCPU until `CTL_SET_AFFINITY` names one (since 1.2).
    pub cpumaps: Vec<[u64; 4]>,
}

impl Pending {
    /// Frees the staging blocks.
    pub fn release(&self, pool: &FramePool) {
        self.kernel.release(pool);
        if let Some(r) = &self.ramdisk {
            r.release(pool);
        }
    }

    /// Records the hard affinity `cpumap` (not empty) of `vcpu`, or of every vCPU with
    /// `CTL_ALL_VCPUS`; `-EINVAL` for a vCPU the domain will not have.
    pub(super) fn set_affinity(&mut self, vcpu: u32, cpumap: [u64; 4]) -> Result<(), Errno> {
        if vcpu == CTL_ALL_VCPUS {
            self.cpumaps.iter_mut().for_each(|m| *m = cpumap);
            return Ok(());
        }
        let slot = usize::try_from(vcpu).ok().and_then(|v| self.cpumaps.get_mut(v)).ok_or(Errno::EINVAL)?;
        *slot = cpumap;
        Ok(())
    }

    pub(super) fn module_mut(&mut self, module: u8) -> Option<&mut Staged> {
        match module {
            CTL_MODULE_KERNEL => Some(&mut self.kernel),
            CTL_MODULE_RAMDISK => self.ramdisk.as_mut(),
            _ => None,
        }
    }
}

/// What `CTL_CREATE` asks for, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    pub name: String,
    pub vcpus: u32,
    pub memory_kib: u64,
    pub weight: u16,
    pub cap: u8,
    /// Hard affinity of every vCPU (all zero: any CPU).
    pub cpumap: [u64; 4],
    pub cmdline: Option<String>,
    pub kernel_size: u64,
    pub ramdisk_size: u64,
    /// The domain gets the architecture's emulated console UART (`CTL_CREATE_VUART`).
    pub vuart: bool,
    /// The domain is the xenstore domain (`CTL_CREATE_XENSTORE`).
    pub xenstore: bool,
}

/// A `CTL_CREATE` or `CTL_START` the hypercall accepted, for the run loop of the calling
/// vCPU: the domain builder needs the run loop (the scheduler, the backend's loaders).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Create(CreateArgs),
    /// `keep`: the `CTL_START_KEEP_*` bits.
    Start {
        domid: DomId,
        paused: bool,
        keep: u32,
    },
}

/// One domain being built in the table: its id and name readable without its lock.
pub(super) struct Entry {
    pub(super) domid: DomId,
    pub(super) name: String,
    pub(super) build: Arc<Mutex<Pending>>,
}

/// The domains being built, and the requests queued for the run loops.
#[derive(Default)]
pub struct Builds {
    /// Each entry has its own lock, held while a chunk is copied in; the table's lock is
    /// held only to find, add or remove one.
    pub(super) pending: Mutex<Vec<Entry>>,
    /// Requests of the hypercalls in flight, by calling domain and vCPU.
    pub(super) requests: Mutex<Vec<((DomId, u32), Request)>>,
    /// A run loop serves requests (without one, `CTL_CREATE` and `CTL_START` are
    /// `-ENOSYS`).
    pub(super) served: core::sync::atomic::AtomicBool,
    /// Serialises the name check with the creation, so that two creations cannot both
    /// take a name.
    pub(super) creating: Mutex<()>,
}

impl Builds {
    pub const fn new() -> Self {
        Builds {
            pending: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            served: core::sync::atomic::AtomicBool::new(false),
            creating: Mutex::new(()),
        }
    }

    pub(crate) fn find(&self, id: DomId) -> Option<Arc<Mutex<Pending>>> {
        self.pending.lock().iter().find(|e| e.domid == id).map(|e| e.build.clone())
    }

    /// Whether domain `id` is being built.
    pub fn is_pending(&self, id: DomId) -> bool {
        self.find(id).is_some()
    }

    pub(super) fn name_taken(&self, name: &str) -> bool {
        self.pending.lock().iter().any(|e| e.name == name)
    }

    /// Takes domain `id`'s build out of the table (waiting for a copy in progress).
    pub fn take(&self, id: DomId) -> Option<Pending> {
        let mut build = {
            let mut table = self.pending.lock();
            let i = table.iter().position(|e| e.domid == id)?;
            table.swap_remove(i).build
        };
        // A `CTL_LOAD` copying a chunk holds a clone: wait for it to finish.
        loop {
            match Arc::try_unwrap(build) {
                Ok(m) => return Some(m.into_inner()),
                Err(again) => {
                    build = again;
                    core::hint::spin_loop();
                }
            }
        }
    }

    /// Says that a run loop serves the requests ([`Builds::take_request`]).
    pub fn serve(&self) {
        self.served.store(true, core::sync::atomic::Ordering::Release);
    }

    /// Queues a request for the run loop of `caller` (domain, vCPU); `-ENOSYS` if no
    /// run loop serves them, `-EBUSY` if one is queued for the caller already.
    pub(super) fn queue(&self, caller: (DomId, u32), req: Request) -> Result<(), Errno> {
        if !self.served.load(core::sync::atomic::Ordering::Acquire) {
            return Err(Errno::ENOSYS);
        }
        let mut requests = self.requests.lock();
        if requests.iter().any(|(c, _)| *c == caller) {
            return Err(Errno::EBUSY);
        }
        requests.push((caller, req));
        Ok(())
    }

    /// The request the hypercall of `caller` (domain, vCPU) queued, if any.
    pub fn take_request(&self, caller: (DomId, u32)) -> Option<Request> {
        let mut requests = self.requests.lock();
        let i = requests.iter().position(|(c, _)| *c == caller)?;
        Some(requests.swap_remove(i).1)
    }
}

/// The name in a `CtlCreate`: 1..=64 letters, digits, `-`, `_`, `.`, NUL-padded (no
/// byte but NUL after the first NUL).
pub fn parse_name(raw: &[u8]) -> Result<String, Errno> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let (name, rest) = raw.split_at(end);
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if name.is_empty() || !name.iter().all(ok) || rest.iter().any(|&b| b != 0) {
        return Err(Errno::EINVAL);
    }
    Ok(name.iter().map(|&b| char::from(b)).collect())
}

/// The checks of a `CtlCreate` that need no state; the command line is read apart.
pub fn check_create(a: &CtlCreate) -> Result<CreateArgs, Errno> {
    if a._pad.iter().any(|&b| b != 0) || a.domid != 0 || a.flags & !CTL_CREATE_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let name = parse_name(&a.name)?;
    let memory_ok = a.memory_kib >= 4 && a.memory_kib.is_multiple_of(4) && a.memory_kib <= u64::MAX / 1024;
    if !memory_ok
        || a.vcpus == 0
        || a.vcpus > CTL_CREATE_MAX_VCPUS.min(crate::domain::MAX_VCPUS)
        || a.weight == 0
        || a.cap > 100
        || a.kernel_size == 0
        || a.kernel_size > CTL_KERNEL_MAX
        || a.ramdisk_size > CTL_RAMDISK_MAX
        || a.cmdline_len > CTL_CMDLINE_MAX
    {
        return Err(Errno::EINVAL);
    }
    Ok(CreateArgs {
        name,
        vcpus: a.vcpus,
        memory_kib: a.memory_kib,
        weight: a.weight,
        cap: a.cap,
        cpumap: a.cpumap,
        cmdline: None,
        kernel_size: a.kernel_size,
        ramdisk_size: a.ramdisk_size,
        vuart: a.flags & CTL_CREATE_VUART != 0,
        xenstore: a.flags & CTL_CREATE_XENSTORE != 0,
    })
}

/// Frames the pool would hand out for domain RAM of `pages` with its P2M tables, and the
/// staging blocks of `kernel` and `ramdisk` bytes: what `CTL_CREATE` needs free.
pub(super) fn frames_needed(pages: u64, kernel: u64, ramdisk: u64) -> Option<u64> {
    let staged = |len: u64| -> Option<u64> {
        if len == 0 {
            return Some(0);
        }
        Staged::pages_for(len).and_then(|p| u64::try_from(p).ok())
    };
    // A leaf table per 512 pages, one per level above, the root.
    let tables = pages.div_ceil(512).checked_add(8)?;
    pages.checked_add(tables)?.checked_add(staged(kernel)?)?.checked_add(staged(ramdisk)?)
}

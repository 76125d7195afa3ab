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

use crate::arch::{Arch, GuestAbi, GuestLoader, HostMemory};
use crate::domain::{Domain, DomainConfig, DomainState};
use crate::guest_memory::GuestVirt;
use crate::hypervisor::Hypervisor;
use crate::mm::{FramePool, GuestPhysAddr, PhysAddr, PAGE_SIZE};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use keel_abi::control::*;
use keel_abi::xen::DomId;
use keel_abi::Errno;
use spin::Mutex;

/// Bytes copied from the caller per step of a [`CTL_LOAD`] (the heap buffer's size).
const COPY_STEP: usize = 64 << 10;

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

    fn reserve(pool: &FramePool, len: u64) -> Result<Staged, Errno> {
        let pages = Self::pages_for(len).ok_or(Errno::ENOMEM)?;
        let at = pool.alloc(pages).ok_or(Errno::ENOMEM)?;
        Ok(Staged { at, pages, len, filled: 0 })
    }

    fn release(&self, pool: &FramePool) {
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
}

impl Pending {
    /// Frees the staging blocks.
    pub fn release(&self, pool: &FramePool) {
        self.kernel.release(pool);
        if let Some(r) = &self.ramdisk {
            r.release(pool);
        }
    }

    fn module_mut(&mut self, module: u8) -> Option<&mut Staged> {
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
}

/// A `CTL_CREATE` or `CTL_START` the hypercall accepted, for the run loop of the calling
/// vCPU: the domain builder needs the run loop (the scheduler, the backend's loaders).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Create(CreateArgs),
    Start { domid: DomId, paused: bool },
}

/// One domain being built in the table: its id and name readable without its lock.
struct Entry {
    domid: DomId,
    name: String,
    build: Arc<Mutex<Pending>>,
}

/// The domains being built, and the requests queued for the run loops.
#[derive(Default)]
pub struct Builds {
    /// Each entry has its own lock, held while a chunk is copied in; the table's lock is
    /// held only to find, add or remove one.
    pending: Mutex<Vec<Entry>>,
    /// Requests of the hypercalls in flight, by calling domain and vCPU.
    requests: Mutex<Vec<((DomId, u32), Request)>>,
    /// A run loop serves requests (without one, `CTL_CREATE` and `CTL_START` are
    /// `-ENOSYS`).
    served: core::sync::atomic::AtomicBool,
    /// Serialises the name check with the creation, so that two creations cannot both
    /// take a name.
    creating: Mutex<()>,
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

    fn name_taken(&self, name: &str) -> bool {
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
    fn queue(&self, caller: (DomId, u32), req: Request) -> Result<(), Errno> {
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
    if a._pad.iter().any(|&b| b != 0) || a.domid != 0 {
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
    })
}

/// Frames the pool would hand out for domain RAM of `pages` with its P2M tables, and the
/// staging blocks of `kernel` and `ramdisk` bytes: what `CTL_CREATE` needs free.
fn frames_needed(pages: u64, kernel: u64, ramdisk: u64) -> Option<u64> {
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

impl<A: Arch + GuestAbi + GuestLoader> Hypervisor<'_, A> {
    /// `CTL_CREATE`, served by the run loop: creates the domain `a` describes, paused and
    /// being built, with its RAM and staging blocks. Returns its id. `-EEXIST` a live
    /// domain has the name; `-ENOMEM` the pool has not enough free frames; `-ENOSPC` no
    /// id is free.
    pub fn control_create(&self, a: &CreateArgs) -> Result<DomId, Errno> {
        let name = a.name.clone();
        let _creating = self.builds.creating.lock();
        let live_name = self.domain_ids().into_iter().filter_map(|id| self.domain(id)).any(|d| d.config().name == name);
        if live_name || self.builds.name_taken(&name) {
            return Err(Errno::EEXIST);
        }
        let bytes = a.memory_kib.checked_mul(1024).ok_or(Errno::EINVAL)?;
        let pages = bytes / PAGE_SIZE;
        let stats = self.pool().stats();
        let free = u64::try_from(stats.total.saturating_sub(stats.allocated)).unwrap_or(u64::MAX);
        let need = frames_needed(pages, a.kernel_size, a.ramdisk_size).ok_or(Errno::ENOMEM)?;
        if need > free {
            return Err(Errno::ENOMEM);
        }
        let ram = A::guest_ram(bytes);
        let mut runtime = DomainConfig::new(A::LAYOUT, a.vcpus, pages);
        runtime.memory_map = A::memory_map(&ram);
        runtime.name = name.clone();
        let d = self.create_domain(runtime)?;
        d.set_state(DomainState::Paused);
        let id = d.id();
        let built = self.reserve(&d, &ram, a);
        drop(d);
        let (kernel, ramdisk) = match built {
            Ok(staged) => staged,
            Err(e) => {
                let _ = crate::run::destroy_domain(self, id);
                return Err(e);
            }
        };
        let pending = Pending { domid: id, args: a.clone(), kernel, ramdisk };
        log::info!(
            "domain {id} ({name}): created by the control interface, {} KiB, kernel {} bytes, ramdisk {} bytes; being built",
            a.memory_kib,
            a.kernel_size,
            a.ramdisk_size
        );
        self.builds.pending.lock().push(Entry { domid: id, name, build: Arc::new(Mutex::new(pending)) });
        Ok(id)
    }

    /// Populates `d`'s RAM and reserves the staging blocks; on failure frees the blocks
    /// it took (the caller destroys the domain).
    fn reserve(
        &self,
        d: &Domain<A>,
        ram: &[crate::mm::Region],
        a: &CreateArgs,
    ) -> Result<(Staged, Option<Staged>), Errno> {
        for bank in ram {
            d.populate_ram(self.pool(), GuestPhysAddr(bank.start), bank.size()).map_err(|_| Errno::ENOMEM)?;
        }
        let kernel = Staged::reserve(self.pool(), a.kernel_size)?;
        let ramdisk = match a.ramdisk_size {
            0 => None,
            n => match Staged::reserve(self.pool(), n) {
                Ok(r) => Some(r),
                Err(e) => {
                    kernel.release(self.pool());
                    return Err(e);
                }
            },
        };
        Ok((kernel, ramdisk))
    }
}

impl<A: Arch> Hypervisor<'_, A> {
    /// `CTL_CREATE`'s checks done, the command line read: queues the creation for the
    /// caller's run loop.
    pub fn control_queue_create(&self, caller: (DomId, u32), args: CreateArgs) -> Result<(), Errno> {
        self.builds.queue(caller, Request::Create(args))
    }

    /// `CTL_LOAD`: copies `a.len` bytes from the caller's `a.buffer` into the staging
    /// block of module `a.module` of domain `a.domid`, at `a.offset`, which must be what
    /// was loaded so far. `-ESRCH` no such domain; `-EINVAL` one not being built, a bad
    /// module, an offset out of order or a chunk past the module's size; `-EFAULT`.
    pub fn control_load(&self, guest: &GuestVirt<'_, A>, a: &CtlLoad) -> Result<(), Errno> {
        if a._pad != 0 || a.len > CTL_LOAD_MAX {
            return Err(Errno::EINVAL);
        }
        let Some(entry) = self.builds.find(a.domid) else {
            return Err(if self.domain(a.domid).is_some() { Errno::EINVAL } else { Errno::ESRCH });
        };
        let mut p = entry.lock();
        let m = p.module_mut(a.module).ok_or(Errno::EINVAL)?;
        let end = a.offset.checked_add(u64::from(a.len)).ok_or(Errno::EINVAL)?;
        if a.offset != m.filled || end > m.len {
            return Err(Errno::EINVAL);
        }
        let mut buf = alloc::vec![0u8; COPY_STEP.min(usize::try_from(a.len).map_err(|_| Errno::EINVAL)?)];
        let mut done = 0u64;
        while done < u64::from(a.len) {
            let n = usize::try_from((u64::from(a.len) - done).min(COPY_STEP as u64)).map_err(|_| Errno::EINVAL)?;
            let chunk = &mut buf[..n];
            guest.read(a.buffer.wrapping_add(done), chunk)?;
            A::Memory::write(PhysAddr(m.at.0 + a.offset + done), chunk);
            done += n as u64;
        }
        m.filled = end;
        Ok(())
    }

    /// `CTL_START`'s checks: domain `a.domid` is being built, every module byte was
    /// loaded, `flags` known. Queues the start for the caller's run loop.
    pub fn control_queue_start(&self, caller: (DomId, u32), a: &CtlStart) -> Result<(), Errno> {
        if a._pad != [0; 2] || a.flags & !CTL_START_PAUSED != 0 {
            return Err(Errno::EINVAL);
        }
        let Some(entry) = self.builds.find(a.domid) else {
            return Err(if self.domain(a.domid).is_some() { Errno::EINVAL } else { Errno::ESRCH });
        };
        {
            let p = entry.lock();
            if !p.kernel.complete() || p.ramdisk.as_ref().is_some_and(|r| !r.complete()) {
                return Err(Errno::EINVAL);
            }
        }
        self.builds.queue(caller, Request::Start { domid: a.domid, paused: a.flags & CTL_START_PAUSED != 0 })
    }

    /// `CTL_PHYSINFO`: the frame pool's size and free frames.
    pub fn control_physinfo(&self) -> CtlPhysInfo {
        let s = self.pool().stats();
        let total = u64::try_from(s.total).unwrap_or(u64::MAX);
        let used = u64::try_from(s.allocated).unwrap_or(u64::MAX);
        CtlPhysInfo { total_pages: total, free_pages: total.saturating_sub(used) }
    }

    /// Drops domain `id`'s build, if it is being built, and frees its staging blocks.
    pub(crate) fn forget_build(&self, id: DomId) {
        if let Some(p) = self.builds.take(id) {
            p.release(self.pool());
        }
    }

    /// Whether domain `id` is being built (created, not yet started).
    pub fn is_being_built(&self, id: DomId) -> bool {
        self.builds.is_pending(id)
    }

    /// Takes domain `id`'s build out of the table, for the builder.
    pub fn take_build(&self, id: DomId) -> Option<Pending> {
        self.builds.take(id)
    }

    /// The request the hypercall of `caller` (domain, vCPU) queued, if any.
    pub fn take_build_request(&self, caller: (DomId, u32)) -> Option<Request> {
        self.builds.take_request(caller)
    }

    /// A run loop serves `CTL_CREATE` and `CTL_START` from now on.
    pub fn serve_builds(&self) {
        self.builds.serve();
    }
}

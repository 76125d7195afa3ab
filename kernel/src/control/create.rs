//! The hypervisor's side of creating a domain at run time: reserving it, loading its
//! modules chunk by chunk and queueing its start ([`super::builds`] holds the queue, the
//! staged modules and the argument checks; `run/create.rs` builds and starts it).

use super::builds::*;
use crate::arch::{Arch, GuestAbi, GuestLoader, HostMemory};
use crate::domain::{Domain, DomainConfig, DomainState};
use crate::guest_memory::GuestVirt;
use crate::hypervisor::Hypervisor;
use crate::mm::{GuestPhysAddr, PhysAddr, PAGE_SIZE};
use alloc::sync::Arc;
use keel_abi::control::*;
use keel_abi::xen::DomId;
use keel_abi::Errno;
use spin::Mutex;

impl<A: Arch + GuestAbi + GuestLoader> Hypervisor<'_, A> {
    /// `CTL_CREATE`, served by the run loop: creates the domain `a` describes, paused and
    /// being built, with its RAM and staging blocks. Returns its id. `-EEXIST` a live
    /// domain has the name; `-ENOMEM` the pool has not enough free frames; `-ENOSPC` no
    /// id is free; `-EOPNOTSUPP` a virtual UART the backend does not emulate; `-EEXIST`
    /// a xenstore domain asked for while one exists.
    pub fn control_create(&self, a: &CreateArgs) -> Result<DomId, Errno> {
        if a.vuart && !A::VIRTUAL_UART {
            return Err(Errno::EOPNOTSUPP);
        }
        let name = a.name.clone();
        let _creating = self.builds.creating.lock();
        // A domain being built holds its capabilities already: one check covers both.
        if a.xenstore && self.xenstore_domain().is_some() {
            return Err(Errno::EEXIST);
        }
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
        runtime.virtual_uart = a.vuart;
        if a.xenstore {
            runtime.capabilities = CAP_XENSTORE;
        }
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
        let vcpus = usize::try_from(a.vcpus).map_err(|_| Errno::EINVAL)?;
        let pending = Pending { domid: id, args: a.clone(), kernel, ramdisk, cpumaps: alloc::vec![a.cpumap; vcpus] };
        log::info!(
            "domain {id} ({name}): created by the control interface, {} KiB, kernel {} bytes, ramdisk {} bytes{}; being built",
            a.memory_kib,
            a.kernel_size,
            a.ramdisk_size,
            if a.vuart { ", virtual UART" } else { "" }
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
    /// loaded, `flags` known (`CTL_START_KEEP_*`: which ends the domain is kept after). Queues the start for the caller's run loop.
    pub fn control_queue_start(&self, caller: (DomId, u32), a: &CtlStart) -> Result<(), Errno> {
        if a._pad != [0; 2] || a.flags & !CTL_START_FLAGS != 0 {
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
        let keep = a.flags & (CTL_START_KEEP_POWEROFF | CTL_START_KEEP_REBOOT | CTL_START_KEEP_CRASH);
        self.builds.queue(caller, Request::Start { domid: a.domid, paused: a.flags & CTL_START_PAUSED != 0, keep })
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

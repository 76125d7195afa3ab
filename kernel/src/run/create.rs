//! The domain builder behind `CTL_CREATE` and `CTL_START` (`control/create.rs`): the
//! hypercall queues the request, and the run loop of the calling CPU serves it right
//! after the hypercall, before the caller runs again, with [`serve`] (set with
//! [`System::with_creator`]), which has the backend's loaders and the scheduler.
//!
//! `CTL_START` builds as the boot-time builder does (`build.rs`), with the kernel and
//! ramdisk read from their staging blocks: the backend's loader (same checks and
//! formats), vCPU 0 at the entry, the PV console and the xenstore handles (as a dom0less
//! domain with `xen,enhanced` = "enabled"), then the vCPUs are registered with the
//! scheduler, paused first if asked. A xenstore domain (`CTL_CREATE_XENSTORE`) completes
//! the late-init handshake of the domains that wait for a store (`store.rs`). Whatever happens, the staging blocks are freed; on
//! a failure the domain is destroyed with everything it had.

use super::build::{attach_store, vcpu_params};
use super::{Guest, System};
use crate::arch::{Arch, GuestAbi, GuestLoader, LoadError, LoadRequest, Vcpu, VcpuInit};
use crate::config::{Capabilities, DomainConfig as BootConfig, DomainKind, Enhanced, Module};
use crate::control::builds::{Pending, Request};
use crate::domain::{DomainState, Hooks};
use crate::mm::Region;
use crate::sched::CpuMask;
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use keel_abi::xen::DomId;
use keel_abi::Errno;

/// Serves a build request of the control interface on the machine; the result is the
/// hypercall's.
pub type Creator<A> = for<'m, 'a> fn(&'m System<'a, A>, Request) -> Result<u64, Errno>;

impl<'a, A: Arch> System<'a, A> {
    /// Serves `CTL_CREATE` and `CTL_START` with `creator` (without one they are
    /// `-ENOSYS`).
    pub fn with_creator(mut self, creator: Creator<A>) -> Self {
        self.creator = Some(creator);
        self.hv.serve_builds();
        self
    }

    /// After a hypercall of vCPU `vcpu` of domain `caller`: serves the build request it
    /// queued, if any, and returns the hypercall's result.
    pub(super) fn serve_build(&self, caller: DomId, vcpu: u32) -> Option<u64> {
        let req = self.hv.take_build_request((caller, vcpu))?;
        let Some(creator) = self.creator else { return Some(Errno::ENOSYS.to_return()) };
        Some(creator(self, req).unwrap_or_else(|e| e.to_return()))
    }
}

/// The [`Creator`] of the architecture's loaders.
pub fn serve<A: Arch + GuestAbi + GuestLoader>(m: &System<'_, A>, req: Request) -> Result<u64, Errno> {
    match req {
        Request::Create(args) => m.hypervisor().control_create(&args).map(u64::from),
        Request::Start { domid, paused, keep } => start(m, domid, paused, keep).map(|()| 0),
    }
}

/// Builds and starts domain `id`, which is being built; its staging blocks are freed
/// whatever happens, and the domain destroyed if it cannot start.
fn start<A: Arch + GuestAbi + GuestLoader>(m: &System<'_, A>, id: DomId, paused: bool, keep: u32) -> Result<(), Errno> {
    let hv = m.hypervisor();
    // Destroyed since the hypercall checked it: gone.
    let pending = hv.take_build(id).ok_or(Errno::ESRCH)?;
    let result = build(m, &pending, paused, keep);
    pending.release(hv.pool());
    if result.is_err() {
        let _ = super::destroy_domain(hv, id);
    }
    result
}

/// The boot description of a domain being built, its modules in their staging blocks.
fn description(p: &Pending) -> BootConfig {
    let module = |what: &str, at: u64, len: u64| Module {
        node: format!("{} of domain {} ({})", what, p.domid, p.args.name),
        region: Region::new(at, len),
    };
    let vcpu_affinity: Vec<(u32, CpuMask)> = (0u32..)
        .zip(&p.cpumaps)
        .map(|(v, &map)| (v, super::super::control::sched::cpumask(map)))
        .filter(|(_, mask)| !mask.is_empty())
        .collect();
    BootConfig {
        name: p.args.name.clone(),
        node: format!("control interface (domain {})", p.domid),
        kind: DomainKind::Dom0less,
        memory_kib: p.args.memory_kib,
        vcpus: p.args.vcpus,
        vpl011: p.args.vuart,
        enhanced: Enhanced::Enabled,
        capabilities: if p.args.xenstore { Capabilities(Capabilities::XENSTORE) } else { Capabilities::NONE },
        kernel: module("kernel", p.kernel.at.0, p.kernel.len),
        bootargs: p.args.cmdline.clone(),
        ramdisk: p.ramdisk.as_ref().map(|r| module("ramdisk", r.at.0, r.len)),
        device_tree: None,
        direct_map: None,
        vcpu_affinity,
        event_channels: Vec::new(),
        weight: p.args.weight,
        cap: p.args.cap,
        warnings: Vec::new(),
    }
}

/// The errno of a loader's refusal.
fn load_errno(e: &LoadError) -> Errno {
    match e {
        LoadError::Unsupported(_) => Errno::EOPNOTSUPP,
        LoadError::BadImage(_) | LoadError::MissingModule(_) => Errno::EINVAL,
        LoadError::TooLarge(_) => Errno::E2BIG,
    }
}

fn build<A: Arch + GuestAbi + GuestLoader>(
    m: &System<'_, A>,
    p: &Pending,
    paused: bool,
    keep: u32,
) -> Result<(), Errno> {
    let hv = m.hypervisor();
    let id = p.domid;
    let config = description(p);
    let d = hv.domain(id).ok_or(Errno::ESRCH)?;
    let refuse = |errno: Errno, why: &str| {
        log::warn!("domain {id} ({}): not started: {why}", config.name);
        errno
    };
    let params = vcpu_params(&config, &m.online()).map_err(|e| refuse(Errno::EINVAL, &e))?;
    let ram = A::guest_ram(p.args.memory_kib.saturating_mul(1024));
    let boot = A::load_guest(&d, &LoadRequest { config: &config, ram: &ram, staged: true })
        .map_err(|e| refuse(load_errno(&e), &format!("{e}")))?;
    let root = d.p2m_root().ok_or_else(|| refuse(Errno::EINVAL, "the domain has no P2M"))?;
    let vcpu = A::Vcpu::new(d.arch(), &VcpuInit::boot(boot.entry, boot.arg, root, d.space()))
        .map_err(|e| refuse(Errno::ENOMEM, &format!("cannot create vCPU 0: {e:?}")))?;
    if let Some(gfn) = A::PV_CONSOLE_GFN {
        if let Err(e) = hv.attach_pv_console(&d, gfn) {
            log::warn!("domain {id} ({}): no PV console: {}", config.name, e.name());
        }
    }
    if !attach_store(m, &config, id) {
        super::store::prepare(m, id, &config);
    }
    if p.args.xenstore {
        super::store::complete_late(m, id);
    }
    m.hooks.register(id, &params).map_err(|e| refuse(Errno::ENOMEM, &format!("the scheduler refused: {e:?}")))?;
    if !paused {
        d.set_state(DomainState::Running);
    }
    let mut guest = Guest::new(config.name.clone(), d.clone(), vcpu);
    guest.created = true;
    guest.keep = keep;
    m.guests.insert(guest);
    m.started.store(true, Ordering::Release);
    m.hooks.vcpu_online(id, 0, true);
    if paused {
        m.hooks.domain_paused(id, true);
    }
    // Destroyed while it was built: the run loops reap it.
    if d.state() == DomainState::Dying {
        m.hooks.domain_stopped(id);
    }
    // The xenstore domain introduces a domain when it lists the domains again (Xen's
    // toolstack sends XS_INTRODUCE itself): a toolstack writing the new domain's devices
    // before it unpauses it waits for that.
    hv.notify_dom_exc();
    log::info!(
        "domain {id} ({}): {} vCPU(s), {} MiB, entry {:#x}{}",
        config.name,
        config.vcpus,
        config.memory_kib / 1024,
        boot.entry.0,
        if paused { ", paused" } else { "" }
    );
    Ok(())
}

//! The domain builder, portable part: from a parsed boot description
//! ([`config::DomainConfig`]) to a running domain.
//!
//! 1. The runtime configuration: the architecture's guest layout ([`GuestAbi`]), vCPUs,
//!    RAM pages, its memory map ([`GuestLoader::memory_map`]), `vpl011`, name and
//!    capabilities; the initial domain (Xen's dom0) asks for id 0 and is a control
//!    domain, as Xen's dom0 is; the others get the lowest free id and only the
//!    capabilities their description names.
//! 2. The domain is created and its RAM populated where [`GuestLoader::guest_ram`] says,
//!    or, direct-mapped (`xen,static-mem`), its static banks (reserved in the pool at
//!    boot) mapped at their own addresses.
//! 3. The backend loads the guest ([`GuestLoader::load_guest`]) and names the entry;
//!    the host interrupts it passed through with the domain's devices are routed to it.
//! 4. vCPU 0 is created there; the others stay offline until the guest starts them.
//! 5. The vCPUs are registered with the scheduler (weight, cap, hard affinity) and vCPU
//!    0 is started.
//! 6. Once every domain is built, static event channels (`xen,evtchn-v1`) connect them,
//!    before any of them runs; then each gets its PV console and each domain that asks
//!    for xenstore (`xen,enhanced` "enabled" or "legacy", and the initial domain) its
//!    store: if a xenstore domain was built and the architecture has a store frame, the
//!    page, port and grant entry at once ([`crate::store_page`]); otherwise a port and
//!    the late-init page number (`run/store.rs`, dom0less domains only).
//!
//! A failure at any step destroys what was built and names the domain.

use super::System;
use crate::arch::{Arch, GuestAbi, GuestLoader, LoadRequest, Vcpu, VcpuInit};
use crate::config::{Capabilities, DomainConfig as BootConfig, DomainKind, DomainSet, Enhanced};
use crate::domain::{Domain, DomainConfig};
use crate::event::interdomain::bind_static;
use crate::mm::{GuestPhysAddr, PhysAddr, Region, PAGE_SIZE};
use crate::sched::{CpuMask, VcpuParams};
use crate::store_page::StoreStart;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use keel_abi::xen::DomId;

/// A domain that could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    /// The domain's name.
    pub name: String,
    /// The device-tree node that describes it.
    pub node: String,
    pub message: String,
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: domain {} not built: {}", self.node, self.name, self.message)
    }
}

/// The scheduling parameters of each of the domain's vCPUs: weight and cap, and hard
/// affinity within the `online` CPUs.
pub(super) fn vcpu_params(config: &BootConfig, online: &CpuMask) -> Result<Vec<VcpuParams>, String> {
    (0..config.vcpus)
        .map(|v| {
            let wanted = config.vcpu_affinity.iter().find(|(id, _)| *id == v).map_or(CpuMask::ALL, |(_, m)| *m);
            let affinity = wanted.and(online);
            if affinity.is_empty() {
                return Err(format!("vCPU {v} may only run on CPUs {wanted:?}, none of which is online"));
            }
            Ok(VcpuParams { weight: config.weight, cap: config.cap, affinity })
        })
        .collect()
}

/// Builds and starts the domain `config` describes on `m`. `global_virq_handler` makes
/// it the domain that may bind global VIRQs (console input goes to it). Returns its id.
pub fn build_domain<A: Arch + GuestAbi + GuestLoader>(
    m: &System<'_, A>,
    config: &BootConfig,
    global_virq_handler: bool,
) -> Result<DomId, BuildError> {
    let fail = |message: String| BuildError { name: config.name.clone(), node: config.node.clone(), message };
    // A domain must not run without the devices it names.
    if let Some(m) = config.device_tree.as_ref().filter(|_| !A::PASSTHROUGH) {
        return Err(fail(format!("{}: device passthrough is not implemented on this architecture", m.node)));
    }
    let params = vcpu_params(config, &m.online()).map_err(fail)?;
    let bytes = config.memory_kib.saturating_mul(1024);
    let ram = match &config.direct_map {
        Some(banks) => {
            direct_map_fits::<A>(banks).map_err(fail)?;
            banks.clone()
        }
        None => A::guest_ram(bytes),
    };
    let mut runtime = DomainConfig::new(A::LAYOUT, config.vcpus, bytes / PAGE_SIZE);
    runtime.id = (config.kind == DomainKind::Initial).then_some(0);
    runtime.global_virq_handler = global_virq_handler;
    runtime.memory_map = A::memory_map(&ram);
    runtime.virtual_uart = config.vpl011;
    runtime.name = config.name.clone();
    runtime.capabilities = config.capabilities.0;
    if config.kind == DomainKind::Initial {
        runtime.capabilities |= keel_abi::control::CAP_CONTROL;
        runtime.initial = true;
    }
    let hv = m.hypervisor();
    let d = hv.create_domain(runtime).map_err(|e| fail(format!("cannot create the domain: {e:?}")))?;
    let id = d.id();
    let undo = |d: Arc<Domain<A>>, message: String| -> Result<DomId, BuildError> {
        drop(d);
        let _ = super::destroy_domain(hv, id);
        Err(fail(message))
    };
    for bank in &ram {
        let at = GuestPhysAddr(bank.start);
        let placed = match config.direct_map {
            // Reserved at boot (`reserve_static_ram`); guest-physical = host-physical.
            Some(_) => d.map_static_ram(hv.pool(), at, PhysAddr(bank.start), bank.size()),
            None => d.populate_ram(hv.pool(), at, bank.size()),
        };
        if let Err(e) = placed {
            return undo(d, format!("no memory for {} KiB of RAM at {:#x} ({e:?})", config.memory_kib, bank.start));
        }
    }
    let boot = match A::load_guest(&d, &LoadRequest { config, ram: &ram, staged: false }) {
        Ok(b) => b,
        Err(e) => return undo(d, format!("{e}")),
    };
    if let Err(e) = hv.route_device_irqs(&d) {
        return undo(d, format!("device passthrough refused: {e}"));
    }
    let Some(root) = d.p2m_root() else { return undo(d, "the domain has no P2M".into()) };
    let vcpu = match A::Vcpu::new(d.arch(), &VcpuInit::boot(boot.entry, boot.arg, root, d.space())) {
        Ok(v) => v,
        Err(e) => return undo(d, format!("cannot create vCPU 0: {e:?}")),
    };
    if let Err(e) = m.add_guest(config.name.clone(), d, vcpu, &params) {
        let _ = super::destroy_domain(hv, id);
        return Err(fail(format!("the scheduler refused its vCPUs: {e:?}")));
    }
    log::info!(
        "domain {id} ({}): {} vCPU(s), {} MiB, entry {:#x}",
        config.name,
        config.vcpus,
        config.memory_kib / 1024,
        boot.entry.0
    );
    Ok(id)
}

/// The guest-physical window the architecture gives guest RAM in: a direct-mapped
/// domain's banks must lie inside it, clear of the fixed guest layout (interrupt
/// controller, grant window, special pages) outside it.
const RAM_WINDOW: u64 = 1 << 46;

/// Whether every bank of a direct-mapped domain lies where the architecture puts guest
/// RAM ([`GuestLoader::guest_ram`] of the largest RAM), so 1:1 collides with nothing the
/// guest sees at fixed addresses.
fn direct_map_fits<A: GuestLoader>(banks: &[Region]) -> Result<(), String> {
    let windows = A::guest_ram(RAM_WINDOW);
    match banks.iter().find(|b| !windows.iter().any(|w| w.start <= b.start && b.end <= w.end)) {
        None => Ok(()),
        Some(b) => Err(format!(
            "direct-map: xen,static-mem [{:#x}, {:#x}) is outside this architecture's guest RAM windows {windows:x?}",
            b.start, b.end
        )),
    }
}

/// One domain the boot description lists, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    /// Its name (the node path if the description is too broken to have one).
    pub name: String,
    /// Its id once running, or why it is not.
    pub result: Result<DomId, String>,
}

/// Builds every domain of `set` on `m`, in boot order, and reports each. The first one
/// built handles global VIRQs (console input). Refused descriptions are reported with
/// their first error. Then the static event channels between the built domains are
/// connected.
pub fn build_all<A: Arch + GuestAbi + GuestLoader>(m: &System<'_, A>, set: &DomainSet) -> Vec<Described> {
    let mut out = Vec::new();
    let mut handler_taken = false;
    for d in &set.domains {
        match d {
            Ok(config) => {
                let result = build_domain(m, config, !handler_taken).map_err(|e| {
                    log::error!("{e}");
                    e.message
                });
                if let Ok(id) = result {
                    m.remember(id, config, !handler_taken, 0);
                }
                handler_taken |= result.is_ok();
                out.push(Described { name: config.name.clone(), result });
            }
            Err(e) => {
                let why = e.errors.first().cloned().unwrap_or_else(|| "refused".into());
                out.push(Described { name: e.node.clone(), result: Err(why) });
            }
        }
    }
    connect_static_channels(m, set, &out);
    if let Some(gfn) = A::PV_CONSOLE_GFN {
        attach_consoles(m, &out, gfn);
    }
    for (described, built) in set.domains.iter().zip(&out) {
        if let (Ok(config), Ok(id)) = (described, &built.result) {
            if !attach_store(m, config, *id) {
                super::store::prepare(m, *id, config);
            }
        }
    }
    out
}

/// Builds a domain that rebooted again ([`System::with_restarts`]): as at boot, with
/// its PV console, but without its static event channels (its peers' ends are closed).
pub fn rebuild<A: Arch + GuestAbi + GuestLoader>(
    m: &System<'_, A>,
    config: &BootConfig,
    global_virq_handler: bool,
) -> Result<DomId, BuildError> {
    let id = build_domain(m, config, global_virq_handler)?;
    if let Some(gfn) = A::PV_CONSOLE_GFN {
        let built = [Described { name: config.name.clone(), result: Ok(id) }];
        attach_consoles(m, &built, gfn);
    }
    if !attach_store(m, config, id) {
        super::store::prepare(m, id, config);
    }
    if config.capabilities.has(Capabilities::XENSTORE) {
        super::store::complete_late(m, id);
    }
    Ok(id)
}

/// Whether the domain `config` describes is to be introduced to xenstore.
fn wants_store(config: &BootConfig) -> bool {
    config.kind == DomainKind::Initial || matches!(config.enhanced, Enhanced::Enabled | Enhanced::Legacy)
}

/// Gives domain `id` its xenstore page and port if it wants them, the architecture has
/// a store frame and a xenstore domain other than it runs (the initial domain not with
/// `keel.dom0_xenstore=local`). Returns whether it did, or
/// the domain is the xenstore domain (which has no store of its own).
pub(super) fn attach_store<A: Arch + GuestAbi>(m: &System<'_, A>, config: &BootConfig, id: DomId) -> bool {
    if config.capabilities.has(Capabilities::XENSTORE) {
        return true;
    }
    let hv = m.hypervisor();
    let (Some(gfn), Some(d)) = (A::STORE_GFN, hv.domain(id)) else { return false };
    if config.kind == DomainKind::Initial && m.dom0_store_local() {
        return false;
    }
    let Some(store) = hv.xenstore_domain().filter(|_| wants_store(config)) else { return false };
    let start = if config.enhanced == Enhanced::Legacy { StoreStart::Immediate } else { StoreStart::WaitForServer };
    match hv.attach_store(&d, gfn, store.id(), start) {
        Ok(port) => {
            log::info!("domain {id} ({}): xenstore page at gfn {gfn:#x}, port {port}", config.name);
            true
        }
        Err(e) => {
            log::warn!("domain {id} ({}): no xenstore page: {}", config.name, e.name());
            false
        }
    }
}

/// Gives every domain built a PV console at `gfn`, after the static event channels, so
/// its port is never one a configuration names.
fn attach_consoles<A: Arch>(m: &System<'_, A>, built: &[Described], gfn: u64) {
    let hv = m.hypervisor();
    for (name, d) in built.iter().filter_map(|b| Some((&b.name, hv.domain(b.result.clone().ok()?)?))) {
        if let Err(e) = hv.attach_pv_console(&d, gfn) {
            log::warn!("domain {} ({name}): no PV console: {}", d.id(), e.name());
        }
    }
}

/// Connects the static event channels of the domains that were built. Each channel is
/// described on both sides; the first side found connects it.
fn connect_static_channels<A: Arch>(m: &System<'_, A>, set: &DomainSet, built: &[Described]) {
    let id_of = |name: &str| built.iter().find(|d| d.name == name).and_then(|d| d.result.clone().ok());
    let hv = m.hypervisor();
    for config in set.valid() {
        let Some(me) = id_of(&config.name).and_then(|id| hv.domain(id)) else { continue };
        for ch in &config.event_channels {
            let peer = id_of(&ch.remote_domain).and_then(|id| hv.domain(id));
            let Some(peer) = peer else {
                log::warn!(
                    "{}: static event channel {} not connected: domain {} was not built",
                    config.node,
                    ch.local_port,
                    ch.remote_domain
                );
                continue;
            };
            match bind_static(&me, ch.local_port, &peer, ch.remote_port) {
                Ok(()) => log::info!(
                    "static event channel: {} port {} <-> {} port {}",
                    config.name,
                    ch.local_port,
                    ch.remote_domain,
                    ch.remote_port
                ),
                Err(e) if e == keel_abi::Errno::EEXIST => {}
                Err(e) => log::warn!(
                    "{}: static event channel {} <-> {} port {} not connected: {}",
                    config.node,
                    ch.local_port,
                    ch.remote_domain,
                    ch.remote_port,
                    e.name()
                ),
            }
        }
    }
}

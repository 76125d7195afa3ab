//! Xenstore handles of domains built from a description, as Xen's toolstack and
//! dom0less builder make them: a domain with `xen,enhanced` = `"enabled"` or `"legacy"`
//! gets an unbound event channel whose remote end is the xenstore domain (the domain
//! holding the xenstore capability, else the first control domain), in
//! `HVM_PARAM_STORE_EVTCHN`, and `HVM_PARAM_STORE_PFN` = ~0: the store is not ready yet,
//! so the guest waits for the late-init handshake (`docs/control-abi.md`). The control
//! interface reports both (`CTL_STORE_INFO`) so that a xenstore service can introduce
//! the domain.
//!
//! When a xenstore domain starts later (created by a control domain with
//! `CTL_CREATE_XENSTORE`, or rebuilt after a reboot), [`complete_late`] gives every
//! domain still waiting its page (`Hypervisor::complete_late_store`), as Xen's
//! `init-dom0less` does, and the xenstore domain's next listing (Keel raises
//! `VIRQ_DOM_EXC` for the new domain) introduces them.

use super::System;
use crate::arch::{Arch, GuestAbi};
use crate::config::{DomainConfig as BootConfig, Enhanced};
use crate::event::Binding;
use keel_abi::control::{CAP_CONTROL, CAP_XENSTORE};
use keel_abi::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use keel_abi::xen::DomId;

/// `HVM_PARAM_STORE_PFN` while the store is not ready (Xen's late-init value).
pub const STORE_PFN_NOT_READY: u64 = u64::MAX;

/// The live domain that serves xenstore: the one with the xenstore capability, else
/// the first control domain.
fn store_domain<A: Arch>(m: &System<'_, A>) -> Option<DomId> {
    let hv = m.hypervisor();
    let live: alloc::vec::Vec<_> = hv.domain_ids().into_iter().filter_map(|id| hv.domain(id)).collect();
    let with = |cap: u32| live.iter().find(|d| d.config().capabilities & cap != 0).map(|d| d.id());
    with(CAP_XENSTORE).or_else(|| with(CAP_CONTROL))
}

/// Gives domain `id`, built from `config`, its xenstore event channel and the late-init
/// page number, if its description asks for xenstore.
pub(super) fn prepare<A: Arch>(m: &System<'_, A>, id: DomId, config: &BootConfig) {
    if !matches!(config.enhanced, Enhanced::Enabled | Enhanced::Legacy) {
        return;
    }
    let Some(d) = m.hypervisor().domain(id) else { return };
    let Some(store) = store_domain(m).filter(|&s| s != id) else {
        log::warn!("domain {id} ({}): no xenstore domain (nor control domain) to serve its store", config.name);
        return;
    };
    let port = match d.events.lock().alloc(Binding::Unbound { remote: store }, 0) {
        Ok(p) => p,
        Err(e) => {
            log::warn!("domain {id} ({}): no xenstore event channel: {}", config.name, e.name());
            return;
        }
    };
    // Cannot fail: both indices are below HVM_NR_PARAMS.
    let _ = d.set_param(HVM_PARAM_STORE_EVTCHN, u64::from(port));
    let _ = d.set_param(HVM_PARAM_STORE_PFN, STORE_PFN_NOT_READY);
    log::info!("domain {id} ({}): xenstore port {port} for domain {store}, page not ready yet", config.name);
}

/// Gives every live domain left in late init (`HVM_PARAM_STORE_PFN` = ~0) its store
/// page and points its store port at `store`, the xenstore domain just built. The caller
/// raises `VIRQ_DOM_EXC` (the xenstore domain lists the domains when it starts anyway).
pub(super) fn complete_late<A: Arch + GuestAbi>(m: &System<'_, A>, store: DomId) {
    let hv = m.hypervisor();
    let Some(gfn) = A::STORE_GFN else { return };
    for d in hv.domain_ids().into_iter().filter(|&id| id != store).filter_map(|id| hv.domain(id)) {
        if d.param(HVM_PARAM_STORE_PFN) != STORE_PFN_NOT_READY {
            continue;
        }
        let name = d.config().name.clone();
        match hv.complete_late_store(&d, gfn, store) {
            Ok(port) => log::info!(
                "domain {} ({name}): xenstore page at gfn {gfn:#x}, port {port} now for domain {store} (late init)",
                d.id()
            ),
            Err(e) => log::warn!("domain {} ({name}): late xenstore page not given: {}", d.id(), e.name()),
        }
    }
}

//! Xenstore handles of domains built from a description, as Xen's toolstack and
//! dom0less builder make them: a domain with `xen,enhanced` = `"enabled"` or `"legacy"`
//! gets an unbound event channel whose remote end is the xenstore domain (the domain
//! holding the xenstore capability, else the first control domain), in
//! `HVM_PARAM_STORE_EVTCHN`, and `HVM_PARAM_STORE_PFN` = ~0: the store is not ready yet,
//! so the guest waits for the late-init handshake (`docs/control-abi.md`). The control
//! interface reports both (`CTL_STORE_INFO`) so that a xenstore service can introduce
//! the domain.

use super::System;
use crate::arch::Arch;
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

//! Static event channels of the boot configuration (Xen's `xen,evtchn-v1`): once every
//! domain is built, each pair of linked ports is connected, so the two guests find each
//! other without a xenstore.

use super::build::Described;
use super::Machine;
use crate::arch::Arch;
use crate::config::DomainSet;
use crate::event::interdomain::bind_static;
use alloc::vec::Vec;
use keel_abi::xen::DomId;

/// Connects the static event channels between the domains of `set` that were built
/// (`built`, in the same order). A channel whose other domain was not built is dropped
/// with a warning. Returns how many channels were connected.
pub fn connect_static_channels<A: Arch>(m: &Machine<'_, A>, set: &DomainSet, built: &[Described]) -> usize {
    let id_of = |name: &str| built.iter().find(|d| d.name == name).and_then(|d| d.result.clone().ok());
    let mut connected = 0;
    let mut seen: Vec<(DomId, u32)> = Vec::new();
    for config in set.valid() {
        let Some(local) = id_of(&config.name) else { continue };
        for ch in &config.event_channels {
            let Some(remote) = id_of(&ch.remote_domain) else {
                log::warn!(
                    "{}: static event channel port {} dropped: domain {} at the other end was not built",
                    config.node,
                    ch.local_port,
                    ch.remote_domain
                );
                continue;
            };
            if seen.contains(&(local, ch.local_port)) {
                continue; // connected from the other end
            }
            let hv = m.hypervisor();
            let (Some(a), Some(b)) = (hv.domain(local), hv.domain(remote)) else { continue };
            match bind_static(&a, ch.local_port, &b, ch.remote_port) {
                Ok(()) => {
                    seen.push((remote, ch.remote_port));
                    connected += 1;
                    log::info!(
                        "static event channel: d{local} ({}) port {} <-> d{remote} ({}) port {}",
                        config.name,
                        ch.local_port,
                        ch.remote_domain,
                        ch.remote_port
                    );
                }
                Err(e) => log::error!(
                    "{}: static event channel port {} to {} port {} not connected ({e:?}): a port is taken or above the domain's limit",
                    config.node,
                    ch.local_port,
                    ch.remote_domain,
                    ch.remote_port
                ),
            }
        }
    }
    connected
}

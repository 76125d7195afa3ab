//! The devices of a configuration (`disk = [...]`, `vif = [...]`) at `create` and
//! `destroy`, as libxl does them: written into xenstore while the new domain is still
//! paused, so its front ends find them at their first probe, and taken away when the
//! domain is destroyed.
//!
//! - [`plan`]: every device's [`Layout`]; a device the toolstack cannot lay out is refused
//!   with its place in the configuration ([`Refusal`]), before any domain exists.
//! - [`wait_introduced`]: the domain's home in xenstore (`/local/domain/<id>/domid`,
//!   written by the xenstore domain when Keel tells it of the new domain).
//! - [`add_all`]: the devices, one transaction each; on a failure those already written
//!   are taken out again.
//! - [`forget`]: after `destroy`, as libxl's forced removal: each device's front end
//!   directory removed and its back end told to go (`online` 0, `state` 5 unless already
//!   6), then each back end waited for until the driver domain's agent ([`crate::devd`])
//!   released what it held and removed its directory; last the toolstack's record and
//!   the domain's home (`/local/domain/<id>`).

use crate::devices::{self, BackendEnd, Kind, Layout, Waiter};
use crate::devices_store::{transaction, DomId, Store, StoreError};
use crate::domain_config::DomainConfig;

/// Transaction attempts before a conflict is reported.
const TRIES: u32 = 16;

/// A device of the configuration that could not be laid out or written: the key
/// (`disk`, `vif`), the index in its list and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub key: &'static str,
    pub index: usize,
    pub why: String,
}

/// One device to write: its place in the configuration and its nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub key: &'static str,
    pub index: usize,
    pub layout: Layout,
}

/// The layouts of `config`'s disks (device numbers from their vdev) and vifs (device
/// numbers 0, 1, ... in order, as libxl numbers them), for front end `fe`; `resolve`
/// names the back end domains (`backend=`, domain 0 if absent).
pub fn plan(
    config: &DomainConfig,
    fe: DomId,
    resolve: &dyn Fn(&str) -> Option<DomId>,
) -> Result<Vec<Planned>, Refusal> {
    let backend = |key: &'static str, index: usize, named: Option<&str>| match named {
        None => Ok(0),
        Some(n) => resolve(n).ok_or(Refusal { key, index, why: format!("backend domain `{n}` does not exist") }),
    };
    let mut out = Vec::new();
    for (index, d) in config.disks.iter().enumerate() {
        let be = backend("disk", index, d.backend.as_deref())?;
        let layout = Layout::disk(fe, be, d).map_err(|why| Refusal { key: "disk", index, why })?;
        if let Some(p) = out.iter().find(|p: &&Planned| p.layout.kind == Kind::Vbd && p.layout.devid == layout.devid) {
            let why = format!("vdev `{}` is the same disk as entry {} of the list", d.vdev, p.index + 1);
            return Err(Refusal { key: "disk", index, why });
        }
        out.push(Planned { key: "disk", index, layout });
    }
    for (index, v) in config.vifs.iter().enumerate() {
        let be = backend("vif", index, v.backend.as_deref())?;
        let devid = u32::try_from(index).map_err(|_| Refusal { key: "vif", index, why: "too many vifs".into() })?;
        let layout = Layout::vif(fe, be, devid, v).map_err(|why| Refusal { key: "vif", index, why })?;
        out.push(Planned { key: "vif", index, layout });
    }
    Ok(out)
}

/// Polls until `/local/domain/<fe>/domid` exists; `false` once `wait` gives up.
pub fn wait_introduced(store: &mut dyn Store, fe: DomId, wait: &mut dyn devices::Waiter) -> Result<bool, StoreError> {
    let path = format!("/local/domain/{fe}/domid");
    loop {
        if store.read(&path)?.is_some() {
            return Ok(true);
        }
        if !wait.wait() {
            return Ok(false);
        }
    }
}

/// Writes every planned device; on a failure removes the ones written before it (their
/// back ends never saw a front end) and says which device failed.
pub fn add_all(store: &mut dyn Store, planned: &[Planned]) -> Result<(), Refusal> {
    for (n, p) in planned.iter().enumerate() {
        if let Err(e) = devices::add(store, &p.layout) {
            for done in &planned[..n] {
                let l = &done.layout;
                let _ = transaction(store, TRIES, |s| {
                    s.rm(&l.frontend_path())?;
                    s.rm(&l.backend_path())?;
                    s.rm(&l.libxl_path())
                });
            }
            return Err(Refusal { key: p.key, index: p.index, why: e.to_string() });
        }
    }
    Ok(())
}

/// What [`forget`] did: one line per device, and those whose back end did not finish in
/// time (each says how far it got).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub said: Vec<String>,
    pub late: Vec<String>,
}

/// After domain `fe` was destroyed, as libxl's forced removal at destroy: for each of its
/// devices, in one transaction, the front end's directory removed and the back end told
/// to go ([`devices::tell_backend_to_close`]: `online` 0, `state` 5 unless it is already
/// 6); then, with `w` as the clock for all of them, each back end waited for until it
/// reads 6 and the driver domain's agent ([`crate::devd`]) has removed its directory
/// (it releases the loop device or the bridge port first). A back end in a domain that
/// `alive` says is gone has nobody to answer: its directory is removed at once. Last the
/// toolstack's record (`/libxl/<fe>`) and the domain's home (`/local/domain/<fe>`) go,
/// whether or not every back end finished: an id used again starts empty.
pub fn forget(
    store: &mut dyn Store,
    fe: DomId,
    alive: &dyn Fn(DomId) -> bool,
    w: &mut dyn Waiter,
) -> Result<Forgotten, StoreError> {
    let mut done = Forgotten::default();
    let mut told = Vec::new();
    for kind in [Kind::Vbd, Kind::Vif] {
        let xl_dir = format!("/libxl/{fe}/device/{}", kind.name());
        let fe_dir = format!("/local/domain/{fe}/device/{}", kind.name());
        let mut ids: Vec<u32> = Vec::new();
        for dir in [&xl_dir, &fe_dir] {
            for id in store.directory(dir)?.iter().filter_map(|i| i.parse::<u32>().ok()) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids.sort_unstable();
        for devid in ids {
            let xl_path = format!("{xl_dir}/{devid}");
            let fe_path = format!("{fe_dir}/{devid}");
            let be_path = match store.read(&format!("{xl_path}/backend"))? {
                Some(p) => Some(p),
                None => store.read(&format!("{fe_path}/backend"))?,
            };
            // Only a back end of this front end: never a path the guest made up.
            let be = be_path.and_then(|p| backend_domain(&p, kind, fe, devid).map(|be| (p, be)));
            let Some((be_path, be)) = be else {
                transaction(store, TRIES, |s| s.rm(&fe_path))?;
                done.said.push(format!("{} {devid}: no back end", kind.name()));
                continue;
            };
            if !alive(be) {
                transaction(store, TRIES, |s| {
                    s.rm(&fe_path)?;
                    s.rm(&be_path)
                })?;
                done.said.push(format!("{} {devid}: back end domain {be} gone; {be_path} removed", kind.name()));
                continue;
            }
            if devices::tell_backend_to_close(store, &be_path, &[&fe_path])? {
                done.said.push(format!("{} {devid}: back end {be_path} told to close", kind.name()));
                told.push((kind, devid, be_path, be));
            } else {
                done.said.push(format!("{} {devid}: back end {be_path} already gone", kind.name()));
            }
        }
    }
    for (kind, devid, be_path, be) in told {
        let why = match devices::wait_backend(store, &be_path, true, w)? {
            BackendEnd::Removed => continue,
            BackendEnd::Closed => format!("closed, but domain {be}'s hotplug agent did not remove it"),
            BackendEnd::Open(Some(st)) => format!("still in state {st}"),
            BackendEnd::Open(None) => "its state is not a number".to_string(),
        };
        done.late.push(format!("{} {devid}: back end {be_path} not gone in time: {why}", kind.name()));
    }
    // As libxl after a destroy: the domain's home goes too (an id used again starts empty).
    store.rm(&format!("/libxl/{fe}"))?;
    store.rm(&format!("/local/domain/{fe}"))?;
    Ok(done)
}

/// The back end domain of `path` if it is `/local/domain/<be>/backend/<kind>/<fe>/<devid>`.
fn backend_domain(path: &str, kind: Kind, fe: DomId, devid: u32) -> Option<DomId> {
    let rest = path.strip_prefix("/local/domain/")?;
    let (be, tail) = rest.split_once('/')?;
    let be = be.parse::<DomId>().ok()?;
    (tail == format!("backend/{}/{fe}/{devid}", kind.name())).then_some(be)
}

//! Devices whose back end domain is gone (destroyed, or crashed and ended by Keel).
//!
//! A dead driver domain cannot close its back ends, and its front ends wait for it
//! forever: Linux's blkfront and netfront act only on the back end's `state`, and a back
//! end directory that vanished reads as "Unknown", which they ignore. So the toolstack
//! closes the device on the dead back end's behalf: the back end's `online` 0 and `state`
//! 6 (Closed), which the front end answers by closing too (blkfront stops its queue and
//! ends its grants, netfront takes its interface down); then the front end directory, the
//! toolstack's record under `/libxl` and the back end directory are removed, as libxl's
//! forced removal does, and the front end's kernel unregisters the device.
//!
//! `keelctl destroy` does this for every device the destroyed domain served;
//! `block-detach`/`network-detach` of a device whose back end domain no longer exists does
//! it for that device (a driver domain that crashed: Xen users run `xl block-detach` too,
//! as nothing else closes the front end there).

use crate::devices::{frontend_path, libxl_path, DeviceError, Kind, Waiter, STATE_CLOSED};
use crate::devices_store::{transaction, DomId, Store};

/// Transaction attempts before a conflict is reported.
const TRIES: u32 = 16;

/// Whether `state` (a node's value, if any) says Closed, or the node is gone.
fn closed_or_gone(state: Option<String>) -> bool {
    state.is_none_or(|s| s.trim().parse::<u32>().is_ok_and(|v| v == STATE_CLOSED))
}

/// Closes device `devid` of `kind` of front end `fe`, whose back end directory is
/// `be_path` in a domain that no longer runs (see the module docs). Waits (with `w`) for
/// the front end to read Closed, then removes the three directories whether or not it did
/// (nothing else will close it). Returns whether the front end closed in time.
pub fn close_for_dead_backend(
    store: &mut dyn Store,
    kind: Kind,
    fe: DomId,
    devid: u32,
    be_path: &str,
    w: &mut dyn Waiter,
) -> Result<bool, DeviceError> {
    let fe_path = frontend_path(kind, fe, devid);
    let xl_path = libxl_path(kind, fe, devid);
    transaction(store, TRIES, |s| {
        s.write(&format!("{be_path}/online"), "0")?;
        s.write(&format!("{be_path}/state"), &STATE_CLOSED.to_string())
    })?;
    let closed = loop {
        if closed_or_gone(store.read(&format!("{fe_path}/state"))?) {
            break true;
        }
        if !w.wait() {
            break false;
        }
    };
    transaction(store, TRIES, |s| {
        s.rm(&fe_path)?;
        s.rm(&xl_path)?;
        s.rm(be_path)
    })?;
    Ok(closed)
}

/// The back end directory the front end `fe_path` names, if it is a back end path.
fn named_backend(store: &mut dyn Store, fe_path: &str) -> Result<Option<String>, DeviceError> {
    let be = store.read(&format!("{fe_path}/backend"))?;
    Ok(be.filter(|p| p.starts_with("/local/domain/") && !p.contains("..")))
}

/// `block-detach`/`network-detach` of device `devid` of `kind` of `fe` whose back end
/// domain is gone: closes it on the back end's behalf. `Missing` if there is no such
/// device.
pub fn detach_orphan(
    store: &mut dyn Store,
    kind: Kind,
    fe: DomId,
    devid: u32,
    w: &mut dyn Waiter,
) -> Result<bool, DeviceError> {
    let fe_path = frontend_path(kind, fe, devid);
    let be_path = match store.read(&format!("{}/backend", libxl_path(kind, fe, devid)))? {
        Some(p) => p,
        None => named_backend(store, &fe_path)?.ok_or_else(|| DeviceError::Missing(fe_path.clone()))?,
    };
    if !be_path.starts_with("/local/domain/") || be_path.contains("..") {
        return Err(DeviceError::Invalid(format!("{fe_path}/backend is `{be_path}`, not a back end path")));
    }
    close_for_dead_backend(store, kind, fe, devid, &be_path, w)
}

/// The back end domain of device `devid` of `kind` of `fe` (its front end's
/// `backend-id`), if the device exists.
pub fn backend_id(store: &mut dyn Store, kind: Kind, fe: DomId, devid: u32) -> Result<Option<DomId>, DeviceError> {
    let v = store.read(&format!("{}/backend-id", frontend_path(kind, fe, devid)))?;
    Ok(v.and_then(|v| v.trim().parse().ok()))
}

/// What [`release_backend_domain`] did with one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    pub kind: Kind,
    pub fe: DomId,
    pub devid: u32,
    /// Whether the front end read Closed before its nodes were removed.
    pub closed: bool,
}

/// Every device served by the (dead) domain `be`: each closed on its behalf with
/// [`close_for_dead_backend`] when its front end still names that back end directory
/// (a back end cannot claim another domain's front end: the front end's `backend` node
/// is the toolstack's), then `be`'s whole `backend` directory removed.
pub fn release_backend_domain(
    store: &mut dyn Store,
    be: DomId,
    w: &mut dyn Waiter,
) -> Result<Vec<Released>, DeviceError> {
    let mut done = Vec::new();
    for kind in [Kind::Vbd, Kind::Vif] {
        let base = format!("/local/domain/{be}/backend/{}", kind.name());
        for fe in store.directory(&base)? {
            let Ok(fe_id) = fe.parse::<DomId>() else { continue };
            for dev in store.directory(&format!("{base}/{fe}"))? {
                let Ok(devid) = dev.parse::<u32>() else { continue };
                let be_path = format!("{base}/{fe}/{dev}");
                let fe_path = frontend_path(kind, fe_id, devid);
                if named_backend(store, &fe_path)?.as_deref() != Some(be_path.as_str()) {
                    continue;
                }
                let closed = close_for_dead_backend(store, kind, fe_id, devid, &be_path, w)?;
                done.push(Released { kind, fe: fe_id, devid, closed });
            }
        }
    }
    store.rm(&format!("/local/domain/{be}/backend"))?;
    Ok(done)
}

//! xl's device commands — `block-attach`, `block-detach`, `block-list`, `network-attach`,
//! `network-detach`, `network-list` — over a [`Store`], with domains already resolved by
//! the caller. `cli_devices` wires them to keelctl's command line over the
//! xenstore client of [`crate::xenbus_store`].

use crate::devices::{self, DeviceError, Kind, Layout, Waiter};
use crate::devices_store::{DomId, Store};
use crate::disk::DiskSpec;
use crate::vif::VifSpec;

/// Turns a domain name or id into its id (the caller's `list`).
pub type Resolve<'a> = &'a dyn Fn(&str) -> Option<DomId>;

/// The back end domain a device names (`backend=`), or domain 0 as xl defaults.
fn backend(resolve: Resolve, named: Option<&str>) -> Result<DomId, String> {
    match named {
        None => Ok(0),
        Some(n) => resolve(n).ok_or(format!("backend domain `{n}` does not exist")),
    }
}

fn err(e: DeviceError) -> String {
    e.to_string()
}

/// `block-attach <Domain> <disk-spec-component(s)>...`: the components are joined with
/// commas into one disk specification, as xl does.
pub fn block_attach(store: &mut dyn Store, resolve: Resolve, fe: DomId, spec: &[String]) -> Result<(), String> {
    if spec.is_empty() {
        return Err("a disk specification is missing".into());
    }
    let d = DiskSpec::parse(&spec.join(",")).map_err(|e| format!("disk: {e}"))?;
    let be = backend(resolve, d.backend.as_deref())?;
    let l = Layout::disk(fe, be, &d)?;
    devices::add(store, &l).map_err(err)
}

/// `network-attach <Domain> [<nic-spec-component>...]`: the next free device number.
pub fn network_attach(store: &mut dyn Store, resolve: Resolve, fe: DomId, spec: &[String]) -> Result<u32, String> {
    let v = VifSpec::parse(&spec.join(",")).map_err(|e| format!("vif: {e}"))?;
    let be = backend(resolve, v.backend.as_deref())?;
    let devid = devices::next_devid(store, Kind::Vif, fe).map_err(|e| e.to_string())?;
    devices::add(store, &Layout::vif(fe, be, devid, &v)?).map_err(err)?;
    Ok(devid)
}

/// `block-detach [-f] <Domain> <DevId>`: `DevId` is a device number or a vdev (`xvda`).
pub fn block_detach(
    store: &mut dyn Store,
    fe: DomId,
    dev: &str,
    force: bool,
    w: &mut dyn Waiter,
) -> Result<(), String> {
    let devid = devices::vdev_devid(dev).ok_or(format!("`{dev}` is not a virtual disk"))?;
    devices::remove(store, Kind::Vbd, fe, devid, force, w).map_err(err)
}

/// `network-detach <Domain> <DevId|mac>`.
pub fn network_detach(
    store: &mut dyn Store,
    fe: DomId,
    dev: &str,
    force: bool,
    w: &mut dyn Waiter,
) -> Result<(), String> {
    let devid = match dev.parse::<u32>() {
        Ok(id) => id,
        Err(_) => {
            let rows = devices::list(store, Kind::Vif, fe).map_err(|e| e.to_string())?;
            let mac = dev.to_ascii_lowercase();
            rows.iter().find(|r| r.mac == mac).map(|r| r.devid).ok_or(format!("no vif with MAC {dev}"))?
        }
    };
    devices::remove(store, Kind::Vif, fe, devid, force, w).map_err(err)
}

/// The device number `dev` names for `block-detach` (a number or a vdev) or
/// `network-detach` (a number or a MAC), if any.
pub fn devid(store: &mut dyn Store, kind: Kind, fe: DomId, dev: &str) -> Option<u32> {
    match kind {
        Kind::Vbd => devices::vdev_devid(dev),
        Kind::Vif => dev.parse::<u32>().ok().or_else(|| {
            let rows = devices::list(store, Kind::Vif, fe).ok()?;
            let mac = dev.to_ascii_lowercase();
            rows.iter().find(|r| r.mac == mac).map(|r| r.devid)
        }),
    }
}

/// `block-list <Domain(s)>`: xl's table for each domain in turn.
pub fn block_list(store: &mut dyn Store, fes: &[DomId]) -> Result<String, String> {
    list(store, Kind::Vbd, fes, devices::format_block_list)
}

/// `network-list <Domain(s)>`.
pub fn network_list(store: &mut dyn Store, fes: &[DomId]) -> Result<String, String> {
    list(store, Kind::Vif, fes, devices::format_network_list)
}

fn list(
    store: &mut dyn Store,
    kind: Kind,
    fes: &[DomId],
    format: fn(&[devices::DeviceInfo]) -> String,
) -> Result<String, String> {
    let mut rows = Vec::new();
    for &fe in fes {
        rows.extend(devices::list(store, kind, fe).map_err(|e| e.to_string())?);
    }
    Ok(format(&rows))
}

/// A [`Waiter`] that sleeps `step` between polls, at most `polls` times (libxl waits 10 s
/// for a back end to close).
pub struct Sleeper<'a> {
    pub sleep: &'a dyn Fn(std::time::Duration),
    pub step: std::time::Duration,
    pub polls: u32,
}

impl Waiter for Sleeper<'_> {
    fn wait(&mut self) -> bool {
        if self.polls == 0 {
            return false;
        }
        self.polls -= 1;
        (self.sleep)(self.step);
        true
    }
}

//! The hotplug agent of a driver domain: what Xen's `block` and `vif-bridge` scripts (run
//! by udev or `xl devd`) do, for the back ends in this domain's own xenstore subtree.
//!
//! On each change under `/local/domain/<self>/backend` the agent scans `vbd` and `vif`:
//!
//! - a new disk (`online` 1, no `physical-device` yet): a loop device over the file named
//!   by `params` (read-only for `mode` r), then `physical-device` = `<major>:<minor>` in
//!   hex and `physical-device-path`, as Xen's `block` script writes them (blkback waits
//!   for them);
//! - a new vif (`online` 1, `hotplug-status` not `connected`): once netback created
//!   `vif<fe>.<devid>` (or `vifname`), it is added to `bridge` and brought up, then
//!   `hotplug-status` = `connected` (netback waits for it);
//! - a device told to go (`online` 0 and `state` 6 Closed, or its directory gone): the
//!   loop device is released or the interface leaves the bridge, and the back end
//!   directory is removed (as `xl devd` does; the toolstack removes the front end's).
//!
//! Failures are written where libxl reads them (`hotplug-error`, `hotplug-status` =
//! `error`) and the agent goes on with the other devices.

use std::collections::BTreeMap;

use crate::devices::{Kind, DEFAULT_BRIDGE, STATE_CLOSED};
use crate::devices_store::{DomId, Store, StoreError};

/// What the agent needs from the driver domain's Linux.
pub trait System {
    /// Attaches a free loop device to `file`: its path and (major, minor).
    fn loop_attach(&mut self, file: &str, writable: bool) -> Result<(String, u32, u32), String>;
    /// Detaches the loop device `dev`.
    fn loop_detach(&mut self, dev: &str) -> Result<(), String>;
    /// Whether network interface `name` exists.
    fn link_exists(&mut self, name: &str) -> bool;
    /// Adds interface `name` to bridge `bridge` (creating the bridge if needed) and
    /// brings both up.
    fn bridge_add(&mut self, bridge: &str, name: &str) -> Result<(), String>;
    /// Takes interface `name` out of bridge `bridge`.
    fn bridge_del(&mut self, bridge: &str, name: &str) -> Result<(), String>;
}

/// What the agent set up for one device.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Held {
    Loop(String),
    Port {
        bridge: String,
        name: String,
    },
    /// Set-up failed; nothing to undo.
    Failed,
}

/// The agent's memory of the devices it serves.
pub struct Agent {
    me: DomId,
    held: BTreeMap<(&'static str, DomId, u32), Held>,
}

fn ids(store: &mut dyn Store, path: &str) -> Result<Vec<u32>, StoreError> {
    Ok(store.directory(path)?.iter().filter_map(|s| s.parse().ok()).collect())
}

impl Agent {
    /// The agent of driver domain `me`.
    pub fn new(me: DomId) -> Self {
        Agent { me, held: BTreeMap::new() }
    }

    /// The directory the agent watches.
    pub fn watch_path(&self) -> String {
        format!("/local/domain/{}/backend", self.me)
    }

    /// Brings every device in line with xenstore; returns what it did, one line each.
    pub fn scan(&mut self, store: &mut dyn Store, sys: &mut dyn System) -> Result<Vec<String>, StoreError> {
        let mut log = Vec::new();
        let mut seen = Vec::new();
        for kind in [Kind::Vbd, Kind::Vif] {
            let base = format!("{}/{}", self.watch_path(), kind.name());
            for fe in ids(store, &base)? {
                for devid in ids(store, &format!("{base}/{fe}"))? {
                    let path = format!("{base}/{fe}/{devid}");
                    seen.push((kind.name(), fe, devid));
                    self.one(store, sys, kind, fe, devid, &path, &mut log)?;
                }
            }
        }
        // Directories removed under us: undo what was set up for them.
        let gone: Vec<_> = self.held.keys().filter(|k| !seen.contains(k)).copied().collect();
        for k in gone {
            if let Some(h) = self.held.remove(&k) {
                log.push(format!("{} {}/{}: directory removed; {}", k.0, k.1, k.2, undo(sys, &h)));
            }
        }
        Ok(log)
    }

    #[allow(clippy::too_many_arguments)]
    fn one(
        &mut self,
        store: &mut dyn Store,
        sys: &mut dyn System,
        kind: Kind,
        fe: DomId,
        devid: u32,
        path: &str,
        log: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let key = (kind.name(), fe, devid);
        let read = |store: &mut dyn Store, k: &str| store.read(&format!("{path}/{k}"));
        let online = read(store, "online")?.is_some_and(|v| v.trim() == "1");
        let closed = read(store, "state")?.is_some_and(|v| v.trim().parse::<u32>().is_ok_and(|s| s == STATE_CLOSED));
        if !online {
            if closed {
                let held = match self.held.remove(&key) {
                    Some(h) => Some(h),
                    None => left_by_another_run(store, kind, path)?,
                };
                let what = held.map_or("nothing held".to_string(), |h| undo(sys, &h));
                store.rm(path)?;
                log.push(format!("{} {fe}/{devid}: closed; {what}; back end directory removed", kind.name()));
            }
            return Ok(());
        }
        if self.held.contains_key(&key) {
            return Ok(());
        }
        let held = match kind {
            Kind::Vbd => self.disk(store, sys, path, log, fe, devid)?,
            Kind::Vif => self.vif(store, sys, path, log, fe, devid)?,
        };
        if let Some(h) = held {
            self.held.insert(key, h);
        }
        Ok(())
    }

    fn disk(
        &mut self,
        store: &mut dyn Store,
        sys: &mut dyn System,
        path: &str,
        log: &mut Vec<String>,
        fe: DomId,
        devid: u32,
    ) -> Result<Option<Held>, StoreError> {
        if store.read(&format!("{path}/physical-device"))?.is_some() {
            return Ok(None);
        }
        let target = store.read(&format!("{path}/params"))?.unwrap_or_default();
        let writable = store.read(&format!("{path}/mode"))?.is_some_and(|m| m.trim() == "w");
        if target.is_empty() {
            return fail(store, path, log, "vbd", fe, devid, "no `params` (the disk's target)".into());
        }
        match sys.loop_attach(&target, writable) {
            Ok((dev, major, minor)) => {
                store.write(&format!("{path}/physical-device"), &format!("{major:x}:{minor:x}"))?;
                store.write(&format!("{path}/physical-device-path"), &dev)?;
                store.write(&format!("{path}/hotplug-status"), "connected")?;
                let mode = if writable { "rw" } else { "ro" };
                log.push(format!("vbd {fe}/{devid}: {target} on {dev} ({major:x}:{minor:x}, {mode})"));
                Ok(Some(Held::Loop(dev)))
            }
            Err(e) => fail(store, path, log, "vbd", fe, devid, format!("{target}: {e}")),
        }
    }

    fn vif(
        &mut self,
        store: &mut dyn Store,
        sys: &mut dyn System,
        path: &str,
        log: &mut Vec<String>,
        fe: DomId,
        devid: u32,
    ) -> Result<Option<Held>, StoreError> {
        if store.read(&format!("{path}/hotplug-status"))?.is_some_and(|s| s == "connected") {
            return Ok(None);
        }
        let name = store.read(&format!("{path}/vifname"))?.unwrap_or_else(|| format!("vif{fe}.{devid}"));
        let bridge = store.read(&format!("{path}/bridge"))?.unwrap_or_else(|| DEFAULT_BRIDGE.into());
        if !valid_ifname(&name) || !valid_ifname(&bridge) {
            return fail(
                store,
                path,
                log,
                "vif",
                fe,
                devid,
                format!("bad interface or bridge name `{name}`/`{bridge}`"),
            );
        }
        if !sys.link_exists(&name) {
            // Netback has not created it yet: the next change (its state) brings us back.
            return Ok(None);
        }
        match sys.bridge_add(&bridge, &name) {
            Ok(()) => {
                store.write(&format!("{path}/hotplug-status"), "connected")?;
                log.push(format!("vif {fe}/{devid}: {name} added to {bridge}"));
                Ok(Some(Held::Port { bridge, name }))
            }
            Err(e) => fail(store, path, log, "vif", fe, devid, format!("{name} into {bridge}: {e}")),
        }
    }
}

/// What an earlier run of the agent set up for a device, as its xenstore nodes record
/// it (the agent may have been restarted since): a loop device in
/// `physical-device-path`, a vif whose `hotplug-status` is `connected`.
fn left_by_another_run(store: &mut dyn Store, kind: Kind, path: &str) -> Result<Option<Held>, StoreError> {
    let read = |store: &mut dyn Store, k: &str| store.read(&format!("{path}/{k}"));
    Ok(match kind {
        Kind::Vbd => read(store, "physical-device-path")?
            .filter(|d| {
                d.strip_prefix("/dev/loop").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(Held::Loop),
        Kind::Vif => {
            if read(store, "hotplug-status")?.is_some_and(|s| s == "connected") {
                let fe = read(store, "frontend-id")?.unwrap_or_default();
                let devid = path.rsplit('/').next().unwrap_or_default().to_string();
                let name = read(store, "vifname")?.unwrap_or_else(|| format!("vif{}.{devid}", fe.trim()));
                let bridge = read(store, "bridge")?.unwrap_or_else(|| DEFAULT_BRIDGE.into());
                (valid_ifname(&name) && valid_ifname(&bridge)).then_some(Held::Port { bridge, name })
            } else {
                None
            }
        }
    })
}

/// A Linux interface name: 1 to 15 bytes, no `/`, whitespace or `:`, not `.`/`..`.
fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n != "."
        && n != ".."
        && !n.bytes().any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b < 0x20)
}

#[allow(clippy::too_many_arguments)]
fn fail(
    store: &mut dyn Store,
    path: &str,
    log: &mut Vec<String>,
    kind: &str,
    fe: DomId,
    devid: u32,
    why: String,
) -> Result<Option<Held>, StoreError> {
    store.write(&format!("{path}/hotplug-error"), &why)?;
    store.write(&format!("{path}/hotplug-status"), "error")?;
    log.push(format!("{kind} {fe}/{devid}: failed: {why}"));
    Ok(Some(Held::Failed))
}

fn undo(sys: &mut dyn System, h: &Held) -> String {
    match h {
        Held::Loop(dev) => match sys.loop_detach(dev) {
            Ok(()) => format!("{dev} released"),
            Err(e) => format!("releasing {dev}: {e}"),
        },
        Held::Port { bridge, name } => match sys.bridge_del(bridge, name) {
            Ok(()) => format!("{name} left {bridge}"),
            // Netback removes the interface with its device when the front end vanished
            // (before or while it is taken out): the bridge lost the port with it.
            Err(_) if !sys.link_exists(name) => format!("{name} gone (no longer in {bridge})"),
            Err(e) => format!("{name} out of {bridge}: {e}"),
        },
        Held::Failed => "nothing held".into(),
    }
}

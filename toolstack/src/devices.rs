//! Virtual block and network devices in xenstore, as libxl (Xen 4.17) lays them out: the
//! nodes `block-attach`/`network-attach` and `create`'s `disk=`/`vif=` write, what
//! `block-detach`/`network-detach` do, and what `block-list`/`network-list` read.
//!
//! A device `<devid>` of kind `vbd` or `vif` joins front end domain `<fe>` to back end
//! domain `<be>` (a driver domain):
//!
//! - `/local/domain/<be>/backend/<kind>/<fe>/<devid>/…`, owned by `<be>`, readable by `<fe>`;
//! - `/local/domain/<fe>/device/<kind>/<devid>/…`, owned by `<fe>`, readable by `<be>`;
//! - `/libxl/<fe>/device/<kind>/<devid>/{frontend,backend}`, the toolstack's own record.
//!
//! Both ends start in state 1 (Initialising); the hotplug agent in the back end domain
//! ([`crate::devd`]) provides `physical-device` (disks) or `hotplug-status` (vifs).

use std::fmt::Write as _;

use crate::devices_store::{transaction, Access, DomId, Perm, Store, StoreError};
use crate::disk::{BackendType, DiskFormat, DiskSpec};
use crate::vif::VifSpec;

/// Device kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Vbd,
    Vif,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vbd => "vbd",
            Kind::Vif => "vif",
        }
    }
}

/// xenbus states (`xen/include/public/io/xenbus.h`).
pub const STATE_INITIALISING: u32 = 1;
pub const STATE_CONNECTED: u32 = 4;
pub const STATE_CLOSING: u32 = 5;
pub const STATE_CLOSED: u32 = 6;

/// Where Xen's hotplug scripts live (libxl writes the backend's `script` with it; Linux's
/// netback refuses a vif without a `script` node).
pub const SCRIPT_DIR: &str = "/etc/xen/scripts";
/// libxl's default bridge.
pub const DEFAULT_BRIDGE: &str = "xenbr0";
/// libxl's default MTU.
pub const DEFAULT_MTU: u32 = 1500;

/// Transaction attempts before a conflict is reported.
const TRIES: u32 = 16;

/// The device number of a virtual disk name, as libxl computes it: `xvd<letters><n>`
/// (`xvda` = 51712, `xvdb1` = 51729; beyond 16 disks or 15 partitions the extended
/// `1 << 28` form), `d<disk>p<part>`, a plain number, `hd<x>` and `sd<x>`.
pub fn vdev_devid(vdev: &str) -> Option<u32> {
    if let Some((disk, part)) = d_p(vdev).or_else(|| letters(vdev, "xvd", (1 << 20) - 1, 255)) {
        return Some(if disk <= 15 && part <= 15 {
            (202 << 8) | (disk << 4) | part
        } else {
            (1 << 28) | (disk << 8) | part
        });
    }
    if let Some(n) = number(vdev) {
        return Some(n);
    }
    if let Some((disk, part)) = letters(vdev, "hd", 3, 63) {
        return Some((if disk < 2 { 3 } else { 22 } << 8) | ((disk & 1) << 6) | part);
    }
    letters(vdev, "sd", 15, 15).map(|(disk, part)| (8 << 8) | (disk << 4) | part)
}

/// A decimal, `0x` hexadecimal or `0` octal number up to `i32::MAX`, as `strtoul(…, 0)`.
fn number(s: &str) -> Option<u32> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()?
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()?
    } else {
        return None;
    };
    (v <= i32::MAX as u32).then_some(v)
}

/// `d<disk>p<partition>`.
fn d_p(s: &str) -> Option<(u32, u32)> {
    let (d, p) = s.strip_prefix('d')?.split_once('p')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(d) || !digits(p) {
        return None;
    }
    let (d, p): (u32, u32) = (d.parse().ok()?, p.parse().ok()?);
    (d < (1 << 20) && p < 256).then_some((d, p))
}

/// `<prefix><letters><partition>`: letters in base 26 as libxl decodes them (`a` = 0,
/// `z` = 25, `aa` = 26), a partition without leading zeros.
fn letters(s: &str, prefix: &str, max_disk: u32, max_part: u32) -> Option<(u32, u32)> {
    let rest = s.strip_prefix(prefix)?;
    let n = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    if n == 0 {
        return None;
    }
    let mut disk: i64 = -1;
    for b in rest[..n].bytes() {
        disk = (disk + 1) * 26 + i64::from(b - b'a');
        if disk > i64::from(max_disk) {
            return None;
        }
    }
    let part = &rest[n..];
    let part = if part.is_empty() {
        0
    } else if part.starts_with('0') || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    } else {
        part.parse::<u32>().ok().filter(|&p| p <= max_part)?
    };
    Some((u32::try_from(disk).ok()?, part))
}

/// One device's nodes, before they are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub kind: Kind,
    pub fe: DomId,
    pub be: DomId,
    pub devid: u32,
    /// Back end nodes (relative names, in libxl's order), after `frontend`.
    pub back: Vec<(String, String)>,
    /// Front end nodes, after `backend`.
    pub front: Vec<(String, String)>,
    /// Front end nodes the front end may only read (a vif's `mtu`).
    pub front_ro: Vec<(String, String)>,
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

impl Layout {
    pub fn backend_path(&self) -> String {
        format!("/local/domain/{}/backend/{}/{}/{}", self.be, self.kind.name(), self.fe, self.devid)
    }

    pub fn frontend_path(&self) -> String {
        format!("/local/domain/{}/device/{}/{}", self.fe, self.kind.name(), self.devid)
    }

    pub fn libxl_path(&self) -> String {
        libxl_path(self.kind, self.fe, self.devid)
    }

    /// The disk `d` of domain `fe`, served by `be`. Refuses what a Linux driver domain's
    /// blkback cannot serve: images that are not raw, and back ends other than `phy`.
    pub fn disk(fe: DomId, be: DomId, d: &DiskSpec) -> Result<Layout, String> {
        let devid = vdev_devid(&d.vdev).ok_or(format!("vdev `{}` is not a virtual disk name", d.vdev))?;
        if d.format != DiskFormat::Raw {
            return Err(format!("disk {}: only raw images are supported (blkback serves block devices)", d.vdev));
        }
        if matches!(d.backend_type, Some(BackendType::Qdisk | BackendType::Tap)) {
            return Err(format!("disk {}: only backendtype=phy is supported (no QEMU disk back end)", d.vdev));
        }
        if d.target.is_empty() && !d.cdrom {
            return Err(format!("disk {}: no target", d.vdev));
        }
        let script = match &d.script {
            Some(s) if s.starts_with('/') => s.clone(),
            Some(s) => format!("{SCRIPT_DIR}/{s}"),
            None => format!("{SCRIPT_DIR}/block"),
        };
        let device_type = if d.cdrom { "cdrom" } else { "disk" };
        let mut back = vec![
            kv("params", &d.target),
            kv("script", script),
            kv("frontend-id", fe),
            kv("online", 1),
            kv("removable", u8::from(d.cdrom)),
            kv("bootable", 1),
            kv("state", STATE_INITIALISING),
            kv("dev", &d.vdev),
            kv("type", "phy"),
            kv("mode", if d.writable { "w" } else { "r" }),
            kv("device-type", device_type),
        ];
        if d.direct_io_safe {
            back.push(kv("direct-io-safe", 1));
        }
        // libxl's default: discard where the disk is writable.
        back.push(kv("discard-enable", u8::from(d.discard.unwrap_or(d.writable))));
        let front = vec![
            kv("backend-id", be),
            kv("state", STATE_INITIALISING),
            kv("virtual-device", devid),
            kv("device-type", device_type),
            kv("trusted", 1),
        ];
        Ok(Layout { kind: Kind::Vbd, fe, be, devid, back, front, front_ro: vec![] })
    }

    /// The network interface `v` of domain `fe`, number `devid`, served by `be`.
    pub fn vif(fe: DomId, be: DomId, devid: u32, v: &VifSpec) -> Result<Layout, String> {
        if v.rate.is_some() {
            return Err("vif: rate= is not supported".into());
        }
        if v.kind.as_deref().is_some_and(|k| k != "vif") {
            return Err("vif: only type=vif is supported (no emulated NICs)".into());
        }
        let mac = v.mac.unwrap_or_else(|| default_mac(fe, devid));
        let mac = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let script = match &v.script {
            Some(s) if s.starts_with('/') => s.clone(),
            Some(s) => format!("{SCRIPT_DIR}/{s}"),
            None => format!("{SCRIPT_DIR}/vif-bridge"),
        };
        let mtu = v.mtu.unwrap_or(DEFAULT_MTU);
        let mut back =
            vec![kv("frontend-id", fe), kv("online", 1), kv("state", STATE_INITIALISING), kv("script", script)];
        if let Some(name) = &v.vifname {
            back.push(kv("vifname", name));
        }
        back.push(kv("mac", &mac));
        if !v.ip.is_empty() {
            back.push(kv("ip", v.ip.join(" ")));
        }
        if let Some(g) = &v.gatewaydev {
            back.push(kv("gatewaydev", g));
        }
        if mtu != DEFAULT_MTU {
            back.push(kv("mtu", mtu));
        }
        back.push(kv("bridge", v.bridge.as_deref().unwrap_or(DEFAULT_BRIDGE)));
        back.push(kv("handle", devid));
        back.push(kv("type", "vif"));
        // Netback waits for the hotplug agent to say `connected`.
        back.push(kv("hotplug-status", ""));
        let front = vec![
            kv("backend-id", be),
            kv("state", STATE_INITIALISING),
            kv("handle", devid),
            kv("mac", &mac),
            kv("trusted", 1),
        ];
        Ok(Layout { kind: Kind::Vif, fe, be, devid, back, front, front_ro: vec![kv("mtu", mtu)] })
    }
}

/// The MAC libxl would pick at random, made reproducible: Xen's OUI 00:16:3e and three
/// bytes of the front end's id and the device number.
pub fn default_mac(fe: DomId, devid: u32) -> [u8; 6] {
    let h = (fe.wrapping_mul(0x9e37_79b9) ^ devid.wrapping_mul(0x85eb_ca6b)).to_be_bytes();
    [0x00, 0x16, 0x3e, h[1] & 0x7f, h[2], h[3]]
}

pub(crate) fn libxl_path(kind: Kind, fe: DomId, devid: u32) -> String {
    format!("/libxl/{fe}/device/{}/{devid}", kind.name())
}

pub(crate) fn frontend_path(kind: Kind, fe: DomId, devid: u32) -> String {
    format!("/local/domain/{fe}/device/{}/{devid}", kind.name())
}

/// Why an attach or detach failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// The device is already there (libxl's "device already exists in xenstore").
    Exists(String),
    /// No such device.
    Missing(String),
    /// The back end did not close in time (`-f` removes it anyway).
    Timeout(String),
    Store(StoreError),
    Invalid(String),
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::Exists(p) => write!(f, "device already exists in xenstore ({p})"),
            DeviceError::Missing(p) => write!(f, "no such device ({p})"),
            DeviceError::Timeout(p) => write!(f, "the back end did not close {p} in time"),
            DeviceError::Store(e) => write!(f, "{e}"),
            DeviceError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl From<StoreError> for DeviceError {
    fn from(e: StoreError) -> Self {
        DeviceError::Store(e)
    }
}

/// Writes `l` in one transaction, as `libxl__device_generic_add` does: the front end
/// directory recreated with `[n<fe>, r<be>]` and every front end node given those
/// permissions (read-only ones `[n<be>, r<fe>]`), the back end directory recreated with
/// `[n<be>, r<fe>]`, and the toolstack's record under `/libxl`.
pub fn add(store: &mut dyn Store, l: &Layout) -> Result<(), DeviceError> {
    let (fe_path, be_path, xl_path) = (l.frontend_path(), l.backend_path(), l.libxl_path());
    let fe_perms = [Perm { domid: l.fe, access: Access::None }, Perm { domid: l.be, access: Access::Read }];
    let be_perms = [Perm { domid: l.be, access: Access::None }, Perm { domid: l.fe, access: Access::Read }];
    let exists = std::cell::Cell::new(false);
    transaction(store, TRIES, |s| {
        exists.set(false);
        if s.read(&format!("{xl_path}/backend"))?.is_some() || s.read(&format!("{fe_path}/backend"))?.is_some() {
            exists.set(true);
            return Ok(());
        }
        s.rm(&xl_path)?;
        s.write(&format!("{xl_path}/frontend"), &fe_path)?;
        s.write(&format!("{xl_path}/backend"), &be_path)?;
        s.rm(&fe_path)?;
        s.mkdir(&fe_path)?;
        s.set_perms(&fe_path, &fe_perms)?;
        s.write(&format!("{fe_path}/backend"), &be_path)?;
        for (nodes, perms) in [(&l.front, &fe_perms), (&l.front_ro, &be_perms)] {
            for (k, v) in nodes {
                let p = format!("{fe_path}/{k}");
                s.write(&p, v)?;
                s.set_perms(&p, perms)?;
            }
        }
        s.rm(&be_path)?;
        s.mkdir(&be_path)?;
        s.set_perms(&be_path, &be_perms)?;
        s.write(&format!("{be_path}/frontend"), &fe_path)?;
        for (k, v) in &l.back {
            s.write(&format!("{be_path}/{k}"), v)?;
        }
        Ok(())
    })?;
    if exists.get() {
        return Err(DeviceError::Exists(fe_path));
    }
    Ok(())
}

/// The next free device number of `kind` for `fe` (libxl's `libxl__device_nextid`: one
/// above the highest in use, 0 if none).
pub fn next_devid(store: &mut dyn Store, kind: Kind, fe: DomId) -> Result<u32, StoreError> {
    let ids = store.directory(&format!("/local/domain/{fe}/device/{}", kind.name()))?;
    Ok(ids.iter().filter_map(|i| i.parse::<u32>().ok()).max().map_or(0, |m| m.saturating_add(1)))
}

/// What waiting for a back end needs: a clock to give up by.
pub trait Waiter {
    /// Waits a little (a poll interval); returns `false` once the deadline passed.
    fn wait(&mut self) -> bool;
}

/// Tells the back end at `be_path` to go, in one transaction, as libxl's
/// `libxl__initiate_device_generic_remove` does: `online` 0, and `state` 5 (Closing)
/// unless it already reads 6 (Closed). A back end that closed with its front end (a domU
/// that shut down: its xenbus closes every device) must keep its 6: Linux's xenbus writes
/// a state only when it differs from the one it last wrote, so a 5 written over it is
/// never answered and the driver domain's agent, which waits for 6, never lets go.
/// `also_rm` are removed in the same transaction (the front end's directory, when its
/// domain is gone: Linux's blkback and netback let go of a device once its front end's
/// `state` reads as missing, and write 6 when they find 5). Returns whether the back
/// end was there.
pub fn tell_backend_to_close(store: &mut dyn Store, be_path: &str, also_rm: &[&str]) -> Result<bool, StoreError> {
    transaction(store, TRIES, |s| {
        for p in also_rm {
            s.rm(p)?;
        }
        let Some(state) = s.read(&format!("{be_path}/state"))? else { return Ok(false) };
        s.write(&format!("{be_path}/online"), "0")?;
        if !is_closed(&state) {
            s.write(&format!("{be_path}/state"), &STATE_CLOSING.to_string())?;
        }
        Ok(true)
    })
}

/// Whether a `state` node's value says 6 (Closed).
pub(crate) fn is_closed(state: &str) -> bool {
    state.trim().parse::<u32>().is_ok_and(|v| v == STATE_CLOSED)
}

/// How far a back end got, once waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendEnd {
    /// Its directory is gone (the driver domain's agent removed it after its clean-up).
    Removed,
    /// It reads 6 (Closed), or has no `state` node, its directory still there.
    Closed,
    /// Neither before the waiter gave up: it still reads this state (`None`: not a number).
    Open(Option<u32>),
}

/// Waits (with `w`) until the back end at `be_path` reads 6 (Closed) or is gone, and then,
/// if `until_removed`, until its directory is gone, as libxl waits for the back end's
/// state and then, for a driver domain, for the removal of its path.
pub fn wait_backend(
    store: &mut dyn Store,
    be_path: &str,
    until_removed: bool,
    w: &mut dyn Waiter,
) -> Result<BackendEnd, StoreError> {
    loop {
        let state = store.read(&format!("{be_path}/state"))?;
        // Without a state there is nobody to wait for: as Closed, its directory to go.
        let end = match &state {
            None if store.directory(be_path)?.is_empty() => BackendEnd::Removed,
            None => BackendEnd::Closed,
            Some(st) if is_closed(st) => BackendEnd::Closed,
            Some(st) => BackendEnd::Open(st.trim().parse().ok()),
        };
        let done = match end {
            BackendEnd::Removed => true,
            BackendEnd::Closed => !until_removed,
            BackendEnd::Open(_) => false,
        };
        if done || !w.wait() {
            return Ok(end);
        }
    }
}

/// Removes device `devid` of `kind` from `fe`, as libxl does: the back end is told to
/// go ([`tell_backend_to_close`]); once it reads 6 (Closed) the front end's directory
/// and the toolstack's record are removed (the driver domain's agent removes the back end
/// directory after its own clean-up). If the back end does not close before `w` gives
/// up, `force` removes the front end anyway, else the device stays and the error says so.
pub fn remove(
    store: &mut dyn Store,
    kind: Kind,
    fe: DomId,
    devid: u32,
    force: bool,
    w: &mut dyn Waiter,
) -> Result<(), DeviceError> {
    let xl_path = libxl_path(kind, fe, devid);
    let fe_path = frontend_path(kind, fe, devid);
    let be_path = match store.read(&format!("{xl_path}/backend"))? {
        Some(p) => p,
        None => store.read(&format!("{fe_path}/backend"))?.ok_or_else(|| DeviceError::Missing(fe_path.clone()))?,
    };
    if !be_path.starts_with("/local/domain/") || be_path.contains("..") {
        return Err(DeviceError::Invalid(format!("{fe_path}/backend is `{be_path}`, not a back end path")));
    }
    tell_backend_to_close(store, &be_path, &[])?;
    let end = wait_backend(store, &be_path, false, w)?;
    if matches!(end, BackendEnd::Open(_)) && !force {
        return Err(DeviceError::Timeout(be_path));
    }
    transaction(store, TRIES, |s| {
        s.rm(&fe_path)?;
        s.rm(&xl_path)
    })?;
    Ok(())
}

/// One row of `block-list` / `network-list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub devid: u32,
    pub backend_id: DomId,
    pub frontend_id: DomId,
    pub state: i64,
    pub evtch: i64,
    /// `ring-ref` (vbd) or `tx-ring-ref` (vif).
    pub ring: i64,
    /// `rx-ring-ref` (vif).
    pub rx_ring: i64,
    pub mac: String,
    pub backend: String,
}

fn num(v: Option<String>) -> i64 {
    v.and_then(|s| s.trim().parse().ok()).unwrap_or(-1)
}

/// The devices of `kind` of domain `fe`, by device number.
pub fn list(store: &mut dyn Store, kind: Kind, fe: DomId) -> Result<Vec<DeviceInfo>, StoreError> {
    let mut ids: Vec<u32> = store
        .directory(&format!("/local/domain/{fe}/device/{}", kind.name()))?
        .iter()
        .filter_map(|i| i.parse().ok())
        .collect();
    ids.sort_unstable();
    let mut out = Vec::new();
    for devid in ids {
        let fp = frontend_path(kind, fe, devid);
        let Some(backend) = store.read(&format!("{fp}/backend"))? else { continue };
        let backend_id = store.read(&format!("{fp}/backend-id"))?.and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        let (ring, rx_ring) = match kind {
            Kind::Vbd => (num(store.read(&format!("{fp}/ring-ref"))?), -1),
            Kind::Vif => {
                (num(store.read(&format!("{fp}/tx-ring-ref"))?), num(store.read(&format!("{fp}/rx-ring-ref"))?))
            }
        };
        out.push(DeviceInfo {
            devid,
            backend_id,
            frontend_id: fe,
            state: num(store.read(&format!("{fp}/state"))?),
            evtch: num(store.read(&format!("{fp}/event-channel"))?),
            ring,
            rx_ring,
            mac: store.read(&format!("{fp}/mac"))?.unwrap_or_default(),
            backend,
        });
    }
    Ok(out)
}

/// `block-list`'s table, in xl's layout.
pub fn format_block_list(rows: &[DeviceInfo]) -> String {
    let mut s = format!(
        "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}\n",
        "Vdev", "BE", "handle", "state", "evt-ch", "ring-ref", "BE-path"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}",
            r.devid, r.backend_id, r.frontend_id, r.state, r.evtch, r.ring, r.backend
        );
    }
    s
}

/// `network-list`'s table, in xl's layout.
pub fn format_network_list(rows: &[DeviceInfo]) -> String {
    let mut s = format!(
        "{:<3} {:<2} {:<17} {:<6} {:<5} {:<6} {:>5}/{:<5} {:<30}\n",
        "Idx", "BE", "Mac Addr.", "handle", "state", "evt-ch", "tx-", "rx-ring-ref", "BE-path"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<3} {:<2} {:<17} {:<6} {:<5} {:<6} {:>5}/{:<11} {:<30}",
            r.devid, r.backend_id, r.mac, r.devid, r.state, r.evtch, r.ring, r.rx_ring, r.backend
        );
    }
    s
}

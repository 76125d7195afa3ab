//! keelctl's device commands and `devd` against the in-memory store.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Read;
use std::rc::Rc;
use std::time::Duration;

use crate::cli::{run, Host};
use crate::devd::System;
use crate::devices::Layout;
use crate::devices_fake::FakeStore;
use crate::devices_store::{DomId, Perm, Store, StoreError, Watching};
use crate::fake_control::Fake;

/// The store shared by the test and the commands; relative paths are domain 0's.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<FakeStore>>);

fn abs(p: &str) -> String {
    if p.starts_with('/') {
        p.into()
    } else {
        format!("/local/domain/0/{p}")
    }
}

impl Store for Shared {
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
        self.0.borrow_mut().read(&abs(path))
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().write(&abs(path), value)
    }
    fn mkdir(&mut self, path: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().mkdir(&abs(path))
    }
    fn rm(&mut self, path: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().rm(&abs(path))
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError> {
        self.0.borrow_mut().directory(&abs(path))
    }
    fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<(), StoreError> {
        self.0.borrow_mut().set_perms(&abs(path), perms)
    }
    fn begin(&mut self) -> Result<(), StoreError> {
        self.0.borrow_mut().begin()
    }
    fn commit(&mut self, commit: bool) -> Result<(), StoreError> {
        self.0.borrow_mut().commit(commit)
    }
}

impl Watching for Shared {
    fn watch(&mut self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn wait_event(&mut self) -> Result<String, StoreError> {
        Err(StoreError("no more events".into()))
    }
}

/// Loop devices handed out in order; what was done, one line each.
#[derive(Clone, Default)]
struct Sys(Rc<RefCell<Vec<String>>>);

impl System for Sys {
    fn loop_attach(&mut self, file: &str, writable: bool) -> Result<(String, u32, u32), String> {
        let n = u32::try_from(self.0.borrow().len()).unwrap();
        self.0.borrow_mut().push(format!("attach {file} {writable}"));
        Ok((format!("/dev/loop{n}"), 7, n))
    }
    fn loop_detach(&mut self, dev: &str) -> Result<(), String> {
        self.0.borrow_mut().push(format!("detach {dev}"));
        Ok(())
    }
    fn link_exists(&mut self, _: &str) -> bool {
        false
    }
    fn bridge_add(&mut self, _: &str, _: &str) -> Result<(), String> {
        Err("no bridges here".into())
    }
    fn bridge_del(&mut self, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
}

struct H {
    store: Option<Shared>,
    sys: Sys,
    files: BTreeMap<String, Vec<u8>>,
    /// What the other domains do while keelctl sleeps (a driver domain's back ends).
    meanwhile: Option<Box<dyn Fn()>>,
}

impl Host for H {
    fn read_file(&self, path: &str) -> std::io::Result<Vec<u8>> {
        self.files.get(path).cloned().ok_or(std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn sleep(&self, _: Duration) {
        if let Some(f) = &self.meanwhile {
            f();
        }
    }
    fn console_input(&mut self) -> Box<dyn Read + Send> {
        Box::new(std::io::empty())
    }
    fn raw_terminal(&mut self, _: bool) {}
    fn store(&mut self) -> Result<Box<dyn Watching>, String> {
        Ok(Box::new(self.store.clone().ok_or("no xenstore")?))
    }
    fn devd_system(&mut self) -> Result<Box<dyn System>, String> {
        Ok(Box::new(self.sys.clone()))
    }
}

fn keelctl(ctl: &mut Fake, h: &mut H, args: &[&str]) -> (u8, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, ctl, h, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

fn setup() -> (Fake, H, Shared) {
    let mut ctl = Fake::new();
    ctl.add(3, "web", 256, 1);
    let store = Shared::default();
    store.0.borrow_mut().write("/local/domain/0/domid", "0").unwrap();
    (ctl, H { store: Some(store.clone()), sys: Sys::default(), files: BTreeMap::new(), meanwhile: None }, store)
}

const BE: &str = "/local/domain/0/backend/vbd/3/51712";
const FE: &str = "/local/domain/3/device/vbd/51712";

#[test]
fn block_attach_devd_list_and_detach() {
    let (mut ctl, mut h, store) = setup();
    let spec = "format=raw, vdev=xvda, access=rw, target=/srv/web.img";
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["block-attach", "web", spec]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(store.0.borrow().value(&format!("{BE}/params")), Some("/srv/web.img"));
    assert_eq!(store.0.borrow().value(&format!("{FE}/backend")), Some(BE));

    // The agent, once: a loop device and physical-device as Xen's block script writes it.
    let (code, out, err) = keelctl(&mut ctl, &mut h, &["devd", "-1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/srv/web.img on /dev/loop0"), "{out}");
    assert_eq!(store.0.borrow().value(&format!("{BE}/physical-device")), Some("7:0"));
    assert_eq!(*h.sys.0.borrow(), ["attach /srv/web.img true"]);

    let (code, out, _) = keelctl(&mut ctl, &mut h, &["block-list", "3"]);
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("51712")), "{out}");

    // The back end never closes: detach gives up, -f removes the front end anyway.
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["block-detach", "web", "xvda"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(store.0.borrow().value(&format!("{BE}/state")), Some("5"));
    // The back end closes; the agent (another run: it finds the loop device in
    // xenstore) releases the loop device and the back end directory.
    store.0.borrow_mut().write(&format!("{BE}/state"), "6").unwrap();
    let (code, out, _) = keelctl(&mut ctl, &mut h, &["devd", "-1"]);
    assert_eq!(code, 0);
    assert!(out.contains("/dev/loop0 released"), "{out}");
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["block-detach", "web", "xvda"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(store.0.borrow().value(FE), None);
    assert_eq!(store.0.borrow().value(BE), None);
}

#[test]
fn refusals_name_what_is_wrong() {
    let (mut ctl, mut h, _) = setup();
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["block-attach", "nosuch", "vdev=xvda, target=/x"]);
    assert_eq!((code, err.trim()), (1, "keelctl block-attach: Domain 'nosuch' does not exist."));
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["block-attach", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("disk specification is missing"), "{err}");
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["block-detach", "web", "xvdq9"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such device"), "{err}");
    let (code, _, _) = keelctl(&mut ctl, &mut h, &["network-list"]);
    assert_eq!(code, 2, "a missing domain is a usage error");
    h.store = None;
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["block-list", "web"]);
    assert_eq!((code, err.trim()), (1, "keelctl block-list: no xenstore"));
}

#[test]
fn network_attach_picks_the_next_device_and_the_agent_waits_for_netback() {
    let (mut ctl, mut h, store) = setup();
    assert_eq!(keelctl(&mut ctl, &mut h, &["network-attach", "web", "bridge=xenbr0"]).0, 0);
    assert_eq!(keelctl(&mut ctl, &mut h, &["network-attach", "web"]).0, 0);
    let (_, out, _) = keelctl(&mut ctl, &mut h, &["network-list", "web"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    // vif3.0 does not exist yet: nothing happens, nothing is marked connected.
    assert_eq!(keelctl(&mut ctl, &mut h, &["devd", "-1"]).0, 0);
    assert_ne!(store.0.borrow().value("/local/domain/0/backend/vif/3/0/hotplug-status"), Some("connected"));
}

/// A configuration with a disk and a vif, as `create` reads it.
const WITH_DEVICES: &str = "name = 'db'\nmemory = 64\nkernel = '/k'\n\
    disk = [ 'format=raw, vdev=xvda, access=rw, target=/root/d.img' ]\n\
    vif = [ 'bridge=xenbr0,mac=00:16:3e:00:00:07' ]\n";

/// `setup` with a kernel, `/c.cfg` holding `cfg`, and domains that have xenstore.
fn with_config(cfg: &str) -> (Fake, H, Shared) {
    let (mut ctl, mut h, store) = setup();
    ctl.stores = true;
    h.files.insert("/k".into(), vec![0xaa; 64]);
    h.files.insert("/c.cfg".into(), cfg.as_bytes().to_vec());
    (ctl, h, store)
}

/// What `block-attach` and `network-attach` would have written for domain `fe`.
fn attached_by_hand(fe: DomId) -> Vec<String> {
    let mut fake = FakeStore::default();
    let disk = crate::disk::DiskSpec::parse("format=raw, vdev=xvda, access=rw, target=/root/d.img").unwrap();
    let vif = crate::vif::VifSpec::parse("bridge=xenbr0,mac=00:16:3e:00:00:07").unwrap();
    crate::devices::add(&mut fake, &Layout::disk(fe, 0, &disk).unwrap()).unwrap();
    crate::devices::add(&mut fake, &Layout::vif(fe, 0, 0, &vif).unwrap()).unwrap();
    let mut all = fake.dump(&format!("/local/domain/{fe}/device"));
    all.extend(fake.dump("/local/domain/0/backend"));
    all.extend(fake.dump(&format!("/libxl/{fe}")));
    all
}

fn devices_of(store: &Shared, fe: DomId) -> Vec<String> {
    let s = store.0.borrow();
    let mut all = s.dump(&format!("/local/domain/{fe}/device"));
    all.extend(s.dump("/local/domain/0/backend"));
    all.extend(s.dump(&format!("/libxl/{fe}")));
    all
}

#[test]
fn create_writes_the_configured_devices_before_the_domain_runs() {
    let (mut ctl, mut h, store) = with_config(WITH_DEVICES);
    // The xenstore domain introduced the new domain (id 1).
    store.0.borrow_mut().write("/local/domain/1/domid", "1").unwrap();
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["create", "/c.cfg"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(devices_of(&store, 1), attached_by_hand(1), "the node set of block-attach and network-attach");
    assert!(!ctl.domains[&1].0.paused, "unpaused once the devices are written");
    // The agent serves both: a loop device for the disk (the vif waits for netback).
    let (code, out, _) = keelctl(&mut ctl, &mut h, &["devd", "-1"]);
    assert_eq!(code, 0);
    assert!(out.contains("vbd 1/51712: /root/d.img on /dev/loop0"), "{out}");
    let (_, out, _) = keelctl(&mut ctl, &mut h, &["block-list", "db"]);
    assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("51712 ")), "{out}");
    let (_, out, _) = keelctl(&mut ctl, &mut h, &["network-list", "db"]);
    assert!(out.contains("00:16:3e:00:00:07"), "{out}");
}

#[test]
fn destroy_takes_the_devices_away_and_the_agent_releases_them() {
    let (mut ctl, mut h, store) = with_config(WITH_DEVICES);
    store.0.borrow_mut().write("/local/domain/1/domid", "1").unwrap();
    assert_eq!(keelctl(&mut ctl, &mut h, &["create", "/c.cfg"]).0, 0);
    assert_eq!(keelctl(&mut ctl, &mut h, &["devd", "-1"]).0, 0);
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["destroy", "db"]);
    assert_eq!(code, 0, "{err}");
    let be = "/local/domain/0/backend/vbd/1/51712";
    let vif = "/local/domain/0/backend/vif/1/0";
    // Nobody answers here: destroy waits, then says which back ends are left.
    assert!(
        err.contains(&format!("warning: domain 1: vbd 51712: back end {be} not gone in time: still in state 5")),
        "{err}"
    );
    assert!(err.contains(&format!("vif 0: back end {vif} not gone in time")), "{err}");
    {
        let s = store.0.borrow();
        assert_eq!(s.value("/local/domain/1/device/vbd/51712"), None, "front end gone");
        assert_eq!(s.value("/local/domain/1/device/vif/0"), None, "front end gone");
        assert_eq!(s.value("/libxl/1"), None, "toolstack record gone");
        for b in [be, vif] {
            assert_eq!(
                (s.value(&format!("{b}/online")), s.value(&format!("{b}/state"))),
                (Some("0"), Some("5")),
                "{b}"
            );
        }
    }
    // Blkback and netback see their front ends vanish and close: the agent releases the
    // loop device and removes both back end directories.
    store.0.borrow_mut().write(&format!("{be}/state"), "6").unwrap();
    store.0.borrow_mut().write(&format!("{vif}/state"), "6").unwrap();
    let (code, out, _) = keelctl(&mut ctl, &mut h, &["devd", "-1"]);
    assert_eq!(code, 0);
    assert!(out.contains("vbd 1/51712: closed; /dev/loop0 released; back end directory removed"), "{out}");
    let left = devices_of(&store, 1);
    assert!(left.iter().all(|l| l.ends_with("= \"\" [n0]")), "only empty directories are left: {left:?}");
    assert!(left.iter().all(|l| !l.starts_with("/local/domain/1")), "the domain's home is gone: {left:?}");
    assert_eq!(*h.sys.0.borrow(), ["attach /root/d.img true", "detach /dev/loop0"]);
}

#[test]
fn a_refused_device_names_its_line_and_leaves_nothing() {
    let cases = [
        (
            "name='db'\nkernel='/k'\ndisk=['vdev=xvda, target=/a',\n 'vdev=xvda, target=/b']\n",
            "/c.cfg:4: disk: vdev `xvda` is the same disk",
        ),
        (
            "name='db'\nkernel='/k'\nvif=['bridge=xenbr0',\n\n 'backend=nosuch']\n",
            "/c.cfg:5: vif: backend domain `nosuch` does not exist",
        ),
        ("name='db'\nkernel='/k'\ndisk=['format=qcow2, vdev=xvda, target=/a']\n", "/c.cfg:3: disk: "),
    ];
    for (cfg, want) in cases {
        let (mut ctl, mut h, store) = with_config(cfg);
        let (code, _, err) = keelctl(&mut ctl, &mut h, &["create", "/c.cfg"]);
        assert_eq!(code, 1, "{cfg}");
        assert!(err.contains(want), "{cfg}: {err}");
        assert!(ctl.created.is_empty(), "refused before any domain exists: {cfg}");
        assert!(devices_of(&store, 1).is_empty());
    }
}

#[test]
fn a_domain_whose_devices_cannot_be_written_is_not_left_behind() {
    // Not introduced to xenstore (keelctl waits, then gives up).
    let (mut ctl, mut h, store) = with_config(WITH_DEVICES);
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["create", "/c.cfg"]);
    assert_eq!(code, 1);
    assert!(err.contains("/c.cfg:4: disk: xenstore did not introduce domain 1 in time"), "{err}");
    assert!(!ctl.domains.contains_key(&1), "destroyed");
    assert!(devices_of(&store, 1).is_empty());
    // No xenstore connection at all.
    let (mut ctl, mut h, store) = with_config(WITH_DEVICES);
    ctl.stores = false;
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["create", "/c.cfg"]);
    assert_eq!(code, 1);
    assert!(err.contains("/c.cfg:4: disk: domain 1 has no xenstore connection"), "{err}");
    assert!(!ctl.domains.contains_key(&1));
    assert!(devices_of(&store, 1).is_empty());
    // A device already in the way (a stale front end): the vif is refused, the disk
    // written before it is taken out again.
    let (mut ctl, mut h, store) = with_config(WITH_DEVICES);
    store.0.borrow_mut().write("/local/domain/1/domid", "1").unwrap();
    store.0.borrow_mut().write("/local/domain/1/device/vif/0/backend", "/x").unwrap();
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["create", "/c.cfg"]);
    assert_eq!(code, 1);
    assert!(err.contains("/c.cfg:5: vif: device already exists"), "{err}");
    assert_eq!(store.0.borrow().value("/local/domain/0/backend/vbd/1/51712"), None);
    assert!(!ctl.domains.contains_key(&1));
}

#[test]
fn destroying_a_driver_domain_closes_the_disks_it_served() {
    // Domain 1, `drv`, serves a disk of `web` (3); `destroy drv` must find its back end
    // directory before the domain's home is removed.
    let (mut ctl, mut h, store) = with_config("name='drv'\nkernel='/k'\n");
    store.0.borrow_mut().write("/local/domain/1/domid", "1").unwrap();
    assert_eq!(keelctl(&mut ctl, &mut h, &["create", "/c.cfg"]).0, 0);
    let disk = crate::disk::DiskSpec::parse("format=raw, vdev=xvda, access=rw, target=/d.img").unwrap();
    crate::devices::add(&mut *store.0.borrow_mut(), &Layout::disk(3, 1, &disk).unwrap()).unwrap();
    let (code, out, err) = keelctl(&mut ctl, &mut h, &["destroy", "drv"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("vbd 3/51712: back end domain 1 gone: closed on its behalf"), "{out}");
    let s = store.0.borrow();
    assert_eq!(s.value("/local/domain/3/device/vbd/51712"), None, "the front end's device is gone");
    assert!(s.dump("/local/domain/1").is_empty(), "the driver domain's home is gone");
}

/// Linux 6.1's xenbus on the back end side, as blkback and netback use it, for the back
/// ends under `/local/domain/0/backend`: each device remembers the state it last wrote
/// and writes a new one only when it differs (`xenbus_switch_state`); its front end's
/// Closing is answered with Closing, Closed with Closed (and, when `online` is 0, the
/// device goes), a front end that vanished makes it go; a device that goes writes Closed
/// if the toolstack wrote Closing (`xenbus_dev_remove`). Gone devices are forgotten.
#[derive(Clone, Default)]
struct LinuxBackends(Rc<RefCell<BTreeMap<String, u32>>>);

impl LinuxBackends {
    fn switch(&self, s: &mut Shared, be: &str, to: u32) {
        let mut last = self.0.borrow_mut();
        if last.get(be) != Some(&to) {
            last.insert(be.to_string(), to);
            s.write(&format!("{be}/state"), &to.to_string()).unwrap();
        }
    }

    /// One look at every back end, as its watches would fire.
    fn step(&self, s: &mut Shared) {
        for kind in ["vbd", "vif"] {
            let base = format!("/local/domain/0/backend/{kind}");
            for fe in s.directory(&base).unwrap() {
                for dev in s.directory(&format!("{base}/{fe}")).unwrap() {
                    let be = format!("{base}/{fe}/{dev}");
                    if !self.0.borrow().contains_key(&be) {
                        continue; // never probed: not a device of this test's
                    }
                    let Some(fe_path) = s.read(&format!("{be}/frontend")).unwrap() else { continue };
                    let online = s.read(&format!("{be}/online")).unwrap().as_deref() == Some("1");
                    let fe_state = s.read(&format!("{fe_path}/state")).unwrap().and_then(|v| v.parse::<u32>().ok());
                    let unregister = match fe_state {
                        Some(5) => {
                            self.switch(s, &be, 5);
                            false
                        }
                        Some(6) => {
                            self.switch(s, &be, 6);
                            !online
                        }
                        None => true,
                        _ => false,
                    };
                    if unregister {
                        if s.read(&format!("{be}/state")).unwrap().as_deref() == Some("5") {
                            self.switch(s, &be, 6);
                        }
                        self.0.borrow_mut().remove(&be);
                    }
                }
            }
        }
    }
}

#[test]
fn destroy_after_the_guest_closed_its_devices_waits_until_the_agent_released_them() {
    // `db` shut down by itself: its xenbus closed both devices (front ends 6), and so did
    // the back ends, still online. `destroy` must leave their 6 alone (Linux's xenbus
    // would not write it again) and return once the agent removed them.
    let (mut ctl, mut h, store) = with_config(WITH_DEVICES);
    store.0.borrow_mut().write("/local/domain/1/domid", "1").unwrap();
    assert_eq!(keelctl(&mut ctl, &mut h, &["create", "/c.cfg"]).0, 0);
    assert_eq!(keelctl(&mut ctl, &mut h, &["devd", "-1"]).0, 0);
    let linux = LinuxBackends::default();
    let mut s = store.clone();
    for (be, fe) in [
        ("/local/domain/0/backend/vbd/1/51712", "/local/domain/1/device/vbd/51712"),
        ("/local/domain/0/backend/vif/1/0", "/local/domain/1/device/vif/0"),
    ] {
        linux.0.borrow_mut().insert(be.into(), 4);
        s.write(&format!("{be}/state"), "4").unwrap();
        for st in ["5", "6"] {
            s.write(&format!("{fe}/state"), st).unwrap();
            linux.step(&mut s);
        }
        assert_eq!(s.read(&format!("{be}/state")).unwrap().as_deref(), Some("6"));
    }
    let agent = Rc::new(RefCell::new(crate::devd::Agent::new(0)));
    let (model, shared, sys) = (linux.clone(), store.clone(), h.sys.clone());
    h.meanwhile = Some(Box::new(move || {
        let mut s = shared.clone();
        model.step(&mut s);
        agent.borrow_mut().scan(&mut s, &mut sys.clone()).unwrap();
    }));
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["destroy", "db"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let left = devices_of(&store, 1);
    assert!(left.iter().all(|l| l.ends_with("= \"\" [n0]")), "only empty directories are left: {left:?}");
    assert_eq!(*h.sys.0.borrow(), ["attach /root/d.img true", "detach /dev/loop0"]);
    assert!(linux.0.borrow().is_empty(), "both back end devices went");
}

#[test]
fn destroy_with_a_connected_back_end_waits_for_it_to_close() {
    // `db` crashed: its front ends still read Connected. Told Closing, the back ends go
    // once their front ends vanish, write Closed, and the agent removes them.
    let (mut ctl, mut h, store) = with_config(WITH_DEVICES);
    store.0.borrow_mut().write("/local/domain/1/domid", "1").unwrap();
    assert_eq!(keelctl(&mut ctl, &mut h, &["create", "/c.cfg"]).0, 0);
    assert_eq!(keelctl(&mut ctl, &mut h, &["devd", "-1"]).0, 0);
    let linux = LinuxBackends::default();
    let mut s = store.clone();
    for (be, fe) in [
        ("/local/domain/0/backend/vbd/1/51712", "/local/domain/1/device/vbd/51712"),
        ("/local/domain/0/backend/vif/1/0", "/local/domain/1/device/vif/0"),
    ] {
        linux.0.borrow_mut().insert(be.into(), 4);
        s.write(&format!("{be}/state"), "4").unwrap();
        s.write(&format!("{fe}/state"), "4").unwrap();
    }
    let agent = Rc::new(RefCell::new(crate::devd::Agent::new(0)));
    let (model, shared, sys) = (linux.clone(), store.clone(), h.sys.clone());
    h.meanwhile = Some(Box::new(move || {
        let mut s = shared.clone();
        model.step(&mut s);
        agent.borrow_mut().scan(&mut s, &mut sys.clone()).unwrap();
    }));
    let (code, _, err) = keelctl(&mut ctl, &mut h, &["destroy", "db"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(store.0.borrow().dump("/local/domain/0/backend/vbd/1/51712").is_empty());
    assert_eq!(*h.sys.0.borrow(), ["attach /root/d.img true", "detach /dev/loop0"]);
}

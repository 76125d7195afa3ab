//! keelctl's device commands and `devd` against the in-memory store.

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;
use std::time::Duration;

use crate::cli::{run, Host};
use crate::devd::System;
use crate::devices_fake::FakeStore;
use crate::devices_store::{Perm, Store, StoreError, Watching};
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
}

impl Host for H {
    fn read_file(&self, _: &str) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn sleep(&self, _: Duration) {}
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
    (ctl, H { store: Some(store.clone()), sys: Sys::default() }, store)
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

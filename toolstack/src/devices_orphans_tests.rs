//! The devices of a dead back end domain, closed on its behalf, against the in-memory
//! store.

use std::cell::RefCell;
use std::rc::Rc;

use crate::devices::{add, Kind, Layout, Waiter};
use crate::devices_fake::FakeStore;
use crate::devices_orphans::*;
use crate::devices_store::{Perm, Store, StoreError};
use crate::disk::DiskSpec;
use crate::vif::VifSpec;

fn disk(s: &str) -> DiskSpec {
    DiskSpec::parse(s).unwrap()
}

/// The store, shared by the code under test and the waiter that plays the front ends.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<FakeStore>>);

impl Store for Shared {
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
        self.0.borrow_mut().read(path)
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().write(path, value)
    }
    fn mkdir(&mut self, path: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().mkdir(path)
    }
    fn rm(&mut self, path: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().rm(path)
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError> {
        self.0.borrow_mut().directory(path)
    }
    fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<(), StoreError> {
        self.0.borrow_mut().set_perms(path, perms)
    }
    fn begin(&mut self) -> Result<(), StoreError> {
        self.0.borrow_mut().begin()
    }
    fn commit(&mut self, commit: bool) -> Result<(), StoreError> {
        self.0.borrow_mut().commit(commit)
    }
}

/// A waiter whose first wait makes the listed front ends read Closed (as blkfront and
/// netfront do when their back end reads Closed), and which gives up after `polls`.
struct FrontEnds<'a> {
    store: Shared,
    close: &'a [&'a str],
    polls: u32,
    waited: u32,
}

impl Waiter for FrontEnds<'_> {
    fn wait(&mut self) -> bool {
        if self.waited == self.polls {
            return false;
        }
        self.waited += 1;
        for fe in self.close {
            self.store.write(&format!("{fe}/state"), "6").unwrap();
        }
        true
    }
}

#[test]
fn a_dead_driver_domains_devices_are_closed_on_its_behalf_and_removed() {
    let mut sh = Shared::default();
    let s = &mut sh;
    add(s, &Layout::disk(3, 1, &disk("vdev=xvda, backend=1, target=/a")).unwrap()).unwrap();
    add(s, &Layout::vif(3, 1, 0, &VifSpec::parse("bridge=br0").unwrap()).unwrap()).unwrap();
    add(s, &Layout::disk(4, 1, &disk("vdev=xvdb, backend=1, target=/b")).unwrap()).unwrap();
    // Another back end's device of the same front end stays.
    add(s, &Layout::disk(3, 0, &disk("vdev=xvdc, target=/c")).unwrap()).unwrap();
    let close =
        ["/local/domain/3/device/vbd/51712", "/local/domain/3/device/vif/0", "/local/domain/4/device/vbd/51728"];
    for p in close {
        s.write(&format!("{p}/state"), "4").unwrap();
    }
    let mut w = FrontEnds { store: s.clone(), close: &close, polls: 10, waited: 0 };
    let done = release_backend_domain(s, 1, &mut w).unwrap();
    assert_eq!(
        done,
        [
            Released { kind: Kind::Vbd, fe: 3, devid: 51712, closed: true },
            Released { kind: Kind::Vbd, fe: 4, devid: 51728, closed: true },
            Released { kind: Kind::Vif, fe: 3, devid: 0, closed: true },
        ]
    );
    assert_eq!(w.waited, 1, "one wait: the front ends closed at once");
    let f = sh.0.borrow();
    assert!(f.dump("/local/domain/1/backend").is_empty());
    for p in close {
        assert!(f.dump(p).is_empty(), "{p} left");
    }
    for p in ["/libxl/3/device/vbd/51712", "/libxl/3/device/vif/0", "/libxl/4/device/vbd/51728"] {
        assert!(f.dump(p).is_empty(), "{p} left");
    }
    assert_eq!(f.value("/local/domain/3/device/vbd/51744/backend"), Some("/local/domain/0/backend/vbd/3/51744"));
    assert_eq!(f.value("/local/domain/0/backend/vbd/3/51744/state"), Some("1"));
}

/// Records the back end's `state` and `online` at each wait, and gives up at once.
struct Watch {
    store: Shared,
    seen: Vec<(Option<String>, Option<String>)>,
}

impl Waiter for Watch {
    fn wait(&mut self) -> bool {
        let be = "/local/domain/1/backend/vbd/3/51712";
        let state = self.store.read(&format!("{be}/state")).unwrap();
        let online = self.store.read(&format!("{be}/online")).unwrap();
        self.seen.push((state, online));
        false
    }
}

#[test]
fn the_back_end_is_closed_before_the_front_end_is_removed() {
    let mut sh = Shared::default();
    let s = &mut sh;
    add(s, &Layout::disk(3, 1, &disk("vdev=xvda, backend=1, target=/a")).unwrap()).unwrap();
    s.write("/local/domain/3/device/vbd/51712/state", "4").unwrap();
    // The front end never closes: its nodes go anyway once the waiter gives up, and the
    // back end read Closed and offline before.
    let mut w = Watch { store: s.clone(), seen: Vec::new() };
    let done = release_backend_domain(s, 1, &mut w).unwrap();
    assert_eq!(done, [Released { kind: Kind::Vbd, fe: 3, devid: 51712, closed: false }]);
    assert_eq!(w.seen, [(Some("6".to_string()), Some("0".to_string()))]);
    let f = sh.0.borrow();
    assert!(f.dump("/local/domain/3/device/vbd/51712").is_empty());
    assert!(f.dump("/local/domain/1/backend").is_empty());
}

#[test]
fn a_back_end_cannot_claim_another_front_end() {
    let mut s = FakeStore::default();
    // Domain 0 serves d3's disk; the dead domain 1 wrote a back end directory of its own
    // for the same front end device (its directory is its to write).
    add(&mut s, &Layout::disk(3, 0, &disk("vdev=xvda, target=/a")).unwrap()).unwrap();
    s.write("/local/domain/1/backend/vbd/3/51712/frontend", "/local/domain/3/device/vbd/51712").unwrap();
    s.write("/local/domain/1/backend/vbd/junk/1/state", "4").unwrap();
    s.write("/local/domain/1/backend/vbd/3/junk/state", "4").unwrap();
    let mut w = FrontEnds { store: Shared::default(), close: &[], polls: 0, waited: 0 };
    let done = release_backend_domain(&mut s, 1, &mut w).unwrap();
    assert!(done.is_empty());
    assert_eq!(s.value("/local/domain/3/device/vbd/51712/backend"), Some("/local/domain/0/backend/vbd/3/51712"));
    assert_eq!(s.value("/local/domain/0/backend/vbd/3/51712/state"), Some("1"));
    assert!(s.dump("/local/domain/1/backend").is_empty(), "the dead domain's directory goes");
}

#[test]
fn detaching_a_device_of_a_dead_back_end() {
    let mut sh = Shared::default();
    let s = &mut sh;
    add(s, &Layout::disk(3, 2, &disk("vdev=xvdb, backend=2, target=/a")).unwrap()).unwrap();
    assert_eq!(backend_id(s, Kind::Vbd, 3, 51728).unwrap(), Some(2));
    assert_eq!(backend_id(s, Kind::Vbd, 3, 51712).unwrap(), None);
    // The back end's own directory is already gone (removed with its domain).
    s.rm("/local/domain/2").unwrap();
    let close = ["/local/domain/3/device/vbd/51728"];
    let mut w = FrontEnds { store: s.clone(), close: &close, polls: 5, waited: 0 };
    assert!(detach_orphan(s, Kind::Vbd, 3, 51728, &mut w).unwrap());
    {
        let f = sh.0.borrow();
        assert!(f.dump("/local/domain/3/device/vbd/51728").is_empty());
        assert!(f.dump("/libxl/3/device/vbd/51728").is_empty());
        assert!(
            f.dump("/local/domain/2/backend/vbd/3/51728").is_empty(),
            "the state written on its behalf is removed too"
        );
    }
    let mut w = FrontEnds { store: Shared::default(), close: &[], polls: 0, waited: 0 };
    let e = detach_orphan(&mut sh, Kind::Vbd, 3, 51728, &mut w).unwrap_err();
    assert!(e.to_string().starts_with("no such device"), "{e}");
}

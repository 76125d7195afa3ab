//! Host tests of device set-up: the exact xenstore nodes against libxl's layout (Xen
//! 4.17 `libxl_disk.c`, `libxl_nic.c`, `libxl_device.c`), detach, list, and the hotplug
//! agent against a fake store and a fake system.

use crate::devd::{Agent, System};
use crate::devices::*;
use crate::devices_fake::FakeStore;
use crate::devices_store::Store;
use crate::disk::DiskSpec;
use crate::vif::VifSpec;

fn disk(spec: &str) -> DiskSpec {
    DiskSpec::parse(spec).unwrap()
}

#[test]
fn vdev_numbers_as_libxl() {
    for (vdev, id) in [
        ("xvda", 51712),
        ("xvdb", 51728),
        ("xvda1", 51713),
        ("xvdp15", (202 << 8) | (15 << 4) | 15),
        ("xvdq", (1 << 28) | (16 << 8)),
        ("xvda16", (1 << 28) | 16),
        ("xvdaa", (1 << 28) | (26 << 8)),
        ("d0p0", 51712),
        ("d3p2", 51762),
        ("51712", 51712),
        ("0xca00", 51712),
        ("hda", 3 << 8),
        ("hdb1", (3 << 8) | (1 << 6) | 1),
        ("hdc", 22 << 8),
        ("sda", 8 << 8),
        ("sdb3", (8 << 8) | (1 << 4) | 3),
    ] {
        assert_eq!(vdev_devid(vdev), Some(id), "{vdev}");
    }
    for bad in
        ["", "xvd", "xvda0", "xvda01", "xvdA", "xvda256", "hde", "sdq", "vda", "d1p256", "-1", "4294967296", "xvda/"]
    {
        assert_eq!(vdev_devid(bad), None, "{bad}");
    }
}

#[test]
fn a_disk_is_written_as_libxl_writes_it() {
    let mut s = FakeStore::default();
    let l = Layout::disk(3, 1, &disk("format=raw, vdev=xvda, access=rw, target=/srv/guest.img")).unwrap();
    add(&mut s, &l).unwrap();
    assert_eq!(
        s.dump("/local/domain/3/device"),
        [
            "/local/domain/3/device = \"\" [n0]",
            "/local/domain/3/device/vbd = \"\" [n0]",
            "/local/domain/3/device/vbd/51712 = \"\" [n3 r1]",
            "/local/domain/3/device/vbd/51712/backend = \"/local/domain/1/backend/vbd/3/51712\" [n3 r1]",
            "/local/domain/3/device/vbd/51712/backend-id = \"1\" [n3 r1]",
            "/local/domain/3/device/vbd/51712/device-type = \"disk\" [n3 r1]",
            "/local/domain/3/device/vbd/51712/state = \"1\" [n3 r1]",
            "/local/domain/3/device/vbd/51712/trusted = \"1\" [n3 r1]",
            "/local/domain/3/device/vbd/51712/virtual-device = \"51712\" [n3 r1]",
        ]
    );
    let be = "/local/domain/1/backend/vbd/3/51712";
    let mut want: Vec<String> = [
        ("", ""),
        ("/bootable", "1"),
        ("/dev", "xvda"),
        ("/device-type", "disk"),
        ("/discard-enable", "1"),
        ("/frontend", "/local/domain/3/device/vbd/51712"),
        ("/frontend-id", "3"),
        ("/mode", "w"),
        ("/online", "1"),
        ("/params", "/srv/guest.img"),
        ("/removable", "0"),
        ("/script", "/etc/xen/scripts/block"),
        ("/state", "1"),
        ("/type", "phy"),
    ]
    .iter()
    .map(|(k, v)| format!("{be}{k} = \"{v}\" [n1 r3]"))
    .collect();
    want.sort();
    assert_eq!(s.dump(be), want);
    assert_eq!(
        s.dump("/libxl/3"),
        [
            "/libxl/3 = \"\" [n0]",
            "/libxl/3/device = \"\" [n0]",
            "/libxl/3/device/vbd = \"\" [n0]",
            "/libxl/3/device/vbd/51712 = \"\" [n0]",
            "/libxl/3/device/vbd/51712/backend = \"/local/domain/1/backend/vbd/3/51712\" [n0]",
            "/libxl/3/device/vbd/51712/frontend = \"/local/domain/3/device/vbd/51712\" [n0]",
        ]
    );
    assert_eq!((s.begun, s.committed), (1, 1));
}

#[test]
fn read_only_disks_cdroms_and_refusals() {
    let ro = Layout::disk(2, 0, &disk("/srv/ro.img,raw,xvdb,r")).unwrap();
    let get = |l: &Layout, k: &str| l.back.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get(&ro, "mode").as_deref(), Some("r"));
    assert_eq!(get(&ro, "discard-enable").as_deref(), Some("0"));
    assert_eq!(ro.devid, 51728);
    let cd = Layout::disk(2, 0, &disk("vdev=xvdc, devtype=cdrom, access=r, target=/srv/cd.iso")).unwrap();
    assert_eq!(get(&cd, "device-type").as_deref(), Some("cdrom"));
    assert_eq!(get(&cd, "removable").as_deref(), Some("1"));
    let e = Layout::disk(2, 0, &disk("format=qcow2, vdev=xvda, target=/x.qcow2")).unwrap_err();
    assert!(e.contains("only raw"), "{e}");
    let e = Layout::disk(2, 0, &disk("vdev=xvda, backendtype=qdisk, target=/x")).unwrap_err();
    assert!(e.contains("backendtype=phy"), "{e}");
    let e = Layout::disk(2, 0, &disk("vdev=vda, target=/x")).unwrap_err();
    assert!(e.contains("vdev `vda`"), "{e}");
}

#[test]
fn a_vif_is_written_as_libxl_writes_it() {
    let mut s = FakeStore::default();
    let v = VifSpec::parse("mac=00:16:3e:12:34:56, bridge=br0").unwrap();
    let l = Layout::vif(4, 1, 0, &v).unwrap();
    add(&mut s, &l).unwrap();
    let fe = "/local/domain/4/device/vif/0";
    assert_eq!(
        s.dump(fe),
        [
            format!("{fe} = \"\" [n4 r1]"),
            format!("{fe}/backend = \"/local/domain/1/backend/vif/4/0\" [n4 r1]"),
            format!("{fe}/backend-id = \"1\" [n4 r1]"),
            format!("{fe}/handle = \"0\" [n4 r1]"),
            format!("{fe}/mac = \"00:16:3e:12:34:56\" [n4 r1]"),
            format!("{fe}/mtu = \"1500\" [n1 r4]"),
            format!("{fe}/state = \"1\" [n4 r1]"),
            format!("{fe}/trusted = \"1\" [n4 r1]"),
        ]
    );
    let be = "/local/domain/1/backend/vif/4/0";
    let mut want: Vec<String> = [
        ("", ""),
        ("/bridge", "br0"),
        ("/frontend", "/local/domain/4/device/vif/0"),
        ("/frontend-id", "4"),
        ("/handle", "0"),
        ("/hotplug-status", ""),
        ("/mac", "00:16:3e:12:34:56"),
        ("/online", "1"),
        ("/script", "/etc/xen/scripts/vif-bridge"),
        ("/state", "1"),
        ("/type", "vif"),
    ]
    .iter()
    .map(|(k, v)| format!("{be}{k} = \"{v}\" [n1 r4]"))
    .collect();
    want.sort();
    assert_eq!(s.dump(be), want);
}

#[test]
fn vif_defaults_options_and_refusals() {
    let v = VifSpec::parse("ip=10.0.0.2, vifname=web0, mtu=9000").unwrap();
    let l = Layout::vif(7, 0, 2, &v).unwrap();
    let get = |k: &str| l.back.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("bridge"), Some("xenbr0"));
    assert_eq!(get("vifname"), Some("web0"));
    assert_eq!(get("ip"), Some("10.0.0.2"));
    assert_eq!(get("mtu"), Some("9000"));
    assert_eq!(l.front_ro, [("mtu".to_string(), "9000".to_string())]);
    let mac = get("mac").unwrap();
    assert!(mac.starts_with("00:16:3e:"), "{mac}");
    assert_eq!(Layout::vif(7, 0, 2, &v).unwrap(), l, "the default MAC is reproducible");
    assert_ne!(default_mac(7, 2), default_mac(7, 3));
    assert_ne!(default_mac(7, 2), default_mac(8, 2));
    assert!(Layout::vif(7, 0, 0, &VifSpec::parse("rate=10Mb/s").unwrap()).is_err());
    assert!(Layout::vif(7, 0, 0, &VifSpec::parse("type=ioemu").unwrap()).is_err());
}

#[test]
fn adding_twice_is_refused_and_conflicts_are_retried() {
    let mut s = FakeStore::default();
    let l = Layout::disk(3, 0, &disk("vdev=xvda, target=/a")).unwrap();
    s.conflicts = 2;
    add(&mut s, &l).unwrap();
    assert_eq!((s.begun, s.committed), (3, 1));
    let before = s.dump("/");
    let e = add(&mut s, &l).unwrap_err();
    assert!(matches!(e, DeviceError::Exists(_)), "{e}");
    assert_eq!(s.dump("/"), before, "a refused add changes nothing");
    s.conflicts = 100;
    let l2 = Layout::disk(3, 0, &disk("vdev=xvdb, target=/b")).unwrap();
    assert!(matches!(add(&mut s, &l2), Err(DeviceError::Store(e)) if e.is_conflict()));
    assert_eq!(s.dump("/"), before, "a transaction that never commits leaves nothing");
}

#[test]
fn next_devid_is_one_above_the_highest() {
    let mut s = FakeStore::default();
    assert_eq!(next_devid(&mut s, Kind::Vif, 5).unwrap(), 0);
    for id in [0, 3] {
        add(&mut s, &Layout::vif(5, 0, id, &VifSpec::default()).unwrap()).unwrap();
    }
    assert_eq!(next_devid(&mut s, Kind::Vif, 5).unwrap(), 4);
}

#[test]
fn detach_closes_the_back_end_then_removes_the_front_end() {
    let mut s = FakeStore::default();
    add(&mut s, &Layout::disk(3, 1, &disk("vdev=xvda, target=/a")).unwrap()).unwrap();
    let be = "/local/domain/1/backend/vbd/3/51712";
    // A back end that never closes.
    let e = remove(&mut s, Kind::Vbd, 3, 51712, false, &mut Polls(5, 0)).unwrap_err();
    assert!(matches!(e, DeviceError::Timeout(_)), "{e}");
    assert_eq!(s.value(&format!("{be}/online")), Some("0"));
    assert_eq!(s.value(&format!("{be}/state")), Some("5"));
    assert!(s.value("/local/domain/3/device/vbd/51712/backend").is_some(), "kept without -f");
    // Forced: the front end goes anyway.
    remove(&mut s, Kind::Vbd, 3, 51712, true, &mut Polls(5, 0)).unwrap();
    assert!(s.dump("/local/domain/3/device/vbd/51712").is_empty());
    assert!(s.dump("/libxl/3/device/vbd/51712").is_empty());
    assert!(!s.dump(be).is_empty(), "the back end directory is the agent's to remove");
    let e = remove(&mut s, Kind::Vbd, 3, 51712, false, &mut Polls(5, 0)).unwrap_err();
    assert!(matches!(e, DeviceError::Missing(_)), "{e}");
}

/// A store whose back end closes by itself after some reads of its state.
struct ClosingStore {
    inner: FakeStore,
    state_path: String,
    reads_left: u32,
}

impl Store for ClosingStore {
    fn read(&mut self, path: &str) -> Result<Option<String>, crate::devices_store::StoreError> {
        if path == self.state_path && self.inner.value(path) == Some("5") {
            if self.reads_left == 0 {
                self.inner.write(path, "6")?;
            } else {
                self.reads_left -= 1;
            }
        }
        self.inner.read(path)
    }
    fn write(&mut self, p: &str, v: &str) -> Result<(), crate::devices_store::StoreError> {
        self.inner.write(p, v)
    }
    fn mkdir(&mut self, p: &str) -> Result<(), crate::devices_store::StoreError> {
        self.inner.mkdir(p)
    }
    fn rm(&mut self, p: &str) -> Result<(), crate::devices_store::StoreError> {
        self.inner.rm(p)
    }
    fn directory(&mut self, p: &str) -> Result<Vec<String>, crate::devices_store::StoreError> {
        self.inner.directory(p)
    }
    fn set_perms(&mut self, p: &str, x: &[crate::devices_store::Perm]) -> Result<(), crate::devices_store::StoreError> {
        self.inner.set_perms(p, x)
    }
    fn begin(&mut self) -> Result<(), crate::devices_store::StoreError> {
        self.inner.begin()
    }
    fn commit(&mut self, c: bool) -> Result<(), crate::devices_store::StoreError> {
        self.inner.commit(c)
    }
}

/// A waiter that gives up after `.0` polls; counts them in `.1`.
struct Polls(u32, u32);

impl Waiter for Polls {
    fn wait(&mut self) -> bool {
        self.1 += 1;
        self.1 < self.0
    }
}

#[test]
fn detach_waits_for_the_back_end_to_close() {
    let mut s = ClosingStore {
        inner: FakeStore::default(),
        state_path: "/local/domain/1/backend/vif/4/0/state".into(),
        reads_left: 3,
    };
    add(&mut s, &Layout::vif(4, 1, 0, &VifSpec::default()).unwrap()).unwrap();
    let mut w = Polls(10, 0);
    remove(&mut s, Kind::Vif, 4, 0, false, &mut w).unwrap();
    assert_eq!(w.1, 3, "three polls before the back end said Closed");
    assert!(s.inner.dump("/local/domain/4/device/vif/0").is_empty());
}

#[test]
fn detach_refuses_a_backend_path_the_front_end_forged() {
    let mut s = FakeStore::default();
    s.write("/local/domain/4/device/vif/0/backend", "/tool/../local/domain/0").unwrap();
    let e = remove(&mut s, Kind::Vif, 4, 0, true, &mut Polls(10, 0)).unwrap_err();
    assert!(matches!(e, DeviceError::Invalid(_)), "{e}");
}

#[test]
fn lists_in_xl_layout() {
    let mut s = FakeStore::default();
    add(&mut s, &Layout::disk(3, 1, &disk("vdev=xvdb, target=/b")).unwrap()).unwrap();
    add(&mut s, &Layout::disk(3, 1, &disk("vdev=xvda, target=/a")).unwrap()).unwrap();
    s.write("/local/domain/3/device/vbd/51712/ring-ref", "8").unwrap();
    s.write("/local/domain/3/device/vbd/51712/event-channel", "5").unwrap();
    s.write("/local/domain/3/device/vbd/51712/state", "4").unwrap();
    let rows = list(&mut s, Kind::Vbd, 3).unwrap();
    assert_eq!(
        format_block_list(&rows),
        "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n\
         51712 1   3      4     5      8        /local/domain/1/backend/vbd/3/51712\n\
         51728 1   3      1     -1     -1       /local/domain/1/backend/vbd/3/51728\n"
    );
    add(&mut s, &Layout::vif(3, 1, 0, &VifSpec::parse("mac=00:16:3e:00:00:01").unwrap()).unwrap()).unwrap();
    let rows = list(&mut s, Kind::Vif, 3).unwrap();
    assert_eq!(
        format_network_list(&rows),
        "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       \n\
         0   1  00:16:3e:00:00:01 0      1     -1        -1/-1          /local/domain/1/backend/vif/3/0\n"
    );
    assert!(list(&mut s, Kind::Vif, 9).unwrap().is_empty());
}

/// A fake driver-domain Linux: loop devices 7:0.., interfaces that exist once created.
#[derive(Default)]
struct FakeSystem {
    loops: Vec<Option<(String, bool)>>,
    links: Vec<String>,
    bridges: Vec<(String, String)>,
    missing_files: Vec<String>,
}

impl System for FakeSystem {
    fn loop_attach(&mut self, file: &str, writable: bool) -> Result<(String, u32, u32), String> {
        if self.missing_files.iter().any(|f| f == file) {
            return Err("No such file or directory".into());
        }
        let n = self.loops.iter().position(Option::is_none).unwrap_or(self.loops.len());
        if n == self.loops.len() {
            self.loops.push(None);
        }
        self.loops[n] = Some((file.into(), writable));
        Ok((format!("/dev/loop{n}"), 7, u32::try_from(n).unwrap()))
    }
    fn loop_detach(&mut self, dev: &str) -> Result<(), String> {
        let n: usize = dev.trim_start_matches("/dev/loop").parse().map_err(|_| "not a loop device")?;
        self.loops.get_mut(n).and_then(Option::take).map(|_| ()).ok_or("not attached".into())
    }
    fn link_exists(&mut self, name: &str) -> bool {
        self.links.iter().any(|l| l == name)
    }
    fn bridge_add(&mut self, bridge: &str, name: &str) -> Result<(), String> {
        self.bridges.push((bridge.into(), name.into()));
        Ok(())
    }
    fn bridge_del(&mut self, bridge: &str, name: &str) -> Result<(), String> {
        let before = self.bridges.len();
        self.bridges.retain(|(b, n)| !(b == bridge && n == name));
        if self.bridges.len() == before {
            return Err("not in the bridge".into());
        }
        Ok(())
    }
}

#[test]
fn the_agent_sets_up_a_disk_like_the_block_script_and_tears_it_down() {
    let mut s = FakeStore::default();
    let mut sys = FakeSystem::default();
    let mut agent = Agent::new(1);
    add(&mut s, &Layout::disk(3, 1, &disk("vdev=xvda, access=r, target=/srv/a.img")).unwrap()).unwrap();
    add(&mut s, &Layout::disk(4, 1, &disk("vdev=xvda, target=/srv/b.img")).unwrap()).unwrap();
    let log = agent.scan(&mut s, &mut sys).unwrap();
    assert_eq!(
        log,
        ["vbd 3/51712: /srv/a.img on /dev/loop0 (7:0, ro)", "vbd 4/51712: /srv/b.img on /dev/loop1 (7:1, rw)"]
    );
    let be = "/local/domain/1/backend/vbd/4/51712";
    assert_eq!(s.value(&format!("{be}/physical-device")), Some("7:1"));
    assert_eq!(s.value(&format!("{be}/physical-device-path")), Some("/dev/loop1"));
    assert_eq!(sys.loops[0], Some(("/srv/a.img".into(), false)));
    assert!(agent.scan(&mut s, &mut sys).unwrap().is_empty(), "a second scan changes nothing");
    // Closed by the toolstack and blkback: the loop device goes, and the directory.
    s.write(&format!("{be}/online"), "0").unwrap();
    assert!(agent.scan(&mut s, &mut sys).unwrap().is_empty(), "not closed yet: blkback still uses it");
    s.write(&format!("{be}/state"), "6").unwrap();
    let log = agent.scan(&mut s, &mut sys).unwrap();
    assert_eq!(log, ["vbd 4/51712: closed; /dev/loop1 released; back end directory removed"]);
    assert!(s.dump(be).is_empty());
    assert_eq!(sys.loops[1], None);
    // A directory removed outright (its domain destroyed): the loop device goes too.
    s.rm("/local/domain/1/backend/vbd/3").unwrap();
    let log = agent.scan(&mut s, &mut sys).unwrap();
    assert_eq!(log, ["vbd 3/51712: directory removed; /dev/loop0 released"]);
}

#[test]
fn the_agent_reports_a_missing_target_and_goes_on() {
    let mut s = FakeStore::default();
    let mut sys = FakeSystem { missing_files: vec!["/nope".into()], ..Default::default() };
    let mut agent = Agent::new(0);
    add(&mut s, &Layout::disk(3, 0, &disk("vdev=xvda, target=/nope")).unwrap()).unwrap();
    add(&mut s, &Layout::disk(3, 0, &disk("vdev=xvdb, target=/ok")).unwrap()).unwrap();
    let log = agent.scan(&mut s, &mut sys).unwrap();
    assert_eq!(log[0], "vbd 3/51712: failed: /nope: No such file or directory");
    let be = "/local/domain/0/backend/vbd/3/51712";
    assert_eq!(s.value(&format!("{be}/hotplug-status")), Some("error"));
    assert_eq!(s.value(&format!("{be}/hotplug-error")), Some("/nope: No such file or directory"));
    assert!(s.value(&format!("{be}/physical-device")).is_none());
    assert_eq!(s.value("/local/domain/0/backend/vbd/3/51728/physical-device"), Some("7:0"));
    assert!(agent.scan(&mut s, &mut sys).unwrap().is_empty(), "a failure is not retried in a loop");
}

#[test]
fn the_agent_bridges_a_vif_once_netback_created_it() {
    let mut s = FakeStore::default();
    let mut sys = FakeSystem::default();
    let mut agent = Agent::new(1);
    add(&mut s, &Layout::vif(3, 1, 0, &VifSpec::parse("bridge=br0").unwrap()).unwrap()).unwrap();
    let be = "/local/domain/1/backend/vif/3/0";
    assert!(agent.scan(&mut s, &mut sys).unwrap().is_empty(), "vif3.0 does not exist yet");
    assert_eq!(s.value(&format!("{be}/hotplug-status")), Some(""));
    sys.links.push("vif3.0".into());
    assert_eq!(agent.scan(&mut s, &mut sys).unwrap(), ["vif 3/0: vif3.0 added to br0"]);
    assert_eq!(s.value(&format!("{be}/hotplug-status")), Some("connected"));
    assert_eq!(sys.bridges, [("br0".to_string(), "vif3.0".to_string())]);
    s.write(&format!("{be}/online"), "0").unwrap();
    s.write(&format!("{be}/state"), "6").unwrap();
    assert_eq!(agent.scan(&mut s, &mut sys).unwrap(), ["vif 3/0: closed; vif3.0 left br0; back end directory removed"]);
    assert!(sys.bridges.is_empty());

    // Its front end destroyed, netback unregistered the device and its interface with it:
    // nothing to take out of the bridge.
    s.rm("/local/domain/3/device/vif/0").unwrap();
    s.rm("/libxl/3/device/vif/0").unwrap();
    add(&mut s, &Layout::vif(3, 1, 0, &VifSpec::parse("bridge=br0").unwrap()).unwrap()).unwrap();
    assert_eq!(agent.scan(&mut s, &mut sys).unwrap(), ["vif 3/0: vif3.0 added to br0"]);
    sys.links.clear();
    sys.bridges.clear();
    s.write(&format!("{be}/online"), "0").unwrap();
    s.write(&format!("{be}/state"), "6").unwrap();
    assert_eq!(
        agent.scan(&mut s, &mut sys).unwrap(),
        ["vif 3/0: closed; vif3.0 gone (no longer in br0); back end directory removed"]
    );
}

#[test]
fn the_agent_refuses_hostile_names() {
    let mut s = FakeStore::default();
    let mut sys = FakeSystem { links: vec!["../x".into()], ..Default::default() };
    let mut agent = Agent::new(1);
    add(&mut s, &Layout::vif(3, 1, 0, &VifSpec::parse("vifname=../x").unwrap()).unwrap()).unwrap();
    let log = agent.scan(&mut s, &mut sys).unwrap();
    assert!(log[0].starts_with("vif 3/0: failed: bad interface or bridge name"), "{log:?}");
    assert!(sys.bridges.is_empty());
    // Garbage under the watched directory is skipped.
    s.write("/local/domain/1/backend/vbd/notanumber/x", "1").unwrap();
    s.write("/local/domain/1/backend/vbd/5/notanumber", "1").unwrap();
    assert!(agent.scan(&mut s, &mut sys).unwrap().is_empty());
}

mod commands {
    use crate::devices_cli::*;
    use crate::devices_fake::FakeStore;
    use std::cell::Cell;
    use std::time::Duration;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn resolve(n: &str) -> Option<u32> {
        match n {
            "drivers" | "1" => Some(1),
            "web" | "3" => Some(3),
            _ => None,
        }
    }

    #[test]
    fn block_attach_joins_components_and_names_the_backend() {
        let mut s = FakeStore::default();
        block_attach(&mut s, &resolve, 3, &args(&["format=raw", "vdev=xvda", "backend=drivers", "target=/srv/a.img"]))
            .unwrap();
        assert_eq!(s.value("/local/domain/1/backend/vbd/3/51712/params"), Some("/srv/a.img"));
        block_attach(&mut s, &resolve, 3, &args(&["/srv/b.img,raw,xvdb,r"])).unwrap();
        assert_eq!(s.value("/local/domain/0/backend/vbd/3/51728/mode"), Some("r"), "backend defaults to domain 0");
        let e = block_attach(&mut s, &resolve, 3, &args(&["vdev=xvdc", "backend=nosuch", "target=/x"])).unwrap_err();
        assert_eq!(e, "backend domain `nosuch` does not exist");
        let e = block_attach(&mut s, &resolve, 3, &args(&["format=raw", "vdev=xvda", "backend=drivers", "target=/a"]))
            .unwrap_err();
        assert!(e.starts_with("device already exists"), "{e}");
        assert!(block_attach(&mut s, &resolve, 3, &[]).is_err());
        let out = block_list(&mut s, &[3]).unwrap();
        assert_eq!(out.lines().count(), 3, "{out}");
    }

    #[test]
    fn network_attach_numbers_and_detach_by_mac() {
        let mut s = FakeStore::default();
        assert_eq!(network_attach(&mut s, &resolve, 3, &args(&["bridge=xenbr0", "backend=1"])).unwrap(), 0);
        assert_eq!(network_attach(&mut s, &resolve, 3, &args(&["mac=00:16:3E:AA:BB:CC", "backend=1"])).unwrap(), 1);
        let out = network_list(&mut s, &[3]).unwrap();
        assert!(out.contains("00:16:3e:aa:bb:cc"), "{out}");
        // Nothing closes the back end in the fake store: with -f the front end goes once
        // the polls are spent.
        let slept = Cell::new(0);
        let sleep = |_: Duration| slept.set(slept.get() + 1);
        let mut w = Sleeper { sleep: &sleep, step: Duration::from_millis(100), polls: 100 };
        network_detach(&mut s, 3, "00:16:3e:aa:bb:cc", true, &mut w).unwrap();
        assert_eq!(slept.get(), 100);
        assert_eq!(s.value("/local/domain/1/backend/vif/3/1/state"), Some("5"), "told to close");
        assert!(s.value("/local/domain/3/device/vif/1/backend").is_none());
        assert!(s.value("/local/domain/3/device/vif/0/backend").is_some());
        let mut w = Sleeper { sleep: &sleep, step: Duration::from_millis(100), polls: 3 };
        let e = network_detach(&mut s, 3, "0", false, &mut w).unwrap_err();
        assert!(e.contains("did not close"), "{e}");
        assert_eq!(slept.get(), 103);
        let e = network_detach(&mut s, 3, "00:00:00:00:00:01", false, &mut w).unwrap_err();
        assert_eq!(e, "no vif with MAC 00:00:00:00:00:01");
        let e = block_detach(&mut s, 3, "vda", false, &mut w).unwrap_err();
        assert_eq!(e, "`vda` is not a virtual disk");
        let e = block_detach(&mut s, 3, "xvdz", false, &mut w).unwrap_err();
        assert!(e.starts_with("no such device"), "{e}");
    }
}

#[test]
fn a_back_end_told_to_close_keeps_its_closed_state() {
    // As libxl: `online` 0 always, `state` 5 only over a state that is not 6 already.
    let mut s = FakeStore::default();
    add(&mut s, &Layout::disk(3, 1, &disk("vdev=xvda, target=/a")).unwrap()).unwrap();
    let be = "/local/domain/1/backend/vbd/3/51712";
    s.write(&format!("{be}/state"), "6").unwrap();
    assert!(tell_backend_to_close(&mut s, be, &["/local/domain/3/device/vbd/51712"]).unwrap());
    assert_eq!((s.value(&format!("{be}/online")), s.value(&format!("{be}/state"))), (Some("0"), Some("6")));
    assert!(s.dump("/local/domain/3/device/vbd/51712").is_empty(), "removed in the same transaction");
    assert_eq!(wait_backend(&mut s, be, false, &mut Polls(3, 0)).unwrap(), BackendEnd::Closed);
    assert_eq!(wait_backend(&mut s, be, true, &mut Polls(3, 0)).unwrap(), BackendEnd::Closed);
    s.write(&format!("{be}/state"), "4").unwrap();
    assert!(tell_backend_to_close(&mut s, be, &[]).unwrap());
    assert_eq!(s.value(&format!("{be}/state")), Some("5"));
    assert_eq!(wait_backend(&mut s, be, false, &mut Polls(3, 0)).unwrap(), BackendEnd::Open(Some(5)));
    s.rm(be).unwrap();
    assert!(!tell_backend_to_close(&mut s, be, &[]).unwrap(), "gone: nothing written");
    assert!(s.dump(be).is_empty());
    assert_eq!(wait_backend(&mut s, be, true, &mut Polls(3, 0)).unwrap(), BackendEnd::Removed);
}

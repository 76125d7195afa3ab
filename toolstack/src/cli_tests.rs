//! The commands against the fake control interface.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use crate::cli::{run, Host};
use crate::control::{Control, Unavailable};
use crate::fake_control::Fake;

struct FakeHost {
    files: BTreeMap<String, Vec<u8>>,
    input: Vec<u8>,
    raw: Vec<bool>,
    /// The store as this domain sees it (`None`: no xenstore).
    xenstore: Option<BTreeMap<String, String>>,
}

impl Host for FakeHost {
    fn read_file(&self, path: &str) -> std::io::Result<Vec<u8>> {
        self.files.get(path).cloned().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn sleep(&self, _: Duration) {}
    fn console_input(&mut self) -> Box<dyn Read + Send> {
        Box::new(std::io::Cursor::new(std::mem::take(&mut self.input)))
    }
    fn raw_terminal(&mut self, raw: bool) {
        self.raw.push(raw);
    }
    fn xenstore_read(&mut self, path: &str) -> Option<String> {
        self.xenstore.as_ref()?.get(path).cloned()
    }
    fn xenstore_write(&mut self, path: &str, value: &str) -> Result<(), String> {
        let store = self.xenstore.as_mut().ok_or("no xenstore")?;
        store.insert(path.into(), value.into());
        Ok(())
    }
}

const WEB: &str = "name = \"web\"\nmemory = 256\nvcpus = 2\nkernel = \"/boot/Image\"\n\
                   ramdisk = \"/boot/initrd\"\nextra = \"console=hvc0\"\n";

fn host() -> FakeHost {
    let mut files = BTreeMap::new();
    files.insert("web.cfg".to_string(), WEB.as_bytes().to_vec());
    files.insert("/boot/Image".to_string(), vec![1; 1000]);
    files.insert("/boot/initrd".to_string(), vec![2; 10]);
    FakeHost { files, input: Vec::new(), raw: Vec::new(), xenstore: None }
}

fn keelctl(ctl: &mut dyn Control, h: &mut FakeHost, line: &str) -> (u8, String, String) {
    let args: Vec<String> = line.split_whitespace().map(String::from).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, ctl, h, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn create_list_destroy() {
    let (mut f, mut h) = (Fake::new(), host());
    let (code, _, err) = keelctl(&mut f, &mut h, "create web.cfg");
    assert_eq!((code, err.as_str()), (0, "Parsing config from web.cfg\n"));
    assert_eq!(f.created, [("web".to_string(), 1000, Some(10), "console=hvc0".to_string())]);
    let (code, out, _) = keelctl(&mut f, &mut h, "list");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
         Domain-0                                     0   512     2     r-----       1.0\n\
         web                                          1   256     2     -b----       2.0\n"
    );
    let (code, _, err) = keelctl(&mut f, &mut h, "create web.cfg");
    assert_eq!(code, 1);
    assert!(err.contains("a domain named `web` already exists"), "{err}");
    assert_eq!(keelctl(&mut f, &mut h, "pause web").0, 0);
    assert!(keelctl(&mut f, &mut h, "list web").1.contains("-bp---"));
    assert_eq!(keelctl(&mut f, &mut h, "unpause 1").0, 0);
    assert_eq!(keelctl(&mut f, &mut h, "destroy web").0, 0);
    let (code, _, err) = keelctl(&mut f, &mut h, "destroy web");
    assert_eq!((code, err.as_str()), (1, "keelctl destroy: Domain 'web' does not exist.\n"));
    assert_eq!(f.free_mib, 2048, "memory back");
}

#[test]
fn create_errors_name_file_line_and_key() {
    let (mut f, mut h) = (Fake::new(), host());
    h.files.insert("bad.cfg".into(), b"name = 'x'\nkernel = '/boot/Image'\nmemory = 'lots'\n".to_vec());
    let (code, _, err) = keelctl(&mut f, &mut h, "create bad.cfg");
    assert_eq!(code, 1);
    assert!(err.contains("bad.cfg:3: memory: expected a number"), "{err}");
    h.files.insert("nok.cfg".into(), b"name = 'x'\n\nkernel = '/boot/none'\n".to_vec());
    let (_, _, err) = keelctl(&mut f, &mut h, "create nok.cfg");
    assert!(err.contains("nok.cfg:3: kernel: cannot read `/boot/none`"), "{err}");
    h.files.insert("big.cfg".into(), b"name = 'x'\nkernel = '/boot/Image'\nmemory = 9999\n".to_vec());
    let (_, _, err) = keelctl(&mut f, &mut h, "create big.cfg");
    assert!(err.contains("big.cfg:3: memory: not enough free memory: 9999 MiB asked, 2048 MiB free"), "{err}");
    assert_eq!(keelctl(&mut f, &mut h, "create missing.cfg").0, 1);
    assert_eq!(f.domains.len(), 1, "nothing half-built");
}

#[test]
fn dry_run_needs_no_hypervisor() {
    let mut h = host();
    let (code, out, _) = keelctl(&mut Unavailable("no backend".into()), &mut h, "create -n web.cfg");
    assert_eq!(code, 0);
    assert!(out.contains("memory: 256 MiB (maxmem 256 MiB)\nvcpus: 2 (maxvcpus 2)\n"), "{out}");
    assert!(!out.contains("vuart") && !out.contains("xenstore_domain"), "{out}");
    let text = "name='xs'\nkernel='/boot/Image'\nvuart='sbsa_uart'\nxenstore_domain=1\n";
    h.files.insert("xs.cfg".to_string(), text.as_bytes().to_vec());
    let (code, out, err) = keelctl(&mut Unavailable("no backend".into()), &mut h, "create -n xs.cfg");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("vuart: sbsa_uart\nxenstore_domain: yes\n"), "{out}");
}

#[test]
fn without_the_control_interface_every_command_says_so() {
    let mut h = host();
    for cmd in ["list", "create web.cfg", "destroy 1", "info", "vcpu-list", "sched-credit", "console 1"] {
        let (code, _, err) = keelctl(&mut Unavailable("no backend".into()), &mut h, cmd);
        assert_eq!(code, 1, "{cmd}");
        assert!(err.contains("control interface is not available: no backend"), "{cmd}: {err}");
    }
}

#[test]
fn shutdown_and_reboot_wait() {
    let (mut f, mut h) = (Fake::new(), host());
    keelctl(&mut f, &mut h, "create web.cfg");
    let (code, _, err) = keelctl(&mut f, &mut h, "shutdown -w web");
    assert_eq!(code, 0);
    assert_eq!(err, "Shutting down domain 1\nWaiting for 1 domains\nDomain 1 has been shut down\n");
    keelctl(&mut f, &mut h, "create web.cfg");
    f.obedient = false;
    assert_eq!(keelctl(&mut f, &mut h, "reboot web").0, 0);
    assert!(f.domains.contains_key(&2));
}

#[test]
fn shutdown_asks_a_guest_that_obeys_through_xenstore() {
    let (mut f, mut h) = (Fake::new(), host());
    keelctl(&mut f, &mut h, "create web.cfg");
    let feature = "/local/domain/1/control/feature-poweroff";
    h.xenstore = Some(BTreeMap::from([(feature.to_string(), "1".to_string())]));
    assert_eq!(keelctl(&mut f, &mut h, "shutdown web").0, 0);
    let store = h.xenstore.as_ref().unwrap();
    assert_eq!(store.get("/local/domain/1/control/shutdown").map(String::as_str), Some("poweroff"));
    assert!(f.domains.contains_key(&1), "asked, not ended by the hypervisor");
    // No feature-reboot: Keel's remote shutdown, as without xenstore.
    assert_eq!(keelctl(&mut f, &mut h, "reboot web").0, 0);
    assert!(!f.domains.contains_key(&1));
}

#[test]
fn console_passes_bytes_until_ctrl_bracket() {
    let (mut f, mut h) = (Fake::new(), host());
    keelctl(&mut f, &mut h, "create web.cfg");
    f.console_out.insert(1, vec![b"login: ".to_vec()]);
    h.input = b"root\n\x1dignored".to_vec();
    let (code, out, _) = keelctl(&mut f, &mut h, "console web");
    assert_eq!(code, 0);
    assert_eq!(f.console_in[&1], b"root\n");
    assert!(out.starts_with("login: "), "{out:?}");
    assert_eq!(h.raw, [true, false]);
    // create -c attaches at once.
    h.input = b"\x1d".to_vec();
    h.files.insert("db.cfg".into(), b"name='db'\nkernel='/boot/Image'\n".to_vec());
    assert_eq!(keelctl(&mut f, &mut h, "create db.cfg -c").0, 0);
}

#[test]
fn vcpus_sched_info() {
    let (mut f, mut h) = (Fake::new(), host());
    keelctl(&mut f, &mut h, "create web.cfg");
    assert_eq!(keelctl(&mut f, &mut h, "vcpu-pin web 1 0-3,^2").0, 0);
    let (_, out, _) = keelctl(&mut f, &mut h, "vcpu-list web");
    assert!(out.starts_with("Name                             "), "{out}");
    assert!(out.contains("web                                  1     1     1   -b-       0.1  0-1,3 / all\n"), "{out}");
    assert_eq!(keelctl(&mut f, &mut h, "vcpu-pin web all all").0, 0);
    assert_eq!(keelctl(&mut f, &mut h, "vcpu-pin web 0 1 2").0, 2, "soft affinity");
    assert_eq!(keelctl(&mut f, &mut h, "sched-credit -d web -w 512 -c 50").0, 0);
    let (_, out, _) = keelctl(&mut f, &mut h, "sched-credit");
    assert!(out.contains("web                                  1    512   50\n"), "{out}");
    assert_eq!(keelctl(&mut f, &mut h, "sched-credit -d web -w 0").0, 2);
    assert_eq!(keelctl(&mut f, &mut h, "sched-credit -w 5").0, 2);
    let (_, out, _) = keelctl(&mut f, &mut h, "info");
    assert!(out.contains("nr_cpus                : 4\n"), "{out}");
    assert!(out.contains("free_memory            : 1792\n"), "{out}");
}

#[test]
fn help_on_every_command() {
    let mut h = host();
    let (code, out, _) = keelctl(&mut Unavailable("no backend".into()), &mut h, "--help");
    assert_eq!(code, 0);
    for cmd in [
        "create",
        "list",
        "destroy",
        "shutdown",
        "reboot",
        "pause",
        "unpause",
        "console",
        "vcpu-list",
        "vcpu-pin",
        "sched-credit",
        "info",
    ] {
        assert!(out.contains(&format!(" {cmd} ")), "{cmd}");
        let (code, out, _) = keelctl(&mut Unavailable("no backend".into()), &mut h, &format!("{cmd} --help"));
        assert_eq!(code, 0);
        assert!(out.starts_with(&format!("Usage: keelctl {cmd}")), "{out}");
    }
    assert_eq!(keelctl(&mut Unavailable("no backend".into()), &mut h, "frobnicate").0, 2);
    assert_eq!(keelctl(&mut Unavailable("no backend".into()), &mut h, "").0, 2);
    assert_eq!(keelctl(&mut Unavailable("no backend".into()), &mut h, "destroy").0, 2);
    assert_eq!(keelctl(&mut Unavailable("no backend".into()), &mut h, "list -x").0, 2);
}

#[test]
fn destroy_returns_once_the_domain_is_no_longer_listed() {
    // Keel lists a destroyed domain as dying until its memory is back.
    let (mut f, mut h) = (Fake::new(), host());
    f.dying_lists = 3;
    assert_eq!(keelctl(&mut f, &mut h, "create web.cfg").0, 0);
    let (code, _, err) = keelctl(&mut f, &mut h, "destroy web");
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(f.domains.len() == 1 && f.dying.is_empty(), "gone when destroy returned");
    assert_eq!(f.free_mib, 2048, "memory back");
    assert_eq!(keelctl(&mut f, &mut h, "create web.cfg").0, 0, "created again at once");
    // Held for good (another domain never unmaps its pages): destroy says so, and ends.
    f.dying_lists = u32::MAX;
    let (code, out, err) = keelctl(&mut f, &mut h, "destroy web");
    assert_eq!(code, 0);
    assert_eq!(err, "warning: domain 2 is destroyed but still dying: another domain still maps its memory\n");
    assert!(
        keelctl(&mut f, &mut h, "list")
            .1
            .contains("web                                          2   256     2     -----d"),
        "{out}"
    );
    let (code, _, err) = keelctl(&mut f, &mut h, "destroy web");
    assert_eq!((code, err.as_str()), (1, "keelctl destroy: domain 2 does not exist\n"), "nothing more to destroy");
}

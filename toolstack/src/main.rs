//! The `keelctl` program: the commands of [`keelctl::cli`] over Keel's control interface,
//! reached through `/dev/xen/privcmd` ([`keelctl::keel_control::KeelControl`]).
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Read};
use std::process::{Command, ExitCode};
use std::time::Duration;

use keelctl::cli::{self, Host};
use keelctl::control::*;
use keelctl::cpulist::CpuSet;
use keelctl::devices_store::Watching;
use keelctl::keel_control::KeelControl;
use keelctl::privcmd::{OpenError, Privcmd, DEVICE};
use keelctl::xenbus::{self, Xenbus};

struct System {
    saved_tty: Option<String>,
}

impl System {
    /// A connection to xenstore through this domain's kernel.
    fn xenbus(&self) -> std::io::Result<Xenbus<std::fs::File>> {
        let dev = std::fs::OpenOptions::new().read(true).write(true).open(xenbus::DEVICE)?;
        Ok(Xenbus::new(dev))
    }
}

impl Host for System {
    fn read_file(&self, path: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }

    fn xenstore_read(&mut self, path: &str) -> Option<String> {
        self.xenbus().ok()?.read(path).ok()
    }

    fn xenstore_write(&mut self, path: &str, value: &str) -> Result<(), String> {
        self.xenbus().map_err(|e| format!("{}: {e}", xenbus::DEVICE))?.write(path, value).map_err(|e| e.to_string())
    }

    fn xenbus_backend_setup(&mut self, xenstore: DomId) -> std::io::Result<u32> {
        let id = u16::try_from(xenstore).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        keelctl::xenbus_backend::setup(id)
    }

    fn store(&mut self) -> Result<Box<dyn Watching>, String> {
        Ok(Box::new(self.xenbus().map_err(|e| format!("{}: {e}", xenbus::DEVICE))?))
    }

    fn state_write(&mut self, name: &str, text: &str) -> std::io::Result<()> {
        let dir = state_dir();
        std::fs::create_dir_all(&dir)?;
        // Written whole, then renamed: the watcher never reads half a record.
        let tmp = dir.join(format!(".{name}.new"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, dir.join(name))
    }

    fn state_remove(&mut self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(state_dir().join(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    fn state_files(&self) -> std::io::Result<Vec<(String, String)>> {
        let entries = match std::fs::read_dir(state_dir()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            r => r?,
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                out.push((name, text));
            }
        }
        Ok(out)
    }

    fn devd_system(&mut self) -> Result<Box<dyn keelctl::devd::System>, String> {
        Ok(Box::new(keelctl::devd_linux::LinuxSystem))
    }

    fn console_input(&mut self) -> Box<dyn Read + Send> {
        Box::new(std::io::stdin())
    }

    fn raw_terminal(&mut self, raw: bool) {
        if !std::io::stdin().is_terminal() {
            return;
        }
        // stty (busybox has it) rather than termios calls: keelctl's only unsafe is the
        // privcmd ioctl.
        if raw {
            let saved = Command::new("stty").arg("-g").output().ok();
            self.saved_tty = saved.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            let _ = Command::new("stty").args(["raw", "-echo"]).status();
        } else if let Some(s) = self.saved_tty.take() {
            let _ = Command::new("stty").arg(s).status();
        }
    }
}

/// Where keelctl keeps its state (the records of `create` for `watch`): `$KEELCTL_STATE`,
/// else `/run/keelctl` (a tmpfs, as Xen's `/var/run/xen`: records do not outlive a boot).
fn state_dir() -> std::path::PathBuf {
    std::env::var_os("KEELCTL_STATE").map_or_else(|| "/run/keelctl".into(), Into::into)
}

/// Keel's control interface, opened at the first call (so `--help` and `create -n` need
/// no device), or a backend that says why it cannot be reached.
#[derive(Default)]
struct Lazy(Option<Box<dyn Control>>);

impl Lazy {
    fn get(&mut self) -> &mut dyn Control {
        self.0.get_or_insert_with(backend).as_mut()
    }
}

impl Control for Lazy {
    fn host_info(&mut self) -> Result<HostInfo, ControlError> {
        self.get().host_info()
    }
    fn list(&mut self) -> Result<Vec<DomainInfo>, ControlError> {
        self.get().list()
    }
    fn create(&mut self, r: &CreateRequest) -> Result<DomId, ControlError> {
        self.get().create(r)
    }
    fn destroy(&mut self, id: DomId) -> Result<(), ControlError> {
        self.get().destroy(id)
    }
    fn pause(&mut self, id: DomId) -> Result<(), ControlError> {
        self.get().pause(id)
    }
    fn unpause(&mut self, id: DomId) -> Result<(), ControlError> {
        self.get().unpause(id)
    }
    fn shutdown(&mut self, id: DomId, kind: ShutdownKind) -> Result<(), ControlError> {
        self.get().shutdown(id, kind)
    }
    fn vcpus(&mut self, id: DomId) -> Result<Vec<VcpuInfo>, ControlError> {
        self.get().vcpus(id)
    }
    fn pin_vcpu(&mut self, id: DomId, vcpu: u32, hard: &CpuSet) -> Result<(), ControlError> {
        self.get().pin_vcpu(id, vcpu, hard)
    }
    fn sched_credit(&mut self, id: DomId) -> Result<Sched, ControlError> {
        self.get().sched_credit(id)
    }
    fn set_sched_credit(&mut self, id: DomId, s: Sched) -> Result<(), ControlError> {
        self.get().set_sched_credit(id, s)
    }
    fn console_read(&mut self, id: DomId) -> Result<Vec<u8>, ControlError> {
        self.get().console_read(id)
    }
    fn console_write(&mut self, id: DomId, data: &[u8]) -> Result<(), ControlError> {
        self.get().console_write(id, data)
    }
    fn store_connect(&mut self, port: u32) -> Result<(), ControlError> {
        self.get().store_connect(port)
    }
    fn has_store(&mut self, id: DomId) -> bool {
        self.get().has_store(id)
    }
}

/// Keel's control interface, or a backend that says why it cannot be reached.
fn backend() -> Box<dyn Control> {
    match Privcmd::open() {
        Ok(p) => Box::new(KeelControl::new(p)),
        Err(OpenError::Missing) => Box::new(Unavailable(format!(
            "{DEVICE} does not exist: load the xen-privcmd module (`modprobe xen-privcmd`) in the control domain"
        ))),
        Err(OpenError::Other(e)) => Box::new(Unavailable(format!("cannot open {DEVICE}: {e}"))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut host = System { saved_tty: None };
    let mut ctl = Lazy::default();
    let code = cli::run(&args, &mut ctl, &mut host, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}

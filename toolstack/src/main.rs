//! The `keelctl` program: the commands of [`keelctl::cli`] over Keel's control interface,
//! reached through `/dev/xen/privcmd` ([`keelctl::keel_control::KeelControl`]).
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Read};
use std::process::{Command, ExitCode};
use std::time::Duration;

use keelctl::cli::{self, Host};
use keelctl::control::{Control, Unavailable};
use keelctl::keel_control::KeelControl;
use keelctl::privcmd::{OpenError, Privcmd, DEVICE};

struct System {
    saved_tty: Option<String>,
}

impl Host for System {
    fn read_file(&self, path: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
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
    let mut ctl = backend();
    let code = cli::run(&args, ctl.as_mut(), &mut host, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}

//! The frame keelctl's commands are written in: what they need from the machine
//! ([`Host`]), what they are handed ([`Ctx`]) and give back ([`Failure`]), their table
//! entries ([`Command`]) and option parsing ([`getopt`]). `cli.rs` and `cli_devices.rs`
//! hold the commands themselves.

use std::io::{Read, Write};
use std::time::Duration;

use crate::control::{Control, ControlError, DomId};
use crate::devd;
use crate::devices_store::Watching;

/// What the commands need from the machine they run on.
pub trait Host {
    /// The bytes of a file.
    fn read_file(&self, path: &str) -> std::io::Result<Vec<u8>>;
    /// Waits (polling for a domain to go, console idling).
    fn sleep(&self, d: Duration);
    /// The console's input (the terminal).
    fn console_input(&mut self) -> Box<dyn Read + Send>;
    /// Puts the terminal in raw mode for a console session, or back.
    fn raw_terminal(&mut self, raw: bool);
    /// Grants this domain's xenstore ring to domain `xenstore` and allocates a port
    /// toward it (Linux's `IOCTL_XENBUS_BACKEND_SETUP`); returns the port.
    fn xenbus_backend_setup(&mut self, xenstore: DomId) -> std::io::Result<u32> {
        let _ = xenstore;
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
    /// The xenstore value at `path`, read as this domain (`/dev/xen/xenbus`); `None` if
    /// there is no xenstore to ask or it has no such value.
    fn xenstore_read(&mut self, path: &str) -> Option<String> {
        let _ = path;
        None
    }
    /// Writes a xenstore value as this domain; the error says why not.
    fn xenstore_write(&mut self, path: &str, value: &str) -> Result<(), String> {
        let _ = (path, value);
        Err("no xenstore".into())
    }
    /// A xenstore connection as this domain, for the device commands.
    fn store(&mut self) -> Result<Box<dyn Watching>, String> {
        Err("no xenstore".into())
    }
    /// Saves keelctl's state file `name` (the records `create` leaves for `watch`).
    fn state_write(&mut self, name: &str, text: &str) -> std::io::Result<()> {
        let _ = (name, text);
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
    /// Removes state file `name`; one that is not there is no error.
    fn state_remove(&mut self, name: &str) -> std::io::Result<()> {
        let _ = name;
        Ok(())
    }
    /// Every state file: its name and text.
    fn state_files(&self) -> std::io::Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
    /// The loop devices and bridges of this (driver) domain, for `devd`.
    fn devd_system(&mut self) -> Result<Box<dyn devd::System>, String> {
        Err("no hotplug system".into())
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) ctl: &'a mut dyn Control,
    pub(crate) host: &'a mut dyn Host,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
}

pub(crate) enum Failure {
    Usage(String),
    Error(String),
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        Failure::Error(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Error(format!("output: {e}"))
    }
}

pub(crate) type Run = fn(&mut Ctx, &[String]) -> Result<(), Failure>;

pub(crate) struct Command {
    pub(crate) name: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) usage: &'static str,
    pub(crate) options: &'static str,
    pub(crate) run: Run,
}

/// Splits `args` into single-letter options (`with_value` ones take the next argument or
/// `=value`) and positional arguments.
#[allow(clippy::type_complexity)]
pub(crate) fn getopt(
    args: &[String],
    flags: &str,
    with_value: &str,
) -> Result<(Vec<(char, String)>, Vec<String>), Failure> {
    let mut opts = Vec::new();
    let mut pos = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(body) = a.strip_prefix('-').filter(|b| !b.is_empty()) else {
            pos.push(a.clone());
            continue;
        };
        let mut chars = body.chars();
        let c = chars.next().unwrap_or('-');
        let tail: String = chars.collect();
        if flags.contains(c) && tail.is_empty() {
            opts.push((c, String::new()));
        } else if with_value.contains(c) {
            let v = match tail.strip_prefix('=').map(String::from).or((!tail.is_empty()).then_some(tail)) {
                Some(v) => v,
                None => it.next().cloned().ok_or_else(|| Failure::Usage(format!("-{c} needs a value")))?,
            };
            opts.push((c, v));
        } else {
            return Err(Failure::Usage(format!("unknown option `{a}`")));
        }
    }
    Ok((opts, pos))
}

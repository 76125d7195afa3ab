//! The hotplug agent's [`System`] in a Linux driver domain, with busybox's tools (Debian's
//! `busybox-static` has `losetup` and `brctl` and `ip`): a loop device over the disk's
//! file, a vif in a bridge. The loop device's numbers come from its device node.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::devd::System;

/// The driver domain's Linux, through its commands.
pub struct LinuxSystem;

fn run(prog: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog).args(args).output().map_err(|e| format!("{prog}: {e}"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(format!("{prog} {}: {why} ({})", args.join(" "), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Linux's `MAJOR()`/`MINOR()` of a `dev_t` as glibc encodes it.
pub fn major_minor(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (u32::try_from(major).unwrap_or(u32::MAX), u32::try_from(minor).unwrap_or(u32::MAX))
}

impl System for LinuxSystem {
    fn loop_attach(&mut self, file: &str, writable: bool) -> Result<(String, u32, u32), String> {
        if !Path::new(file).is_file() {
            return Err("not a regular file".into());
        }
        let dev = run("losetup", &["-f"])?;
        if !dev.starts_with("/dev/") {
            return Err(format!("losetup -f answered `{dev}`"));
        }
        if writable {
            run("losetup", &[&dev, file])?;
        } else {
            run("losetup", &["-r", &dev, file])?;
        }
        let meta = std::fs::metadata(&dev).map_err(|e| format!("{dev}: {e}"))?;
        let (major, minor) = major_minor(meta.rdev());
        Ok((dev, major, minor))
    }

    fn loop_detach(&mut self, dev: &str) -> Result<(), String> {
        run("losetup", &["-d", dev]).map(|_| ())
    }

    fn link_exists(&mut self, name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    fn bridge_add(&mut self, bridge: &str, name: &str) -> Result<(), String> {
        if !self.link_exists(bridge) {
            run("brctl", &["addbr", bridge])?;
        }
        run("brctl", &["addif", bridge, name])?;
        run("ip", &["link", "set", bridge, "up"])?;
        run("ip", &["link", "set", name, "up"]).map(|_| ())
    }

    fn bridge_del(&mut self, bridge: &str, name: &str) -> Result<(), String> {
        // Netback may have removed the interface already (the front end closed first):
        // it left the bridge with it, as Xen's vif-bridge script accepts.
        // It may also go while `brctl` runs: brctl then finds no such interface (its name
        // is unregistered before its sysfs directory goes), which is that same case.
        if !self.link_exists(name) {
            return Ok(());
        }
        match run("brctl", &["delif", bridge, name]) {
            Err(e) if e.contains("No such device") || !self.link_exists(name) => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_decode_as_glibc_encodes_them() {
        // makedev(7, 0): /dev/loop0; makedev(259, 3); makedev(7, 300).
        assert_eq!(major_minor(0x700), (7, 0));
        assert_eq!(major_minor(0x10303), (259, 3));
        assert_eq!(major_minor(0x0010_072c), (7, 300));
    }
}

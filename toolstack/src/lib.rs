//! keelctl, Keel's toolstack: xl's commands and output formats and xl.cfg files, over the
//! [`control::Control`] interface.
//!
//! - [`xlcfg`]: the xl.cfg(5) syntax; [`domain_config`]: the keys keelctl supports.
//! - [`cpulist`], [`disk`], [`vif`]: xl's CPU lists and device specifications.
//! - [`devices`]: block and network devices in xenstore as libxl lays them out, over
//!   [`devices_store::Store`]; [`create_devices`]: those of a configuration at `create`
//!   and `destroy`; [`devices_orphans`]: those of a dead back end domain; [`devd`]: the
//!   hotplug agent of a driver domain, and
//!   [`devd_linux`] what it does in a Linux driver domain (busybox's tools).
//! - [`control`]: the control interface; [`keel_control`]: over Keel's control hypercall,
//!   issued through Linux's `/dev/xen/privcmd` ([`privcmd`], keelctl's only `unsafe`).
//! - [`watch`]: what `keelctl watch` does with a domain that ended by itself
//!   (`on_poweroff`, `on_reboot`, `on_crash`); the command is in `cli_watch`.
//! - [`cli`]: the commands; [`format`]: xl's output; [`console`]: the console session.
//! - [`xenbus`]: a xenstore client over `/dev/xen/xenbus` (`shutdown`, `reboot`);
//!   [`xenbus_store`]: the [`devices_store::Store`] over it (the device commands of
//!   `cli_devices`, `devd`).
//! - [`xenbus_backend`]: the initial domain's xenstore ring handed to a xenstore domain
//!   (`xenstore-connect`; an `ioctl`, keelctl's other `unsafe`).
#![deny(unsafe_code)]

pub mod cli;
mod cli_create;
mod cli_devices;
mod cli_watch;
pub mod command;
pub mod console;
pub mod control;
pub mod cpulist;
pub mod create_devices;
pub mod devd;
pub mod devd_linux;
pub mod devices;
pub mod devices_cli;
#[cfg(test)]
mod devices_fake;
pub mod devices_orphans;
#[cfg(test)]
mod devices_orphans_tests;
pub mod devices_store;
#[cfg(test)]
mod devices_tests;
pub mod disk;
pub mod domain_config;
pub mod format;
pub mod keel_control;
pub mod keel_create;
pub mod privcmd;
pub mod vif;
pub mod watch;
mod watch_records;
pub mod xenbus;
pub mod xenbus_backend;
pub mod xenbus_store;
pub mod xlcfg;

#[cfg(test)]
mod cli_devices_tests;
#[cfg(test)]
mod cli_tests;
#[cfg(test)]
mod fake_control;
#[cfg(test)]
mod watch_tests;

//! What `keelctl watch` decides about the domains `keelctl create` made, once they end
//! by themselves: xl's `on_poweroff`, `on_reboot` and `on_crash` (`xl.cfg(5)`).
//!
//! `create` saves a [`Record`] of each domain (its id, and the configuration text it was
//! made from, as xl keeps it for its per-domain daemon) and asks Keel to keep the domain
//! after the ends whose action is not plain destruction ([`keep_for`]): Keel then leaves
//! it listed as shut down or crashed instead of destroying it. [`plan`] compares the
//! records with Keel's list and says what to do with each: nothing while it runs,
//! [`Step::Destroy`], [`Step::Restart`] or [`Step::Preserve`] once it shut down, and
//! [`Step::Forget`] once it is gone (Keel destroyed it at its end, or someone else did):
//! then only its devices and xenstore nodes are left to clean, as `keelctl destroy` does.

use std::collections::BTreeSet;

use crate::control::{DomId, DomainInfo, Keep, ShutdownReason};
use crate::domain_config::Action;

/// The configured action for each way a domain can end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ends {
    pub poweroff: Action,
    pub reboot: Action,
    pub crash: Action,
}

/// What the watcher does with one recorded domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// It is gone: release what it served as a back end, remove its devices' front ends
    /// and its xenstore home, and drop the record.
    Forget,
    /// It ended and its action destroys it: as [`Step::Forget`], after destroying it.
    Destroy,
    /// It ended and its action restarts it: destroyed as above, then created again from
    /// the saved configuration (with the same devices), under a new record.
    Restart,
    /// It ended and its action keeps it: left listed as it is, until `keelctl destroy`.
    Preserve,
}

/// What the watcher acts on: one domain `create` made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: DomId,
    pub name: String,
    /// The file the configuration was read from (for messages).
    pub path: String,
    /// The configuration, as it was when the domain was created.
    pub text: String,
    pub ends: Ends,
}

/// The action for `reason`; `None` for a suspend (the domain is being saved: not an end).
pub fn action_for(ends: &Ends, reason: ShutdownReason) -> Option<Action> {
    match reason {
        ShutdownReason::Poweroff => Some(ends.poweroff),
        ShutdownReason::Reboot | ShutdownReason::SoftReset => Some(ends.reboot),
        ShutdownReason::Crash | ShutdownReason::Watchdog => Some(ends.crash),
        ShutdownReason::Suspend => None,
    }
}

/// The step an action asks for. Keel has no core dumps and no soft reset: `coredump-*`
/// act as their second half, `soft-reset` and `rename-restart` as `restart` (the old
/// domain is destroyed, not renamed).
pub fn step_of(action: Action) -> Step {
    match action {
        Action::Destroy | Action::CoredumpDestroy => Step::Destroy,
        Action::Restart | Action::RenameRestart | Action::CoredumpRestart | Action::SoftReset => Step::Restart,
        Action::Preserve => Step::Preserve,
    }
}

/// The ends Keel must keep a domain after: those whose step is not [`Step::Destroy`]
/// (a destroyed domain needs no keeping; the watcher cleans up once it is gone).
pub fn keep_for(ends: &Ends) -> Keep {
    let keeps = |a: Action| step_of(a) != Step::Destroy;
    Keep { poweroff: keeps(ends.poweroff), reboot: keeps(ends.reboot), crash: keeps(ends.crash) }
}

/// Why a domain ended, in xl's words.
pub fn describe(reason: ShutdownReason) -> &'static str {
    match reason {
        ShutdownReason::Poweroff => "shutdown",
        ShutdownReason::Reboot => "reboot",
        ShutdownReason::Suspend => "suspend",
        ShutdownReason::Crash | ShutdownReason::Watchdog => "crashed",
        ShutdownReason::SoftReset => "soft_reset",
    }
}

/// What to do with each record, given Keel's list: `(id, step)` for every record that
/// needs something done. A domain already preserved (`preserved`) is left alone; a
/// listed domain of another name under the record's id (the id was used again) counts
/// as gone, and so does a dying one (destroyed; Keel lists it until its memory is back,
/// which may wait for its back ends to let go of its pages).
pub fn plan(records: &[Record], listed: &[DomainInfo], preserved: &BTreeSet<DomId>) -> Vec<(DomId, Step)> {
    let mut steps = Vec::new();
    for r in records {
        let Some(d) = listed.iter().find(|d| d.id == r.id && d.name == r.name) else {
            steps.push((r.id, Step::Forget));
            continue;
        };
        if d.dying {
            steps.push((r.id, Step::Forget));
            continue;
        }
        if preserved.contains(&r.id) {
            continue;
        }
        let Some(reason) = d.shutdown else { continue };
        if let Some(action) = action_for(&r.ends, reason) {
            steps.push((r.id, step_of(action)));
        }
    }
    steps
}

/// A record as `create` saves it: a first line naming the domain and the file, then the
/// configuration text.
pub fn render(r: &Record) -> String {
    format!("# keelctl: domain {} ({}) from {}\n{}", r.id, r.name, r.path, r.text)
}

/// The id, name and file of a saved record, and its configuration text; `None` if it is
/// not one.
pub fn parse_saved(saved: &str) -> Option<(DomId, String, String, String)> {
    let (first, text) = saved.split_once('\n')?;
    let rest = first.strip_prefix("# keelctl: domain ")?;
    let (id, rest) = rest.split_once(" (")?;
    let (name, path) = rest.split_once(") from ")?;
    Some((id.parse().ok()?, name.to_string(), path.to_string(), text.to_string()))
}

//! `keelctl watch`: what xl leaves running after `xl create` (its per-domain daemon), as
//! one daemon for all domains in the control domain. Woken by xenstore's `@releaseDomain`
//! (the xenstore domain fires it when Keel raises `VIRQ_DOM_EXC` for a domain that shut
//! down, crashed or was destroyed), it compares the records `create` saved with Keel's
//! list ([`crate::watch::plan`]) and does what `on_poweroff`, `on_reboot` and `on_crash`
//! say; for a domain that is gone or destroyed, what `keelctl destroy` does for its
//! devices and xenstore nodes.

use std::collections::BTreeSet;

use crate::cli_create;
use crate::cli_devices;
use crate::command::{getopt, Command, Ctx, Failure};
use crate::control::DomId;
use crate::watch::{self, Step};
use crate::watch_records::{drop_record, preserved_name, records};

pub(crate) const COMMANDS: &[Command] = &[Command {
    name: "watch",
    summary: "Act on domains that end by themselves (on_poweroff, on_reboot, on_crash)",
    usage: "[-1]",
    options: "-1  One pass over the domains, then exit, instead of watching @releaseDomain",
    run: watch_cmd,
}];

fn watch_cmd(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (opts, pos) = getopt(args, "1", "")?;
    if !pos.is_empty() {
        return Err(Failure::Usage("too many arguments".into()));
    }
    if !opts.is_empty() {
        return pass(ctx);
    }
    let mut s = ctx.host.store().map_err(Failure::Error)?;
    s.watch("@releaseDomain", "keel-watch").map_err(|e| Failure::Error(e.to_string()))?;
    writeln!(ctx.out, "keel-watch: watching @releaseDomain")?;
    ctx.out.flush()?;
    loop {
        pass(ctx)?;
        ctx.out.flush()?;
        s.wait_event().map_err(|e| Failure::Error(e.to_string()))?;
    }
}

/// One look at every recorded domain: each that ended gets its action, one line each.
/// A failed restart is reported and the watcher goes on.
pub(crate) fn pass(ctx: &mut Ctx) -> Result<(), Failure> {
    let records = records(ctx);
    let preserved: BTreeSet<DomId> = ctx
        .host
        .state_files()
        .unwrap_or_default()
        .iter()
        .filter_map(|(n, _)| n.strip_prefix("preserved-").and_then(|i| i.parse().ok()))
        .collect();
    let listed = ctx.ctl.list()?;
    for (id, step) in watch::plan(&records, &listed, &preserved) {
        let Some(r) = records.iter().find(|r| r.id == id) else { continue };
        let why = listed.iter().find(|d| d.id == id).and_then(|d| d.shutdown).map_or("gone", watch::describe);
        let head = format!("keel-watch: domain {id} ({})", r.name);
        match step {
            Step::Forget => {
                clean(ctx, id, false)?;
                writeln!(ctx.out, "{head}: gone; its devices and xenstore nodes removed")?;
            }
            Step::Destroy => {
                clean(ctx, id, true)?;
                writeln!(ctx.out, "{head}: {why}: destroyed")?;
            }
            Step::Restart => {
                let backends = clean(ctx, id, true)?;
                if !wait_gone(ctx, &backends) {
                    writeln!(ctx.err, "{head}: its old back ends did not go in time: {}", backends.join(" "))?;
                }
                match cli_create::create_from(ctx, &r.path, &r.text, false) {
                    Ok(Some(new)) => writeln!(ctx.out, "{head}: {why}: restarted as domain {new}")?,
                    Ok(None) => {}
                    Err(Failure::Error(e) | Failure::Usage(e)) => {
                        writeln!(ctx.err, "{head}: {why}: cannot restart it: {e}")?;
                    }
                }
            }
            Step::Preserve => {
                let _ = ctx.host.state_write(&preserved_name(id), "");
                writeln!(ctx.out, "{head}: {why}: preserved")?;
            }
        }
    }
    Ok(())
}

/// What `keelctl destroy` does: destroys domain `id` (if `destroy`), then closes what it
/// served as a back end and removes its devices' front ends and its xenstore home, and
/// drops its record. Returns the back end directories its devices had.
fn clean(ctx: &mut Ctx, id: DomId, destroy: bool) -> Result<Vec<String>, Failure> {
    let had_store = ctx.host.store().is_ok() && (!destroy || ctx.ctl.has_store(id));
    let backends = if had_store { backends_of(ctx, id) } else { Vec::new() };
    if destroy {
        ctx.ctl.destroy(id)?;
    }
    drop_record(ctx, id);
    if had_store {
        cli_devices::release_backends(ctx, id)?;
        cli_devices::forget_destroyed(ctx, id)?;
    }
    Ok(backends)
}

/// The back end directories of domain `id`'s devices, from the toolstack's record
/// (`/libxl/<id>/device/<kind>/<n>/backend`).
fn backends_of(ctx: &mut Ctx, id: DomId) -> Vec<String> {
    let Ok(mut s) = ctx.host.store() else { return Vec::new() };
    let mut out = Vec::new();
    for kind in ["vbd", "vif"] {
        let dir = format!("/libxl/{id}/device/{kind}");
        for n in s.directory(&dir).unwrap_or_default() {
            if let Ok(Some(be)) = s.read(&format!("{dir}/{n}/backend")) {
                out.push(be);
            }
        }
    }
    out
}

/// How long a restart waits for the old domain's back ends to go (libxl waits for them
/// at destroy too): Keel gives the new domain the lowest free id, often the old one, so
/// its devices have the same back end paths, which the driver domain's agent removes once
/// the old ones closed.
const BACKEND_POLLS: u32 = 300;
const BACKEND_STEP: std::time::Duration = std::time::Duration::from_millis(100);

/// Waits until none of `backends` exists (at most [`BACKEND_POLLS`] polls); whether they
/// all went.
fn wait_gone(ctx: &mut Ctx, backends: &[String]) -> bool {
    let Ok(mut s) = ctx.host.store() else { return true };
    for _ in 0..BACKEND_POLLS {
        if backends.iter().all(|b| s.directory(b).is_ok_and(|d| d.is_empty()) && s.read(b).is_ok_and(|v| v.is_none())) {
            return true;
        }
        ctx.host.sleep(BACKEND_STEP);
    }
    false
}

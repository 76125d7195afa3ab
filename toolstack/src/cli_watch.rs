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
                // The old back ends are gone once `clean` returns (or it said which are
                // not): Keel often gives the new domain the old id, so the same paths.
                // And its memory is back once it is no longer listed.
                clean(ctx, id, true)?;
                cli_devices::wait_released(ctx, id)?;
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
/// served as a back end, removes its devices' front ends, waits for their back ends to
/// go, removes its xenstore home, and drops its record.
fn clean(ctx: &mut Ctx, id: DomId, destroy: bool) -> Result<(), Failure> {
    let had_store = ctx.host.store().is_ok() && (!destroy || ctx.ctl.has_store(id));
    if destroy {
        ctx.ctl.destroy(id)?;
    }
    drop_record(ctx, id);
    if had_store {
        cli_devices::release_backends(ctx, id)?;
        cli_devices::forget_destroyed(ctx, id)?;
    }
    Ok(())
}

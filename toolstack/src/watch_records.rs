//! The records `keelctl create` saves for `keelctl watch` among keelctl's state files:
//! one per domain (its id, name and configuration), and the mark of a domain already
//! preserved.

use crate::command::{Ctx, Failure};
use crate::control::DomId;
use crate::domain_config::DomainConfig;
use crate::watch::{self, Ends, Record};
use crate::xlcfg;

/// The name of a domain's record among keelctl's state files.
fn record_name(id: DomId) -> String {
    format!("domain-{id}")
}

/// Saves `r` for the watcher. A host that keeps no state (the tests' fake) is no error;
/// a failure to write is a warning: the domain runs, only its ends are not acted on.
pub(crate) fn save(ctx: &mut Ctx, r: &Record) -> Result<(), Failure> {
    match ctx.host.state_write(&record_name(r.id), &watch::render(r)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Ok(()),
        Err(e) => {
            writeln!(ctx.err, "warning: domain {} runs, but `keelctl watch` will not act on its end: {e}", r.id)?;
            Ok(())
        }
    }
}

/// The mark of a domain already preserved (so that it is reported once, whichever
/// watcher saw it).
pub(crate) fn preserved_name(id: DomId) -> String {
    format!("preserved-{id}")
}

/// Forgets the record of domain `id`, if there is one.
pub(crate) fn drop_record(ctx: &mut Ctx, id: DomId) {
    let _ = ctx.host.state_remove(&record_name(id));
    let _ = ctx.host.state_remove(&preserved_name(id));
}

/// The saved records; a file that is not one is skipped.
pub(crate) fn records(ctx: &mut Ctx) -> Vec<Record> {
    let files = ctx.host.state_files().unwrap_or_default();
    let mut out = Vec::new();
    for (name, text) in files {
        if !name.starts_with("domain-") {
            continue;
        }
        let Some((id, dom, path, cfg_text)) = watch::parse_saved(&text) else { continue };
        let Ok(cfg) = xlcfg::parse(&path, &cfg_text) else { continue };
        let Ok((config, _)) = DomainConfig::from_config(&cfg) else { continue };
        let ends = Ends { poweroff: config.on_poweroff, reboot: config.on_reboot, crash: config.on_crash };
        out.push(Record { id, name: dom, path, text: cfg_text, ends });
    }
    out.sort_by_key(|r| r.id);
    out
}

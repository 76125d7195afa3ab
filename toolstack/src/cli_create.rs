//! `keelctl create`'s work once its arguments are read: a configuration checked, the
//! domain built through Keel's control interface with its devices, and its record saved
//! for `keelctl watch`. Shared by `create` and by the watcher's restarts.

use crate::cli_devices;
use crate::command::{Ctx, Failure};
use crate::control::{ControlError, CreateRequest, DomId};
use crate::domain_config::{Affinity, DomainConfig};
use crate::watch::{self, Ends, Record};
use crate::watch_records;
use crate::xlcfg;

/// Creates the domain configuration `text` (read from `path`) describes, as `create`
/// does, and saves its record for `keelctl watch`; with `dry_run` only prints what would
/// be created. The new domain's id.
pub(crate) fn create_from(ctx: &mut Ctx, path: &str, text: &str, dry_run: bool) -> Result<Option<DomId>, Failure> {
    let cfg = xlcfg::parse(path, text).map_err(|e| Failure::Error(e.to_string()))?;
    let (config, warnings) = DomainConfig::from_config(&cfg).map_err(|e| Failure::Error(e.to_string()))?;
    for w in warnings {
        writeln!(ctx.err, "warning: {w}")?;
    }
    if dry_run {
        ctx.out.write_all(summary(&config).as_bytes())?;
        return Ok(None);
    }
    let load = |ctx: &Ctx, key: &str, file: &str| -> Result<Vec<u8>, Failure> {
        ctx.host.read_file(file).map_err(|e| {
            let line = cfg.get(key).map_or(1, |s| s.line);
            Failure::Error(format!("{path}:{line}: {key}: cannot read `{file}`: {e}"))
        })
    };
    let kernel = load(ctx, "kernel", &config.kernel)?;
    let ramdisk = match &config.ramdisk {
        Some(r) => Some(load(ctx, "ramdisk", r)?),
        None => None,
    };
    // Errors Keel gives for one setting name the line it is on.
    let at = |key: &str, e: ControlError| -> Failure {
        let line = cfg.get(key).map_or(1, |s| s.line);
        Failure::Error(format!("{path}:{line}: {key}: {e}"))
    };
    if ctx.ctl.list()?.iter().any(|d| d.name == config.name) {
        return Err(at("name", ControlError::NameInUse(config.name.clone())));
    }
    let devices = !config.disks.is_empty() || !config.vifs.is_empty();
    if devices {
        cli_devices::check_configured(ctx, &config).map_err(|r| cli_devices::refused(path, &cfg, &r))?;
    }
    let ends = Ends { poweroff: config.on_poweroff, reboot: config.on_reboot, crash: config.on_crash };
    let request = CreateRequest { config: &config, kernel, ramdisk, paused: devices, keep: watch::keep_for(&ends) };
    let id = ctx.ctl.create(&request).map_err(|e| match e {
        ControlError::NameInUse(_) => at("name", e),
        ControlError::NoMemory { .. } | ControlError::DoesNotFit { .. } => at("memory", e),
        e => e.into(),
    })?;
    if devices {
        // As libxl: the devices are in xenstore before the guest runs; a domain whose
        // devices cannot be written is not left behind.
        if let Err(r) = cli_devices::attach_configured(ctx, id, &config) {
            let had_store = ctx.ctl.has_store(id);
            let _ = ctx.ctl.destroy(id);
            if had_store {
                cli_devices::forget_destroyed(ctx, id)?;
            }
            return Err(cli_devices::refused(path, &cfg, &r));
        }
        ctx.ctl.unpause(id)?;
    }
    let record = Record { id, name: config.name.clone(), path: path.to_string(), text: text.to_string(), ends };
    watch_records::save(ctx, &record)?;
    Ok(Some(id))
}

pub(crate) fn summary(c: &DomainConfig) -> String {
    let mut s = format!(
        "name: {}\ntype: pvh\nmemory: {} MiB (maxmem {} MiB)\nvcpus: {} (maxvcpus {})\n",
        c.name, c.memory_mib, c.maxmem_mib, c.vcpus, c.maxvcpus
    );
    match &c.affinity {
        None => {}
        Some(Affinity::All(set)) => s.push_str(&format!("cpus: {set}\n")),
        Some(Affinity::PerVcpu(sets)) => {
            let parts: Vec<String> = sets.iter().map(|x| x.to_string()).collect();
            s.push_str(&format!("cpus: {}\n", parts.join(" / ")));
        }
    }
    s.push_str(&format!("kernel: {}\n", c.kernel));
    if let Some(r) = &c.ramdisk {
        s.push_str(&format!("ramdisk: {r}\n"));
    }
    s.push_str(&format!("cmdline: {}\n", c.cmdline));
    s.push_str(&format!(
        "on_poweroff: {:?}, on_reboot: {:?}, on_crash: {:?}\n",
        c.on_poweroff, c.on_reboot, c.on_crash
    ));
    if c.vuart {
        s.push_str("vuart: sbsa_uart\n");
    }
    if c.xenstore_domain {
        s.push_str("xenstore_domain: yes\n");
    }
    if c.weight.is_some() || c.cap.is_some() {
        s.push_str(&format!("sched-credit: weight {}, cap {}\n", c.weight.unwrap_or(256), c.cap.unwrap_or(0)));
    }
    for d in &c.disks {
        let access = if d.writable { "rw" } else { "ro" };
        let kind = if d.cdrom { " cdrom" } else { "" };
        s.push_str(&format!("disk: {} <- {} ({:?}, {access}{kind})\n", d.vdev, d.target, d.format));
    }
    for v in &c.vifs {
        let mac = v.mac.map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"));
        s.push_str(&format!(
            "vif: mac {}, bridge {}, backend {}\n",
            mac.as_deref().unwrap_or("auto"),
            v.bridge.as_deref().unwrap_or("-"),
            v.backend.as_deref().unwrap_or("0")
        ));
    }
    s
}

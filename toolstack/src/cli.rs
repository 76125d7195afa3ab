//! keelctl's commands, as xl spells them, over a [`Control`] and a [`Host`].

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use crate::cli_create;
use crate::cli_devices;
pub use crate::command::Host;
use crate::command::{getopt, Command, Ctx, Failure};
use crate::console;
use crate::control::{Control, DomId, DomainInfo, Sched, ShutdownKind};
use crate::cpulist::CpuSet;
use crate::format;
use crate::watch_records;

const COMMANDS: &[Command] = &[
    Command {
        name: "create",
        summary: "Create a domain from a config file",
        usage: "<ConfigFile> [options]",
        options: "-c  Connect to the console after the domain is created\n\
                  -n  Dry run: check the config file and print what would be created",
        run: create,
    },
    Command {
        name: "list",
        summary: "List information about all/some domains",
        usage: "[Domain...]",
        options: "",
        run: list,
    },
    Command {
        name: "destroy",
        summary: "Terminate a domain immediately",
        usage: "<Domain>",
        options: "",
        run: destroy,
    },
    Command {
        name: "shutdown",
        summary: "Issue a shutdown signal to a domain",
        usage: "[options] <Domain>",
        options: "-w  Wait for the domain to go",
        run: shutdown,
    },
    Command {
        name: "reboot",
        summary: "Issue a reboot signal to a domain",
        usage: "[options] <Domain>",
        options: "-w  Wait for the domain to reboot",
        run: reboot,
    },
    Command { name: "pause", summary: "Pause execution of a domain", usage: "<Domain>", options: "", run: pause },
    Command { name: "unpause", summary: "Unpause a paused domain", usage: "<Domain>", options: "", run: unpause },
    Command {
        name: "console",
        summary: "Attach to domain's console (Ctrl-] leaves)",
        usage: "<Domain>",
        options: "",
        run: console_cmd,
    },
    Command {
        name: "vcpu-list",
        summary: "List the VCPUs for all/some domains",
        usage: "[Domain...]",
        options: "",
        run: vcpu_list,
    },
    Command {
        name: "vcpu-pin",
        summary: "Set which CPUs a VCPU can use",
        usage: "<Domain> <VCPU|all> <CPUs|all>",
        options: "CPUs: xl's CPU list, e.g. 0-3,^2 (soft affinity is not supported)",
        run: vcpu_pin,
    },
    Command {
        name: "sched-credit",
        summary: "Get/set credit scheduler parameters",
        usage: "[-d <Domain> [-w[=WEIGHT]|-c[=CAP]]]",
        options:
            "-d DOMAIN  Domain to modify\n-w WEIGHT  Weight (1..65535)\n-c CAP     Cap (percent of one CPU, 0 = none)",
        run: sched_credit,
    },
    Command { name: "info", summary: "Get information about the host", usage: "", options: "", run: info },
    Command {
        name: "xenstore-connect",
        summary: "Connect this control domain's xenstore to the xenstore domain",
        usage: "<XenstoreDomain>",
        options: "",
        run: xenstore_connect,
    },
];

fn find(name: &str) -> Option<&'static Command> {
    all_commands().find(|c| c.name == name)
}

fn all_commands() -> impl Iterator<Item = &'static Command> {
    COMMANDS.iter().chain(crate::cli_devices::COMMANDS).chain(crate::cli_watch::COMMANDS)
}

fn usage_of(c: &Command) -> String {
    let mut s = format!("Usage: keelctl {} {}\n\n{}.\n", c.name, c.usage, c.summary);
    if !c.options.is_empty() {
        s.push_str("\nOptions:\n\n");
        for line in c.options.lines() {
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

fn general_usage() -> String {
    let mut s = String::from("Usage: keelctl <subcommand> [args]\n\nKeel's toolstack, with xl's commands:\n\n");
    for c in all_commands() {
        s.push_str(&format!(" {:<16}{}\n", c.name, c.summary));
    }
    s.push_str("\n`keelctl <subcommand> --help` describes one.\n");
    s
}

/// Runs one command line (without the program name); the exit status.
pub fn run(
    args: &[String],
    ctl: &mut dyn Control,
    host: &mut dyn Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let Some(name) = args.first() else {
        let _ = err.write_all(general_usage().as_bytes());
        return 2;
    };
    if matches!(name.as_str(), "help" | "--help" | "-h") {
        let text = match args.get(1).and_then(|n| find(n)) {
            Some(c) => usage_of(c),
            None => general_usage(),
        };
        let _ = out.write_all(text.as_bytes());
        return 0;
    }
    let Some(cmd) = find(name) else {
        let _ = writeln!(err, "keelctl: unknown command `{name}`\n");
        let _ = err.write_all(general_usage().as_bytes());
        return 2;
    };
    let rest = &args[1..];
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        let _ = out.write_all(usage_of(cmd).as_bytes());
        return 0;
    }
    let mut ctx = Ctx { ctl, host, out, err };
    match (cmd.run)(&mut ctx, rest) {
        Ok(()) => 0,
        Err(Failure::Usage(m)) => {
            let _ = writeln!(ctx.err, "keelctl {}: {m}\n", cmd.name);
            let _ = ctx.err.write_all(usage_of(cmd).as_bytes());
            2
        }
        Err(Failure::Error(m)) => {
            let _ = writeln!(ctx.err, "keelctl {}: {m}", cmd.name);
            1
        }
    }
}

fn one(pos: &[String], what: &str) -> Result<String, Failure> {
    match pos {
        [x] => Ok(x.clone()),
        [] => Err(Failure::Usage(format!("{what} is missing"))),
        _ => Err(Failure::Usage("too many arguments".into())),
    }
}

fn find_domain(ctx: &mut Ctx, which: &str) -> Result<DomainInfo, Failure> {
    let all = ctx.ctl.list()?;
    let found = match which.parse::<DomId>() {
        Ok(id) => all.into_iter().find(|d| d.id == id),
        // A dying domain keeps its name until it is gone: a live one of that name first.
        Err(_) => {
            all.iter().find(|d| d.name == which && !d.dying).or_else(|| all.iter().find(|d| d.name == which)).cloned()
        }
    };
    found.ok_or_else(|| Failure::Error(format!("Domain '{which}' does not exist.")))
}

fn create(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (opts, pos) = getopt(args, "cnq", "")?;
    let path = one(&pos, "the config file")?;
    let console = opts.iter().any(|o| o.0 == 'c');
    let dry_run = opts.iter().any(|o| o.0 == 'n');
    writeln!(ctx.err, "Parsing config from {path}")?;
    let bytes = ctx.host.read_file(&path).map_err(|e| Failure::Error(format!("cannot read `{path}`: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| Failure::Error(format!("{path}: not a text file")))?;
    let id = cli_create::create_from(ctx, &path, &text, dry_run)?;
    if console {
        if let Some(id) = id {
            attach(ctx, id)?;
        }
    }
    Ok(())
}

fn list(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    let all = ctx.ctl.list()?;
    let mut shown = Vec::new();
    if pos.is_empty() {
        shown = all;
    } else {
        for p in &pos {
            let d = all.iter().find(|d| d.name == *p || p.parse::<DomId>().is_ok_and(|id| id == d.id));
            shown.push(d.cloned().ok_or_else(|| Failure::Error(format!("Domain '{p}' does not exist.")))?);
        }
    }
    let mut text = format::list_header();
    for d in &shown {
        text.push_str(&format::list_row(d));
    }
    ctx.out.write_all(text.as_bytes())?;
    Ok(())
}

fn destroy(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    let d = find_domain(ctx, &one(&pos, "the domain")?)?;
    // Asked before it goes: only a domain that a xenstore domain served can have devices,
    // as a front end or as a back end (a control domain without a xenstore would wait for
    // ever on one).
    let had_store = ctx.ctl.has_store(d.id);
    ctx.ctl.destroy(d.id)?;
    watch_records::drop_record(ctx, d.id);
    if had_store {
        // Its back ends first: forgetting it as a front end removes its whole home,
        // `backend/` included.
        cli_devices::release_backends(ctx, d.id)?;
        cli_devices::forget_destroyed(ctx, d.id)?;
    }
    cli_devices::wait_released(ctx, d.id)
}

/// As xl: a guest that says it obeys (`control/feature-poweroff` or `-reboot` = 1) is asked
/// through xenstore (`control/shutdown` = `poweroff` or `reboot`, which stock Linux
/// watches); any other, or with no xenstore to ask, gets Keel's remote shutdown (xl wants
/// `-F` for that; keelctl needs no flag, as before it had xenstore).
fn shutdown_or_reboot(ctx: &mut Ctx, args: &[String], kind: ShutdownKind) -> Result<(), Failure> {
    let (opts, pos) = getopt(args, "wF", "")?;
    let d = find_domain(ctx, &one(&pos, "the domain")?)?;
    let verb = if kind == ShutdownKind::Poweroff { "Shutting down" } else { "Rebooting" };
    writeln!(ctx.err, "{verb} domain {}", d.id)?;
    let word = if kind == ShutdownKind::Poweroff { "poweroff" } else { "reboot" };
    let control = format!("/local/domain/{}/control", d.id);
    if ctx.host.xenstore_read(&format!("{control}/feature-{word}")).as_deref() == Some("1") {
        ctx.host
            .xenstore_write(&format!("{control}/shutdown"), word)
            .map_err(|e| Failure::Error(format!("cannot write {control}/shutdown: {e}")))?;
    } else {
        ctx.ctl.shutdown(d.id, kind)?;
    }
    if opts.iter().any(|o| o.0 == 'w') {
        writeln!(ctx.err, "Waiting for 1 domains")?;
        while ctx.ctl.list()?.iter().any(|x| x.id == d.id && x.shutdown.is_none() && !x.dying) {
            ctx.host.sleep(Duration::from_millis(200));
        }
        writeln!(ctx.err, "Domain {} has been shut down", d.id)?;
    }
    Ok(())
}

fn shutdown(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    shutdown_or_reboot(ctx, args, ShutdownKind::Poweroff)
}

fn reboot(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    shutdown_or_reboot(ctx, args, ShutdownKind::Reboot)
}

fn pause(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    let d = find_domain(ctx, &one(&pos, "the domain")?)?;
    Ok(ctx.ctl.pause(d.id)?)
}

fn unpause(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    let d = find_domain(ctx, &one(&pos, "the domain")?)?;
    Ok(ctx.ctl.unpause(d.id)?)
}

fn attach(ctx: &mut Ctx, id: DomId) -> Result<(), Failure> {
    let (tx, rx) = mpsc::channel();
    let mut input = ctx.host.console_input();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = input.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    ctx.host.raw_terminal(true);
    let host: &dyn Host = ctx.host;
    let result = console::session(ctx.ctl, id, &rx, ctx.out, &|d| host.sleep(d));
    ctx.host.raw_terminal(false);
    Ok(result?)
}

fn console_cmd(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "t")?;
    let d = find_domain(ctx, &one(&pos, "the domain")?)?;
    attach(ctx, d.id)
}

fn vcpu_list(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    let nr_cpus = ctx.ctl.host_info()?.nr_cpus;
    let domains = if pos.is_empty() {
        ctx.ctl.list()?
    } else {
        pos.iter().map(|p| find_domain(ctx, p)).collect::<Result<Vec<_>, _>>()?
    };
    let mut text = format::vcpu_header();
    for d in &domains {
        for v in ctx.ctl.vcpus(d.id)? {
            text.push_str(&format::vcpu_row(&d.name, d.id, &v, nr_cpus));
        }
    }
    ctx.out.write_all(text.as_bytes())?;
    Ok(())
}

fn vcpu_pin(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "f", "")?;
    let [dom, vcpu, hard, rest @ ..] = pos.as_slice() else {
        return Err(Failure::Usage("the domain, the vCPU and the CPUs are needed".into()));
    };
    match rest {
        [] => {}
        [soft] if soft == "-" => {}
        _ => return Err(Failure::Usage("soft affinity is not supported".into())),
    }
    let set = CpuSet::parse(hard).map_err(Failure::Usage)?;
    let d = find_domain(ctx, dom)?;
    let vcpus: Vec<u32> = if vcpu == "all" {
        ctx.ctl.vcpus(d.id)?.iter().map(|v| v.vcpu).collect()
    } else {
        vec![vcpu.parse().map_err(|_| Failure::Usage(format!("`{vcpu}` is not a vCPU number")))?]
    };
    for v in vcpus {
        ctx.ctl.pin_vcpu(d.id, v, &set)?;
    }
    Ok(())
}

fn sched_credit(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (opts, pos) = getopt(args, "", "dwcp")?;
    if !pos.is_empty() {
        return Err(Failure::Usage("unexpected arguments".into()));
    }
    let get = |c: char| opts.iter().rev().find(|o| o.0 == c).map(|o| o.1.clone());
    let number = |c: char, max: u32| -> Result<Option<u32>, Failure> {
        get(c)
            .map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| Failure::Usage(format!("-{c}: `{v}` is not a number up to {max}")))
            })
            .transpose()
    };
    let weight = number('w', 65535)?;
    let cap = number('c', 6400)?;
    if weight == Some(0) {
        return Err(Failure::Usage("-w: the weight is at least 1".into()));
    }
    let Some(dom) = get('d') else {
        if weight.is_some() || cap.is_some() {
            return Err(Failure::Usage("-w and -c need -d".into()));
        }
        let mut text = format::sched_header();
        for d in ctx.ctl.list()? {
            let s = ctx.ctl.sched_credit(d.id)?;
            text.push_str(&format::sched_row(&d.name, d.id, &s));
        }
        ctx.out.write_all(text.as_bytes())?;
        return Ok(());
    };
    let d = find_domain(ctx, &dom)?;
    let now = ctx.ctl.sched_credit(d.id)?;
    if weight.is_none() && cap.is_none() {
        let text = format!("{}{}", format::sched_header(), format::sched_row(&d.name, d.id, &now));
        ctx.out.write_all(text.as_bytes())?;
        return Ok(());
    }
    let new = Sched { weight: weight.unwrap_or(now.weight), cap: cap.unwrap_or(now.cap) };
    Ok(ctx.ctl.set_sched_credit(d.id, new)?)
}

fn info(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    if !pos.is_empty() {
        return Err(Failure::Usage("unexpected arguments".into()));
    }
    let h = ctx.ctl.host_info()?;
    ctx.out.write_all(format::info(&h).as_bytes())?;
    Ok(())
}

/// Xen's `init-xenstore-domain` handoff for a running xenstore domain: the kernel grants
/// its store page and allocates a port (`/dev/xen/xenbus_backend`), Keel is told the port
/// (`CTL_STORE_CONNECT`), the xenstore domain connects the ring and signals it.
fn xenstore_connect(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    let d = find_domain(ctx, &one(&pos, "the xenstore domain")?)?;
    let port = ctx
        .host
        .xenbus_backend_setup(d.id)
        .map_err(|e| Failure::Error(format!("{}: {e}", crate::xenbus_backend::DEVICE)))?;
    ctx.ctl.store_connect(port)?;
    writeln!(ctx.out, "xenstore: handed to domain {} ({}) on port {port}", d.id, d.name)?;
    Ok(())
}

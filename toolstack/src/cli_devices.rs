//! keelctl's device commands, wired to [`crate::devices_cli`] over the xenstore the
//! [`Host`](crate::command::Host) reaches: `block-attach`, `block-detach`, `block-list`,
//! `network-attach`, `network-detach`, `network-list`, and `devd`, the driver domain's
//! hotplug agent ([`crate::devd`]) run against the real store and system.

use std::time::Duration;

use crate::command::{getopt, Command, Ctx, Failure};
use crate::control::DomId;
use crate::devd::Agent;
use crate::devices::{Kind, Waiter};
use crate::devices_cli::{self, Sleeper};
use crate::devices_orphans;
use crate::devices_store::{Store, Watching};

/// `devices_cli::block_detach` or `network_detach`.
type Detach = fn(&mut dyn Store, DomId, &str, bool, &mut dyn Waiter) -> Result<(), String>;
/// `devices_cli::block_list` or `network_list`.
type List = fn(&mut dyn Store, &[DomId]) -> Result<String, String>;

pub(crate) const COMMANDS: &[Command] = &[
    Command {
        name: "block-attach",
        summary: "Create a new virtual block device",
        usage: "<Domain> <disk-spec-component(s)>...",
        options: "disk-spec: xl-disk-configuration(5), e.g. 'format=raw, vdev=xvda, access=rw, target=/path'",
        run: block_attach,
    },
    Command {
        name: "block-detach",
        summary: "Destroy a domain's virtual block device",
        usage: "[-f] <Domain> <DevId>",
        options:
            "-f  Remove the front end even if the back end does not close\nDevId: a device number or a vdev (xvda)",
        run: block_detach,
    },
    Command {
        name: "block-list",
        summary: "List virtual block devices for a domain",
        usage: "<Domain(s)>",
        options: "",
        run: block_list,
    },
    Command {
        name: "network-attach",
        summary: "Create a new virtual network device",
        usage: "<Domain> [<nic-spec-component(s)>...]",
        options: "nic-spec: xl-network-configuration(5), e.g. 'mac=00:16:3e:00:00:01, bridge=xenbr0'",
        run: network_attach,
    },
    Command {
        name: "network-detach",
        summary: "Destroy a domain's virtual network device",
        usage: "[-f] <Domain> <DevId|mac>",
        options: "-f  Remove the front end even if the back end does not close",
        run: network_detach,
    },
    Command {
        name: "network-list",
        summary: "List virtual network interfaces for a domain",
        usage: "<Domain(s)>",
        options: "",
        run: network_list,
    },
    Command {
        name: "devd",
        summary: "Run the hotplug agent of this driver domain (loop devices, bridges)",
        usage: "[-1]",
        options: "-1  Bring the devices in line once and exit, instead of watching xenstore",
        run: devd,
    },
];

/// How long `*-detach` waits for the back end to close (libxl: 10 s).
const DETACH_POLLS: u32 = 100;
const DETACH_STEP: Duration = Duration::from_millis(100);

fn store(ctx: &mut Ctx) -> Result<Box<dyn Watching>, Failure> {
    ctx.host.store().map_err(Failure::Error)
}

/// A domain's id from its name or number.
fn domid(ctx: &mut Ctx, which: &str) -> Result<DomId, Failure> {
    let all = ctx.ctl.list()?;
    let found = match which.parse::<DomId>() {
        Ok(id) => all.iter().find(|d| d.id == id),
        Err(_) => all.iter().find(|d| d.name == which),
    };
    found.map(|d| d.id).ok_or_else(|| Failure::Error(format!("Domain '{which}' does not exist.")))
}

/// The domain and the rest of the positional arguments.
fn split(ctx: &mut Ctx, pos: &[String]) -> Result<(DomId, Vec<String>), Failure> {
    let (first, rest) = pos.split_first().ok_or_else(|| Failure::Usage("the domain is missing".into()))?;
    Ok((domid(ctx, first)?, rest.to_vec()))
}

fn resolver(ctx: &mut Ctx) -> Result<impl Fn(&str) -> Option<DomId>, Failure> {
    let all = ctx.ctl.list()?;
    Ok(move |w: &str| all.iter().find(|d| d.name == w || w.parse::<DomId>().is_ok_and(|id| id == d.id)).map(|d| d.id))
}

fn block_attach(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    let (fe, spec) = split(ctx, &pos)?;
    let resolve = resolver(ctx)?;
    let mut s = store(ctx)?;
    devices_cli::block_attach(s.as_mut(), &resolve, fe, &spec).map_err(Failure::Error)
}

fn network_attach(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    let (fe, spec) = split(ctx, &pos)?;
    let resolve = resolver(ctx)?;
    let mut s = store(ctx)?;
    devices_cli::network_attach(s.as_mut(), &resolve, fe, &spec).map(|_| ()).map_err(Failure::Error)
}

fn detach(ctx: &mut Ctx, args: &[String], kind: Kind, f: Detach) -> Result<(), Failure> {
    let (opts, pos) = getopt(args, "f", "")?;
    let (fe, rest) = split(ctx, &pos)?;
    let [dev] = rest.as_slice() else {
        return Err(Failure::Usage("one device is needed".into()));
    };
    let alive: Vec<DomId> = ctx.ctl.list()?.iter().filter(|d| !d.dying).map(|d| d.id).collect();
    let mut s = store(ctx)?;
    let host = &*ctx.host;
    let sleep = |d: Duration| host.sleep(d);
    let mut w = Sleeper { sleep: &sleep, step: DETACH_STEP, polls: DETACH_POLLS };
    // A back end domain that is gone cannot close its end: close it on its behalf.
    if let Some(devid) = devices_cli::devid(s.as_mut(), kind, fe, dev) {
        let be = devices_orphans::backend_id(s.as_mut(), kind, fe, devid).map_err(|e| Failure::Error(e.to_string()))?;
        if be.is_some_and(|be| !alive.contains(&be)) {
            devices_orphans::detach_orphan(s.as_mut(), kind, fe, devid, &mut w)
                .map_err(|e| Failure::Error(e.to_string()))?;
            return Ok(());
        }
    }
    f(s.as_mut(), fe, dev, !opts.is_empty(), &mut w).map_err(Failure::Error)
}

fn block_detach(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    detach(ctx, args, Kind::Vbd, devices_cli::block_detach)
}

fn network_detach(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    detach(ctx, args, Kind::Vif, devices_cli::network_detach)
}

/// After `destroy` of domain `be`: every device it served as a back end is closed on its
/// behalf ([`devices_orphans::release_backend_domain`]), one line each.
pub(crate) fn release_backends(ctx: &mut Ctx, be: DomId) -> Result<(), Failure> {
    let Ok(mut s) = ctx.host.store() else { return Ok(()) };
    let host = &*ctx.host;
    let sleep = |d: Duration| host.sleep(d);
    let mut w = Sleeper { sleep: &sleep, step: DETACH_STEP, polls: DETACH_POLLS };
    let done = devices_orphans::release_backend_domain(s.as_mut(), be, &mut w)
        .map_err(|e| Failure::Error(format!("domain {be} destroyed, but its back ends: {e}")))?;
    for r in done {
        let how = if r.closed { "front end closed" } else { "front end did not close in time" };
        writeln!(
            ctx.out,
            "{} {}/{}: back end domain {be} gone: closed on its behalf ({how}); removed",
            r.kind.name(),
            r.fe,
            r.devid
        )?;
    }
    Ok(())
}

fn listing(ctx: &mut Ctx, args: &[String], f: List) -> Result<(), Failure> {
    let (_, pos) = getopt(args, "", "")?;
    if pos.is_empty() {
        return Err(Failure::Usage("a domain is missing".into()));
    }
    let mut ids = Vec::new();
    for p in &pos {
        ids.push(domid(ctx, p)?);
    }
    let mut s = store(ctx)?;
    let text = f(s.as_mut(), &ids).map_err(Failure::Error)?;
    ctx.out.write_all(text.as_bytes())?;
    Ok(())
}

fn block_list(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    listing(ctx, args, devices_cli::block_list)
}

fn network_list(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    listing(ctx, args, devices_cli::network_list)
}

/// The agent: this domain's id from xenstore (`domid`, relative to its home), a watch on
/// its back end directory, and a scan at each event. Runs until xenstore goes away.
fn devd(ctx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (opts, pos) = getopt(args, "1", "")?;
    if !pos.is_empty() {
        return Err(Failure::Usage("too many arguments".into()));
    }
    let mut s = store(ctx)?;
    let me = s.read("domid").map_err(|e| Failure::Error(e.to_string()))?;
    let me: DomId = me
        .as_deref()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Failure::Error(format!("this domain's `domid` in xenstore is {me:?}")))?;
    let mut sys = ctx.host.devd_system().map_err(Failure::Error)?;
    let mut agent = Agent::new(me);
    let once = !opts.is_empty();
    if !once {
        s.watch(&agent.watch_path(), "keel-devd").map_err(|e| Failure::Error(e.to_string()))?;
        writeln!(ctx.out, "keel-devd: domain {me}, watching {}", agent.watch_path())?;
        ctx.out.flush()?;
    }
    loop {
        let lines = agent.scan(s.as_mut(), sys.as_mut()).map_err(|e| Failure::Error(e.to_string()))?;
        for l in lines {
            writeln!(ctx.out, "keel-devd: {l}")?;
        }
        ctx.out.flush()?;
        if once {
            return Ok(());
        }
        s.wait_event().map_err(|e| Failure::Error(e.to_string()))?;
    }
}

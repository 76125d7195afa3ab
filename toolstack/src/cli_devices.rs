//! keelctl's device commands, wired to [`crate::devices_cli`] over the xenstore the
//! [`Host`](crate::command::Host) reaches: `block-attach`, `block-detach`, `block-list`,
//! `network-attach`, `network-detach`, `network-list`, and `devd`, the driver domain's
//! hotplug agent ([`crate::devd`]) run against the real store and system; and the
//! devices of `create`'s configuration ([`crate::create_devices`]) at `create` and
//! `destroy`.

use std::time::Duration;

use crate::command::{getopt, Command, Ctx, Failure};
use crate::control::DomId;
use crate::create_devices::{self, Refusal};
use crate::devd::Agent;
use crate::devices::{Kind, Waiter};
use crate::devices_cli::{self, Sleeper};
use crate::devices_orphans;
use crate::devices_store::{Store, Watching};
use crate::domain_config::{list_lines, DomainConfig};
use crate::xlcfg::Config;

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

/// How long `create` waits for the xenstore domain to write a new domain's home.
const INTRODUCE_POLLS: u32 = 300;
const INTRODUCE_STEP: Duration = Duration::from_millis(100);

/// A refused device of `cfg` (read from `path`) as an error naming its line.
pub(crate) fn refused(path: &str, cfg: &Config, r: &Refusal) -> Failure {
    let line = list_lines(cfg, r.key).get(r.index).copied().unwrap_or(1);
    Failure::Error(format!("{path}:{line}: {}: {}", r.key, r.why))
}

/// Checks that every device of `config` can be laid out, before a domain exists.
pub(crate) fn check_configured(ctx: &mut Ctx, config: &DomainConfig) -> Result<(), Refusal> {
    let resolve = resolver(ctx).map_err(|_| Refusal { key: "disk", index: 0, why: "cannot list domains".into() })?;
    create_devices::plan(config, 0, &resolve).map(|_| ())
}

/// Writes the devices of `config` for the new, still paused domain `fe`, once the
/// xenstore domain has introduced it (libxl writes them before it unpauses the domain).
pub(crate) fn attach_configured(ctx: &mut Ctx, fe: DomId, config: &DomainConfig) -> Result<(), Refusal> {
    let first = if config.disks.is_empty() { "vif" } else { "disk" };
    let refusal = |why: String| Refusal { key: first, index: 0, why };
    if !ctx.ctl.has_store(fe) {
        return Err(refusal(format!("domain {fe} has no xenstore connection to find its devices in")));
    }
    let resolve = resolver(ctx).map_err(|_| refusal("cannot list domains".into()))?;
    let planned = create_devices::plan(config, fe, &resolve)?;
    let mut s = store(ctx).map_err(|_| refusal("no xenstore to write the devices into".into()))?;
    let host = &*ctx.host;
    let sleep = |d: Duration| host.sleep(d);
    let mut w = Sleeper { sleep: &sleep, step: INTRODUCE_STEP, polls: INTRODUCE_POLLS };
    match create_devices::wait_introduced(s.as_mut(), fe, &mut w) {
        Ok(true) => {}
        Ok(false) => return Err(refusal(format!("xenstore did not introduce domain {fe} in time"))),
        Err(e) => return Err(refusal(e.to_string())),
    }
    create_devices::add_all(s.as_mut(), &planned)
}

/// How long `destroy` waits for the back ends of the destroyed domain's devices to close
/// and be removed by their driver domains' agents, all together (libxl: 10 s for the
/// state, then 10 s for the back end path).
const CLOSE_POLLS: u32 = 200;

/// After `destroy` of `fe`, which had a xenstore connection: its devices' front ends
/// removed, their back ends told to go and waited for, and its toolstack nodes and home
/// removed ([`create_devices::forget`]). A failure or a back end that did not finish in
/// time is a warning naming it: the domain itself is gone.
pub(crate) fn forget_destroyed(ctx: &mut Ctx, fe: DomId) -> Result<(), Failure> {
    let alive: Vec<DomId> = ctx.ctl.list().map(|l| l.iter().filter(|d| !d.dying).map(|d| d.id).collect())?;
    let done = match store(ctx) {
        Ok(mut s) => {
            let host = &*ctx.host;
            let sleep = |d: Duration| host.sleep(d);
            let mut w = Sleeper { sleep: &sleep, step: DETACH_STEP, polls: CLOSE_POLLS };
            create_devices::forget(s.as_mut(), fe, &|be| alive.contains(&be), &mut w).map_err(|e| e.to_string())
        }
        Err(Failure::Error(e) | Failure::Usage(e)) => Err(e),
    };
    match done {
        Ok(f) => {
            for l in f.late {
                writeln!(ctx.err, "warning: domain {fe}: {l}")?;
            }
        }
        Err(e) => writeln!(ctx.err, "warning: the devices of domain {fe} were not removed from xenstore: {e}")?,
    }
    Ok(())
}

/// How long `destroy` waits for Keel to have the destroyed domain's memory back.
const RELEASE_POLLS: u32 = 100;
const RELEASE_STEP: Duration = Duration::from_millis(100);

/// Waits until domain `id`, destroyed, is no longer listed: Keel lists it as dying until
/// its memory is back in the pool and its id free (`docs/control-abi.md`, `CTL_DESTROY`),
/// which waits for every other domain to unmap its grants (back ends let go once they
/// closed). So `destroy` then `create` finds the memory free, as after `xl destroy`. A
/// domain still dying after the wait is a warning: the destroy itself is done.
pub(crate) fn wait_released(ctx: &mut Ctx, id: DomId) -> Result<(), Failure> {
    for _ in 0..RELEASE_POLLS {
        if !ctx.ctl.list()?.iter().any(|d| d.id == id) {
            return Ok(());
        }
        ctx.host.sleep(RELEASE_STEP);
    }
    writeln!(ctx.err, "warning: domain {id} is destroyed but still dying: another domain still maps its memory")?;
    Ok(())
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

//! The scenarios, by the name `keel.test=` gives.
//!
//! | name | what it checks |
//! |---|---|
//! | `hypercalls` | `xen_version` answers (4.19, extraversion, features, changeset), `console_io`, unknown hypercalls (-ENOSYS), bad pointers (-EFAULT), pointers translated through the guest's page tables |
//! | `events-2l`, `events-fifo` | bind_ipi, bind_virq, alloc_unbound/bind_interdomain, send to self, delivery by upcall, mask/unmask, a burst of ports, close; IPIs beyond the list registers |
//! | `pingpong` | two domains over a static event channel (`keel.role=ping|pong keel.port=N`): `keel.rounds` round trips, exact counts on both sides |
//! | `timer` | the guest's own timer at 100 Hz for 1 s of guest time, each tick awaited halted |
//! | `ipi` | IPIs between vCPUs: 200 rounds of ping and answer, counted exactly |
//! | `flush` | frames given back (`decrease_reservation`) while vCPU 1 spins in guest mode without exits, each time seen running; the page comes back zeroed |
//! | `smp` | starting, querying and stopping vCPUs; FP/SIMD registers kept while vCPUs share CPUs |
//! | `backend` | a back end (`keel.role=back`) and two front ends (`keel.role=front`): grants mapped into ballooned pages, refusals, batched copies with a figure, teardown when either end dies |
//! | `grants` | two domains (`keel.role=granter|mapper keel.port=N`): grant map, copy, read-only grants |
//! | `isolation` | accesses outside the guest's memory abort (x86: read all ones, writes dropped, as on Xen) and the guest goes on; refused instructions are undefined |
//! | `wild` | `isolation`, then wrecked exception vectors: Keel crashes the domain |
//! | `spin` | spins forever with interrupts masked: Keel stops it at `keel.timeout` |
//! | `preempt` | every vCPU spins without exiting, masked, some with `pause`: each finishes only if Keel preempts at the end of a slice |
//! | `fuzz` | thousands of hypercalls with random arguments (`keel.count`, `keel.seed`); Keel keeps answering |
//! | `pvconsole` | the PV console ring Keel serves: parameters, port status, output that wraps the ring, one line of input (`keel.expect`), escapes and a prompt without newline (`keel.prompt=1`) |
//! | `switching` | two domains on one CPU (`keel.seed` differs): the system registers each owns, FP/SIMD and its timer kept through thousands of yields to the other |
//! | `control` | Keel's control interface from a control domain on a spinning sibling (`keel.victim=NAME`): list, query, pause/unpause (CPU time stops), weight, affinity, console, garbage, destroy and `VIRQ_DOM_EXC` |
//! | `create` | domains created at run time from the domain's boot module (`keel.cycles`): console, pause/unpause, refusals, destroy, free memory unchanged |
//! | `control-denied` | every control sub-op is `-EPERM` without the control capability |
//! | `xenbus` | a xenbus client over the store ring the xenstore domain serves (`keel.role=client|flood|poke|hostile-blkfront|hostile-netfront`): read, write, directory, watch, a conflicting transaction, `EACCES` outside its subtree, the node quota |
//! | `xsa` | the attacks of Xen's security advisories on event channels, grants, `memory_op` and `console_io`, refused with the documented errors (2 vCPUs; `keel.rounds`, `keel.race`) |
//! | `bench` | exit round trips in counter ticks: `keel.figure=null|sysreg|mmio|evtchn` (figures, not bounds) |

mod backend;
mod bench;
mod control;
mod create;
pub mod events;
mod fuzz;
mod grants;
mod hypercalls;
mod isolation;
mod pingpong;
mod preempt;
mod pvconsole;
mod remote_flush;
mod smp;
mod switching;
mod timer;
mod xenbus;
mod xenbus_blkfront;
mod xenbus_netfront;
mod xsa;

use crate::{Outcome, Platform};

/// A scenario: its boot-CPU part and, optionally, what secondary CPUs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Hypercalls,
    Events2l,
    EventsFifo,
    PingPong,
    Timer,
    Ipi,
    Smp,
    Grants,
    Backend,
    Isolation,
    Wild,
    Spin,
    Preempt,
    Fuzz,
    PvConsole,
    Switching,
    Bench,
    Control,
    ControlDenied,
    Create,
    Xenbus,
    Xsa,
    Flush,
}

const ALL: &[(&str, Scenario)] = &[
    ("hypercalls", Scenario::Hypercalls),
    ("events-2l", Scenario::Events2l),
    ("events-fifo", Scenario::EventsFifo),
    ("pingpong", Scenario::PingPong),
    ("timer", Scenario::Timer),
    ("ipi", Scenario::Ipi),
    ("smp", Scenario::Smp),
    ("grants", Scenario::Grants),
    ("backend", Scenario::Backend),
    ("isolation", Scenario::Isolation),
    ("wild", Scenario::Wild),
    ("spin", Scenario::Spin),
    ("preempt", Scenario::Preempt),
    ("fuzz", Scenario::Fuzz),
    ("pvconsole", Scenario::PvConsole),
    ("switching", Scenario::Switching),
    ("bench", Scenario::Bench),
    ("control", Scenario::Control),
    ("control-denied", Scenario::ControlDenied),
    ("create", Scenario::Create),
    ("xenbus", Scenario::Xenbus),
    ("xsa", Scenario::Xsa),
    ("flush", Scenario::Flush),
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<Scenario> {
    ALL.iter().find(|(n, _)| *n == name).map(|&(_, s)| s)
}

impl Scenario {
    /// The boot CPU's part.
    pub fn run<P: Platform>(self) -> fn(&P) -> Outcome {
        match self {
            Scenario::Hypercalls => hypercalls::run::<P>,
            Scenario::Events2l => |p| events::run(p, false),
            Scenario::EventsFifo => |p| events::run(p, true),
            Scenario::PingPong => pingpong::run::<P>,
            Scenario::Timer => timer::run::<P>,
            Scenario::Ipi => smp::ipi::<P>,
            Scenario::Smp => smp::run::<P>,
            Scenario::Grants => grants::run::<P>,
            Scenario::Backend => backend::run::<P>,
            Scenario::Isolation => isolation::isolation::<P>,
            Scenario::Wild => isolation::wild::<P>,
            Scenario::Spin => isolation::spin::<P>,
            Scenario::Preempt => preempt::run::<P>,
            Scenario::Fuzz => fuzz::run::<P>,
            Scenario::PvConsole => pvconsole::run::<P>,
            Scenario::Switching => switching::run::<P>,
            Scenario::Bench => bench::run::<P>,
            Scenario::Control => control::run::<P>,
            Scenario::ControlDenied => control::denied::<P>,
            Scenario::Create => create::run::<P>,
            Scenario::Xenbus => xenbus::run::<P>,
            Scenario::Xsa => xsa::run::<P>,
            Scenario::Flush => remote_flush::run::<P>,
        }
    }

    /// What a secondary CPU runs, if the scenario starts any.
    pub fn secondary<P: Platform>(self) -> Option<fn(&P)> {
        match self {
            Scenario::Ipi => Some(smp::ipi_secondary::<P>),
            Scenario::Smp => Some(smp::smp_secondary::<P>),
            Scenario::Xsa => Some(xsa::secondary::<P>),
            Scenario::Preempt => Some(preempt::secondary::<P>),
            Scenario::Flush => Some(remote_flush::secondary::<P>),
            _ => None,
        }
    }
}

//! Keel's test guests, portable part.
//!
//! One guest image per architecture (`tests/guests/<arch>`) boots, implements
//! [`Platform`] and calls [`run`]. The scenario and the guest's role in it come from the
//! command line (`keel.test=<scenario>`, see [`scenarios`]). A scenario passes by shutting
//! the domain down with `SCHEDOP_shutdown(poweroff)` and fails by printing
//! `FAIL <scenario>: <why>` through `console_io` and shutting down with `crash`; Keel's
//! run loop turns either into a `[test] pass|fail domain-<name>` verdict.
//!
//! Scenarios never name an architecture: hypercall instruction, console, time,
//! interrupts and CPU start-up are the platform's.
#![cfg_attr(not(test), no_std)]
// A failure carries its message inline: test guests have no allocator, and a scenario
// fails at most once.
#![allow(clippy::result_large_err)]

pub mod balloon;
pub mod check;
pub mod cmdline;
pub mod console;
pub mod events;
pub mod grants;
pub mod hcall;
pub mod irq;
pub mod pages;
mod platform;
pub mod scenarios;

pub use check::{Failure, Outcome};
pub use platform::{CpuState, Platform, Probe, MAX_OWNED_REGS};

use hcall::Hv;
use keel_abi::sched::{SHUTDOWN_CRASH, SHUTDOWN_POWEROFF};

/// The boot CPU's path: runs the scenario the command line names and reports.
pub fn run<P: Platform>(p: &P) -> ! {
    let name = cmdline::get(p.cmdline(), "keel.test").unwrap_or("");
    let outcome = match scenarios::find(name) {
        Some(s) => (s.run::<P>())(p),
        None => match p.platform_scenario(name) {
            Some(outcome) => outcome,
            None => Err(Failure::new(format_args!("unknown scenario '{name}' (keel.test=)"))),
        },
    };
    finish(p, name, outcome)
}

/// Reports `outcome` and shuts the domain down (poweroff on success, crash on failure).
pub fn finish<P: Platform>(p: &P, name: &str, outcome: Outcome) -> ! {
    let hv = Hv(p);
    match outcome {
        Ok(()) => {
            say!(p, "PASS {name}");
            hv.shutdown(SHUTDOWN_POWEROFF);
        }
        Err(why) => {
            say!(p, "FAIL {name}: {why}");
            hv.shutdown(SHUTDOWN_CRASH);
        }
    }
    // Keel never returns from a shutdown it accepted.
    loop {
        p.wait_for_interrupt();
    }
}

/// A secondary CPU's path, entered once [`Platform::start_cpu`] started it: the
/// scenario's per-CPU part, if it has one; otherwise it turns itself off.
pub fn secondary<P: Platform>(p: &P) -> ! {
    let name = cmdline::get(p.cmdline(), "keel.test").unwrap_or("");
    if let Some(s) = scenarios::find(name) {
        if let Some(f) = s.secondary::<P>() {
            f(p);
        }
    }
    p.cpu_off();
    loop {
        p.wait_for_interrupt();
    }
}

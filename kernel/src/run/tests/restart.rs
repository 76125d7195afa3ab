//! A domain whose guest reboots is built again from its description, up to
//! `keel.restarts` times; then the reboot ends it.

use super::programs::{rebooter, sleeper};
use super::world::{describe, lines_of, Guest, World};
use crate::config::DomainConfig as BootConfig;
use crate::domain::{DomainState, ShutdownReason};
use crate::mock::MockArch;
use crate::run::{rebuild, BuildError, System};
use core::sync::atomic::{AtomicU32, Ordering};
use keel_abi::xen::DomId;

const MS: u64 = 1_000_000;

#[test]
fn a_rebooting_domain_is_built_again_up_to_the_limit() {
    let mut w = World::with_restarts(2, 2);
    let before = w.pool.stats().allocated;
    let built = w.boot(&describe(&[Guest::new("again", rebooter()), Guest::new("other", sleeper(20 * MS))]));
    assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
    let ends = w.run(1_000 * MS);
    let boots = lines_of(1).iter().filter(|l| l.starts_with("up=")).count();
    assert_eq!(boots, 3, "booted once and restarted twice: {:?}", lines_of(1));
    assert_eq!(ends.len(), 2, "one end per domain, restarts are not ends: {ends:?}");
    let again = ends.iter().find(|e| e.name == "again").unwrap();
    assert_eq!(again.state, DomainState::ShutDown(ShutdownReason::Reboot), "the third reboot ends it");
    assert!(ends.iter().any(|e| e.name == "other" && e.is_clean()), "{ends:?}");
    assert_eq!(w.pool.stats().allocated, before, "every build's memory went back to the pool");
}

#[test]
fn without_restarts_a_reboot_ends_the_domain() {
    let mut w = World::new(1);
    w.boot(&describe(&[Guest::new("once", rebooter())]));
    let ends = w.run(100 * MS);
    assert_eq!(lines_of(1).iter().filter(|l| l.starts_with("up=")).count(), 1);
    assert_eq!(ends[0].state, DomainState::ShutDown(ShutdownReason::Reboot));
}

static REBUILDS_SEEING_FINISHED: AtomicU32 = AtomicU32::new(0);
static REBUILDS: AtomicU32 = AtomicU32::new(0);

/// Rebuilds, noting whether the machine looked finished meanwhile.
fn watching_rebuild(m: &System<'_, MockArch>, config: &BootConfig, handler: bool) -> Result<DomId, BuildError> {
    REBUILDS.fetch_add(1, Ordering::SeqCst);
    if m.is_finished() {
        REBUILDS_SEEING_FINISHED.fetch_add(1, Ordering::SeqCst);
    }
    rebuild(m, config, handler)
}

/// The only domain reboots: while it is off the table and being rebuilt, the machine
/// must not look finished, or the other CPUs would stop for good.
#[test]
fn the_machine_is_not_finished_while_its_only_domain_restarts() {
    let mut w = World::with_restarter(2, 1, watching_rebuild);
    w.boot(&describe(&[Guest::new("only", rebooter())]));
    let ends = w.run(100 * MS);
    assert_eq!(REBUILDS.load(Ordering::SeqCst), 1);
    assert_eq!(REBUILDS_SEEING_FINISHED.load(Ordering::SeqCst), 0, "finished while rebuilding");
    assert_eq!(lines_of(1).iter().filter(|l| l.starts_with("up=")).count(), 2);
    assert_eq!(ends.len(), 1);
}

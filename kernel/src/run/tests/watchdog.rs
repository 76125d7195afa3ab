//! `SCHEDOP_watchdog` in the run loop: a domain that stops petting its watchdog is shut
//! down when it expires, though its vCPUs never leave the guest on their own; the other
//! domain, which keeps petting, runs on to its poweroff.

use super::programs::{early_wake_then_hang, signaller, watchdog};
use super::world::{describe, lines_of, Guest, World};
use crate::domain::{DomainState, ShutdownReason};

extern crate std;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn printed(domain: u16, prefix: &str) -> u64 {
    let lines = lines_of(domain);
    let line = lines.iter().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix} in {lines:?}"));
    u64::from_str_radix(line, 16).unwrap()
}

/// The hung domain pets its watchdog (1 s) once after 300 ms, idles 900 ms and then
/// spins on both vCPUs: the watchdog is due 100 ms later, while they spin. The petter
/// pets its own every 300 ms for 1.5 s, sharing the CPUs with the spinners at the end.
///
/// On one CPU the simulated CPU leaves the guest only for its hardware timer, so the
/// domain ends within microseconds of the deadline only if the CPU armed its timer for
/// the watchdog. On two, the CPUs' clocks may drift 100 us apart.
#[test]
fn a_domain_that_stops_petting_its_watchdog_is_shut_down() {
    for (cpus, quantum, max_late) in [(1, 10 * S, 20_000), (2, 100_000, MS)] {
        let mut w = World::new(cpus).with_quantum(quantum);
        let before = w.pool.stats().allocated;
        let guests = [
            Guest { vcpus: 2, ..Guest::new("hung", watchdog(1, 1, 300 * MS, Some(900 * MS))) },
            Guest::new("petter", watchdog(1, 5, 300 * MS, None)),
        ];
        let built = w.boot(&describe(&guests));
        assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
        let hung = w.m.hypervisor().domain(1).unwrap();
        let hung_ended = w.run_until(3 * S, |w| w.m.ends().iter().any(|e| e.name == "hung"));
        assert!(hung_ended, "{cpus} CPU(s): the hung domain is still running: {:?}", lines_of(1));
        // Its vCPUs went offline when it was shut down.
        let ended_at = hung.vcpu(0).unwrap().runstate(0).state_entry_time;
        drop(hung);
        let (last_pet, spinning) = (printed(1, "petted="), printed(1, "spinning="));
        assert!(spinning + 50 * MS < last_pet + S, "it spun before the watchdog was due");
        // It printed the time just after its last pet.
        let due = last_pet + S;
        let off = ended_at as i64 - due as i64;
        std::eprintln!("watchdog, {cpus} CPU(s): the hung domain ended {off} ns after its watchdog was due");
        assert!(off.unsigned_abs() < max_late, "{cpus} CPU(s): ended at {ended_at}, due at {due}");
        assert!(w.m.guest(2).is_some(), "the petter still runs");
        let ends = w.run(3 * S);
        let state = |name: &str| ends.iter().find(|e| e.name == name).map(|e| e.state);
        assert_eq!(state("hung"), Some(DomainState::ShutDown(ShutdownReason::Watchdog)));
        assert_eq!(ends[0].to_string(), "domain 1 (hung): crashed (watchdog expired)");
        assert_eq!(state("petter"), Some(DomainState::ShutDown(ShutdownReason::Poweroff)), "{:?}", lines_of(2));
        let lived = printed(2, "lived=");
        assert!(lived >= 1_500 * MS, "the petter lived {lived} ns, well past its 1 s timeout");
        assert_eq!(w.pool.stats().allocated, before);
    }
}

/// vCPU 0's timer entry is the earliest of its own deadline and the watchdog's. A halt
/// with a 500 ms timer, ended after a few milliseconds by another domain's event, leaves
/// that entry stale; when it comes due nothing fires, yet the watchdog (1 s) must stay
/// filed: the domain, hanging without exits, is shut down when it expires.
#[test]
fn a_halt_ended_early_leaves_the_watchdog_armed() {
    let mut w = World::new(1);
    let guests = [Guest::new("stale", early_wake_then_hang(2, 500 * MS)), Guest::new("sig", signaller(1, 1, 10_000))];
    let built = w.boot(&describe(&guests));
    assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
    let ended = w.run_until(3 * S, |w| w.m.ends().iter().any(|e| e.name == "stale"));
    assert!(ended, "the watchdog never expired: {:?}", lines_of(1));
    let woke = printed(1, "woke=");
    assert!(woke < 100 * MS, "the event ended the halt early (woke at {woke} ns)");
    let ends = w.run(S);
    let stale = ends.iter().find(|e| e.name == "stale").unwrap();
    assert_eq!(stale.state, DomainState::ShutDown(ShutdownReason::Watchdog));
}

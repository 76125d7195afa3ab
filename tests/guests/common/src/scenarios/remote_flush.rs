//! `keel.test=flush`: frames given back while another vCPU of the domain runs in guest
//! mode. vCPU 1 spins on a shared flag without ever exiting (plain loads and an increment:
//! no hypercall, no `pause`, which may exit); vCPU 0 gives pages back with
//! `XENMEM_decrease_reservation` while it watches vCPU 1's counter move, so the other CPU
//! is in guest mode in the same address space when Keel unmaps the frame and must leave it
//! before the frame is freed (Keel logs the first such kick of a boot).

use crate::balloon;
use crate::scenarios::events::wait_up_to;
use crate::{ensure, fail, pages, say, Outcome, Platform};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Pages given back, each while vCPU 1 was seen running.
const ROUNDS: u32 = 16;
/// How long vCPU 0 watches vCPU 1's counter before each give-back, in µs of guest time.
const WINDOW_US: u64 = 20;

/// vCPU 1's iterations of its loop.
static SPINS: AtomicU64 = AtomicU64::new(0);
/// Set by vCPU 0 when vCPU 1 may stop.
static STOP: AtomicU32 = AtomicU32::new(0);
/// Set by vCPU 1 when it left its loop.
static DONE: AtomicU32 = AtomicU32::new(0);

/// What vCPU 1 runs: counts until told to stop, never leaving guest mode by itself. Its
/// interrupts are open (none is sent to it): Bochs' SVM model (`ryzen`) takes a host
/// interrupt out of guest mode only then, as the `preempt` scenario found.
pub fn secondary<P: Platform>(p: &P) {
    p.init_interrupts();
    p.enable_interrupts();
    while STOP.load(Ordering::Acquire) == 0 {
        SPINS.fetch_add(1, Ordering::Relaxed);
    }
    DONE.store(1, Ordering::Release);
}

/// Whether vCPU 1 advanced during a short window (`WINDOW_US` of guest time) in which
/// this vCPU was not descheduled (the window did not stretch past `4 × WINDOW_US`): then
/// both run at once, on different CPUs, right now.
fn beside<P: Platform>(p: &P) -> bool {
    let window = WINDOW_US * p.tick_hz() / 1_000_000;
    let (t0, seen) = (p.ticks(), SPINS.load(Ordering::Relaxed));
    while p.ticks() < t0 + window {}
    let (moved, t1) = (SPINS.load(Ordering::Relaxed) != seen, p.ticks());
    moved && t1 - t0 < 4 * window
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    ensure!(p.nr_cpus() >= 2, "flush needs 2 vCPUs, has {}", p.nr_cpus());
    if let Err(e) = p.start_cpu(1) {
        fail!("starting vCPU 1: error {e}");
    }
    wait_up_to(p, 20, "vCPU 1 to spin", || SPINS.load(Ordering::Relaxed) != 0)?;
    let Some(page) = pages::alloc() else { fail!("out of guest pages") };
    let gfn = p.gpa(page.va()) >> 12;
    for round in 0..ROUNDS {
        // The scheduler may place both vCPUs on one CPU for a while: wait until they run
        // side by side, then give the page back at once.
        wait_up_to(p, 20, "vCPU 1 to run beside vCPU 0", || beside(p))?;
        page.word(0).store(0x5eed_0000 | round, Ordering::Release);
        balloon::give_back(p, gfn)?;
        balloon::take_back(p, gfn)?;
        let fresh = page.word(0).load(Ordering::Acquire);
        ensure!(fresh == 0, "round {round}: gfn {gfn:#x} kept {fresh:#x} through decrease_reservation");
    }
    STOP.store(1, Ordering::Release);
    wait_up_to(p, 20, "vCPU 1 to stop", || DONE.load(Ordering::Acquire) != 0)?;
    say!(p, "flush: {ROUNDS} pages given back while vCPU 1 spun in guest mode; vCPU 1 stopped");
    Ok(())
}

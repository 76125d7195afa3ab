//! `keel.test=timer`: the guest's own timer (arm64: the EL1 virtual timer, whose
//! interrupt Keel forwards) at 100 Hz for one second of guest time, waiting for each tick
//! halted: every tick must come, none early, half of them less than 3 periods late.
//! Judged on the guest's own clock: an emulator whose vCPU thread is descheduled makes
//! ticks late (the next deadline is absolute, so lateness never accumulates), by about a
//! period at worst in the median with a busy loop per core beside it; a Keel that
//! delivers periods late moves the median past the bound.

use crate::irq::TIMER_TICKS;
use crate::{ensure, say, Outcome, Platform};
use core::sync::atomic::Ordering;

const HZ: u64 = 100;

pub fn run<P: Platform>(p: &P) -> Outcome {
    p.init_interrupts();
    p.enable_interrupts();
    let cpu = p.cpu() as usize % crate::irq::MAX_CPUS;
    if let Some(off) = p.clock_offset() {
        ensure!(off > 0, "the guest's clock has no offset from the machine's");
        say!(p, "timer: the guest clock runs {} ms behind the machine's", off * 1000 / p.tick_hz());
    }
    let period = p.tick_hz() / HZ;
    let start = p.ticks();
    let end = start + p.tick_hz();
    let mut deadline = start + period;
    let (mut taken, mut early) = (0u64, 0u64);
    let mut latest_wake = 0u64;
    let mut late = [0u64; HZ as usize];
    while deadline <= end {
        let seen = TIMER_TICKS[cpu].load(Ordering::Acquire);
        p.set_timer(deadline);
        p.disable_interrupts();
        while TIMER_TICKS[cpu].load(Ordering::Acquire) == seen {
            p.wait_for_interrupt();
            p.enable_interrupts();
            p.disable_interrupts();
        }
        p.enable_interrupts();
        let now = p.ticks();
        if now < deadline {
            early += 1;
        }
        latest_wake = latest_wake.max(now.saturating_sub(deadline));
        if let Some(l) = late.get_mut(taken as usize) {
            *l = now.saturating_sub(deadline);
        }
        taken += 1;
        deadline += period;
    }
    p.stop_timer();
    let elapsed_ms = (p.ticks() - start) * 1000 / p.tick_hz();
    ensure!(early == 0, "{early} ticks came before their deadline");
    ensure!((98..=102).contains(&taken), "{taken} ticks in one second at {HZ} Hz");
    late.sort_unstable();
    let median = late[late.len() / 2];
    ensure!(median < 3 * period, "ticks {} us late (median), 3 periods or more", median * 1_000_000 / p.tick_hz());
    say!(
        p,
        "timer: {taken} ticks at {HZ} Hz in {elapsed_ms} ms of guest time (expected 100 +- 2), none early, \
         latest {} us late, median {} us",
        latest_wake * 1_000_000 / p.tick_hz(),
        median * 1_000_000 / p.tick_hz()
    );
    Ok(())
}

//! `keel.test=timer`: the guest's own timer (arm64: the EL1 virtual timer, whose
//! interrupt Keel forwards) at 100 Hz for one second of guest time, waiting for each tick
//! halted: every tick must come, none early.

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
        latest_wake = latest_wake.max(now - deadline);
        taken += 1;
        deadline += period;
    }
    p.stop_timer();
    let elapsed_ms = (p.ticks() - start) * 1000 / p.tick_hz();
    ensure!(early == 0, "{early} ticks came before their deadline");
    ensure!((98..=102).contains(&taken), "{taken} ticks in one second at {HZ} Hz");
    say!(
        p,
        "timer: {taken} ticks at {HZ} Hz in {elapsed_ms} ms of guest time (expected 100 +- 2), none early, \
         latest {} us late",
        latest_wake * 1_000_000 / p.tick_hz()
    );
    Ok(())
}

//! `keel.test=preempt`: every vCPU of the domain spins for `keel.spin-ms` of guest time
//! (default 300) with interrupts masked and without a single exit: odd vCPUs in a
//! spin-wait loop (`pause` on x86, `yield` on arm64), even ones in a tight loop that only
//! reads the counter. With more vCPUs than physical CPUs, only preemption at the end of a
//! slice (a host timer interrupt ending the guest's run) lets each of them finish. Each
//! vCPU measures, on its own clock, how often and for how long it was away (a gap of
//! over 1 ms between two reads of the counter); with `keel.shared=1` (fewer CPUs than
//! vCPUs) some vCPU must have been away, and no gap may exceed `keel.max-gap-ms`
//! (default 1000; the boot tests bound the reported longest gap per machine). Without
//! preemption the boot vCPU, spinning while it waits for the others, never lets them
//! run, and the scenario fails after 60 s of guest time. With `keel.open=1` the vCPUs spin
//! with interrupts open instead (no interrupt is ever sent to them): Bochs's SVM model
//! takes a host interrupt (#VMEXIT(INTR)) only from a guest whose RFLAGS.IF was set when
//! it entered or has been set since (docs/x86-guests.md, "Bochs Ryzen").

use crate::irq::MAX_CPUS;
use crate::{ensure, fail, say, Outcome, Platform};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Per vCPU: gaps seen, the longest one (ticks), and whether it finished.
static GAPS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static LONGEST: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static DONE: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// Spins `ms` of guest time on this vCPU without exiting and records its gaps.
fn spin<P: Platform>(p: &P, ms: u64) {
    let cpu = p.cpu() as usize % MAX_CPUS;
    let (start, hz) = (p.ticks(), p.tick_hz());
    let (mut last, mut gaps, mut longest) = (start, 0, 0);
    let pause = cpu % 2 == 1;
    loop {
        if pause {
            core::hint::spin_loop();
        }
        let now = p.ticks();
        let gap = now.wrapping_sub(last);
        if gap > hz / 1000 {
            gaps += 1;
            longest = longest.max(gap);
        }
        last = now;
        if now.wrapping_sub(start) > ms * hz / 1000 {
            break;
        }
    }
    GAPS[cpu].store(gaps, Ordering::Relaxed);
    LONGEST[cpu].store(longest, Ordering::Relaxed);
    DONE[cpu].store(1, Ordering::Release);
}

fn spin_ms<P: Platform>(p: &P) -> u64 {
    crate::cmdline::get_u64(p.cmdline(), "keel.spin-ms").unwrap_or(300)
}

/// Masks interrupts at the CPU, or opens them with `keel.open=1`.
pub fn set_interrupts<P: Platform>(p: &P) {
    if crate::cmdline::get_u64(p.cmdline(), "keel.open") == Some(1) {
        p.enable_interrupts();
    } else {
        p.disable_interrupts();
    }
}

/// What a secondary vCPU runs.
pub fn secondary<P: Platform>(p: &P) {
    set_interrupts(p);
    spin(p, spin_ms(p));
}

/// The boot vCPU's part: starts the others, spins, then waits (spinning too) for all.
pub fn run<P: Platform>(p: &P) -> Outcome {
    let line = p.cmdline();
    let (ms, n) = (spin_ms(p), p.nr_cpus().min(MAX_CPUS as u32));
    let max_gap_ms = crate::cmdline::get_u64(line, "keel.max-gap-ms").unwrap_or(1000);
    let shared = crate::cmdline::get_u64(line, "keel.shared") == Some(1);
    set_interrupts(p);
    for cpu in 1..n {
        if let Err(e) = p.start_cpu(cpu) {
            fail!("starting vCPU {cpu}: {e}");
        }
    }
    say!(p, "preempt: {n} vCPUs spin {ms} ms each without exiting (odd ones with pause)");
    spin(p, ms);
    let hz = p.tick_hz();
    let (start, limit) = (p.ticks(), 60 * hz);
    while (0..n as usize).any(|c| DONE[c].load(Ordering::Acquire) == 0) {
        ensure!(p.ticks().wrapping_sub(start) < limit, "a vCPU did not finish within 60 s of guest time");
    }
    let to_us = |t: u64| t * 1_000_000 / hz.max(1);
    let mut total = 0;
    let mut longest = 0;
    for c in 0..n as usize {
        let (g, l) = (GAPS[c].load(Ordering::Relaxed), LONGEST[c].load(Ordering::Relaxed));
        say!(p, "preempt: vCPU {c}: {g} gaps, longest {} us", to_us(l));
        total += g;
        longest = longest.max(l);
    }
    ensure!(!shared || total > 0, "no vCPU was ever away although they share CPUs");
    ensure!(
        to_us(longest) <= max_gap_ms * 1000,
        "a vCPU was away for {} us, more than {max_gap_ms} ms",
        to_us(longest)
    );
    say!(p, "preempt: all {n} vCPUs finished; {total} gaps, the longest {} us", to_us(longest));
    Ok(())
}

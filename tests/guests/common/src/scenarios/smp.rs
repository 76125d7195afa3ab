//! `keel.test=smp` and `keel.test=ipi`: starting and stopping vCPUs (arm64: PSCI
//! `CPU_ON`, `CPU_OFF`, `AFFINITY_INFO`), FP/SIMD registers kept per vCPU while they share
//! physical CPUs, and IPIs between vCPUs counted exactly.

use crate::irq::{ipis, MAX_CPUS};
use crate::scenarios::events::{spin, wait_up_to};
use crate::{ensure, expect_eq, fail, say, CpuState, Outcome, Platform};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Per CPU: how many times it started.
static STARTS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Per CPU: its FP/SIMD check result (0 = not yet, 1 = kept, 2 + n = register n lost).
static FP: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Per CPU: gaps of more than 1 ms in its view of time (it was not running).
static GAPS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Secondaries may turn themselves off once this is set.
static RELEASE: AtomicU32 = AtomicU32::new(0);
/// IPI rounds the boot CPU drives (`ipi`); secondaries answer until it is 0 again.
static ROUNDS: AtomicU32 = AtomicU32::new(0);

/// IPI numbers of the `ipi` scenario: ping from the boot CPU; vCPU `c` answers with
/// `PONG + c` (IPIs of one number from several CPUs may coalesce, as GICv3 SGIs do).
const PING: u32 = 1;
const PONG: u32 = 1;

/// Fills the FP/SIMD registers, spins `ms` of guest time checking them, records the
/// result and how often the CPU was away for over 1 ms.
fn fp_workout<P: Platform>(p: &P, ms: u64) -> u32 {
    let cpu = p.cpu() as usize % MAX_CPUS;
    let seed = 0x1000 * (cpu as u64 + 1);
    p.fp_fill(seed);
    let (start, hz) = (p.ticks(), p.tick_hz());
    let mut last = start;
    let mut gaps = 0;
    let result = loop {
        let now = p.ticks();
        if now - last > hz / 1000 {
            gaps += 1;
        }
        last = now;
        if let Err(n) = p.fp_check(seed) {
            break 2 + n;
        }
        if now - start > ms * hz / 1000 {
            break 1;
        }
    };
    GAPS[cpu].store(gaps, Ordering::Release);
    FP[cpu].store(result, Ordering::Release);
    result
}

/// What a secondary CPU runs in `smp`.
pub fn smp_secondary<P: Platform>(p: &P) {
    let cpu = p.cpu() as usize % MAX_CPUS;
    STARTS[cpu].fetch_add(1, Ordering::AcqRel);
    if STARTS[cpu].load(Ordering::Acquire) == 1 {
        fp_workout(p, 60);
    }
    while RELEASE.load(Ordering::Acquire) == 0 {
        spin(p, 100_000);
    }
}

fn states<P: Platform>(p: &P) -> [Option<CpuState>; MAX_CPUS] {
    core::array::from_fn(|c| if (c as u32) < p.nr_cpus() { p.cpu_state(c as u32) } else { None })
}

fn names(s: &[Option<CpuState>], n: usize) -> crate::console::Text<64> {
    let mut t = crate::console::Text::new();
    for st in &s[1..n] {
        let _ = core::fmt::Write::write_str(
            &mut t,
            match st {
                Some(CpuState::On) => " on",
                Some(CpuState::Off) => " off",
                Some(CpuState::OnPending) => " pending",
                None => " ?",
            },
        );
    }
    t
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let n = p.nr_cpus().min(MAX_CPUS as u32) as usize;
    ensure!(n >= 2, "smp needs at least 2 vCPUs, has {n}");
    let before = states(p);
    ensure!(
        before[1..n].iter().all(|s| *s == Some(CpuState::Off)),
        "secondaries not off at boot: {}",
        names(&before, n)
    );
    for c in 1..n as u32 {
        if let Err(e) = p.start_cpu(c) {
            fail!("starting vCPU {c}: error {e}");
        }
    }
    ensure!(p.start_cpu(1).is_err(), "starting a running vCPU succeeded");
    ensure!(p.start_cpu(n as u32).is_err(), "starting vCPU {n}, which does not exist, succeeded");
    fp_workout(p, 60);
    wait_up_to(p, 10, "the secondaries' FP/SIMD checks", || (0..n).all(|c| FP[c].load(Ordering::Acquire) != 0))?;
    let after = states(p);
    ensure!(after[1..n].iter().all(|s| *s == Some(CpuState::On)), "secondaries not on: {}", names(&after, n));
    say!(p, "smp: {n} vCPUs; state before start:{}, after:{}", names(&before, n), names(&after, n));
    for fp in &FP[..n] {
        expect_eq!(fp.load(Ordering::Acquire), 1, "FP/SIMD check (1 = kept, 2 + n = q<n> lost)");
    }
    let gaps: u64 = (0..n).map(|c| GAPS[c].load(Ordering::Acquire)).sum();
    say!(p, "fp: {n} vCPUs kept q0-q31 through 60 ms of sharing CPUs ({gaps} times descheduled)");
    RELEASE.store(1, Ordering::Release);
    wait_up_to(p, 10, "the secondaries to turn off", || states(p)[1..n].iter().all(|s| *s == Some(CpuState::Off)))?;
    // A vCPU that turned itself off starts afresh (once it has left its CPU: until then
    // the platform may answer "pending", so ask again for a while).
    let mut tries = 0;
    while let Err(e) = p.start_cpu(1) {
        tries += 1;
        if tries == 1000 {
            fail!("restarting vCPU 1: error {e}");
        }
        spin(p, 100_000);
    }
    wait_up_to(p, 10, "vCPU 1 to run again", || STARTS[1].load(Ordering::Acquire) == 2)?;
    wait_up_to(p, 10, "vCPU 1 to turn off again", || states(p)[1] == Some(CpuState::Off))?;
    say!(p, "cpu_off: all secondaries off; vCPU 1 restarted and off again");
    Ok(())
}

/// What a secondary CPU runs in `ipi`: answers each ping with a pong.
pub fn ipi_secondary<P: Platform>(p: &P) {
    let cpu = p.cpu();
    p.init_interrupts();
    p.enable_interrupts();
    STARTS[cpu as usize % MAX_CPUS].fetch_add(1, Ordering::AcqRel);
    let mut answered = 0;
    loop {
        p.disable_interrupts();
        while ipis(cpu, PING) == answered && RELEASE.load(Ordering::Acquire) == 0 {
            p.wait_for_interrupt();
            p.enable_interrupts();
            p.disable_interrupts();
        }
        p.enable_interrupts();
        if ipis(cpu, PING) == answered {
            return;
        }
        answered += 1;
        p.send_ipi(0, PONG + cpu);
    }
}

pub fn ipi<P: Platform>(p: &P) -> Outcome {
    let n = p.nr_cpus().min(MAX_CPUS as u32).min(crate::irq::NR_IPIS - PONG);
    ensure!(n >= 2, "ipi needs at least 2 vCPUs, has {n}");
    p.init_interrupts();
    p.enable_interrupts();
    for c in 1..n {
        if let Err(e) = p.start_cpu(c) {
            fail!("starting vCPU {c}: error {e}");
        }
    }
    wait_up_to(p, 10, "the secondaries", || (1..n).all(|c| STARTS[c as usize].load(Ordering::Acquire) == 1))?;
    say!(p, "ipi: {} secondaries waiting for IPIs", n - 1);
    let rounds = 200;
    ROUNDS.store(rounds, Ordering::Release);
    for r in 1..=rounds {
        for c in 1..n {
            p.send_ipi(c, PING);
        }
        p.disable_interrupts();
        while (1..n).any(|c| ipis(0, PONG + c) < r) {
            p.wait_for_interrupt();
            p.enable_interrupts();
            p.disable_interrupts();
        }
        p.enable_interrupts();
    }
    spin(p, 2_000_000);
    for c in 1..n {
        expect_eq!(ipis(c, PING), rounds, "pings a secondary took");
        expect_eq!(ipis(0, PONG + c), rounds, "answers the boot CPU took from one secondary");
    }
    RELEASE.store(1, Ordering::Release);
    for c in 1..n {
        p.send_ipi(c, 0);
    }
    let total = rounds * (n - 1);
    say!(p, "ipi: {rounds} rounds with {n} vCPUs: {total} pings and {total} answers, each counted once");
    Ok(())
}

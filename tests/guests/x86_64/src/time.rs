//! x86 time, checked before the portable `timer` scenario: the wall clock in shared_info,
//! the pvclock in `vcpu_info` (its scale from the TSC frequency, its rate against the
//! TSC), Xen's single-shot timer at 100 Hz for one second of system time (VIRQ_TIMER
//! through the upcall), and the local APIC timer in periodic mode at 100 Hz (with its
//! current count).

use crate::cpu;
use crate::platform::{wrmsr_or_panic, Pvh};
use core::sync::atomic::Ordering;
use keel_abi::event::{EvtchnBindVirq, EVTCHNOP_BIND_VIRQ};
use keel_abi::hypercall::VCPU_OP;
use keel_abi::layout::VcpuTimeInfo;
use keel_abi::vcpu::{VcpuSetSingleshotTimer, VCPUOP_SET_SINGLESHOT_TIMER, VCPUOP_STOP_SINGLESHOT_TIMER};
use keel_abi::xen::VIRQ_TIMER;
use keel_abi::Wire;
use keel_test_guest::events::{self, hits};
use keel_test_guest::hcall::{name, Hv};
use keel_test_guest::irq::TIMER_TICKS;
use keel_test_guest::{ensure, expect_eq, fail, say, Outcome, Platform};

const HZ: u64 = 100;
const NS_PER_SEC: u64 = 1_000_000_000;
/// 2020-01-01 and 2100-01-01 in seconds since the epoch.
const PLAUSIBLE_WALLCLOCK: core::ops::Range<u64> = 1_577_836_800..4_102_444_800;
const X2APIC_LVT_TIMER: u32 = 0x832;
const X2APIC_TIMER_INITIAL: u32 = 0x838;
const X2APIC_TIMER_CURRENT: u32 = 0x839;
const X2APIC_TIMER_DIVIDE: u32 = 0x83e;
const LVT_PERIODIC: u64 = 1 << 17;
const LVT_MASKED: u64 = 1 << 16;
const DIVIDE_BY_1: u64 = 0b1011;

/// This CPU's pvclock, read with the version protocol.
fn pvclock(p: &Pvh) -> Option<VcpuTimeInfo> {
    let vi = events::vcpu_info(p)?;
    let at = <Pvh as Platform>::LAYOUT.vcpu_info_time;
    loop {
        let v1 = vi.word(at).load(Ordering::Acquire);
        let mut b = [0u8; 32];
        vi.read(at, &mut b);
        let v2 = vi.word(at).load(Ordering::Acquire);
        if v1 == v2 && v1 % 2 == 0 {
            return VcpuTimeInfo::from_bytes(&b);
        }
    }
}

/// System time now (ns), from the pvclock.
fn system_ns(p: &Pvh) -> u64 {
    pvclock(p).map_or(0, |t| t.system_time_at(cpu::rdtsc()))
}

/// The wall clock of system time 0 (`wc_sec`, `wc_nsec`), with its version protocol.
fn wallclock() -> Option<(u64, u32)> {
    let si = events::shared_info()?;
    let at = <Pvh as Platform>::LAYOUT.wc_version;
    loop {
        let v1 = si.word(at).load(Ordering::Acquire);
        let sec = si.word(at + 4).load(Ordering::Acquire) as u64;
        let nsec = si.word(at + 8).load(Ordering::Acquire);
        let hi = si.word(at + 12).load(Ordering::Acquire) as u64;
        if v1 % 2 == 0 && si.word(at).load(Ordering::Acquire) == v1 {
            return Some((sec | hi << 32, nsec));
        }
    }
}

pub fn run(p: &Pvh) -> Outcome {
    events::setup_two_level(p)?;
    let (sec, nsec) = wallclock().unwrap_or_default();
    let now = sec + system_ns(p) / NS_PER_SEC;
    ensure!(PLAUSIBLE_WALLCLOCK.contains(&now), "wall clock {sec} s + {nsec} ns at system time 0: now {now} s");
    say!(p, "x86: wall clock: set (between 2020 and 2100)");
    pvclock_rate(p)?;
    singleshot(p)?;
    lapic_periodic(p)
}

/// The pvclock's scale is Xen's for the TSC frequency of CPUID 0x40000003, and 100 ms of
/// TSC are 100 ms of system time (within 0.1 %).
fn pvclock_rate(p: &Pvh) -> Outcome {
    let Some(t) = pvclock(p) else { fail!("no vcpu_info") };
    ensure!(t.version != 0 && t.tsc_to_system_mul != 0, "pvclock not written: {t:?}");
    let hz = p.tick_hz();
    // CPUID gives the frequency in kHz: the scale matches it within 0.1 %. Compared as a
    // rate, not field by field: a TSC just above 2 GHz has shift -1 where the kHz figure,
    // rounded down to exactly 2 GHz, has shift 0.
    let (mul, shift) = VcpuTimeInfo::scale(hz);
    let (got_mul, got_shift) = (t.tsc_to_system_mul, t.tsc_shift);
    let scale = VcpuTimeInfo { tsc_to_system_mul: got_mul, tsc_shift: got_shift, ..Default::default() };
    let second = scale.system_time_at(hz);
    let close = second.abs_diff(NS_PER_SEC) * 1000 <= NS_PER_SEC;
    ensure!(
        close,
        "pvclock scale ({got_mul:#x}, {got_shift}) makes {second} ns of {hz} TSC ticks; expected about ({mul:#x}, {shift})"
    );
    let (tsc0, ns0) = tsc_and_ns(p);
    while cpu::rdtsc() - tsc0 < hz / 10 {
        core::hint::spin_loop();
    }
    let (tsc1, ns1) = tsc_and_ns(p);
    let want = (tsc1 - tsc0) as u128 * NS_PER_SEC as u128 / hz as u128;
    let got = (ns1 - ns0) as u128;
    ensure!(got.abs_diff(want) * 1000 <= want, "pvclock ran {got} ns over {want} ns of TSC");
    say!(p, "x86: pvclock: mul {mul:#x} shift {shift} for {} kHz; 100 ms of TSC = 100 ms of system time", hz / 1000);
    Ok(())
}

/// The TSC and system time read together: an emulator that deschedules the vCPU between
/// the two reads would make 1 ms of error, so a pair is taken only when both reads fall
/// within 20 us of TSC time (retried up to 1000 times).
fn tsc_and_ns(p: &Pvh) -> (u64, u64) {
    let window = p.tick_hz() / 50_000;
    let mut pair = (0, 0);
    for _ in 0..1000 {
        let a = cpu::rdtsc();
        let ns = system_ns(p);
        let b = cpu::rdtsc();
        pair = (a + (b - a) / 2, ns);
        if b - a <= window {
            break;
        }
    }
    pair
}

/// `VCPUOP_set_singleshot_timer` at absolute deadlines 10 ms apart, 100 times: each
/// VIRQ_TIMER arrives, none early, half of them less than 3 periods late (judged by the
/// median: an emulator thread descheduled by a busy host makes events late, by about a
/// period at worst in the median with a busy loop per core beside it).
fn singleshot(p: &Pvh) -> Outcome {
    let hv = Hv(p);
    let mut bind = EvtchnBindVirq { virq: VIRQ_TIMER, vcpu: p.cpu(), port: 0 };
    let r = hv.event_op(EVTCHNOP_BIND_VIRQ, &mut bind);
    ensure!(r == 0, "bind_virq(VIRQ_TIMER): {}", name(r));
    p.init_interrupts();
    p.enable_interrupts();
    let port = bind.port;
    let period = NS_PER_SEC / HZ;
    let start = system_ns(p);
    let (mut early, mut latest, mut total) = (0u32, 0u64, 0u64);
    let mut late = [0u64; HZ as usize];
    for k in 1..=HZ {
        let deadline = start + k * period;
        let seen = hits(port);
        let t = VcpuSetSingleshotTimer { timeout_abs_ns: deadline, flags: 0, _pad: [0; 4] };
        let r = hv.vcpu_op(VCPUOP_SET_SINGLESHOT_TIMER, p.cpu(), &t);
        ensure!(r == 0, "set_singleshot_timer: {}", name(r));
        events::wait_hits(p, port, seen + 1);
        let now = system_ns(p);
        // The pvclock may run up to a microsecond behind Keel's clock.
        if now + 1_000 < deadline {
            early += 1;
        }
        latest = latest.max(now.saturating_sub(deadline));
        late[(k - 1) as usize] = now.saturating_sub(deadline);
        total += now.saturating_sub(deadline);
    }
    let elapsed_ms = (system_ns(p) - start) / 1_000_000;
    let r = hv.raw(VCPU_OP, [VCPUOP_STOP_SINGLESHOT_TIMER, p.cpu() as u64, 0, 0, 0]);
    ensure!(r == 0, "stop_singleshot_timer: {}", name(r));
    ensure!(early == 0, "{early} VIRQ_TIMER events before their deadline");
    // Each deadline is absolute, so lateness never accumulates. Late events (an emulator
    // thread descheduled by a busy host) must not fail the run, so the bound is on the
    // median, not on the mean or the last event.
    ensure!(elapsed_ms >= 1000, "100 ticks at 100 Hz took only {elapsed_ms} ms");
    late.sort_unstable();
    let median = late[late.len() / 2];
    ensure!(median < 3 * period, "VIRQ_TIMER events {} us late (median), 3 periods or more", median / 1000);
    expect_eq!(hits(port), HZ as u32, "VIRQ_TIMER events");
    say!(
        p,
        "x86: singleshot timer: {HZ} VIRQ_TIMER events at {HZ} Hz in {elapsed_ms} ms of system time, \
         none early, {} us late on average ({} median), {} at most",
        total / HZ / 1000,
        median / 1000,
        latest / 1000
    );
    Ok(())
}

/// The current count and the TSC read together: the TSC before and after the read
/// (Keel computes the count at a TSC between the two), retried until they are at most
/// 20 us apart (an emulator may deschedule the vCPU in between).
fn current_count(p: &Pvh) -> (u64, u64, u64) {
    let window = p.tick_hz() / 50_000;
    let mut sample = (0, 0, 0);
    for _ in 0..1000 {
        let before = cpu::rdtsc();
        let count = crate::traps::rdmsr(X2APIC_TIMER_CURRENT).unwrap_or(0);
        let after = cpu::rdtsc();
        sample = (before, count, after);
        if after - before <= window {
            break;
        }
    }
    sample
}

/// The local APIC timer in periodic mode, 10 ms at the TSC's rate divided by 1, for one
/// second of TSC time (the guest's own clock). Judged on the guest's clock, not on the
/// host's speed: an emulator whose vCPU thread, or whose timer thread, is descheduled
/// delays Keel's timer interrupts, and a period that passes before Keel could deliver
/// the last tick is lost (Keel skips missed periods, as a local APIC does); the guest
/// cannot see all of that happen. So:
/// - no tick is early: the n-th tick never comes before n periods have passed (a fast
///   rate, or a tick delivered twice, fails here);
/// - the period grid is right: the current count read at the start and after the second
///   (each bracketed by TSC reads) lie on one grid of 10 ms periods of TSC time, within
///   0.2 % of a period plus the brackets (a slow or fast rate drifts by a whole period
///   or more in one second);
/// - ticks come: at least 10, at most 102 (fewer than 100 only when the host was busy;
///   the figure is reported with the absences the guest saw).
fn lapic_periodic(p: &Pvh) -> Outcome {
    let cpu = p.cpu() as usize;
    let hz = p.tick_hz();
    let count = hz / HZ;
    ensure!(count <= u32::MAX as u64, "TSC too fast for a 32-bit count of 10 ms");
    wrmsr_or_panic(X2APIC_TIMER_DIVIDE, DIVIDE_BY_1);
    wrmsr_or_panic(X2APIC_LVT_TIMER, LVT_PERIODIC | crate::platform::TIMER_VECTOR as u64);
    let before = TIMER_TICKS[cpu].load(Ordering::Acquire);
    let start = cpu::rdtsc();
    wrmsr_or_panic(X2APIC_TIMER_INITIAL, count);
    let first = current_count(p);
    ensure!(first.1 > 0 && first.1 <= count, "current count {} of {count}", first.1);
    p.enable_interrupts();
    let (mut seen, mut early, mut last) = (0u64, None, start);
    let (mut absences, mut backwards) = (0u64, 0u64);
    loop {
        // The count first, then the time: a tick that arrives in between is seen on the
        // next pass, never timed before it came.
        let total = u64::from(TIMER_TICKS[cpu].load(Ordering::Acquire) - before);
        let now = cpu::rdtsc();
        if now < last {
            // Keel promises an invariant TSC (CPUID 0x80000007).
            backwards += 1;
            last = now;
            continue;
        }
        if now - last > count / 10 {
            absences += 1;
        }
        last = now;
        while seen < total {
            seen += 1;
            // 1 % of a period for the timer's start after `start` was read.
            if early.is_none() && (now - start) * 100 < (seen * 100 - 1) * count {
                early = Some((seen, now - start));
            }
        }
        if now - start >= hz {
            break;
        }
        core::hint::spin_loop();
    }
    let end = current_count(p);
    wrmsr_or_panic(X2APIC_LVT_TIMER, LVT_MASKED | crate::platform::TIMER_VECTOR as u64);
    wrmsr_or_panic(X2APIC_TIMER_INITIAL, 0);
    let ticks = seen;
    ensure!(backwards == 0, "the TSC went back {backwards} times");
    if let Some((n, t)) = early {
        fail!("periodic LAPIC tick {n} came after {} us, before {n} periods of 10 ms", t * 1_000_000 / hz);
    }
    ensure!((10..=102).contains(&ticks), "{ticks} periodic LAPIC ticks in one second at {HZ} Hz");
    // Where each read puts the grid's origin, as a phase in 0..count: Keel read the TSC
    // somewhere in [before, after], when `count - current` of the period had passed, so
    // the period began at `before - (count - current)`, the same phase as
    // `before + current`.
    let phase = |(before, current, _): (u64, u64, u64)| (before + current) % count;
    let slack = count / 500 + (first.2 - first.0) + (end.2 - end.0);
    let drift = phase(end).abs_diff(phase(first));
    let drift = drift.min(count - drift);
    ensure!(
        drift <= slack,
        "the current count's period grid moved by {} us in one second (rate wrong)",
        drift * 1_000_000 / hz
    );
    say!(
        p,
        "x86: LAPIC timer periodic: {ticks} ticks at {HZ} Hz in 1 s of TSC time, none early; \
         the count's grid held to {} us in 1 s; the vCPU was away {absences} times",
        drift * 1_000_000 / hz
    );
    Ok(())
}

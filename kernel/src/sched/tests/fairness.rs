//! Simulated bounds: proportional shares, no starvation, wake-up latency, caps.
//! The bounds are derived in `docs/scheduler.md`.

use super::sim::{Sim, Work};
use crate::sched::{CpuMask, SchedConfig, VcpuKey, VcpuParams};
use alloc::vec::Vec;

const MS: u64 = 1_000_000;

fn on_cpu0(weight: u16) -> VcpuParams {
    VcpuParams { weight, affinity: CpuMask::of(&[0]), ..Default::default() }
}

/// CPU-bound vCPUs with weights 1:2:4 on one CPU. Over every window [t1, t2] between
/// 100 ms samples of a 10 s run:
/// - pairwise (the start-time fair queueing bound): |W_i/w_i − W_j/w_j| ≤ S/w_i + S/w_j;
/// - against the weighted share: |W_i − T·w_i/Σw| ≤ S·(1 + (n−2)·w_i/Σw), that is
///   4.57, 5.14 and 6.29 ms with S = 4 ms; over the whole 10 s run within ±0.35 %.
#[test]
fn weights_1_2_4_get_proportional_shares() {
    let cfg = SchedConfig::default();
    let weights = [100u16, 200, 400];
    let n = weights.len() as u64;
    let total: u64 = weights.iter().map(|&w| w as u64).sum();
    let slice = cfg.slice_ns as f64;
    let mut sim = Sim::new(1, cfg);
    let keys: Vec<_> = (0..3).map(|i| VcpuKey::new(i + 1, 0)).collect();
    for (k, &w) in keys.iter().zip(&weights) {
        sim.add(*k, on_cpu0(w), Work::Spin);
    }
    let mut samples = alloc::vec![(0u64, sim.runtimes())];
    for _ in 0..100 {
        sim.run_for(100 * MS);
        samples.push((sim.now, sim.runtimes()));
    }
    let mut worst = [0f64; 3];
    for (i, (t1, r1)) in samples.iter().enumerate() {
        for (t2, r2) in &samples[i + 1..] {
            let served = |j: usize| (r2[&keys[j]] - r1[&keys[j]]) as f64;
            for (i, &wi) in weights.iter().enumerate() {
                let wi = wi as f64;
                for (j, &wj) in weights.iter().enumerate() {
                    let wj = wj as f64;
                    let lag = (served(i) / wi - served(j) / wj).abs();
                    assert!(lag <= slice / wi + slice / wj + 1.0, "w{wi} vs w{wj} over [{t1},{t2}]: {lag}");
                }
                let fair = (t2 - t1) as f64 * wi / total as f64;
                let bound = slice * (1.0 + (n - 2) as f64 * wi / total as f64);
                let err = (served(i) - fair).abs();
                assert!(err <= bound + 1.0, "w{wi} over [{t1},{t2}]: served {}, fair {fair}", served(i));
                worst[i] = worst[i].max(err);
            }
        }
    }
    for (j, (k, &w)) in keys.iter().zip(&weights).enumerate() {
        let share = sim.stats[k].runtime as f64 / sim.now as f64;
        let fair = w as f64 / total as f64;
        assert!((share - fair).abs() / fair < 0.0035, "{k}: share {share:.4}, fair {fair:.4}");
        std::println!("weight {w}: share {share:.5} (fair {fair:.5}), worst window error {:.3} ms", worst[j] / 1e6);
    }
}

/// The lightest of three CPU-bound vCPUs (1:2:4) never waits longer than
/// S·(Σ_{k≠i} w_k/w_i + n − 1) = 4 ms·(6 + 2) = 32 ms.
#[test]
fn lightest_vcpu_is_not_starved() {
    let cfg = SchedConfig::default();
    let mut sim = Sim::new(1, cfg);
    let light = VcpuKey::new(1, 0);
    sim.add(light, on_cpu0(1), Work::Spin);
    sim.add(VcpuKey::new(2, 0), on_cpu0(2), Work::Spin);
    sim.add(VcpuKey::new(3, 0), on_cpu0(4), Work::Spin);
    sim.run_for(5_000 * MS);
    let gap = sim.stats[&light].max_gap;
    assert!(gap <= 8 * cfg.slice_ns, "longest wait {gap} ns");
    std::println!("longest wait of the weight-1 vCPU: {:.3} ms (bound 32 ms)", gap as f64 / 1e6);
}

/// An interactive vCPU (runs 0.2 ms, sleeps 3–7 ms) sharing a CPU with three CPU-bound
/// ones is boosted at each wake: it runs within `min_run` (0.5 ms) of the wake when the
/// busy CPU acts on the IPI, and within one slice when wake preemption is off
/// (`min_run == slice`); it also keeps at least its fair share.
#[test]
fn woken_vcpu_runs_within_min_run_or_one_slice() {
    for (cfg, bound) in [
        (SchedConfig::default(), SchedConfig::default().min_run_ns),
        (SchedConfig { min_run_ns: 4 * MS, ..Default::default() }, 4 * MS),
    ] {
        let mut sim = Sim::new(1, cfg);
        let io = VcpuKey::new(9, 0);
        for d in 1..=3 {
            sim.add(VcpuKey::new(d, 0), on_cpu0(256), Work::Spin);
        }
        sim.add(io, on_cpu0(256), Work::Burst { run: MS / 5, sleep: 5 * MS });
        sim.jitter = true;
        // Vary the phase of the wakes relative to slice boundaries.
        for i in 0..400u64 {
            sim.run_for(MS + (i * 7919) % (3 * MS));
        }
        let s = &sim.stats[&io];
        assert!(s.wakes > 100, "only {} wakes", s.wakes);
        assert!(s.max_wake_latency <= bound, "wake latency {} ns > {bound}", s.max_wake_latency);
        std::println!(
            "min_run {:.1} ms: {} wakes, worst latency {:.3} ms",
            cfg.min_run_ns as f64 / 1e6,
            s.wakes,
            s.max_wake_latency as f64 / 1e6
        );
    }
}

/// A sleeper cannot bank credit: after sleeping 1 s next to a CPU-bound vCPU, it gets
/// at most `wake_credit` more than an even split while both are busy.
#[test]
fn sleepers_bank_at_most_the_wake_credit() {
    let cfg = SchedConfig::default();
    let mut sim = Sim::new(1, cfg);
    let (a, b) = (VcpuKey::new(1, 0), VcpuKey::new(2, 0));
    sim.add(a, on_cpu0(256), Work::Spin);
    sim.add(b, on_cpu0(256), Work::Burst { run: 200 * MS, sleep: 1_000 * MS });
    while sim.stats[&b].wakes == 0 {
        sim.run_for(MS / 10);
    }
    assert!(sim.now > 1_300 * MS);
    let before = sim.runtimes();
    sim.run_for(100 * MS);
    let got = sim.stats[&b].runtime - before[&b];
    let fair = 50 * MS;
    assert!(got <= fair + cfg.wake_credit_ns + cfg.slice_ns, "sleeper got {got} of 100 ms");
    assert!(got + cfg.slice_ns >= fair, "sleeper got only {got}");
}

/// A vCPU capped at 25 % gets 25 % of an otherwise idle CPU, and at most 25 % next to
/// a CPU-bound neighbour, measured over whole cap periods.
#[test]
fn caps_limit_cpu_time() {
    let cfg = SchedConfig::default();
    for neighbour in [false, true] {
        let mut sim = Sim::new(1, cfg);
        let capped = VcpuKey::new(1, 0);
        sim.add(capped, VcpuParams { cap: 25, ..on_cpu0(256) }, Work::Spin);
        if neighbour {
            sim.add(VcpuKey::new(2, 0), on_cpu0(256), Work::Spin);
        }
        sim.run_for(100 * cfg.cap_period_ns);
        let got = sim.stats[&capped].runtime;
        let cap = sim.now / 4;
        assert!(got <= cap, "capped vCPU ran {got} of {}", sim.now);
        assert!(got + cfg.cap_period_ns / 4 >= cap, "capped vCPU ran only {got} of {}", sim.now);
    }
}

//! Several CPUs: load balancing, idle stealing, wake-up placement, affinity.

use super::sim::{Sim, Work};
use crate::arch::CpuId;
use crate::sched::{CpuMask, SchedConfig, VcpuKey, VcpuParams};
use alloc::vec::Vec;

const MS: u64 = 1_000_000;

fn pinned(cpus: &[u32]) -> VcpuParams {
    VcpuParams { affinity: CpuMask::of(cpus), ..Default::default() }
}

fn per_cpu(sim: &Sim, keys: &[VcpuKey]) -> Vec<usize> {
    let mut count = alloc::vec![0; sim.sched.nr_cpus()];
    for k in keys {
        count[sim.sched.info(*k).unwrap().cpu.0 as usize] += 1;
    }
    count
}

/// Eight CPU-bound vCPUs that all start on CPU 0 spread to two per CPU on four CPUs
/// within 10 balance intervals (40 ms), then stay put; each then gets half a CPU
/// within ±1 slice per second.
#[test]
fn eight_vcpus_spread_two_per_cpu() {
    let cfg = SchedConfig::default();
    let mut sim = Sim::new(4, cfg);
    let keys: Vec<_> = (0..8).map(|v| VcpuKey::new(1, v)).collect();
    for &k in &keys {
        sim.add(k, pinned(&[0]), Work::Spin);
    }
    for &k in &keys {
        let kick = sim.sched.set_affinity(k, CpuMask::ALL, sim.now).unwrap();
        sim.kick(kick);
    }
    assert_eq!(per_cpu(&sim, &keys), [8, 0, 0, 0]);
    let mut converged = None;
    for step in 1..=10 {
        sim.run_for(cfg.balance_interval_ns);
        if per_cpu(&sim, &keys) == [2, 2, 2, 2] {
            converged = Some(step);
            break;
        }
    }
    let steps = converged.unwrap_or_else(|| panic!("not balanced after 40 ms: {:?}", per_cpu(&sim, &keys)));
    std::println!("balanced 2/2/2/2 after {steps} balance intervals");
    let home = |sim: &Sim| keys.iter().map(|k| sim.sched.info(*k).unwrap().cpu).collect::<Vec<_>>();
    let placed = home(&sim);
    let before = sim.runtimes();
    for _ in 0..250 {
        sim.run_for(cfg.balance_interval_ns);
        assert_eq!(home(&sim), placed, "no migrations once balanced");
    }
    for k in &keys {
        let got = sim.stats[k].runtime - before[k];
        assert!(got.abs_diff(500 * MS) <= cfg.slice_ns, "{k} ran {got} ns of 1 s");
    }
}

/// A CPU whose only vCPU blocks steals a waiting vCPU from a busy CPU at once.
#[test]
fn idle_cpu_steals_waiting_work() {
    let mut sim = Sim::new(2, SchedConfig::default());
    let io = VcpuKey::new(1, 0);
    sim.add(io, pinned(&[0]), Work::Burst { run: 3 * MS, sleep: 100 * MS });
    let spinners: Vec<_> = (0..2).map(|v| VcpuKey::new(2, v)).collect();
    for &k in &spinners {
        sim.add(k, pinned(&[1]), Work::Spin);
        sim.sched.set_affinity(k, CpuMask::ALL, sim.now).unwrap();
    }
    sim.run_for(MS);
    assert_eq!(sim.running(0), Some(io));
    assert_eq!(per_cpu(&sim, &spinners), [0, 2], "one vCPU more is no imbalance");
    sim.run_for(2 * MS);
    // The burst ended at 3 ms: CPU 0 went idle and took a spinner from CPU 1.
    let on0 = sim.running(0).expect("CPU 0 stole work");
    assert!(spinners.contains(&on0));
    assert_eq!(per_cpu(&sim, &spinners), [1, 1]);
}

/// A woken vCPU whose CPU is busy goes to an idle CPU it may use, which is kicked.
#[test]
fn wake_prefers_an_idle_cpu() {
    let mut sim = Sim::new(3, SchedConfig::default());
    let (busy, sleeper) = (VcpuKey::new(1, 0), VcpuKey::new(2, 0));
    sim.add(busy, pinned(&[0]), Work::Spin);
    sim.add(sleeper, pinned(&[0]), Work::Burst { run: MS, sleep: 10 * MS });
    sim.run_for(MS);
    sim.sched.set_affinity(sleeper, CpuMask::of(&[0, 2]), sim.now).unwrap();
    sim.run_for(20 * MS);
    let info = sim.sched.info(sleeper).unwrap();
    assert_eq!(info.cpu, CpuId(2), "placed on the idle CPU its affinity allows");
    assert!(sim.stats[&sleeper].cpus_used.contains(&2));
    assert!(!sim.stats[&sleeper].cpus_used.contains(&1), "never outside its affinity");
}

/// Mixed pinned and free vCPUs on four CPUs, spinning and bursting: every pick is
/// checked by the simulation (affinity, no double running); pinned vCPUs only ever
/// ran where allowed, and everybody made progress.
#[test]
fn affinity_is_always_respected() {
    let mut sim = Sim::new(4, SchedConfig::default());
    sim.jitter = true;
    let mut keys = Vec::new();
    for v in 0..12u32 {
        let k = VcpuKey::new(1 + (v % 3) as u16, v);
        let params = match v % 4 {
            0 => pinned(&[v % 4]),
            1 => pinned(&[1, 3]),
            2 => pinned(&[2]),
            _ => VcpuParams::default(),
        };
        let work = if v % 2 == 0 { Work::Spin } else { Work::Burst { run: MS, sleep: 2 * MS } };
        sim.add(k, params, work);
        keys.push((k, params.affinity));
    }
    sim.run_for(2_000 * MS);
    for (k, aff) in keys {
        let used = &sim.stats[&k].cpus_used;
        assert!(used.iter().all(|&c| aff.contains(CpuId(c))), "{k} ran on {used:?}, allowed {aff:?}");
        assert!(sim.stats[&k].runtime > 50 * MS, "{k} starved: {}", sim.stats[&k].runtime);
    }
}

//! A deterministic simulation of N CPUs driving the scheduler with a fake clock.
//!
//! Each CPU does what Keel's per-CPU loop does: call `pick_next`, run the chosen vCPU
//! until the decision's deadline, an IPI (a kick) or the vCPU blocking, and repeat.
//! vCPUs follow a workload: spin forever, or run a burst then sleep and be woken (as by
//! an event). The simulation checks, at every decision, that the chosen vCPU runs on no
//! other CPU, is allowed on this one, is runnable and unpaused, and that the scheduler's
//! internal invariants hold; it records run time, waiting gaps and wake-up latencies.

use crate::arch::CpuId;
use crate::sched::{RunState, SchedConfig, Scheduler, VcpuKey, VcpuParams};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

/// What a simulated vCPU does with the CPU.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// CPU-bound: never blocks.
    Spin,
    /// Runs `run` ns, blocks, is woken `sleep` ns later (with [`Sim::jitter`]: anywhere
    /// between `sleep / 2` and `3 * sleep / 2`); repeats.
    Burst { run: u64, sleep: u64 },
}

/// What the simulation observed for one vCPU.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub runtime: u64,
    /// Longest time spent runnable but off every CPU.
    pub max_gap: u64,
    pub max_wake_latency: u64,
    pub wakes: u64,
    pub cpus_used: BTreeSet<u32>,
    pub migrations: u64,
    waiting_since: Option<u64>,
    woke_at: Option<u64>,
    burst_left: u64,
    last_cpu: Option<u32>,
}

#[derive(Clone, Copy, Default)]
struct Cpu {
    running: Option<VcpuKey>,
    until: Option<u64>,
    kicked: bool,
}

pub struct Sim {
    pub sched: Scheduler,
    pub now: u64,
    /// Verify the scheduler's invariants at every decision.
    pub check: bool,
    cpus: Vec<Cpu>,
    work: BTreeMap<VcpuKey, Work>,
    pub stats: BTreeMap<VcpuKey, Stats>,
    wakes: BTreeSet<(u64, VcpuKey)>,
    pub decisions: u64,
    /// Vary sleep times pseudo-randomly (deterministic).
    pub jitter: bool,
    rng: u64,
}

impl Sim {
    pub fn new(nr_cpus: usize, cfg: SchedConfig) -> Self {
        Sim {
            sched: Scheduler::new(nr_cpus, cfg).unwrap(),
            now: 0,
            check: true,
            cpus: alloc::vec![Cpu::default(); nr_cpus],
            work: BTreeMap::new(),
            stats: BTreeMap::new(),
            wakes: BTreeSet::new(),
            decisions: 0,
            jitter: false,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Adds and starts a vCPU.
    pub fn add(&mut self, key: VcpuKey, params: VcpuParams, work: Work) {
        self.sched.add_vcpu(key, params).unwrap();
        self.work.insert(key, work);
        let burst = if let Work::Burst { run, .. } = work { run } else { 0 };
        self.stats.insert(key, Stats { burst_left: burst, waiting_since: Some(self.now), ..Default::default() });
        let kick = self.sched.start(key, self.now).unwrap();
        self.kick(kick);
    }

    pub fn kick(&mut self, cpu: Option<CpuId>) {
        if let Some(c) = cpu {
            self.cpus[c.0 as usize].kicked = true;
        }
    }

    pub fn running(&self, cpu: usize) -> Option<VcpuKey> {
        self.cpus[cpu].running
    }

    /// Runs the machine until `now + ns`.
    pub fn run_for(&mut self, ns: u64) {
        let end = self.now + ns;
        loop {
            self.settle();
            let next = self.next_event().min(end);
            self.advance(next);
            self.fire_events();
            if self.now >= end {
                self.settle();
                return;
            }
        }
    }

    /// Lets every CPU that must decide now do so (kicks can chain).
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            let due = self.cpus.iter().position(|c| c.kicked || c.until.is_some_and(|u| u <= self.now));
            match due {
                Some(cpu) => self.decide(cpu),
                None => return,
            }
        }
        panic!("CPUs keep deciding at {} ns without time passing", self.now);
    }

    /// One `pick_next` on `cpu`, with every check.
    pub fn decide(&mut self, cpu: usize) {
        let now = self.now;
        let d = self.sched.pick_next(CpuId(cpu as u32), now);
        self.decisions += 1;
        assert!(!d.kick.contains(CpuId(cpu as u32)), "a decision kicks its own CPU");
        for k in d.kick.iter() {
            self.kick(Some(k));
        }
        if let Some(u) = d.until {
            assert!(u > now || d.run.is_none() || u == now, "deadline {u} in the past at {now}");
        }
        let old = self.cpus[cpu].running;
        if old != d.run {
            if let Some(o) = old.filter(|o| self.sched.info(*o).is_some_and(|i| i.state == RunState::Runnable)) {
                self.stats.get_mut(&o).unwrap().waiting_since = Some(now);
            }
            if let Some(k) = d.run {
                for (other, c) in self.cpus.iter().enumerate() {
                    assert!(other == cpu || c.running != Some(k), "{k} picked on cpu{cpu} while on cpu{other}");
                }
                let info = self.sched.info(k).unwrap();
                assert!(
                    info.params.affinity.contains(CpuId(cpu as u32)),
                    "{k} picked on cpu{cpu} outside its affinity"
                );
                assert_eq!((info.state, info.pause_count), (RunState::Runnable, 0), "{k} picked while not runnable");
                assert!(!info.throttled, "{k} picked while throttled");
                let s = self.stats.get_mut(&k).unwrap();
                if let Some(since) = s.waiting_since.take() {
                    s.max_gap = s.max_gap.max(now - since);
                }
                if let Some(w) = s.woke_at.take() {
                    s.max_wake_latency = s.max_wake_latency.max(now - w);
                }
                s.cpus_used.insert(cpu as u32);
                if s.last_cpu.is_some_and(|l| l != cpu as u32) {
                    s.migrations += 1;
                }
                s.last_cpu = Some(cpu as u32);
            }
        }
        self.cpus[cpu] = Cpu { running: d.run, until: d.until, kicked: false };
        if self.check {
            self.sched.check_invariants().unwrap();
        }
    }

    fn next_event(&self) -> u64 {
        let mut t = u64::MAX;
        for c in &self.cpus {
            if let Some(u) = c.until {
                t = t.min(u);
            }
            if let Some(k) = c.running {
                if let Some(Work::Burst { .. }) = self.work.get(&k) {
                    t = t.min(self.now + self.stats[&k].burst_left);
                }
            }
        }
        if let Some(&(w, _)) = self.wakes.first() {
            t = t.min(w);
        }
        t.max(self.now)
    }

    fn advance(&mut self, to: u64) {
        let dt = to - self.now;
        for c in &self.cpus {
            if let Some(k) = c.running {
                let s = self.stats.get_mut(&k).unwrap();
                s.runtime += dt;
                s.burst_left = s.burst_left.saturating_sub(dt);
            }
        }
        self.now = to;
    }

    /// Bursts that ended block; scheduled wakes happen.
    fn fire_events(&mut self) {
        for cpu in 0..self.cpus.len() {
            let Some(k) = self.cpus[cpu].running else { continue };
            let Some(&Work::Burst { run, sleep }) = self.work.get(&k) else { continue };
            if self.stats[&k].burst_left > 0 {
                continue;
            }
            self.stats.get_mut(&k).unwrap().burst_left = run;
            let b = self.sched.block(k, self.now, || false).unwrap();
            assert_eq!(b.resched, Some(CpuId(cpu as u32)), "blocking a running vCPU reschedules its CPU");
            self.kick(b.resched);
            let sleep = if self.jitter { sleep / 2 + self.random() % sleep.max(1) } else { sleep };
            self.wakes.insert((self.now + sleep, k));
        }
        while let Some(&(at, k)) = self.wakes.first() {
            if at > self.now {
                break;
            }
            self.wakes.pop_first();
            if self.sched.info(k).is_some_and(|i| i.state == RunState::Blocked) {
                let s = self.stats.get_mut(&k).unwrap();
                s.wakes += 1;
                s.woke_at = Some(self.now);
                s.waiting_since = Some(self.now);
            }
            let kick = self.sched.wake(k, self.now);
            self.kick(kick);
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Total run time per vCPU so far.
    pub fn runtimes(&self) -> BTreeMap<VcpuKey, u64> {
        self.stats.iter().map(|(k, s)| (*k, s.runtime)).collect()
    }
}

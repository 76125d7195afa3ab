//! Property tests: random operation sequences against a model of what each vCPU may do,
//! and a multi-threaded stress run.

use crate::arch::CpuId;
use crate::sched::{BlockOutcome, CpuMask, SchedConfig, SchedError, Scheduler, VcpuKey, VcpuParams};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use proptest::prelude::*;

const CPUS: usize = 3;
const MS: u64 = 1_000_000;

#[derive(Clone, Debug)]
enum Op {
    Add { k: u8, weight: u16, cap: u8, mask: u8 },
    Remove(u8),
    Start(u8),
    Shutdown(u8),
    Wake(u8),
    Block { k: u8, pending: bool, timeout_us: Option<u16> },
    Pause(u8),
    Unpause(u8),
    Affinity { k: u8, mask: u8 },
    WeightCap { k: u8, weight: u16, cap: u8 },
    Yield(u8),
    Pick(u8),
    Account(u8),
    Advance(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..6;
    let cpu = 0u8..CPUS as u8;
    prop_oneof![
        (k.clone(), 1u16..1000, prop_oneof![Just(0u8), 1u8..=100], 1u8..8).prop_map(|(k, weight, cap, mask)| Op::Add {
            k,
            weight,
            cap,
            mask
        }),
        k.clone().prop_map(Op::Remove),
        k.clone().prop_map(Op::Start),
        k.clone().prop_map(Op::Shutdown),
        k.clone().prop_map(Op::Wake),
        (k.clone(), any::<bool>(), proptest::option::of(0u16..10_000)).prop_map(|(k, pending, timeout_us)| Op::Block {
            k,
            pending,
            timeout_us
        }),
        k.clone().prop_map(Op::Pause),
        k.clone().prop_map(Op::Unpause),
        (k.clone(), 0u8..8).prop_map(|(k, mask)| Op::Affinity { k, mask }),
        (k, 0u16..1000, 0u8..=101).prop_map(|(k, weight, cap)| Op::WeightCap { k, weight, cap }),
        cpu.clone().prop_map(Op::Yield),
        cpu.clone().prop_map(Op::Pick),
        cpu.clone().prop_map(Op::Pick),
        cpu.prop_map(Op::Account),
        (0u32..5_000_000).prop_map(Op::Advance),
    ]
}

fn mask_of(bits: u8) -> CpuMask {
    CpuMask::of(&(0..CPUS as u32).filter(|c| bits & (1 << c) != 0).collect::<Vec<_>>())
}

/// What the model allows for one vCPU.
#[derive(Clone, Copy, Debug)]
struct Model {
    online: bool,
    blocked: bool,
    deadline: Option<u64>,
    paused: u32,
    affinity: CpuMask,
}

impl Model {
    fn may_run(&self, cpu: u32, now: u64) -> bool {
        let blocked = self.blocked && self.deadline.is_none_or(|d| now < d);
        self.online && !blocked && self.paused == 0 && self.affinity.contains(CpuId(cpu))
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let s = Scheduler::new(CPUS, SchedConfig::default()).unwrap();
    let mut model: BTreeMap<VcpuKey, Model> = BTreeMap::new();
    let mut running: [Option<VcpuKey>; CPUS] = [None; CPUS];
    let mut now = 0u64;
    let key = |k: u8| VcpuKey::new(k as u16 / 2, k as u32);
    for op in ops {
        match op {
            Op::Add { k, weight, cap, mask } => {
                let params = VcpuParams { weight, cap, affinity: mask_of(mask) };
                let r = s.add_vcpu(key(k), params);
                prop_assert_eq!(r.is_ok(), !model.contains_key(&key(k)));
                if r.is_ok() {
                    let m =
                        Model { online: false, blocked: false, deadline: None, paused: 0, affinity: params.affinity };
                    model.insert(key(k), m);
                }
            }
            Op::Remove(k) => {
                let r = s.remove_vcpu(key(k));
                match model.get(&key(k)) {
                    None => prop_assert_eq!(r, Err(SchedError::UnknownVcpu)),
                    Some(_) if running.contains(&Some(key(k))) => prop_assert_eq!(r, Err(SchedError::VcpuOnCpu)),
                    Some(_) => {
                        prop_assert_eq!(r, Ok(()));
                        model.remove(&key(k));
                    }
                }
            }
            Op::Start(k) => {
                if s.start(key(k), now).is_ok() {
                    let m = model.get_mut(&key(k)).unwrap();
                    if !m.online {
                        (m.online, m.blocked, m.deadline) = (true, false, None);
                    }
                }
            }
            Op::Shutdown(k) => {
                if s.shutdown(key(k)).is_ok() {
                    model.get_mut(&key(k)).unwrap().online = false;
                }
            }
            Op::Wake(k) => {
                s.wake(key(k), now);
                if let Some(m) = model.get_mut(&key(k)).filter(|m| m.online) {
                    (m.blocked, m.deadline) = (false, None);
                }
            }
            Op::Block { k, pending, timeout_us } => {
                let deadline = timeout_us.map(|t| now + t as u64 * 1000);
                let r = s.block_until(key(k), now, deadline, || pending);
                let Some(m) = model.get_mut(&key(k)) else {
                    prop_assert_eq!(r, Err(SchedError::UnknownVcpu));
                    continue;
                };
                let expected = if !m.online {
                    BlockOutcome::Offline
                } else if deadline.is_some_and(|d| d <= now) {
                    BlockOutcome::TimedOut
                } else if pending {
                    BlockOutcome::EventPending
                } else {
                    BlockOutcome::Blocked
                };
                prop_assert_eq!(r.map(|b| b.outcome), Ok(expected));
                if m.online {
                    (m.blocked, m.deadline) = (expected == BlockOutcome::Blocked, deadline);
                }
            }
            Op::Pause(k) => {
                if s.pause(key(k)).is_ok() {
                    model.get_mut(&key(k)).unwrap().paused += 1;
                }
            }
            Op::Unpause(k) => {
                let r = s.unpause(key(k), now);
                if let Some(m) = model.get_mut(&key(k)) {
                    prop_assert_eq!(r.is_ok(), m.paused > 0);
                    m.paused = m.paused.saturating_sub(1);
                }
            }
            Op::Affinity { k, mask } => {
                let r = s.set_affinity(key(k), mask_of(mask), now);
                if let Some(m) = model.get_mut(&key(k)) {
                    prop_assert_eq!(r.is_ok(), mask != 0);
                    if mask != 0 {
                        m.affinity = mask_of(mask);
                    }
                }
            }
            Op::WeightCap { k, weight, cap } => {
                let r = s.set_weight_cap(key(k), weight, cap, now);
                if model.contains_key(&key(k)) {
                    prop_assert_eq!(r.is_ok(), weight > 0 && cap <= 100);
                }
            }
            Op::Yield(c) | Op::Pick(c) => {
                let d = if matches!(op, Op::Yield(_)) {
                    s.yield_now(CpuId(c as u32), now)
                } else {
                    s.pick_next(CpuId(c as u32), now)
                };
                prop_assert!(!d.kick.contains(CpuId(c as u32)));
                if let Some(k) = d.run {
                    for (other, r) in running.iter().enumerate() {
                        prop_assert!(other == c as usize || *r != Some(k), "{} on cpu{} and cpu{}", k, c, other);
                    }
                    let m = model.get_mut(&k).expect("picked an unknown vCPU");
                    prop_assert!(m.may_run(c as u32, now), "picked {} on cpu{}: {:?}", k, c, m);
                    prop_assert!(!s.info(k).unwrap().throttled, "picked a throttled vCPU");
                    if m.blocked {
                        (m.blocked, m.deadline) = (false, None); // its poll timed out
                    }
                }
                running[c as usize] = d.run;
            }
            Op::Account(c) => {
                s.account(CpuId(c as u32), now);
            }
            Op::Advance(ns) => now += ns as u64,
        }
        if let Err(e) = s.check_invariants() {
            return Err(TestCaseError::fail(e));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Over random operation sequences: a vCPU is owned by one queue, never runs on
    /// two CPUs at once, is picked only if started, unblocked (or its poll timed out),
    /// unpaused, within its cap and on a CPU of its affinity; and no runnable vCPU
    /// is lost from the queues.
    #[test]
    fn invariants_hold(ops in proptest::collection::vec(op(), 1..300)) {
        run(ops)?;
    }

    /// A mask visits exactly its members, in ascending order, whatever words they are in.
    #[test]
    fn a_mask_iterates_its_members_in_order(cpus in proptest::collection::btree_set(0u32..300, 0..40)) {
        let listed: Vec<u32> = cpus.iter().copied().collect();
        let mask = CpuMask::of(&listed);
        let seen: Vec<u32> = mask.iter().map(|c| c.0).collect();
        let within: Vec<u32> = listed.into_iter().filter(|&c| (c as usize) < CpuMask::CAPACITY).collect();
        prop_assert_eq!(&seen, &within);
        prop_assert_eq!(mask.count() as usize, seen.len());
    }
}

/// Four threads act as CPUs on one scheduler at once: picking, blocking, waking,
/// pausing and re-pinning each other's vCPUs. Nothing deadlocks, and afterwards the
/// queues are consistent and no vCPU was lost.
#[test]
fn concurrent_cpus_keep_the_queues_consistent() {
    use core::sync::atomic::{AtomicU64, Ordering};
    const THREADS: usize = 4;
    let s =
        Scheduler::new(THREADS, SchedConfig { slice_ns: MS / 10, min_run_ns: MS / 100, ..Default::default() }).unwrap();
    let keys: Vec<_> = (0..16).map(|v| VcpuKey::new(1, v)).collect();
    for &k in &keys {
        s.add_vcpu(k, VcpuParams::default()).unwrap();
        s.start(k, 0).unwrap();
    }
    let clock = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (s, keys, clock) = (&s, &keys, &clock);
            scope.spawn(move || {
                let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ (t as u64 + 1);
                for _ in 0..20_000 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let now = clock.fetch_add(1 + rng % 20_000, Ordering::SeqCst);
                    let k = keys[(rng >> 8) as usize % keys.len()];
                    match (rng >> 16) % 8 {
                        0 => drop(s.wake(k, now)),
                        1 => drop(s.block_until(k, now, Some(now + rng % MS), || false)),
                        2 => drop(s.pause(k).and_then(|_| s.unpause(k, now))),
                        3 => drop(s.set_affinity(k, mask_of((rng >> 24) as u8 % 15 + 1), now)),
                        _ => drop(s.pick_next(CpuId(t as u32), now)),
                    }
                }
            });
        }
    });
    s.check_invariants().unwrap();
    let end = clock.load(Ordering::SeqCst) + 10 * MS;
    for &k in &keys {
        s.wake(k, end);
    }
    let mut ran = alloc::collections::BTreeSet::new();
    for step in 0..2_000u64 {
        for c in 0..THREADS as u32 {
            if let Some(k) = s.pick_next(CpuId(c), end + step * MS).run {
                ran.insert(k);
            }
        }
    }
    assert_eq!(ran.len(), keys.len(), "every vCPU runs again");
    s.check_invariants().unwrap();
}

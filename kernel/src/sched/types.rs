//! The scheduler's vocabulary: vCPU keys, CPU masks, parameters, decisions, errors.

use crate::arch::CpuId;

/// Names one virtual CPU: its domain and its index inside the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VcpuKey {
    pub domain: u16,
    pub vcpu: u32,
}

impl VcpuKey {
    pub const fn new(domain: u16, vcpu: u32) -> Self {
        VcpuKey { domain, vcpu }
    }
}

impl core::fmt::Display for VcpuKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "d{}v{}", self.domain, self.vcpu)
    }
}

/// A set of physical CPUs (hard affinity), for up to [`CpuMask::CAPACITY`] CPUs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuMask {
    bits: [u64; 4],
}

impl CpuMask {
    /// The highest CPU count a mask can describe.
    pub const CAPACITY: usize = 256;
    /// No CPU.
    pub const EMPTY: CpuMask = CpuMask { bits: [0; 4] };
    /// Every CPU, whatever the machine has.
    pub const ALL: CpuMask = CpuMask { bits: [u64::MAX; 4] };

    /// Exactly `cpu` (empty if `cpu` is beyond the capacity).
    pub fn single(cpu: CpuId) -> Self {
        let mut m = Self::EMPTY;
        m.insert(cpu);
        m
    }

    /// The CPUs `0..n`.
    pub fn first_n(n: usize) -> Self {
        let mut m = Self::EMPTY;
        for i in 0..n.min(Self::CAPACITY) {
            m.bits[i / 64] |= 1 << (i % 64);
        }
        m
    }

    /// Every CPU listed.
    pub fn of(cpus: &[u32]) -> Self {
        let mut m = Self::EMPTY;
        for &c in cpus {
            m.insert(CpuId(c));
        }
        m
    }

    pub fn insert(&mut self, cpu: CpuId) {
        let i = cpu.0 as usize;
        if i < Self::CAPACITY {
            self.bits[i / 64] |= 1 << (i % 64);
        }
    }

    pub fn remove(&mut self, cpu: CpuId) {
        let i = cpu.0 as usize;
        if i < Self::CAPACITY {
            self.bits[i / 64] &= !(1 << (i % 64));
        }
    }

    pub fn contains(&self, cpu: CpuId) -> bool {
        let i = cpu.0 as usize;
        i < Self::CAPACITY && self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// The CPUs in both masks.
    pub fn and(&self, other: &CpuMask) -> CpuMask {
        let mut m = *self;
        for (a, b) in m.bits.iter_mut().zip(other.bits) {
            *a &= b;
        }
        m
    }

    pub fn count(&self) -> u32 {
        self.bits.iter().map(|w| w.count_ones()).sum()
    }

    /// The members in ascending order.
    ///
    /// Visits the set bits only (a word at a time), not every CPU the mask could hold: the
    /// run loop walks the CPUs a decision kicks after every decision.
    pub fn iter(&self) -> impl Iterator<Item = CpuId> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            core::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(CpuId::from_index(w * 64 + bit))
            })
        })
    }
}

impl core::fmt::Debug for CpuMask {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter().map(|c| c.0)).finish()
    }
}

/// Xen's default (and Keel's) scheduling weight.
pub const DEFAULT_WEIGHT: u16 = 256;

/// How a vCPU competes for CPU time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuParams {
    /// Relative share among the vCPUs sharing a CPU, 1..=65535 (default 256, as Xen).
    pub weight: u16,
    /// Upper limit in percent of one physical CPU, 1..=100; 0 means no cap.
    pub cap: u8,
    /// The physical CPUs the vCPU may run on.
    pub affinity: CpuMask,
}

impl Default for VcpuParams {
    fn default() -> Self {
        VcpuParams { weight: DEFAULT_WEIGHT, cap: 0, affinity: CpuMask::ALL }
    }
}

/// Tunables of the policy (see `docs/scheduler.md`). All times are nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedConfig {
    /// Longest uninterrupted run of a vCPU while others wait.
    pub slice_ns: u64,
    /// Shortest run before a woken, boosted vCPU may preempt the running one.
    pub min_run_ns: u64,
    /// How much CPU time a vCPU may bank while it sleeps (limits the sleeper bonus).
    pub wake_credit_ns: u64,
    /// Period over which a cap's budget is replenished.
    pub cap_period_ns: u64,
    /// How often a busy CPU looks for an imbalance between run queues.
    pub balance_interval_ns: u64,
}

impl Default for SchedConfig {
    fn default() -> Self {
        SchedConfig {
            slice_ns: 4_000_000,
            min_run_ns: 500_000,
            wake_credit_ns: 2_000_000,
            cap_period_ns: 10_000_000,
            balance_interval_ns: 4_000_000,
        }
    }
}

/// What a CPU does next, from [`Scheduler::pick_next`](super::Scheduler::pick_next).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The vCPU to run, or `None`: halt until an interrupt.
    pub run: Option<VcpuKey>,
    /// When to call `pick_next` again at the latest (arm the timer for it); `None` means
    /// only an interrupt (an IPI) can make work for this CPU.
    pub until: Option<u64>,
    /// Other CPUs that were handed work and must be sent the wake-up IPI.
    pub kick: CpuMask,
}

/// Where a vCPU is in its life, as the scheduler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Not started, or shut down: never scheduled.
    Offline,
    /// Waiting for an event (and maybe a deadline).
    Blocked,
    /// Wants a CPU (it may still be held back by a pause or an exhausted cap).
    Runnable,
}

/// What [`Scheduler::block_until`](super::Scheduler::block_until) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// The vCPU is blocked until [`Scheduler::wake`](super::Scheduler::wake) or its
    /// deadline.
    Blocked,
    /// An event was already pending: the vCPU stays (or becomes) runnable.
    EventPending,
    /// The deadline has already passed: the vCPU stays (or becomes) runnable.
    TimedOut,
    /// The vCPU is offline; nothing changed.
    Offline,
}

/// The result of a block request: what happened, and which CPU must call `pick_next`
/// (the vCPU's own CPU when it blocked while running there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    pub outcome: BlockOutcome,
    pub resched: Option<CpuId>,
}

/// A snapshot of one vCPU, for diagnostics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInfo {
    pub state: RunState,
    /// Nesting depth of [`Scheduler::pause`](super::Scheduler::pause).
    pub pause_count: u32,
    /// The CPU whose run queue holds the vCPU.
    pub cpu: CpuId,
    /// Whether that CPU's last decision was to run this vCPU.
    pub on_cpu: bool,
    /// Whether the cap's budget is exhausted for the current period.
    pub throttled: bool,
    /// Total time charged, in ns.
    pub runtime_ns: u64,
    pub params: VcpuParams,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// No such vCPU.
    UnknownVcpu,
    /// A vCPU with this key exists already.
    DuplicateVcpu,
    /// Weight 0.
    InvalidWeight,
    /// Cap above 100 %.
    InvalidCap,
    /// The affinity names no CPU the scheduler manages.
    EmptyAffinity,
    /// The vCPU is still on a CPU (remove it only after its CPU switched away).
    VcpuOnCpu,
    /// A CPU count of 0 or above [`CpuMask::CAPACITY`].
    InvalidCpuCount,
    /// More pauses than a counter holds.
    PauseOverflow,
    /// `unpause` without a matching `pause`.
    NotPaused,
}

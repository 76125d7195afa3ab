//! One vCPU's scheduling state: life-cycle state, virtual time, cap budget.

use super::types::{RunState, VcpuKey, VcpuParams};

/// Virtual time advances by `ns * VTIME_SCALE / weight` for `ns` of CPU time.
pub(super) const VTIME_SCALE: u128 = 1 << 16;

/// Where every run queue's virtual clock starts, far from zero so that subtracting a
/// sleeper's credit never saturates. At 2^16 units per ns (weight 1) the `u128` clock
/// would take 2^95 ns (10^21 years) to overflow.
pub(super) const VTIME_ORIGIN: u128 = 1 << 64;

/// The virtual-time cost of `ns` of CPU time at `weight`.
pub(super) fn vcost(ns: u64, weight: u16) -> u128 {
    ns as u128 * VTIME_SCALE / weight.max(1) as u128
}

/// The scheduler's record of one vCPU, owned by exactly one run queue.
#[derive(Clone, Debug)]
pub(super) struct Entity {
    pub key: VcpuKey,
    pub params: VcpuParams,
    pub state: RunState,
    pub paused: u32,
    /// Absolute time at which a blocked vCPU wakes by itself (`SCHEDOP_poll` timeout).
    pub deadline: Option<u64>,
    /// Weighted CPU time received, on the run queue's virtual clock.
    pub vtime: u128,
    /// Woken while not ahead of its share: queued in front of the unboosted.
    pub boosted: bool,
    /// Asked to let the others run first once (`SCHEDOP_yield`).
    pub yielded: bool,
    /// Being moved to another run queue by the thread that set the flag; nobody else
    /// queues or moves it meanwhile.
    pub in_transit: bool,
    /// Remaining CPU time of the cap period (ns; negative after an overrun).
    pub budget: i64,
    /// End of the current cap period.
    pub period_end: u64,
    /// Total CPU time charged.
    pub runtime: u64,
}

impl Entity {
    pub fn new(key: VcpuKey, params: VcpuParams) -> Self {
        Entity {
            key,
            params,
            state: RunState::Offline,
            paused: 0,
            deadline: None,
            vtime: 0,
            boosted: false,
            yielded: false,
            in_transit: false,
            budget: 0,
            period_end: 0,
            runtime: 0,
        }
    }

    /// Started, not blocked, not paused: it would run if the cap and affinity allow.
    pub fn wants_cpu(&self) -> bool {
        self.state == RunState::Runnable && self.paused == 0
    }

    pub fn capped(&self) -> bool {
        self.params.cap != 0
    }

    /// The cap's budget for this period is used up.
    pub fn throttled(&self) -> bool {
        self.capped() && self.budget <= 0
    }

    /// CPU time allowed per cap period.
    pub fn quota(&self, period: u64) -> i64 {
        let q = u128::from(period) * u128::from(self.params.cap) / 100;
        i64::try_from(q).unwrap_or(i64::MAX)
    }

    /// Starts a fresh cap period at `now` with a full budget.
    pub fn reset_budget(&mut self, now: u64, period: u64) {
        self.budget = self.quota(period);
        self.period_end = now.saturating_add(period);
    }

    /// Adds the quota of every cap period that ended by `now`; an overrun is paid back
    /// from the next periods, and unused budget does not accumulate beyond one quota.
    pub fn refill(&mut self, now: u64, period: u64) {
        if !self.capped() || now < self.period_end || period == 0 {
            return;
        }
        let periods = (now - self.period_end) / period + 1;
        let quota = self.quota(period);
        let added = i64::try_from(i128::from(quota) * i128::from(periods)).unwrap_or(i64::MAX);
        self.budget = self.budget.saturating_add(added).min(quota);
        self.period_end = self.period_end.saturating_add(periods.saturating_mul(period));
    }

    /// Charges `ns` of CPU time.
    pub fn charge(&mut self, ns: u64) {
        self.runtime = self.runtime.saturating_add(ns);
        self.vtime += vcost(ns, self.params.weight);
        if self.capped() {
            self.budget = self.budget.saturating_sub(ns.min(i64::MAX as u64) as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_budget_refills_per_period_and_repays_overruns() {
        let mut e = Entity::new(VcpuKey::new(1, 0), VcpuParams { cap: 25, ..Default::default() });
        e.reset_budget(0, 10_000);
        assert_eq!(e.budget, 2_500);
        e.charge(3_000);
        assert!(e.throttled());
        e.refill(9_999, 10_000);
        assert!(e.throttled(), "no refill before the period ends");
        e.refill(10_000, 10_000);
        assert_eq!((e.budget, e.period_end), (2_000, 20_000));
        e.refill(55_000, 10_000);
        assert_eq!((e.budget, e.period_end), (2_500, 60_000), "unused budget is not banked");
    }

    #[test]
    fn vtime_runs_inversely_to_weight() {
        assert_eq!(vcost(1_000, 256) * 2, vcost(1_000, 128));
        assert_eq!(vcost(1, 65535), 1);
        assert_eq!(vcost(u64::MAX, 1), u64::MAX as u128 * VTIME_SCALE);
    }
}

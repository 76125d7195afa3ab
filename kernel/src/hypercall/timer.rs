//! `set_timer_op`: the calling vCPU's one-shot timer (absolute system time in ns; 0
//! stops it).

use super::{Call, HcResult};
use crate::arch::Arch;

/// Timeouts further away than this (about 13 days) are taken as Linux's wrapped jiffies
/// and replaced by 100 ms, as Xen does.
const HUGE: u64 = 1 << 50;

/// `set_timer_op(timeout)`.
pub fn set_timer_op<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    let timeout = c.args[0];
    let now = c.hv.now();
    let deadline = if timeout == 0 {
        None
    } else if (timeout as i64) < 0 || timeout.saturating_sub(now) >= HUGE {
        Some(now + 100_000_000)
    } else {
        Some(timeout)
    };
    c.domain.vcpus[c.vcpu as usize].lock().singleshot_ns = deadline;
    c.hv.timers_changed(c.domain, c.vcpu);
    Ok(0)
}

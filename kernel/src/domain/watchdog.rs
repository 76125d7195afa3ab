//! A domain's watchdogs (`SCHEDOP_watchdog`): timers its guest re-arms ("pets") while it
//! is healthy. One that expires shuts the domain down with reason watchdog
//! ([`Hypervisor::fire_timers`](crate::Hypervisor::fire_timers)).
//!
//! The earliest deadline rides on vCPU 0's timer entry
//! ([`Hooks::timer_changed`](super::Hooks::timer_changed)), so the CPU it is filed under
//! arms its hardware timer for it, however busy the domain's vCPUs are.

use keel_abi::sched::NR_DOMAIN_WATCHDOG_TIMERS;
use keel_abi::Errno;

const NR: usize = NR_DOMAIN_WATCHDOG_TIMERS as usize;

/// One armed watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Armed {
    timeout_s: u32,
    /// Absolute system time (ns) at which it expires.
    deadline: u64,
}

/// A watchdog that expired: its id (1-based, as the guest names it) and timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expired {
    pub id: u32,
    pub timeout_s: u32,
}

/// The watchdogs of one domain, with Xen's `domain_watchdog` rules.
#[derive(Clone, Debug, Default)]
pub struct Watchdogs {
    slots: [Option<Armed>; NR],
}

impl Watchdogs {
    /// `SCHEDOP_watchdog` at system time `now`. `id` 0 creates a watchdog expiring
    /// `timeout_s` seconds from now and returns its id (`-ENOSPC` if all are in use). Any
    /// other `id` names one in use (else `-EINVAL`): a non-zero `timeout_s` re-arms it, 0
    /// destroys it; both return 0.
    pub fn op(&mut self, id: u32, timeout_s: u32, now: u64) -> Result<u32, Errno> {
        let armed = Armed { timeout_s, deadline: now.saturating_add(timeout_s as u64 * 1_000_000_000) };
        if id == 0 {
            let (i, slot) = self.slots.iter_mut().enumerate().find(|(_, s)| s.is_none()).ok_or(Errno::ENOSPC)?;
            *slot = Some(armed);
            return u32::try_from(i + 1).map_err(|_| Errno::ENOSPC);
        }
        let slot = self.slots.get_mut(id as usize - 1).filter(|s| s.is_some()).ok_or(Errno::EINVAL)?;
        *slot = (timeout_s != 0).then_some(armed);
        Ok(0)
    }

    /// The earliest deadline (ns).
    pub fn next_deadline(&self) -> Option<u64> {
        self.slots.iter().flatten().map(|a| a.deadline).min()
    }

    /// The watchdog that expired first, if any has at `now`.
    pub fn expired(&self, now: u64) -> Option<Expired> {
        let (i, a) =
            self.slots.iter().enumerate().filter_map(|(i, s)| Some((i, (*s)?))).min_by_key(|(_, a)| a.deadline)?;
        let id = u32::try_from(i + 1).ok()?;
        (a.deadline <= now).then_some(Expired { id, timeout_s: a.timeout_s })
    }

    /// How many are in use.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn create_pet_destroy_with_xens_errors() {
        let mut w = Watchdogs::default();
        assert_eq!(w.op(0, 10, 5), Ok(1));
        assert_eq!(w.op(0, 3, 5), Ok(2));
        assert_eq!(w.op(0, 1, 5), Err(Errno::ENOSPC));
        assert_eq!(w.next_deadline(), Some(5 + 3 * S));
        assert_eq!(w.op(2, 20, 7), Ok(0), "re-armed");
        assert_eq!(w.next_deadline(), Some(5 + 10 * S));
        assert_eq!(w.op(1, 0, 8), Ok(0), "destroyed");
        assert_eq!((w.len(), w.next_deadline()), (1, Some(7 + 20 * S)));
        assert_eq!(w.op(1, 5, 8), Err(Errno::EINVAL), "not in use");
        assert_eq!(w.op(1, 0, 8), Err(Errno::EINVAL));
        assert_eq!(w.op(0, 1, 9), Ok(1), "the lowest free id is reused");
        assert_eq!(w.op(3, 1, 9), Err(Errno::EINVAL));
        assert_eq!(w.op(u32::MAX, 0, 9), Err(Errno::EINVAL));
        assert_eq!(w.op(2, u32::MAX, u64::MAX - 1), Ok(0), "a far deadline saturates");
    }

    #[test]
    fn the_earliest_watchdog_expires_first() {
        let mut w = Watchdogs::default();
        assert_eq!(w.expired(u64::MAX), None);
        w.op(0, 2, 0).unwrap();
        w.op(0, 1, 0).unwrap();
        assert_eq!(w.expired(S - 1), None);
        assert_eq!(w.expired(S), Some(Expired { id: 2, timeout_s: 1 }));
        assert_eq!(w.expired(3 * S), Some(Expired { id: 2, timeout_s: 1 }));
        w.op(2, 0, S).unwrap();
        assert_eq!(w.expired(3 * S), Some(Expired { id: 1, timeout_s: 2 }));
        w.op(0, 0, 4 * S).unwrap();
        assert_eq!(w.expired(4 * S), Some(Expired { id: 1, timeout_s: 2 }), "still the earliest");
        assert!(!w.is_empty());
    }
}

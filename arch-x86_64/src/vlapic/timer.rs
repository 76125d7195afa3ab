//! The local APIC timer (Intel SDM vol. 3, 11.5.4): one-shot, periodic and TSC-deadline
//! modes. Keel's virtual timer counts at the TSC's rate divided by the divide
//! configuration, so every deadline is a TSC value and the current count is computed
//! from the TSC when read.

/// LVT timer modes (bits 18:17).
pub const MODE_ONE_SHOT: u32 = 0;
pub const MODE_PERIODIC: u32 = 1;
pub const MODE_TSC_DEADLINE: u32 = 2;
const LVT_MASKED: u32 = 1 << 16;

/// One vCPU's timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LapicTimer {
    /// The LVT timer entry (vector, mask, mode).
    pub lvt: u32,
    pub initial: u32,
    /// The divide configuration register (bits 0, 1, 3).
    pub divide: u32,
    /// The TSC when the current period started (one-shot, periodic).
    start: u64,
    /// The TSC of the next expiry, while armed.
    deadline: Option<u64>,
    /// The value written to IA32_TSC_DEADLINE (0 once it fired).
    tsc_deadline: u64,
}

impl LapicTimer {
    pub fn new() -> Self {
        LapicTimer { lvt: LVT_MASKED, ..Default::default() }
    }

    pub fn mode(&self) -> u32 {
        (self.lvt >> 17) & 3
    }

    /// TSC ticks per timer count (2, 4, ..., 128, or 1).
    pub fn divisor(&self) -> u64 {
        let v = ((self.divide >> 1) & 4) | (self.divide & 3);
        if v == 7 {
            1
        } else {
            2 << v
        }
    }

    fn period(&self) -> u64 {
        self.initial as u64 * self.divisor()
    }

    /// The TSC of the next expiry, while armed.
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// A write to the LVT timer entry: a change of mode disarms the timer (as on real
    /// hardware).
    pub fn set_lvt(&mut self, value: u32) {
        let old = self.mode();
        self.lvt = value;
        if self.mode() != old {
            self.deadline = None;
            self.initial = 0;
            self.tsc_deadline = 0;
        }
    }

    /// A write to the initial count (0 stops the timer); ignored in TSC-deadline mode.
    pub fn set_initial(&mut self, count: u32, now: u64) {
        if self.mode() == MODE_TSC_DEADLINE {
            return;
        }
        self.initial = count;
        self.start = now;
        self.deadline = (count != 0).then(|| now.saturating_add(self.period()));
    }

    /// The current count register.
    pub fn current(&self, now: u64) -> u32 {
        match (self.mode(), self.deadline) {
            (MODE_TSC_DEADLINE, _) | (_, None) => 0,
            (MODE_PERIODIC, Some(_)) if self.period() > 0 => {
                let into = (now.saturating_sub(self.start)) % self.period();
                ((self.period() - into) / self.divisor()) as u32
            }
            (_, Some(d)) => (d.saturating_sub(now) / self.divisor()) as u32,
        }
    }

    /// A write to IA32_TSC_DEADLINE (0 disarms); ignored in the other modes.
    pub fn set_tsc_deadline(&mut self, value: u64) {
        if self.mode() != MODE_TSC_DEADLINE {
            return;
        }
        self.tsc_deadline = value;
        self.deadline = (value != 0).then_some(value);
    }

    /// IA32_TSC_DEADLINE as read: the armed value, 0 in the other modes or once fired.
    pub fn tsc_deadline(&self) -> u64 {
        if self.mode() == MODE_TSC_DEADLINE {
            self.tsc_deadline
        } else {
            0
        }
    }

    /// Fires the timer if its deadline passed: returns the vector to raise (none when
    /// masked). A periodic timer moves to its next period after `now` (missed periods
    /// are skipped); the others disarm.
    pub fn expire(&mut self, now: u64) -> Option<u8> {
        let d = self.deadline.filter(|&d| d <= now)?;
        if self.mode() == MODE_PERIODIC && self.period() > 0 {
            let period = self.period();
            let missed = (now - d) / period;
            let next = d.saturating_add((missed + 1) * period);
            self.start = next - period;
            self.deadline = Some(next);
        } else {
            self.deadline = None;
            self.tsc_deadline = 0;
        }
        (self.lvt & LVT_MASKED == 0).then_some(self.lvt as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_counts_down_and_fires_once() {
        let mut t = LapicTimer::new();
        t.divide = 0b0001; // divide by 4
        t.set_lvt(0x30); // one-shot, vector 0x30, unmasked
        t.set_initial(1000, 10_000);
        assert_eq!(t.deadline(), Some(14_000));
        assert_eq!(t.current(11_000), 750);
        assert_eq!(t.expire(13_999), None);
        assert_eq!(t.expire(14_000), Some(0x30));
        assert_eq!((t.deadline(), t.current(15_000)), (None, 0));
        assert_eq!(t.expire(20_000), None);
    }

    #[test]
    fn periodic_reloads_and_skips_missed_periods() {
        let mut t = LapicTimer::new();
        t.divide = 0b1011; // divide by 1
        t.set_lvt(MODE_PERIODIC << 17 | 0x40);
        t.set_initial(100, 0);
        assert_eq!(t.current(30), 70);
        assert_eq!(t.expire(100), Some(0x40));
        assert_eq!(t.deadline(), Some(200));
        assert_eq!(t.expire(450), Some(0x40), "three periods missed: one interrupt");
        assert_eq!(t.deadline(), Some(500));
        assert_eq!(t.current(430 + 50), 20);
        t.set_initial(0, 600);
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn tsc_deadline_mode() {
        let mut t = LapicTimer::new();
        t.set_tsc_deadline(5000);
        assert_eq!(t.deadline(), None, "ignored outside TSC-deadline mode");
        t.set_lvt(MODE_TSC_DEADLINE << 17 | 0x50 | LVT_MASKED);
        t.set_initial(10, 0);
        assert_eq!(t.deadline(), None, "the initial count is ignored");
        t.set_tsc_deadline(5000);
        assert_eq!((t.deadline(), t.tsc_deadline()), (Some(5000), 5000));
        assert_eq!(t.expire(6000), None, "masked: fires without an interrupt");
        assert_eq!((t.deadline(), t.tsc_deadline()), (None, 0));
        t.set_lvt(MODE_TSC_DEADLINE << 17 | 0x50);
        t.set_tsc_deadline(7000);
        assert_eq!(t.expire(7000), Some(0x50));
        t.set_tsc_deadline(9000);
        t.set_lvt(0x50); // back to one-shot: disarmed
        assert_eq!(t.deadline(), None);
    }
}

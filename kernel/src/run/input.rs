//! Input from the physical console, routed to one domain at a time.
//!
//! Input goes to the first domain (the lowest id) until three Ctrl-A in a row switch it
//! to the next domain, as Xen's serial console does. A Ctrl-A that is not part of such
//! a triple reaches the domain with the byte after it. A domain that ended loses the
//! input to the next one. The domain takes it on its emulated UART, its PV console or
//! `CONSOLEIO_read` ([`Hypervisor::console_input`](crate::Hypervisor::console_input)).

use alloc::vec::Vec;
use keel_abi::xen::DomId;

/// The byte that switches input when it comes three times in a row.
pub const SWITCH: u8 = 0x01;

/// What to do with a chunk of input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Give these bytes to the domain.
    Deliver(DomId, Vec<u8>),
    /// Input now goes to this domain: say so on the console.
    Switched(DomId),
}

/// Which domain gets console input, and how many Ctrl-A are pending.
#[derive(Debug, Default)]
pub struct InputRouter {
    target: Option<DomId>,
    pending_switch: u8,
}

impl InputRouter {
    pub const fn new() -> Self {
        InputRouter { target: None, pending_switch: 0 }
    }

    /// The domain that gets input now, among the `live` ones (sorted ids): the current
    /// target if it is live, else the next live one after it (wrapping), else the first.
    pub fn target(&mut self, live: &[DomId]) -> Option<DomId> {
        let t = match self.target {
            Some(t) if live.contains(&t) => t,
            Some(t) => *live.iter().find(|&&d| d > t).or(live.first())?,
            None => *live.first()?,
        };
        self.target = Some(t);
        Some(t)
    }

    /// The domain that got input last (or was switched to), without looking at which
    /// domains live.
    pub fn current(&self) -> Option<DomId> {
        self.target
    }

    /// Domain `old`, which had input, was built again as `new`: input goes to `new`.
    /// Returns whether `old` had input.
    pub fn retarget(&mut self, old: DomId, new: DomId) -> bool {
        let had = self.target == Some(old);
        if had {
            self.target = Some(new);
        }
        had
    }

    /// Routes `bytes` to the `live` domains (sorted ids).
    pub fn feed(&mut self, bytes: &[u8], live: &[DomId]) -> Vec<Action> {
        let mut out: Vec<Action> = Vec::new();
        let mut chunk: Vec<u8> = Vec::new();
        for &b in bytes {
            if b == SWITCH {
                self.pending_switch += 1;
                if self.pending_switch == 3 {
                    self.pending_switch = 0;
                    self.flush(&mut chunk, live, &mut out);
                    if let Some(next) = self.next(live) {
                        out.push(Action::Switched(next));
                    }
                }
                continue;
            }
            chunk.extend(core::iter::repeat_n(SWITCH, self.pending_switch as usize));
            self.pending_switch = 0;
            chunk.push(b);
        }
        self.flush(&mut chunk, live, &mut out);
        out
    }

    fn flush(&mut self, chunk: &mut Vec<u8>, live: &[DomId], out: &mut Vec<Action>) {
        if chunk.is_empty() {
            return;
        }
        if let Some(t) = self.target(live) {
            out.push(Action::Deliver(t, core::mem::take(chunk)));
        }
        chunk.clear();
    }

    /// Moves the input to the live domain after the one that had it (wrapping), even if
    /// that one has ended since: three Ctrl-A always mean "the next domain".
    fn next(&mut self, live: &[DomId]) -> Option<DomId> {
        let cur = match self.target {
            Some(t) => t,
            None => *live.first()?,
        };
        let next = *live.iter().find(|&&d| d > cur).or(live.first())?;
        self.target = Some(next);
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn three_ctrl_a_switch_and_fewer_pass_through() {
        let mut r = InputRouter::new();
        let live = [1, 2, 5];
        assert_eq!(r.feed(b"ab", &live), vec![Action::Deliver(1, b"ab".to_vec())]);
        assert_eq!(
            r.feed(b"x\x01\x01\x01y", &live),
            vec![Action::Deliver(1, b"x".to_vec()), Action::Switched(2), Action::Deliver(2, b"y".to_vec())]
        );
        // Two Ctrl-A, then a byte: all three reach the domain.
        assert_eq!(r.feed(b"\x01\x01z", &live), vec![Action::Deliver(2, b"\x01\x01z".to_vec())]);
        // A triple split across chunks still switches; past the last domain it wraps.
        assert_eq!(r.feed(b"\x01", &live), vec![]);
        assert_eq!(r.feed(b"\x01\x01", &live), vec![Action::Switched(5)]);
        assert_eq!(r.feed(b"\x01\x01\x01q", &live), vec![Action::Switched(1), Action::Deliver(1, b"q".to_vec())]);
    }

    #[test]
    fn input_follows_the_domains_that_live() {
        let mut r = InputRouter::new();
        assert_eq!(r.feed(b"a", &[]), vec![]);
        assert_eq!(r.target(&[3, 4]), Some(3));
        // Domain 3 ended: the next one takes over; then only a lower one is left.
        assert_eq!(r.feed(b"b", &[4, 7]), vec![Action::Deliver(4, b"b".to_vec())]);
        assert_eq!(r.feed(b"c", &[2]), vec![Action::Deliver(2, b"c".to_vec())]);
        assert_eq!(r.feed(b"\x01\x01\x01", &[2]), vec![Action::Switched(2)]);
        assert_eq!(r.current(), Some(2));
        // Domain 2 ended without input since: the switch goes to the one after it.
        assert_eq!(r.feed(b"\x01\x01\x01", &[1, 3, 4]), vec![Action::Switched(3)]);
        r.retarget(3, 2);
        assert!(!r.retarget(3, 9), "domain 3 does not have input");
        assert!(r.retarget(2, 9), "a restarted domain keeps the input");
        assert_eq!(r.current(), Some(9));
    }
}

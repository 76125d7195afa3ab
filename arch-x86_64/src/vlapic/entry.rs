//! The local APIC's part of a guest entry, done only when something changed.
//!
//! What decides the next interrupt to inject (the request register, TPR, ISR, SVR, the
//! APIC base, the timer) changes only through a few operations, and each of them marks
//! the change: [`Irr::raise`] (any vCPU, any CPU) sets the request register's mark after
//! the bit; the owner's register writes, [`Vlapic::set_tpr`], [`Vlapic::accept`] and a
//! timer that fired or moved set the APIC's own. A timer that became due marks nothing
//! (time passes without an operation), so [`Vlapic::begin_entry`] also compares its
//! deadline with the TSC.
//!
//! Contract: [`Vlapic::begin_entry`] returns `None` (the entry needs no local-APIC work)
//! only if no mark is set and the timer is not due; otherwise it fires the timer if due,
//! takes both marks (so a change from here on marks again) and the caller evaluates.
//! An evaluation that leaves work for a later entry (an interrupt it could not inject
//! yet, or injected while others may wait) calls [`Vlapic::unsettled`], so that the
//! next entry evaluates again. Then, whenever `begin_entry` returns `None`, nothing is
//! deliverable that was not already found so: no request is lost. The property test
//! `vlapic::entry_tests` checks it against every operation in random orders.

use super::{Irr, Vlapic};
use core::sync::atomic::Ordering;

impl Vlapic {
    /// Before an entry (see the module documentation): `None` if nothing changed since
    /// the last evaluation that settled and `force` is false; else the timer is fired if
    /// due at TSC `now`, the marks are taken, and `Some(true)` says the timer's deadline
    /// changed (report it).
    #[inline(always)]
    pub fn begin_entry(&mut self, irr: &Irr, now: u64, force: bool) -> Option<bool> {
        let due = self.timer.deadline().is_some_and(|d| d <= now);
        if !force && !due && !self.changed && !irr.changed.load(Ordering::Acquire) {
            return None;
        }
        Some(self.take_changes(irr, now))
    }

    /// Fires the timer if due and takes the marks; whether the timer's deadline changed.
    #[inline(never)]
    fn take_changes(&mut self, irr: &Irr, now: u64) -> bool {
        let timer = self.tick(irr, now);
        self.changed = false;
        // Taken before the caller reads the request register: a request after this
        // swap marks again, one before it is seen by that read.
        irr.changed.swap(false, Ordering::AcqRel);
        timer
    }

    /// The evaluation left work for a later entry: the next one evaluates again.
    pub fn unsettled(&mut self) {
        self.changed = true;
    }
}

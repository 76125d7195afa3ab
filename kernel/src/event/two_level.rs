//! The 2-level event ABI: pending and mask bitmaps in shared_info, a per-vCPU selector
//! and upcall flag in `vcpu_info`. Ports 0..4096.
//!
//! Raising follows Xen's order: set pending (stop if it was set), test mask, set the
//! selector bit, and mark the upcall pending only if the selector bit was newly set.

use crate::arch::Arch;
use crate::guest_memory::GuestWord64;
use crate::mm::PhysAddr;
use keel_abi::layout::{GuestLayout, VCPU_INFO_PENDING_SEL};

/// Where the bitmaps and a vCPU's selector are.
#[derive(Clone, Copy, Debug)]
pub struct TwoLevel<'a> {
    pub shared_info: PhysAddr,
    pub layout: &'a GuestLayout,
}

/// What raising or unmasking did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The port was not pending before.
    pub newly_pending: bool,
    /// The vCPU's upcall must be marked pending.
    pub upcall: bool,
}

impl TwoLevel<'_> {
    fn bit<A: Arch>(&self, base: usize, port: u32) -> (GuestWord64<A>, u32) {
        let word = (port / 64) as u64 * 8;
        (GuestWord64::at(PhysAddr(self.shared_info.0 + base as u64 + word)), port % 64)
    }

    fn pending<A: Arch>(&self, port: u32) -> (GuestWord64<A>, u32) {
        self.bit(self.layout.evtchn_pending, port)
    }

    fn mask<A: Arch>(&self, port: u32) -> (GuestWord64<A>, u32) {
        self.bit(self.layout.evtchn_mask, port)
    }

    /// Sets the selector bit for `port` in the `vcpu_info` at `vcpu_info`; true if newly
    /// set. A vCPU without a `vcpu_info` has no selector: always true.
    fn select<A: Arch>(&self, vcpu_info: Option<PhysAddr>, port: u32) -> bool {
        let Some(vi) = vcpu_info else { return true };
        let sel = GuestWord64::<A>::at(PhysAddr(vi.0 + VCPU_INFO_PENDING_SEL as u64));
        matches!(sel.test_and_set(port / 64), Ok(false))
    }

    /// Raises `port` for the vCPU whose `vcpu_info` is at `vcpu_info`.
    pub fn raise<A: Arch>(&self, port: u32, vcpu_info: Option<PhysAddr>) -> Outcome {
        let (pending, bit) = self.pending::<A>(port);
        match pending.test_and_set(bit) {
            Ok(false) => {}
            _ => return Outcome::default(),
        }
        let (mask, bit) = self.mask::<A>(port);
        let upcall = !mask.test(bit) && self.select::<A>(vcpu_info, port);
        Outcome { newly_pending: true, upcall }
    }

    /// `EVTCHNOP_unmask`: clears the mask bit; if it was set and the port is pending,
    /// selects it and asks for an upcall.
    pub fn unmask<A: Arch>(&self, port: u32, vcpu_info: Option<PhysAddr>) -> Outcome {
        let (mask, bit) = self.mask::<A>(port);
        let upcall = matches!(mask.test_and_clear(bit), Ok(true))
            && self.is_pending::<A>(port)
            && self.select::<A>(vcpu_info, port);
        Outcome { newly_pending: false, upcall }
    }

    pub fn is_pending<A: Arch>(&self, port: u32) -> bool {
        let (w, bit) = self.pending::<A>(port);
        w.test(bit)
    }

    /// Clears the pending bit (when the port is closed).
    pub fn clear_pending<A: Arch>(&self, port: u32) {
        let (w, bit) = self.pending::<A>(port);
        let _ = w.test_and_clear(bit);
    }
}

//! The 2-level event ABI: pending and mask bitmaps in shared_info, a per-vCPU selector
//! and upcall flag in `vcpu_info`. Ports 0..4096 with 64-bit words, 0..1024 with the
//! 32-bit words of the x86 compat layout; the layout says which.
//!
//! Raising follows Xen's order: set pending (stop if it was set), test mask, set the
//! selector bit, and mark the upcall pending only if the selector bit was newly set.

use crate::arch::Arch;
use crate::guest_memory::{GuestWord32, GuestWord64, Unstable};
use crate::mm::PhysAddr;
use keel_abi::layout::GuestLayout;

/// One word of a 2-level bitmap or a selector, as wide as the layout's `xen_ulong_t`.
#[derive(Clone, Copy, Debug)]
enum Word<A: Arch> {
    Narrow(GuestWord32<A>),
    Wide(GuestWord64<A>),
}

impl<A: Arch> Word<A> {
    /// Word `index` of the array of words at `base`.
    fn at(layout: &GuestLayout, base: PhysAddr, index: u32) -> Self {
        let pa = PhysAddr(base.0 + u64::from(index) * layout.word_bytes as u64);
        if layout.word_bytes == 4 {
            Word::Narrow(GuestWord32::at(pa))
        } else {
            Word::Wide(GuestWord64::at(pa))
        }
    }

    fn test_and_set(&self, bit: u32) -> Result<bool, Unstable> {
        match self {
            Word::Narrow(w) => w.test_and_set(bit),
            Word::Wide(w) => w.test_and_set(bit),
        }
    }

    fn test_and_clear(&self, bit: u32) -> Result<bool, Unstable> {
        match self {
            Word::Narrow(w) => w.test_and_clear(bit),
            Word::Wide(w) => w.test_and_clear(bit),
        }
    }

    fn test(&self, bit: u32) -> bool {
        match self {
            Word::Narrow(w) => w.test(bit),
            Word::Wide(w) => w.test(bit),
        }
    }
}

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
    /// Whether `port` has a bit in the layout's bitmaps.
    pub fn has_port(&self, port: u32) -> bool {
        port < self.layout.two_level_ports()
    }

    fn bit<A: Arch>(&self, base: usize, port: u32) -> (Word<A>, u32) {
        let bits = self.layout.word_bits();
        (Word::at(self.layout, PhysAddr(self.shared_info.0 + base as u64), port / bits), port % bits)
    }

    fn pending<A: Arch>(&self, port: u32) -> (Word<A>, u32) {
        self.bit(self.layout.evtchn_pending, port)
    }

    fn mask<A: Arch>(&self, port: u32) -> (Word<A>, u32) {
        self.bit(self.layout.evtchn_mask, port)
    }

    /// Sets the selector bit for `port` in the `vcpu_info` at `vcpu_info`; true if newly
    /// set. A vCPU without a `vcpu_info` has no selector: always true.
    fn select<A: Arch>(&self, vcpu_info: Option<PhysAddr>, port: u32) -> bool {
        let Some(vi) = vcpu_info else { return true };
        let sel = Word::<A>::at(self.layout, PhysAddr(vi.0 + self.layout.pending_sel as u64), 0);
        matches!(sel.test_and_set(port / self.layout.word_bits()), Ok(false))
    }

    /// Raises `port` for the vCPU whose `vcpu_info` is at `vcpu_info`.
    pub fn raise<A: Arch>(&self, port: u32, vcpu_info: Option<PhysAddr>) -> Outcome {
        if !self.has_port(port) {
            return Outcome::default();
        }
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
        if !self.has_port(port) {
            return Outcome::default();
        }
        let (mask, bit) = self.mask::<A>(port);
        let upcall = matches!(mask.test_and_clear(bit), Ok(true))
            && self.is_pending::<A>(port)
            && self.select::<A>(vcpu_info, port);
        Outcome { newly_pending: false, upcall }
    }

    pub fn is_pending<A: Arch>(&self, port: u32) -> bool {
        if !self.has_port(port) {
            return false;
        }
        let (w, bit) = self.pending::<A>(port);
        w.test(bit)
    }

    /// Clears the pending bit (when the port is closed).
    pub fn clear_pending<A: Arch>(&self, port: u32) {
        if !self.has_port(port) {
            return;
        }
        let (w, bit) = self.pending::<A>(port);
        let _ = w.test_and_clear(bit);
    }
}

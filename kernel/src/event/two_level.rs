//! The 2-level event ABI: pending and mask bitmaps in shared_info, a per-vCPU selector
//! and upcall flag in `vcpu_info`. Ports 0..4096 with 64-bit words, 0..1024 with the
//! 32-bit words of the x86 compat layout; the layout says which.
//!
//! Raising follows Xen's order: set pending (stop if it was set), test mask, set the
//! selector bit, and mark the upcall pending only if the selector bit was newly set.

use crate::arch::memory::Frame;
use crate::arch::{Arch, HostMemory};
use crate::guest_memory::{GuestWord32, GuestWord64, Unstable};
use crate::mm::{PhysAddr, PAGE_SIZE};
use keel_abi::layout::GuestLayout;

/// One word of a 2-level bitmap or a selector, as wide as the layout's `xen_ulong_t`.
enum Word<A: Arch> {
    Narrow(GuestWord32<A>),
    Wide(GuestWord64<A>),
}

impl<A: Arch> Word<A> {
    /// Word `index` of the array of words at `base` in the page `frame`.
    fn in_frame(layout: &GuestLayout, frame: Frame<A>, base: usize, index: u32) -> Self {
        let offset = base + index as usize * layout.word_bytes;
        if layout.word_bytes == 4 {
            Word::Narrow(GuestWord32::in_frame(frame, offset))
        } else {
            Word::Wide(GuestWord64::in_frame(frame, offset))
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

/// Where the bitmaps are: the domain's shared_info page, by the handle kept with its
/// event state (no pool check, no translation per access), laid out by `layout`.
pub struct TwoLevel<'a, A: Arch> {
    pub shared_info: Frame<A>,
    pub layout: &'a GuestLayout,
}

/// Where a vCPU's `vcpu_info` is: the handle of its page (the domain's shared_info, or
/// a page pinned by `VCPUOP_register_vcpu_info`, dropped before it is unpinned) and the
/// offset in it. The event code's one view of a `vcpu_info`'s words.
pub struct VcpuInfo<A: Arch> {
    frame: Frame<A>,
    offset: usize,
}

impl<A: Arch> Clone for VcpuInfo<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A: Arch> Copy for VcpuInfo<A> {}

impl<A: Arch> core::fmt::Debug for VcpuInfo<A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VcpuInfo({})", self.address())
    }
}

impl<A: Arch> VcpuInfo<A> {
    /// The `vcpu_info` at host address `pa` (its page is checked once, here).
    pub fn at(pa: PhysAddr) -> Self {
        VcpuInfo {
            frame: A::Memory::frame(pa.align_down(PAGE_SIZE)),
            offset: usize::try_from(pa.0 % PAGE_SIZE).unwrap_or(0),
        }
    }

    pub fn address(&self) -> PhysAddr {
        PhysAddr(A::Memory::frame_address(self.frame).0 + self.offset as u64)
    }

    /// The word holding `evtchn_upcall_pending` (its low byte).
    pub fn upcall_word(&self) -> GuestWord32<A> {
        GuestWord32::in_frame(self.frame, self.offset)
    }

    /// `evtchn_pending_sel`, as wide as `layout`'s words.
    fn selector(&self, layout: &GuestLayout) -> Word<A> {
        Word::in_frame(layout, self.frame, self.offset + layout.pending_sel, 0)
    }
}

/// What raising or unmasking did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The port was not pending before.
    pub newly_pending: bool,
    /// The vCPU's upcall must be marked pending.
    pub upcall: bool,
}

impl<A: Arch> TwoLevel<'_, A> {
    /// Whether `port` has a bit in the layout's bitmaps.
    pub fn has_port(&self, port: u32) -> bool {
        port < self.layout.two_level_ports()
    }

    /// The word and bit of `port` (the caller checked [`Self::has_port`]) in the bitmap
    /// at `base`.
    fn bit(&self, base: usize, port: u32) -> (Word<A>, u32) {
        let bits = self.layout.word_bits();
        (Word::in_frame(self.layout, self.shared_info, base, port / bits), port % bits)
    }

    fn pending(&self, port: u32) -> (Word<A>, u32) {
        self.bit(self.layout.evtchn_pending, port)
    }

    fn mask(&self, port: u32) -> (Word<A>, u32) {
        self.bit(self.layout.evtchn_mask, port)
    }

    /// Sets the selector bit for `port` in `vcpu_info`; true if newly set. A vCPU
    /// without a `vcpu_info` has no selector: always true.
    fn select(&self, vcpu_info: Option<VcpuInfo<A>>, port: u32) -> bool {
        let Some(vi) = vcpu_info else { return true };
        matches!(vi.selector(self.layout).test_and_set(port / self.layout.word_bits()), Ok(false))
    }

    /// Raises `port` for the vCPU whose `vcpu_info` is `vcpu_info`.
    pub fn raise(&self, port: u32, vcpu_info: Option<VcpuInfo<A>>) -> Outcome {
        if !self.has_port(port) {
            return Outcome::default();
        }
        let (pending, bit) = self.pending(port);
        match pending.test_and_set(bit) {
            Ok(false) => {}
            _ => return Outcome::default(),
        }
        let (mask, bit) = self.mask(port);
        let upcall = !mask.test(bit) && self.select(vcpu_info, port);
        Outcome { newly_pending: true, upcall }
    }

    /// `EVTCHNOP_unmask`: clears the mask bit; if it was set and the port is pending,
    /// selects it and asks for an upcall.
    pub fn unmask(&self, port: u32, vcpu_info: Option<VcpuInfo<A>>) -> Outcome {
        if !self.has_port(port) {
            return Outcome::default();
        }
        let (mask, bit) = self.mask(port);
        let upcall =
            matches!(mask.test_and_clear(bit), Ok(true)) && self.is_pending(port) && self.select(vcpu_info, port);
        Outcome { newly_pending: false, upcall }
    }

    pub fn is_pending(&self, port: u32) -> bool {
        if !self.has_port(port) {
            return false;
        }
        let (w, bit) = self.pending(port);
        w.test(bit)
    }

    /// Clears the pending bit (when the port is closed).
    pub fn clear_pending(&self, port: u32) {
        if !self.has_port(port) {
            return;
        }
        let (w, bit) = self.pending(port);
        let _ = w.test_and_clear(bit);
    }
}

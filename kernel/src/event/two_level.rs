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

/// One word of a 2-level bitmap or a selector, as wide as the layout's `xen_ulong_t`:
/// [`GuestWord32`] or [`GuestWord64`]. Each operation of [`TwoLevel`] chooses the width
/// once, from the layout, and runs code made for it (no width test per word access).
trait BitWord<A: Arch>: Sized {
    /// Bits in the word.
    const BITS: u32;
    /// Word `index` of the array of words at `base` in the page `frame`.
    fn in_frame(frame: Frame<A>, base: usize, index: u32) -> Self;
    fn test_and_set(&self, bit: u32) -> Result<bool, Unstable>;
    fn test_and_clear(&self, bit: u32) -> Result<bool, Unstable>;
    fn test(&self, bit: u32) -> bool;
}

macro_rules! bit_word {
    ($word:ident, $bits:expr) => {
        impl<A: Arch> BitWord<A> for $word<A> {
            const BITS: u32 = $bits;

            #[inline(always)]
            fn in_frame(frame: Frame<A>, base: usize, index: u32) -> Self {
                $word::in_frame(frame, base + index as usize * ($bits / 8))
            }

            #[inline(always)]
            fn test_and_set(&self, bit: u32) -> Result<bool, Unstable> {
                $word::test_and_set(self, bit)
            }

            #[inline(always)]
            fn test_and_clear(&self, bit: u32) -> Result<bool, Unstable> {
                $word::test_and_clear(self, bit)
            }

            #[inline(always)]
            fn test(&self, bit: u32) -> bool {
                $word::test(self, bit)
            }
        }
    };
}

bit_word!(GuestWord32, 32);
bit_word!(GuestWord64, 64);

/// Runs `$self.$f::<W>($args)` with `W` the word of `$self`'s layout.
macro_rules! by_width {
    ($self:ident.$f:ident($($arg:expr),*)) => {
        if $self.layout.word_bytes == 4 {
            $self.$f::<GuestWord32<A>>($($arg),*)
        } else {
            $self.$f::<GuestWord64<A>>($($arg),*)
        }
    };
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

    /// `evtchn_pending_sel`, at `layout`'s offset, as a word of `W`.
    fn selector<W: BitWord<A>>(&self, layout: &GuestLayout) -> W {
        W::in_frame(self.frame, self.offset + layout.pending_sel, 0)
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
    #[inline(always)]
    fn bit<W: BitWord<A>>(&self, base: usize, port: u32) -> (W, u32) {
        (W::in_frame(self.shared_info, base, port / W::BITS), port % W::BITS)
    }

    #[inline(always)]
    fn pending<W: BitWord<A>>(&self, port: u32) -> (W, u32) {
        self.bit(self.layout.evtchn_pending, port)
    }

    #[inline(always)]
    fn mask<W: BitWord<A>>(&self, port: u32) -> (W, u32) {
        self.bit(self.layout.evtchn_mask, port)
    }

    /// Sets the selector bit for `port` in `vcpu_info`; true if newly set. A vCPU
    /// without a `vcpu_info` has no selector: always true.
    #[inline(always)]
    fn select<W: BitWord<A>>(&self, vcpu_info: Option<VcpuInfo<A>>, port: u32) -> bool {
        let Some(vi) = vcpu_info else { return true };
        matches!(vi.selector::<W>(self.layout).test_and_set(port / W::BITS), Ok(false))
    }

    /// Raises `port` for the vCPU whose `vcpu_info` is `vcpu_info`.
    pub fn raise(&self, port: u32, vcpu_info: Option<VcpuInfo<A>>) -> Outcome {
        if !self.has_port(port) {
            return Outcome::default();
        }
        by_width!(self.raise_as(port, vcpu_info))
    }

    fn raise_as<W: BitWord<A>>(&self, port: u32, vcpu_info: Option<VcpuInfo<A>>) -> Outcome {
        let (pending, bit) = self.pending::<W>(port);
        match pending.test_and_set(bit) {
            Ok(false) => {}
            _ => return Outcome::default(),
        }
        let (mask, bit) = self.mask::<W>(port);
        let upcall = !mask.test(bit) && self.select::<W>(vcpu_info, port);
        Outcome { newly_pending: true, upcall }
    }

    /// `EVTCHNOP_unmask`: clears the mask bit; if it was set and the port is pending,
    /// selects it and asks for an upcall.
    pub fn unmask(&self, port: u32, vcpu_info: Option<VcpuInfo<A>>) -> Outcome {
        if !self.has_port(port) {
            return Outcome::default();
        }
        by_width!(self.unmask_as(port, vcpu_info))
    }

    fn unmask_as<W: BitWord<A>>(&self, port: u32, vcpu_info: Option<VcpuInfo<A>>) -> Outcome {
        let (mask, bit) = self.mask::<W>(port);
        let upcall = matches!(mask.test_and_clear(bit), Ok(true))
            && self.pending::<W>(port).0.test(port % W::BITS)
            && self.select::<W>(vcpu_info, port);
        Outcome { newly_pending: false, upcall }
    }

    pub fn is_pending(&self, port: u32) -> bool {
        if !self.has_port(port) {
            return false;
        }
        by_width!(self.is_pending_as(port))
    }

    fn is_pending_as<W: BitWord<A>>(&self, port: u32) -> bool {
        let (w, bit) = self.pending::<W>(port);
        w.test(bit)
    }

    /// Clears the pending bit (when the port is closed).
    pub fn clear_pending(&self, port: u32) {
        if !self.has_port(port) {
            return;
        }
        by_width!(self.clear_pending_as(port))
    }

    fn clear_pending_as<W: BitWord<A>>(&self, port: u32) {
        let (w, bit) = self.pending::<W>(port);
        let _ = w.test_and_clear(bit);
    }
}

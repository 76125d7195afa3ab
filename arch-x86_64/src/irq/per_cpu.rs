//! The interrupt bookkeeping each physical CPU keeps in its per-CPU block: a leaf, so
//! that `crate::cpu` can hold it without importing the interrupt controllers.

use core::sync::atomic::{AtomicU64, Ordering};

/// One CPU's interrupt bookkeeping (256 vectors, one bit each).
pub struct CpuIrq {
    pub(super) pending: [AtomicU64; 4],
    pub(super) enabled: [AtomicU64; 4],
}

impl CpuIrq {
    pub const fn new() -> CpuIrq {
        CpuIrq { pending: [const { AtomicU64::new(0) }; 4], enabled: [const { AtomicU64::new(0) }; 4] }
    }

    pub(super) fn set(words: &[AtomicU64; 4], vector: u8, on: bool) {
        let (w, bit) = (vector as usize / 64, 1u64 << (vector % 64));
        if on {
            words[w].fetch_or(bit, Ordering::AcqRel);
        } else {
            words[w].fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// Removes and returns the highest vector that is pending and enabled.
    pub(super) fn take_highest(&self) -> Option<u8> {
        for w in (0..4).rev() {
            let ready = self.pending[w].load(Ordering::Acquire) & self.enabled[w].load(Ordering::Acquire);
            if ready != 0 {
                let bit = 63 - ready.leading_zeros();
                self.pending[w].fetch_and(!(1u64 << bit), Ordering::AcqRel);
                return Some((w as u32 * 64 + bit) as u8);
            }
        }
        None
    }
}

impl Default for CpuIrq {
    fn default() -> Self {
        Self::new()
    }
}

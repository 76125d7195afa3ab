//! A guest's store page as the service reaches it: mapped by grant into the platform's
//! hole, behind [`RingMemory`].

use core::sync::atomic::{fence, Ordering};
use keel_xenstore::ring::RingMemory;

/// Bytes of the page.
const PAGE: usize = 4096;

/// The page mapped at `base` (virtual = guest-physical in the hole).
pub struct MappedRing {
    base: usize,
}

impl MappedRing {
    /// # Safety
    /// `base` must be the address of a page mapped read-write for as long as the value
    /// lives (the service unmaps the grant only after dropping it).
    pub unsafe fn new(base: usize) -> Self {
        MappedRing { base }
    }

    fn at(&self, offset: usize, len: usize) -> Option<usize> {
        (offset.checked_add(len)? <= PAGE).then_some(self.base + offset)
    }
}

impl RingMemory for MappedRing {
    /// One 32-bit access (an index the guest updates with one store is never torn).
    fn read_u32(&self, offset: usize) -> u32 {
        match self.at(offset, 4) {
            // SAFETY: a 4-aligned word inside the mapped page.
            Some(at) if at % 4 == 0 => u32::from_le(unsafe { core::ptr::read_volatile(at as *const u32) }),
            _ => 0,
        }
    }

    fn write_u32(&mut self, offset: usize, value: u32) {
        if let Some(at) = self.at(offset, 4).filter(|a| a % 4 == 0) {
            // SAFETY: a 4-aligned word inside the mapped page, mapped writable.
            unsafe { core::ptr::write_volatile(at as *mut u32, value.to_le()) };
        }
    }

    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        let Some(at) = self.at(offset, buf.len()) else { return };
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `at + i` lies in the mapped page (`at` checked the bounds); the
            // guest may change it at any time, hence one volatile read per byte.
            *b = unsafe { core::ptr::read_volatile((at + i) as *const u8) };
        }
    }

    fn write_bytes(&mut self, offset: usize, data: &[u8]) {
        let Some(at) = self.at(offset, data.len()) else { return };
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: as in `read_bytes`; the page is mapped writable.
            unsafe { core::ptr::write_volatile((at + i) as *mut u8, b) };
        }
    }

    fn fence(&self) {
        fence(Ordering::SeqCst);
    }
}

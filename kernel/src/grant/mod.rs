//! Grant tables v1: a domain's shared entry frames, the entries other domains have
//! pinned (active entries), and the mappings this domain holds (maptrack).
//!
//! Operations that involve two domains are in [`ops`]; this module is one domain's state
//! behind its `grants` lock. Lock order: `grants` then `mm`; never two `grants` locks at
//! once.

mod copy;
mod entry;
pub mod ops;

use crate::arch::{Arch, HostMemory};
use crate::guest_memory::GuestWord32;
use crate::mm::{FramePool, PhysAddr, PAGE_BYTES};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use keel_abi::grant::GRANT_ENTRIES_PER_FRAME;
use keel_abi::xen::DomId;
use keel_abi::Errno;

pub use copy::copy;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod unmap_batch_tests;

/// An entry pinned by a mapping or a copy in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Active {
    /// The one domain allowed to hold pins on this entry at a time.
    pub domid: DomId,
    /// Read-only pins (read-only maps, copy sources).
    pub readers: u32,
    /// Writable pins (writable maps, copy destinations).
    pub writers: u32,
    /// The granted frame (pinned in the granter's memory while any pin exists).
    pub frame: PhysAddr,
    /// Mappings of this entry: (mapping domain, its handle).
    pub maps: Vec<(DomId, u32)>,
}

/// A mapping this domain holds of another domain's grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub granter: DomId,
    pub gref: u32,
    /// Guest frame where it is mapped in this domain.
    pub gfn: u64,
    pub readonly: bool,
}

/// A maptrack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Free,
    /// A map in progress.
    Reserved,
    Mapped(Mapping),
}

/// One domain's grant table.
pub struct GrantTable {
    frames: Vec<PhysAddr>,
    max_frames: u32,
    pub(crate) active: BTreeMap<u32, Active>,
    pub(crate) maptrack: Vec<Slot>,
    free_handles: Vec<u32>,
    max_maptrack: u32,
    pub(crate) dying: bool,
}

impl GrantTable {
    pub fn new(max_frames: u32, max_maptrack: u32) -> Self {
        GrantTable {
            frames: Vec::new(),
            max_frames,
            active: BTreeMap::new(),
            maptrack: Vec::new(),
            free_handles: Vec::new(),
            max_maptrack,
            dying: false,
        }
    }

    pub fn nr_frames(&self) -> u32 {
        u32::try_from(self.frames.len()).unwrap_or(u32::MAX)
    }

    pub fn max_frames(&self) -> u32 {
        self.max_frames
    }

    /// Number of grant references (valid refs are below this).
    pub fn nr_entries(&self) -> u32 {
        self.nr_frames() * GRANT_ENTRIES_PER_FRAME
    }

    /// Grows the table to `n` frames (zeroed). -EINVAL above the maximum.
    pub fn grow<A: Arch>(&mut self, pool: &FramePool, n: u32) -> Result<(), Errno> {
        if n > self.max_frames {
            return Err(Errno::EINVAL);
        }
        while self.nr_frames() < n {
            let f = pool.alloc(1).ok_or(Errno::ENOMEM)?;
            A::Memory::zero(f, PAGE_BYTES);
            self.frames.push(f);
        }
        Ok(())
    }

    /// Frame `idx`, growing the table to hold it.
    pub fn frame<A: Arch>(&mut self, pool: &FramePool, idx: u32) -> Result<PhysAddr, Errno> {
        self.grow::<A>(pool, idx.checked_add(1).ok_or(Errno::EINVAL)?)?;
        self.frames.get(idx as usize).copied().ok_or(Errno::EINVAL)
    }

    /// The first word (flags, domid) of entry `gref`.
    pub fn entry_word<A: Arch>(&self, gref: u32) -> Option<GuestWord32<A>> {
        let f = self.frames.get((gref / GRANT_ENTRIES_PER_FRAME) as usize)?;
        Some(GuestWord32::at(PhysAddr(f.0 + (gref % GRANT_ENTRIES_PER_FRAME) as u64 * 8)))
    }

    /// The `frame` field of entry `gref`.
    pub fn entry_frame<A: Arch>(&self, gref: u32) -> Option<u64> {
        let w = self.entry_word::<A>(gref)?;
        let mut b = [0u8; 4];
        A::Memory::read(PhysAddr(w.address().0 + 4), &mut b);
        Some(u32::from_le_bytes(b) as u64)
    }

    /// Fills entry `gref` as its granter would: `domid` may map or copy guest frame
    /// `gfn` read-write (the domain builder seeds `GNTTAB_RESERVED_XENSTORE` so). Grows
    /// the table to hold it; -EBUSY while the entry is pinned.
    pub fn seed_entry<A: Arch>(&mut self, pool: &FramePool, gref: u32, domid: DomId, gfn: u32) -> Result<(), Errno> {
        if self.active.contains_key(&gref) {
            return Err(Errno::EBUSY);
        }
        self.frame::<A>(pool, gref / GRANT_ENTRIES_PER_FRAME)?;
        let w = self.entry_word::<A>(gref).ok_or(Errno::EINVAL)?;
        A::Memory::write(PhysAddr(w.address().0 + 4), &gfn.to_le_bytes());
        let flags = u32::from(keel_abi::grant::GTF_PERMIT_ACCESS);
        w.store(flags | (u32::from(domid) << 16));
        Ok(())
    }

    /// Reserves a maptrack handle for a map in progress.
    pub fn reserve_handle(&mut self) -> Option<u32> {
        if let Some(h) = self.free_handles.pop() {
            self.maptrack[h as usize] = Slot::Reserved;
            return Some(h);
        }
        let handle = u32::try_from(self.maptrack.len()).ok()?;
        if handle >= self.max_maptrack {
            return None;
        }
        self.maptrack.push(Slot::Reserved);
        Some(handle)
    }

    /// Returns a handle to the free list.
    pub fn free_handle(&mut self, h: u32) {
        if let Some(s) = self.maptrack.get_mut(h as usize) {
            if *s != Slot::Free {
                *s = Slot::Free;
                self.free_handles.push(h);
            }
        }
    }

    pub fn slot(&self, h: u32) -> Slot {
        self.maptrack.get(h as usize).copied().unwrap_or(Slot::Free)
    }

    pub fn set_slot(&mut self, h: u32, s: Slot) {
        if let Some(x) = self.maptrack.get_mut(h as usize) {
            *x = s;
        }
    }

    /// Mappings this domain holds.
    pub fn mappings(&self) -> usize {
        self.maptrack.iter().filter(|s| matches!(s, Slot::Mapped(_))).count()
    }

    /// Frees the table's frames (destruction).
    pub fn free_frames(&mut self, pool: &FramePool) {
        for f in self.frames.drain(..) {
            pool.free(f, 1);
        }
    }
}

//! A domain's guest-physical memory: its P2M (stage-2/EPT/NPT tables), the RAM frames it
//! owns, the special pages placed in it, pins, and page accounting.
//!
//! This is the one place that changes a domain's P2M. Reads and writes of guest memory go
//! through [`crate::guest_memory`], which translates with [`Memory::lookup`].

use super::frames::{free_run, FrameSet};
use crate::arch::{Arch, HostMemory, MemType, Perms, SpaceId, Stage2};
use crate::mm::{FramePool, GuestPhysAddr, MapError, PageTable, PhysAddr, Region, PAGE_BYTES, PAGE_SIZE};
use alloc::collections::{BTreeMap, BTreeSet};
use core::cell::Cell;
use keel_abi::Errno;

/// Translations [`Memory::lookup`] remembers (any frames; the oldest is replaced).
const REMEMBERED: usize = 4;

/// A remembered translation: `gfn + 1` (0: none) and what it mapped to.
type Remembered = Cell<(u64, Lookup)>;

const NOTHING: Lookup = Lookup { frame: PhysAddr(0), perms: Perms::R, kind: PageKind::Other };

/// What a guest frame holds, besides ordinary RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    /// RAM the domain owns.
    Ram,
    /// The domain's shared_info page.
    SharedInfo,
    /// Frame `n` of the domain's grant table.
    GrantFrame(u32),
    /// The domain's PV console ring, served by Keel.
    ConsoleRing,
    /// Another domain's frame, mapped through a grant (`handle` in our maptrack).
    Foreign { handle: u32 },
    /// Something the domain builder mapped (device memory); never RAM.
    Other,
}

/// One guest frame's translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Host address of the start of the frame.
    pub frame: PhysAddr,
    pub perms: Perms,
    pub kind: PageKind,
}

/// A domain's memory. Lock order: a domain's `mm` lock is a leaf; nothing else is
/// locked while it is held.
pub struct Memory<A: Arch> {
    p2m: Option<PageTable<A>>,
    ram: FrameSet,
    /// RAM the domain owns by name (static memory of a direct-mapped domain): reserved
    /// in the pool, never freed to it.
    statics: FrameSet,
    /// The static ranges claimed in the pool, unclaimed at teardown.
    claims: alloc::vec::Vec<Region>,
    special: BTreeMap<u64, PageKind>,
    /// Where each hypervisor page is placed (the reverse of `special` for them).
    placed: BTreeMap<PageKindKey, u64>,
    pins: BTreeMap<u64, u32>,
    released: BTreeSet<u64>,
    max_pages: u64,
    /// The last translations `lookup` made (a software TLB: the event send and every
    /// hypercall argument skip the walk and the `special`/`ram` searches). Forgotten by
    /// every change of `p2m`, `special` or `ram` ([`Memory::forget_lookups`]); all of
    /// these take `&mut self`, i.e. the domain's `mm` lock, which every user of a
    /// translation holds while it uses the frame.
    remembered: [Remembered; REMEMBERED],
    /// The slot of `remembered` the next walk fills.
    next_slot: Cell<usize>,
}

/// A hypervisor page that appears at most once in the P2M.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PageKindKey {
    SharedInfo,
    GrantFrame(u32),
    ConsoleRing,
}

impl PageKindKey {
    fn of(kind: PageKind) -> Option<Self> {
        match kind {
            PageKind::SharedInfo => Some(PageKindKey::SharedInfo),
            PageKind::GrantFrame(i) => Some(PageKindKey::GrantFrame(i)),
            PageKind::ConsoleRing => Some(PageKindKey::ConsoleRing),
            _ => None,
        }
    }
}

fn map_errno(e: MapError) -> Errno {
    match e {
        MapError::NoMemory => Errno::ENOMEM,
        MapError::AlreadyMapped => Errno::EBUSY,
        MapError::Misaligned | MapError::OutOfRange => Errno::EINVAL,
    }
}

const fn gpa(gfn: u64) -> Option<GuestPhysAddr> {
    match gfn.checked_mul(PAGE_SIZE) {
        Some(a) if a / PAGE_SIZE == gfn => Some(GuestPhysAddr(a)),
        _ => None,
    }
}

impl<A: Arch> Memory<A> {
    /// An empty address space allowed to own `max_pages` pages of RAM.
    pub fn new(pool: &FramePool, space: SpaceId, max_pages: u64) -> Result<Self, Errno> {
        let p2m = PageTable::new(pool, space).map_err(map_errno)?;
        Ok(Memory {
            p2m: Some(p2m),
            ram: FrameSet::new(),
            statics: FrameSet::new(),
            claims: alloc::vec::Vec::new(),
            special: BTreeMap::new(),
            placed: BTreeMap::new(),
            pins: BTreeMap::new(),
            released: BTreeSet::new(),
            max_pages,
            remembered: core::array::from_fn(|_| Cell::new((0, NOTHING))),
            next_slot: Cell::new(0),
        })
    }

    /// The root of the P2M, for the backend's translation-base register.
    pub fn p2m_root(&self) -> Option<PhysAddr> {
        self.p2m.as_ref().map(|p| p.root())
    }

    /// RAM pages the domain owns (`tot_pages`).
    pub fn tot_pages(&self) -> u64 {
        self.ram.len() + self.statics.len()
    }

    /// The most RAM pages the domain may own.
    pub fn max_pages(&self) -> u64 {
        self.max_pages
    }

    /// Sets the most RAM pages the domain may own (the builder adds a page beyond the
    /// configured memory for the store page, as Xen's toolstack raises maxmem).
    pub fn set_max_pages(&mut self, pages: u64) {
        self.max_pages = pages;
    }

    /// Pages given back while still pinned, waiting for their last unpin.
    pub fn released_pending(&self) -> usize {
        self.released.len()
    }

    /// What guest frame `gfn` maps to.
    #[inline]
    pub fn lookup(&self, gfn: u64) -> Option<Lookup> {
        let key = gfn.wrapping_add(1);
        for slot in &self.remembered {
            let (k, l) = slot.get();
            if k == key && key != 0 {
                return Some(l);
            }
        }
        let l = self.walk(gfn)?;
        let next = self.next_slot.get() % REMEMBERED;
        self.remembered[next].set((key, l));
        self.next_slot.set((next + 1) % REMEMBERED);
        Some(l)
    }

    /// Forgets every remembered translation: called by everything that changes what
    /// [`Memory::walk`] finds.
    fn forget_lookups(&mut self) {
        for slot in &self.remembered {
            slot.set((0, NOTHING));
        }
    }

    /// What guest frame `gfn` maps to, from the tables themselves.
    fn walk(&self, gfn: u64) -> Option<Lookup> {
        let (pa, perms, mem) = self.p2m.as_ref()?.translate(gpa(gfn)?)?;
        let frame = pa.align_down(PAGE_SIZE);
        let kind = match self.special.get(&gfn) {
            Some(&k) => k,
            None if mem == MemType::Normal
                && (self.ram.contains(frame.0 / PAGE_SIZE) || self.statics.contains(frame.0 / PAGE_SIZE)) =>
            {
                PageKind::Ram
            }
            None => PageKind::Other,
        };
        Some(Lookup { frame, perms, kind })
    }

    /// Allocates `pages` pages of RAM and maps them at `gfn` (read, write, execute).
    /// All or nothing: on failure nothing is left allocated or mapped.
    pub fn populate(&mut self, pool: &FramePool, gfn: u64, pages: u64) -> Result<(), Errno> {
        if pages == 0 {
            return Ok(());
        }
        let end = gfn.checked_add(pages).ok_or(Errno::EINVAL)?;
        gpa(end).ok_or(Errno::EINVAL)?;
        if self.tot_pages().saturating_add(pages) > self.max_pages {
            return Err(Errno::ENOMEM);
        }
        let mut g = gfn;
        while g < end {
            let align = if g == 0 { 512 } else { (g & g.wrapping_neg()).min(512) };
            let mut chunk = align;
            while g + chunk > end {
                chunk /= 2;
            }
            if let Err(e) = self.populate_chunk(pool, g, chunk) {
                self.unpopulate(pool, gfn, g);
                return Err(e);
            }
            g += chunk;
        }
        Ok(())
    }

    fn populate_chunk(&mut self, pool: &FramePool, gfn: u64, pages: u64) -> Result<(), Errno> {
        self.forget_lookups();
        let p2m = self.p2m.as_mut().ok_or(Errno::EINVAL)?;
        let count = usize::try_from(pages).map_err(|_| Errno::ENOMEM)?;
        let bytes = count.checked_mul(PAGE_BYTES).ok_or(Errno::ENOMEM)?;
        let frame = pool.alloc(count).ok_or(Errno::ENOMEM)?;
        A::Memory::zero(frame, bytes);
        let at = gpa(gfn).ok_or(Errno::EINVAL)?;
        if let Err(e) = p2m.map(pool, at, frame, pages * PAGE_SIZE, Perms::RWX, MemType::Normal) {
            pool.free(frame, count);
            return Err(map_errno(e));
        }
        self.ram.insert(frame.0 / PAGE_SIZE, pages);
        Ok(())
    }

    /// Undoes a partial `populate` of `[from, to)`.
    fn unpopulate(&mut self, pool: &FramePool, from: u64, to: u64) {
        for g in from..to {
            let _ = self.release_ram(pool, g);
        }
    }

    /// Removes the RAM page at `gfn` from the domain (decrease_reservation). The frame
    /// goes back to the pool, or, while pinned, at its last unpin.
    pub fn release_ram(&mut self, pool: &FramePool, gfn: u64) -> Result<(), Errno> {
        let l = self.lookup(gfn).ok_or(Errno::ENOENT)?;
        if l.kind != PageKind::Ram {
            return Err(Errno::EINVAL);
        }
        self.unmap_page(pool, gfn)?;
        let pfn = l.frame.0 / PAGE_SIZE;
        if self.statics.remove(pfn) {
            // Static RAM stays reserved: unmapped, never the pool's.
            return Ok(());
        }
        self.ram.remove(pfn);
        self.forget_lookups();
        if self.pins.contains_key(&pfn) {
            self.released.insert(pfn);
        } else {
            pool.free(l.frame, 1);
        }
        Ok(())
    }

    fn unmap_page(&mut self, pool: &FramePool, gfn: u64) -> Result<(), Errno> {
        self.forget_lookups();
        let p2m = self.p2m.as_mut().ok_or(Errno::EINVAL)?;
        p2m.unmap(pool, gpa(gfn).ok_or(Errno::EINVAL)?, PAGE_SIZE).map_err(map_errno)
    }

    /// Places a hypervisor page (shared_info, a grant frame) at `gfn`, moving it if it
    /// was placed elsewhere. RAM at `gfn` is given back first, as Xen does; another
    /// hypervisor page there is unhooked; a grant mapping or device memory there refuses
    /// with -EBUSY.
    pub fn place_special(&mut self, pool: &FramePool, gfn: u64, frame: PhysAddr, kind: PageKind) -> Result<(), Errno> {
        let key = PageKindKey::of(kind).ok_or(Errno::EINVAL)?;
        let at = gpa(gfn).ok_or(Errno::EINVAL)?;
        if at.0 >> A::Stage2::ipa_bits() != 0 {
            return Err(Errno::EINVAL);
        }
        if self.placed.get(&key) == Some(&gfn) {
            return Ok(());
        }
        match self.lookup(gfn).map(|l| l.kind) {
            None => {}
            Some(PageKind::Ram) => self.release_ram(pool, gfn)?,
            Some(PageKind::SharedInfo | PageKind::GrantFrame(_)) => self.remove_special(pool, gfn)?,
            Some(PageKind::Foreign { .. } | PageKind::Other | PageKind::ConsoleRing) => return Err(Errno::EBUSY),
        }
        if let Some(&old) = self.placed.get(&key) {
            self.remove_special(pool, old)?;
        }
        let p2m = self.p2m.as_mut().ok_or(Errno::EINVAL)?;
        p2m.map(pool, at, frame, PAGE_SIZE, Perms::RW, MemType::Normal).map_err(map_errno)?;
        self.special.insert(gfn, kind);
        self.placed.insert(key, gfn);
        self.forget_lookups();
        Ok(())
    }

    /// Where shared_info (`PageKind::SharedInfo`) or a grant frame is placed.
    pub fn placed(&self, kind: PageKind) -> Option<u64> {
        self.placed.get(&PageKindKey::of(kind)?).copied()
    }

    /// Removes a special page or grant mapping from `gfn` (the frame is not freed).
    pub fn remove_special(&mut self, pool: &FramePool, gfn: u64) -> Result<(), Errno> {
        let kind = *self.special.get(&gfn).ok_or(Errno::EINVAL)?;
        self.unmap_page(pool, gfn)?;
        self.special.remove(&gfn);
        if let Some(key) = PageKindKey::of(kind) {
            self.placed.remove(&key);
        }
        self.forget_lookups();
        Ok(())
    }

    /// Maps `pages` pages of static RAM from `frame` at `gfn` (all holes), read, write,
    /// execute, zeroed: RAM the domain owns by name (`xen,static-mem`), which the caller
    /// took out of the pool ([`FramePool::reserve`]) and which is never freed to it, not
    /// when the domain gives a page back nor at its destruction. Counts against
    /// `max_pages`. `-EBUSY` if a page is not a hole or a frame is claimed by a domain
    /// not yet torn down ([`FramePool::claim_reserved`]); all or nothing.
    pub fn map_static(&mut self, pool: &FramePool, gfn: u64, frame: PhysAddr, pages: u64) -> Result<(), Errno> {
        let end = gfn.checked_add(pages).ok_or(Errno::EINVAL)?;
        let at = gpa(gfn).ok_or(Errno::EINVAL)?;
        let size = pages.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
        gpa(end).ok_or(Errno::EINVAL)?;
        frame.0.checked_add(size).ok_or(Errno::EINVAL)?;
        if pages == 0 || !frame.0.is_multiple_of(PAGE_SIZE) || !pool.is_reserved(frame, size) {
            return Err(Errno::EINVAL);
        }
        if self.tot_pages().saturating_add(pages) > self.max_pages {
            return Err(Errno::ENOMEM);
        }
        if (gfn..end).any(|g| self.lookup(g).is_some()) {
            return Err(Errno::EBUSY);
        }
        let bytes = usize::try_from(size).map_err(|_| Errno::ENOMEM)?;
        let claim = Region::new(frame.0, size);
        if !pool.claim_reserved(claim) {
            return Err(Errno::EBUSY);
        }
        let p2m = self.p2m.as_mut().ok_or(Errno::EINVAL)?;
        if let Err(e) = p2m.map(pool, at, frame, size, Perms::RWX, MemType::Normal) {
            pool.unclaim_reserved(claim);
            return Err(map_errno(e));
        }
        A::Memory::zero(frame, bytes);
        self.statics.insert(frame.0 / PAGE_SIZE, pages);
        self.claims.push(claim);
        Ok(())
    }

    /// Maps `pages` pages of host device memory from `frame` at `gfn` (all holes) as
    /// device memory with `perms`: a frame the backend lends the guest (the GICv2
    /// virtual CPU interface) or a passed-through device. Such pages are never RAM and
    /// never hypercall memory. `-EBUSY` if a page is not a hole.
    pub fn map_device(
        &mut self,
        pool: &FramePool,
        gfn: u64,
        frame: PhysAddr,
        pages: u64,
        perms: Perms,
    ) -> Result<(), Errno> {
        let end = gfn.checked_add(pages).ok_or(Errno::EINVAL)?;
        let at = gpa(gfn).ok_or(Errno::EINVAL)?;
        let size = pages.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
        gpa(end).ok_or(Errno::EINVAL)?;
        if (gfn..end).any(|g| self.lookup(g).is_some()) {
            return Err(Errno::EBUSY);
        }
        let p2m = self.p2m.as_mut().ok_or(Errno::EINVAL)?;
        p2m.map(pool, at, frame, size, perms, MemType::Device).map_err(map_errno)?;
        for g in gfn..end {
            self.special.insert(g, PageKind::Other);
        }
        self.forget_lookups();
        Ok(())
    }

    /// Maps another domain's `frame` at `gfn`, which must be a hole.
    pub fn map_foreign(
        &mut self,
        pool: &FramePool,
        gfn: u64,
        frame: PhysAddr,
        writable: bool,
        handle: u32,
    ) -> Result<(), Errno> {
        let at = gpa(gfn).ok_or(Errno::EINVAL)?;
        let perms = if writable { Perms::RW } else { Perms::R };
        let p2m = self.p2m.as_mut().ok_or(Errno::EINVAL)?;
        p2m.map(pool, at, frame, PAGE_SIZE, perms, MemType::Normal).map_err(map_errno)?;
        self.special.insert(gfn, PageKind::Foreign { handle });
        self.forget_lookups();
        Ok(())
    }

    /// Removes the grant mapping `handle` from `gfn`; fails if `gfn` holds anything else.
    pub fn unmap_foreign(&mut self, pool: &FramePool, gfn: u64, handle: u32) -> Result<(), Errno> {
        match self.special.get(&gfn) {
            Some(&PageKind::Foreign { handle: h }) if h == handle => self.remove_special(pool, gfn),
            _ => Err(Errno::EINVAL),
        }
    }

    /// [`Memory::unmap_foreign`] without the TLB flush: `gfn` is a hole in the tables,
    /// but the domain's CPUs may still reach the foreign frame through cached
    /// translations until [`Memory::flush_tlb`]. The caller keeps the frame pinned (the
    /// granter's entry in use) until it has flushed.
    pub fn unmap_foreign_unflushed(&mut self, pool: &FramePool, gfn: u64, handle: u32) -> Result<(), Errno> {
        match self.special.get(&gfn) {
            Some(&PageKind::Foreign { handle: h }) if h == handle => {
                let p2m = self.p2m.as_mut().ok_or(Errno::EINVAL)?;
                p2m.unmap_unflushed(pool, gpa(gfn).ok_or(Errno::EINVAL)?, PAGE_SIZE).map_err(map_errno)?;
                self.special.remove(&gfn);
                self.forget_lookups();
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Makes every CPU forget the domain's cached guest-physical translations.
    pub fn flush_tlb(&self) {
        if let Some(p2m) = &self.p2m {
            p2m.flush();
        }
    }

    /// Pins the RAM page at `gfn` so it is not freed while the hypervisor uses it (event
    /// array, control block, vcpu_info, granted frame). Returns the host frame.
    pub fn pin_ram(&mut self, gfn: u64) -> Result<PhysAddr, Errno> {
        match self.lookup(gfn) {
            Some(Lookup { frame, perms, kind: PageKind::Ram }) if perms.write => {
                *self.pins.entry(frame.0 / PAGE_SIZE).or_insert(0) += 1;
                Ok(frame)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Drops a pin taken with [`Memory::pin_ram`].
    pub fn unpin(&mut self, pool: &FramePool, frame: PhysAddr) {
        let pfn = frame.0 / PAGE_SIZE;
        let Some(n) = self.pins.get_mut(&pfn) else { return };
        *n -= 1;
        if *n == 0 {
            self.pins.remove(&pfn);
            if self.released.remove(&pfn) {
                pool.free(PhysAddr(pfn * PAGE_SIZE), 1);
            }
        }
    }

    /// Frees every frame and translation table (domain destruction, once nothing refers
    /// to the domain any more).
    pub fn teardown(&mut self, pool: &FramePool) {
        if let Some(p2m) = self.p2m.take() {
            p2m.destroy(pool);
        }
        self.ram.free_all(pool);
        self.statics = FrameSet::new();
        for r in core::mem::take(&mut self.claims) {
            pool.unclaim_reserved(r);
        }
        for pfn in core::mem::take(&mut self.released) {
            free_run(pool, pfn, pfn + 1);
        }
        self.pins.clear();
        self.special.clear();
        self.placed.clear();
        self.forget_lookups();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::Region;
    use crate::mock::MockArch;
    use proptest::prelude::*;

    const BASE: u64 = 0x4_0000;
    const SPAN: u64 = 16;

    /// What a test does to the P2M of a domain.
    #[derive(Clone, Copy, Debug)]
    enum Change {
        Populate(u64),
        Release(u64),
        PlaceSharedInfo(u64),
        RemoveSpecial(u64),
        MapForeign(u64),
        UnmapForeign(u64),
        UnmapForeignUnflushed(u64),
        Look(u64),
    }

    fn change() -> impl Strategy<Value = Change> {
        let g = 0..SPAN;
        prop_oneof![
            g.clone().prop_map(Change::Populate),
            g.clone().prop_map(Change::Release),
            g.clone().prop_map(Change::PlaceSharedInfo),
            g.clone().prop_map(Change::RemoveSpecial),
            g.clone().prop_map(Change::MapForeign),
            g.clone().prop_map(Change::UnmapForeign),
            g.clone().prop_map(Change::UnmapForeignUnflushed),
            g.prop_map(Change::Look),
        ]
    }

    proptest! {
        /// Whatever the P2M goes through (RAM populated and given back, shared_info placed
        /// and moved, grant mappings made and removed, one by one or in a batch flushed
        /// once), a remembered translation is never
        /// used once it is stale: after every change and every lookup, `lookup` answers
        /// what a walk of the tables answers, for every frame.
        #[test]
        fn a_remembered_translation_is_never_stale(changes in proptest::collection::vec(change(), 1..60)) {
            let pool = FramePool::new();
            pool.add(Region::new(0x8000_0000, 16 << 20));
            let mut m = Memory::<MockArch>::new(&pool, SpaceId(1), 64).unwrap();
            let shared = pool.alloc(1).unwrap();
            let foreign = pool.alloc(1).unwrap();
            for c in changes {
                let _ = match c {
                    Change::Populate(g) => m.populate(&pool, BASE + g, 1),
                    Change::Release(g) => m.release_ram(&pool, BASE + g),
                    Change::PlaceSharedInfo(g) => m.place_special(&pool, BASE + g, shared, PageKind::SharedInfo),
                    Change::RemoveSpecial(g) => m.remove_special(&pool, BASE + g),
                    Change::MapForeign(g) if m.lookup(BASE + g).is_none() => {
                        m.map_foreign(&pool, BASE + g, foreign, g % 2 == 0, 7)
                    }
                    Change::MapForeign(_) => Ok(()),
                    Change::UnmapForeign(g) => m.unmap_foreign(&pool, BASE + g, 7),
                    Change::UnmapForeignUnflushed(g) => {
                        let r = m.unmap_foreign_unflushed(&pool, BASE + g, 7);
                        m.flush_tlb();
                        r
                    }
                    Change::Look(g) => {
                        let _ = m.lookup(BASE + g);
                        Ok(())
                    }
                };
                for g in BASE..BASE + SPAN {
                    prop_assert_eq!(m.lookup(g), m.walk(g), "gfn {:#x} after {:?}", g, c);
                }
            }
            m.teardown(&pool);
            prop_assert_eq!(m.lookup(BASE), None);
        }
    }
}

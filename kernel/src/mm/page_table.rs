//! Guest-physical translation tables, walked by portable code.
//!
//! The backend supplies the entry encoding and TLB upkeep ([`Stage2`]); this module
//! decides the shape: 4 KiB tables, the largest block that fits, splitting a block
//! (break-before-make) when part of it is unmapped, freeing tables on teardown.

use super::{FramePool, GuestPhysAddr, PhysAddr, PAGE_BYTES, PAGE_SIZE};
use crate::arch::{Arch, Entry, HostMemory, MemType, Perms, SpaceId, Stage2};
use core::marker::PhantomData;

/// Why a mapping request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No frame left for a translation table.
    NoMemory,
    /// An address or size is not a multiple of 4 KiB, or the size is zero.
    Misaligned,
    /// The range leaves the guest-physical address space.
    OutOfRange,
    /// Part of the range is already mapped.
    AlreadyMapped,
}

/// One guest's guest-physical address space.
pub struct PageTable<A: Arch> {
    root: PhysAddr,
    space: SpaceId,
    tables: usize,
    _arch: PhantomData<A>,
}

const ENTRIES: u64 = 512;

fn shift<A: Arch>(level: usize) -> u32 {
    12 + 9 * u32::try_from(A::Stage2::levels() - 1 - level).unwrap_or(0)
}

fn index<A: Arch>(gpa: u64, level: usize) -> u64 {
    (gpa >> shift::<A>(level)) & (ENTRIES - 1)
}

fn slot(table: PhysAddr, idx: u64) -> PhysAddr {
    PhysAddr(table.0 + idx * 8)
}

/// What `gpa` maps to in the tables rooted at `root`: host-physical address, rights, type.
pub fn translate<A: Arch>(root: PhysAddr, gpa: GuestPhysAddr) -> Option<(PhysAddr, Perms, MemType)> {
    if gpa.0 >> A::Stage2::ipa_bits() != 0 {
        return None;
    }
    match find::<A>(root, gpa.0)? {
        (_, level, Entry::Leaf { pa, perms, mem }) => {
            let mask = (1u64 << shift::<A>(level)) - 1;
            Some((PhysAddr(pa.0 + (gpa.0 & mask)), perms, mem))
        }
        _ => None,
    }
}

/// The leaf mapping `gpa`: its table, level and decoded entry.
fn find<A: Arch>(root: PhysAddr, gpa: u64) -> Option<(PhysAddr, usize, Entry)> {
    let mut table = root;
    for level in 0..A::Stage2::levels() {
        let raw = A::Memory::load_u64(slot(table, index::<A>(gpa, level)));
        match A::Stage2::decode(raw, level) {
            Entry::Invalid => return None,
            Entry::Table(next) => table = next,
            leaf => return Some((table, level, leaf)),
        }
    }
    None
}

impl<A: Arch> PageTable<A> {
    /// An empty address space tagged `space` for the TLB.
    pub fn new(pool: &FramePool, space: SpaceId) -> Result<Self, MapError> {
        let root = pool.alloc(1).ok_or(MapError::NoMemory)?;
        A::Memory::zero(root, PAGE_BYTES);
        Ok(PageTable { root, space, tables: 1, _arch: PhantomData })
    }

    /// The root table, for the backend's translation-base register.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    pub fn space(&self) -> SpaceId {
        self.space
    }

    /// Number of translation-table frames in use.
    pub fn table_count(&self) -> usize {
        self.tables
    }

    /// Maps `[gpa, gpa + size)` to `[pa, pa + size)`. Nothing in the range may be mapped.
    pub fn map(
        &mut self,
        pool: &FramePool,
        gpa: GuestPhysAddr,
        pa: PhysAddr,
        size: u64,
        perms: Perms,
        mem: MemType,
    ) -> Result<(), MapError> {
        self.check_range(gpa, size)?;
        if !pa.is_aligned(PAGE_SIZE) || pa.checked_add(size).is_none() {
            return Err(MapError::Misaligned);
        }
        if self.any_mapped(gpa.0, size) {
            return Err(MapError::AlreadyMapped);
        }
        let mut off = 0;
        while off < size {
            let (g, p) = (gpa.0 + off, pa.0 + off);
            let level = self.leaf_level(g, p, size - off);
            let table = self.walk_create(pool, g, level)?;
            let s = slot(table, index::<A>(g, level));
            if let Entry::Table(empty) = A::Stage2::decode(A::Memory::load_u64(s), level) {
                // A table emptied by earlier unmaps sits where the block goes: retire it.
                A::Memory::store_u64(s, 0);
                A::Stage2::flush(self.space);
                self.free_table(pool, empty, level + 1);
            }
            A::Memory::store_u64(s, A::Stage2::leaf_entry(level, PhysAddr(p), perms, mem));
            off += 1 << shift::<A>(level);
        }
        Ok(())
    }

    /// Removes every mapping in `[gpa, gpa + size)`, splitting blocks that straddle the
    /// ends, and flushes the address space's TLB entries.
    pub fn unmap(&mut self, pool: &FramePool, gpa: GuestPhysAddr, size: u64) -> Result<(), MapError> {
        let result = self.unmap_unflushed(pool, gpa, size);
        self.flush();
        result
    }

    /// [`PageTable::unmap`] without its final TLB flush: the entries are gone from the
    /// tables, but CPUs may still use cached translations of them until the caller's
    /// [`PageTable::flush`]. For batches that clear many entries and flush once; nothing
    /// the old translations reached may be freed or reused before that flush.
    pub fn unmap_unflushed(&mut self, pool: &FramePool, gpa: GuestPhysAddr, size: u64) -> Result<(), MapError> {
        self.check_range(gpa, size)?;
        let end = gpa.0 + size;
        let mut g = gpa.0;
        let mut result = Ok(());
        while g < end {
            match self.find(g) {
                None => g = self.next_boundary_of_hole(g),
                Some((table, level, Entry::Leaf { pa, perms, mem })) => {
                    let block = 1u64 << shift::<A>(level);
                    let base = g & !(block - 1);
                    if base < gpa.0 || base + block > end {
                        // A block straddles an end: split it into the next level first.
                        if let Err(e) = self.split(pool, table, level, base, pa, perms, mem) {
                            result = Err(e);
                            break;
                        }
                        continue;
                    }
                    A::Memory::store_u64(slot(table, index::<A>(g, level)), 0);
                    g = base + block;
                }
                Some(_) => unreachable!("find returns leaves only"),
            }
        }
        result
    }

    /// Makes every CPU forget this address space's cached translations.
    pub fn flush(&self) {
        A::Stage2::flush(self.space);
    }

    /// The host-physical address, rights and type that `gpa` maps to.
    pub fn translate(&self, gpa: GuestPhysAddr) -> Option<(PhysAddr, Perms, MemType)> {
        translate::<A>(self.root, gpa)
    }

    /// Frees every translation table. The mapped memory itself is the caller's.
    pub fn destroy(mut self, pool: &FramePool) {
        A::Stage2::flush(self.space);
        self.free_table(pool, self.root, 0);
    }

    fn free_table(&mut self, pool: &FramePool, table: PhysAddr, level: usize) {
        if level + 1 < A::Stage2::levels() {
            for i in 0..ENTRIES {
                if let Entry::Table(next) = A::Stage2::decode(A::Memory::load_u64(slot(table, i)), level) {
                    self.free_table(pool, next, level + 1);
                }
            }
        }
        pool.free(table, 1);
        self.tables -= 1;
    }

    fn check_range(&self, gpa: GuestPhysAddr, size: u64) -> Result<(), MapError> {
        if size == 0 || !gpa.is_aligned(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned);
        }
        match gpa.0.checked_add(size) {
            Some(end) if end <= 1u64 << A::Stage2::ipa_bits() => Ok(()),
            _ => Err(MapError::OutOfRange),
        }
    }

    /// The coarsest level whose block is aligned at both `gpa` and `pa` and fits `left`.
    fn leaf_level(&self, gpa: u64, pa: u64, left: u64) -> usize {
        let last = A::Stage2::levels() - 1;
        (0..last)
            .find(|&l| {
                let block = 1u64 << shift::<A>(l);
                A::Stage2::block_allowed(l) && gpa.is_multiple_of(block) && pa.is_multiple_of(block) && left >= block
            })
            .unwrap_or(last)
    }

    fn find(&self, gpa: u64) -> Option<(PhysAddr, usize, Entry)> {
        find::<A>(self.root, gpa)
    }

    /// The first address after `gpa` that might be mapped, skipping the whole hole.
    fn next_boundary_of_hole(&self, gpa: u64) -> u64 {
        let mut table = self.root;
        for level in 0..A::Stage2::levels() {
            let raw = A::Memory::load_u64(slot(table, index::<A>(gpa, level)));
            match A::Stage2::decode(raw, level) {
                Entry::Table(next) => table = next,
                _ => {
                    let block = 1u64 << shift::<A>(level);
                    return (gpa & !(block - 1)).saturating_add(block);
                }
            }
        }
        gpa + PAGE_SIZE
    }

    fn any_mapped(&self, start: u64, size: u64) -> bool {
        let end = start + size;
        let mut g = start;
        while g < end {
            if self.find(g).is_some() {
                return true;
            }
            g = self.next_boundary_of_hole(g);
        }
        false
    }

    /// The table at `level` covering `gpa`, creating intermediate tables as needed.
    fn walk_create(&mut self, pool: &FramePool, gpa: u64, level: usize) -> Result<PhysAddr, MapError> {
        let mut table = self.root;
        for l in 0..level {
            let s = slot(table, index::<A>(gpa, l));
            table = match A::Stage2::decode(A::Memory::load_u64(s), l) {
                Entry::Table(next) => next,
                Entry::Invalid => {
                    let next = pool.alloc(1).ok_or(MapError::NoMemory)?;
                    A::Memory::zero(next, PAGE_BYTES);
                    self.tables += 1;
                    A::Memory::store_u64(s, A::Stage2::table_entry(next));
                    next
                }
                Entry::Leaf { .. } => return Err(MapError::AlreadyMapped),
            };
        }
        Ok(table)
    }

    /// Replaces the block at (`table`, `level`) covering `base` with a next-level table
    /// mapping the same memory, using break-before-make.
    #[allow(clippy::too_many_arguments)]
    fn split(
        &mut self,
        pool: &FramePool,
        table: PhysAddr,
        level: usize,
        base: u64,
        pa: PhysAddr,
        perms: Perms,
        mem: MemType,
    ) -> Result<(), MapError> {
        let next = pool.alloc(1).ok_or(MapError::NoMemory)?;
        self.tables += 1;
        let step = 1u64 << shift::<A>(level + 1);
        for i in 0..ENTRIES {
            let raw = A::Stage2::leaf_entry(level + 1, PhysAddr(pa.0 + i * step), perms, mem);
            A::Memory::store_u64(slot(next, i), raw);
        }
        let s = slot(table, index::<A>(base, level));
        A::Memory::store_u64(s, 0);
        A::Stage2::flush(self.space);
        A::Memory::store_u64(s, A::Stage2::table_entry(next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::Region;
    use crate::mock::MockArch;
    use proptest::prelude::*;

    const MIB: u64 = 1 << 20;

    fn pool() -> FramePool {
        let p = FramePool::new();
        p.add(Region::new(0x8000_0000, 64 * MIB));
        p
    }

    #[test]
    fn maps_pages_and_blocks() {
        let pool = pool();
        let mut pt = PageTable::<MockArch>::new(&pool, SpaceId(1)).unwrap();
        // 2 MiB-aligned on both sides: one block, no last-level table.
        pt.map(&pool, GuestPhysAddr(0x4000_0000), PhysAddr(0x1_0000_0000), 2 * MIB, Perms::RWX, MemType::Normal)
            .unwrap();
        assert_eq!(pt.table_count(), 3);
        assert_eq!(
            pt.translate(GuestPhysAddr(0x4012_3456)),
            Some((PhysAddr(0x1_0012_3456), Perms::RWX, MemType::Normal))
        );
        pt.map(&pool, GuestPhysAddr(0x900_0000), PhysAddr(0x900_0000), PAGE_SIZE, Perms::RW, MemType::Device).unwrap();
        assert_eq!(pt.translate(GuestPhysAddr(0x900_0004)), Some((PhysAddr(0x900_0004), Perms::RW, MemType::Device)));
        assert_eq!(pt.translate(GuestPhysAddr(0x900_1000)), None);
        assert_eq!(
            pt.map(&pool, GuestPhysAddr(0x4010_0000), PhysAddr(0), PAGE_SIZE, Perms::R, MemType::Normal),
            Err(MapError::AlreadyMapped)
        );
        pt.destroy(&pool);
        assert_eq!(pool.stats().allocated, 0);
    }

    #[test]
    fn unmap_splits_a_block() {
        let pool = pool();
        let mut pt = PageTable::<MockArch>::new(&pool, SpaceId(1)).unwrap();
        pt.map(&pool, GuestPhysAddr(0x20_0000), PhysAddr(0x40_0000), 2 * MIB, Perms::RW, MemType::Normal).unwrap();
        pt.unmap(&pool, GuestPhysAddr(0x20_1000), PAGE_SIZE).unwrap();
        assert_eq!(pt.translate(GuestPhysAddr(0x20_1000)), None);
        assert_eq!(pt.translate(GuestPhysAddr(0x20_2000)), Some((PhysAddr(0x40_2000), Perms::RW, MemType::Normal)));
        assert_eq!(pt.translate(GuestPhysAddr(0x20_0fff)), Some((PhysAddr(0x40_0fff), Perms::RW, MemType::Normal)));
        pt.destroy(&pool);
        assert_eq!(pool.stats().allocated, 0);
    }

    #[test]
    fn rejects_bad_ranges() {
        let pool = pool();
        let mut pt = PageTable::<MockArch>::new(&pool, SpaceId(1)).unwrap();
        let top = 1u64 << <MockArch as Arch>::Stage2::ipa_bits();
        let n = MemType::Normal;
        assert_eq!(
            pt.map(&pool, GuestPhysAddr(0x1001), PhysAddr(0), PAGE_SIZE, Perms::R, n),
            Err(MapError::Misaligned)
        );
        assert_eq!(pt.map(&pool, GuestPhysAddr(0), PhysAddr(0), 0, Perms::R, n), Err(MapError::Misaligned));
        assert_eq!(pt.map(&pool, GuestPhysAddr(top), PhysAddr(0), PAGE_SIZE, Perms::R, n), Err(MapError::OutOfRange));
        assert_eq!(
            pt.map(&pool, GuestPhysAddr(top - PAGE_SIZE), PhysAddr(0), 2 * PAGE_SIZE, Perms::R, n),
            Err(MapError::OutOfRange)
        );
        assert_eq!(pt.unmap(&pool, GuestPhysAddr(!0xfff), PAGE_SIZE), Err(MapError::OutOfRange));
        pt.destroy(&pool);
    }

    proptest! {
        /// Random map/unmap sequences agree with a page-granular model, and teardown frees
        /// every table.
        #[test]
        fn agrees_with_a_model(ops in proptest::collection::vec((any::<bool>(), 0u64..1024, 1u64..600), 1..24)) {
            let pool = pool();
            let mut pt = PageTable::<MockArch>::new(&pool, SpaceId(1)).unwrap();
            let mut model = alloc::collections::BTreeMap::new();
            for (map, page, len) in ops {
                let gpa = GuestPhysAddr(page * PAGE_SIZE);
                let size = len * PAGE_SIZE;
                if map {
                    let pa = PhysAddr(0x10_0000_0000 + page * PAGE_SIZE);
                    let free = (page..page + len).all(|p| !model.contains_key(&p));
                    let r = pt.map(&pool, gpa, pa, size, Perms::RW, MemType::Normal);
                    prop_assert_eq!(r.is_ok(), free);
                    if free { for p in page..page + len { model.insert(p, 0x10_0000_0000 + p * PAGE_SIZE); } }
                } else {
                    pt.unmap(&pool, gpa, size).unwrap();
                    for p in page..page + len { model.remove(&p); }
                }
            }
            for p in 0..1700u64 {
                let got = pt.translate(GuestPhysAddr(p * PAGE_SIZE)).map(|(pa, _, _)| pa.0);
                prop_assert_eq!(got, model.get(&p).copied(), "page {}", p);
            }
            pt.destroy(&pool);
            prop_assert_eq!(pool.stats().allocated, 0);
        }
    }
}

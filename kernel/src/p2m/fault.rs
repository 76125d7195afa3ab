//! A stage-2 fault answered at the P2M ([`VmExit::StageFault`](crate::arch::VmExit)):
//! whether the page the guest touched is mapped for that access now.
//!
//! The hardware walks the tables while Keel changes them: replacing a block by a table
//! (a page of it ballooned out, a grant mapped there) goes through break-before-make, and
//! another vCPU of the domain touching any page of the block in that window faults,
//! although the page is RAM before and after. Every change of the tables holds the
//! domain's memory lock, so [`Memory::maps_for`], called with that lock held, sees the
//! tables before or after a change, never in its window: mapped for the access then means
//! the fault raced a change and the access is executed again (no retry count: a
//! page that stays unmapped is a hole at the first look, and the guest gets what the
//! architecture gives for a hole).

use super::{Lookup, Memory};
use crate::arch::{Arch, MemoryAccess};
use crate::mm::{GuestPhysAddr, PAGE_SIZE};

/// Whether a translation with `perms` allows `access`.
fn allows(lookup: &Lookup, access: MemoryAccess) -> bool {
    match access {
        MemoryAccess::Read => lookup.perms.read,
        MemoryAccess::Write => lookup.perms.write,
        MemoryAccess::Execute => lookup.perms.execute,
    }
}

impl<A: Arch> Memory<A> {
    /// Whether guest-physical `gpa` is mapped for `access` (the caller holds the domain's
    /// memory lock, as for every method here).
    pub fn maps_for(&self, gpa: GuestPhysAddr, access: MemoryAccess) -> bool {
        self.lookup(gpa.0 / PAGE_SIZE).is_some_and(|l| allows(&l, access))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::SpaceId;
    use crate::mm::{FramePool, Region};
    use crate::mock::MockArch;
    use proptest::prelude::*;

    const BLOCK_PAGES: u64 = 512;
    /// A 2 MiB-aligned guest frame: populating 512 pages there maps one block.
    const BASE: u64 = 0x4_0000;

    fn pool() -> FramePool {
        let p = FramePool::new();
        p.add(Region::new(0x8000_0000, 16 << 20));
        p
    }

    fn at(gfn: u64) -> GuestPhysAddr {
        GuestPhysAddr(gfn * PAGE_SIZE)
    }

    #[test]
    fn a_hole_and_a_right_the_page_lacks_are_not_mapped() {
        let pool = pool();
        let mut m = Memory::<MockArch>::new(&pool, SpaceId(1), 1024).unwrap();
        m.populate(&pool, BASE, BLOCK_PAGES).unwrap();
        assert!(m.maps_for(at(BASE + 3), MemoryAccess::Write));
        assert!(!m.maps_for(at(BASE + BLOCK_PAGES), MemoryAccess::Read), "past the RAM: a hole");
        let frame = pool.alloc(1).unwrap();
        m.map_foreign(&pool, BASE + 2 * BLOCK_PAGES, frame, false, 7).unwrap();
        assert!(m.maps_for(at(BASE + 2 * BLOCK_PAGES), MemoryAccess::Read));
        assert!(!m.maps_for(at(BASE + 2 * BLOCK_PAGES), MemoryAccess::Write), "a read-only grant mapping");
        assert!(!m.maps_for(at(BASE + 2 * BLOCK_PAGES), MemoryAccess::Execute));
        assert!(!m.maps_for(GuestPhysAddr(u64::MAX), MemoryAccess::Read), "beyond the address space");
        m.teardown(&pool);
        pool.free(frame, 1);
    }

    proptest! {
        /// Pages of a block given back and populated again in any order (each release of
        /// a page in a block splits it): after every change, every page of the block is
        /// mapped exactly while the domain owns it, so a fault on a page it owns is
        /// executed again and one on a page it gave back is a hole.
        #[test]
        fn after_any_split_owned_pages_are_mapped_and_released_ones_are_holes(
            steps in proptest::collection::vec((0u64..BLOCK_PAGES, any::<bool>()), 1..40)
        ) {
            let pool = pool();
            let mut m = Memory::<MockArch>::new(&pool, SpaceId(1), 2 * BLOCK_PAGES).unwrap();
            m.populate(&pool, BASE, BLOCK_PAGES).unwrap();
            let mut owned = [true; BLOCK_PAGES as usize];
            for (page, release) in steps {
                let gfn = BASE + page;
                let slot = &mut owned[usize::try_from(page).unwrap()];
                if release && *slot {
                    m.release_ram(&pool, gfn).unwrap();
                    *slot = false;
                } else if !release && !*slot {
                    m.populate(&pool, gfn, 1).unwrap();
                    *slot = true;
                }
                for (p, &own) in owned.iter().enumerate() {
                    let gpa = at(BASE + p as u64);
                    prop_assert_eq!(m.maps_for(gpa, MemoryAccess::Read), own);
                    prop_assert_eq!(m.maps_for(gpa, MemoryAccess::Write), own);
                }
            }
            m.teardown(&pool);
        }
    }
}

//! Remembered walks of a guest's page tables (hypercall arguments are guest-virtual on
//! PVH/HVM): each holds the paging registers, page and access it was made for, the
//! stage-2 generation it was made in, and every table entry it read, by where the entry
//! lives in host memory and the value it had.
//!
//! **Why a hit is never stale.** A walk is a function of the paging registers, the
//! virtual address, the access and the values of the entries it reads; each entry's
//! guest-physical address follows from the registers and the entries read before it. A
//! hit needs the same registers, page and access, the same stage-2 generation (so each
//! entry's guest-physical address still maps to the host location remembered: every
//! change of a domain's EPT/NPT advances the generation before the old frame can go
//! elsewhere), and every remembered entry to read back with the value the walk saw:
//! then a new walk would read exactly those entries and find exactly that result. The
//! guest may rewrite its tables at any time without an exit (no INVLPG or CR3 intercept
//! is needed): an entry it changed no longer reads back, and the walk is made again.
//! Property test: `tests::a_remembered_walk_is_never_stale`.

use super::{translate, Access, Paging, ReadEntry};
use core::cell::Cell;

/// Where table entries are, for [`WalkCache`]: host locations of guest-physical
/// addresses and loads from them.
pub trait EntryMemory {
    /// A host location of an entry (a page handle and an offset).
    type Location: Copy;
    /// The stage-2 generation now (see the module documentation).
    fn generation(&self) -> u64;
    /// The host location of the entry at guest-physical `gpa`, if the domain's stage 2
    /// maps it as readable memory.
    fn locate(&self, gpa: u64) -> Option<Self::Location>;
    /// The `size`-byte (4 or 8) entry at `at`, loaded atomically.
    fn load(&self, at: Self::Location, size: usize) -> u64;
}

/// The most entries one walk reads (5-level paging).
const DEPTH: usize = 5;
/// Walks remembered per vCPU.
const WALKS: usize = 4;

/// What a walk was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    paging: Paging,
    page: u64,
    access: Access,
    generation: u64,
}

/// One remembered walk.
#[derive(Clone, Copy)]
struct Walk<L: Copy> {
    key: Key,
    /// The entries read, in order: where, how wide, what value.
    entries: [Option<(L, usize, u64)>; DEPTH],
    /// The guest-physical page the walk found.
    gpa_page: u64,
}

/// A vCPU's remembered walks (interior mutability: the core's translation callback
/// takes `&self`).
pub struct WalkCache<L: Copy> {
    walks: [Cell<Option<Walk<L>>>; WALKS],
    next: Cell<usize>,
}

impl<L: Copy> Default for WalkCache<L> {
    fn default() -> Self {
        WalkCache { walks: core::array::from_fn(|_| Cell::new(None)), next: Cell::new(0) }
    }
}

impl<L: Copy> WalkCache<L> {
    /// The guest-physical address of `va` for `access`: what [`translate`] finds
    /// through `mem`, from a remembered walk when its entries still read back.
    pub fn translate<M: EntryMemory<Location = L>>(&self, p: &Paging, va: u64, access: Access, mem: &M) -> Option<u64> {
        let generation = mem.generation();
        let key = Key { paging: *p, page: va >> 12, access, generation };
        for slot in &self.walks {
            let Some(w) = slot.get() else { continue };
            if w.key == key && w.entries.iter().flatten().all(|&(at, size, value)| mem.load(at, size) == value) {
                return Some(w.gpa_page | (va & 0xfff));
            }
        }
        let mut entries = [None; DEPTH];
        let mut count = 0;
        let mut complete = true;
        let mut read = |gpa: u64, size: usize| {
            let at = mem.locate(gpa)?;
            let value = mem.load(at, size);
            match entries.get_mut(count) {
                Some(e) => *e = Some((at, size, value)),
                None => complete = false,
            }
            count += 1;
            Some(value)
        };
        let read: &mut ReadEntry<'_> = &mut read;
        let gpa = translate(p, va, access, read)?;
        if complete {
            let i = self.next.get() % WALKS;
            self.walks[i].set(Some(Walk { key, entries, gpa_page: gpa & !0xfff }));
            self.next.set(i + 1);
        }
        Some(gpa)
    }

    /// Forgets every remembered walk.
    pub fn clear(&self) {
        for slot in &self.walks {
            slot.set(None);
        }
    }
}

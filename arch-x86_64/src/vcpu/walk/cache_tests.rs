//! The remembered walks against a fresh walk, under guest table writes (with no exit),
//! CR3 switches and stage-2 remaps.

use super::cache::{EntryMemory, WalkCache};
use super::{translate, Access, Paging};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

const PG: u64 = 1 << 31;
const PE: u64 = 1;
const WP: u64 = 1 << 16;
const PAE: u64 = 1 << 5;
const LMA: u64 = 1 << 10;
/// Guest-physical pages holding tables (and data).
const PAGES: u64 = 6;

/// Host memory by (host page, offset) in 4-byte words, and a stage 2 mapping
/// guest-physical pages to host pages. Host pages outlive their mapping (as a frame
/// keeps its old contents until reused), so a walk that trusted an old location without
/// the generation would read old entries.
struct Model {
    host: RefCell<HashMap<(u64, u64), u32>>,
    stage2: HashMap<u64, u64>,
    generation: u64,
}

impl Model {
    fn new() -> Self {
        Model { host: RefCell::new(HashMap::new()), stage2: (0..PAGES).map(|g| (g, g)).collect(), generation: 0 }
    }

    fn word(&self, host_page: u64, offset: u64) -> u32 {
        self.host.borrow().get(&(host_page, offset)).copied().unwrap_or(0)
    }

    fn write_entry(&mut self, gpa_page: u64, index: u64, value: u64) {
        let Some(&h) = self.stage2.get(&gpa_page) else { return };
        let mut host = self.host.borrow_mut();
        host.insert((h, index * 8), value as u32);
        host.insert((h, index * 8 + 4), (value >> 32) as u32);
    }

    /// Maps `gpa_page` to a new host page holding a copy of the old one's contents but
    /// `value` at `index` (a remap), advancing the generation.
    fn remap(&mut self, gpa_page: u64, index: u64, value: u64) {
        let Some(&old) = self.stage2.get(&gpa_page) else { return };
        let new = 100 + self.generation;
        let copy: Vec<_> =
            self.host.borrow().iter().filter(|((p, _), _)| *p == old).map(|((_, o), v)| (*o, *v)).collect();
        for (o, v) in copy {
            self.host.borrow_mut().insert((new, o), v);
        }
        self.stage2.insert(gpa_page, new);
        self.generation += 1;
        self.write_entry(gpa_page, index, value);
    }

    fn fresh(&self, p: &Paging, va: u64, access: Access) -> Option<u64> {
        let mut read = |gpa: u64, size: usize| {
            let at = self.locate(gpa)?;
            Some(self.load(at, size))
        };
        translate(p, va, access, &mut read)
    }
}

impl EntryMemory for Model {
    type Location = (u64, u64);

    fn generation(&self) -> u64 {
        self.generation
    }

    fn locate(&self, gpa: u64) -> Option<(u64, u64)> {
        self.stage2.get(&(gpa >> 12)).map(|&h| (h, gpa & 0xfff))
    }

    fn load(&self, (page, offset): (u64, u64), size: usize) -> u64 {
        let lo = u64::from(self.word(page, offset));
        if size == 4 {
            return lo;
        }
        lo | u64::from(self.word(page, offset + 4)) << 32
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// A guest write of a table entry (no exit).
    Write {
        page: u64,
        index: u64,
        value: u64,
    },
    /// A stage-2 change of the page holding a table, with the entry's new value.
    Remap {
        page: u64,
        index: u64,
        value: u64,
    },
    Cr3(u64),
    Mode(u8),
    Translate {
        va: u64,
        access: Access,
    },
}

/// Entries that point at the table pages (present or not, writable or not, large or
/// not), so walks go deep and often succeed.
fn entry() -> impl Strategy<Value = u64> {
    (0..PAGES, any::<bool>(), any::<bool>(), prop::bool::weighted(0.15), prop::bool::weighted(0.1)).prop_map(
        |(page, present, rw, large, nx)| {
            (page << 12) | u64::from(present) | u64::from(rw) << 1 | u64::from(large) << 7 | u64::from(nx) << 63
        },
    )
}

/// Virtual addresses whose table indices are 0 or 1 at every level.
fn va() -> impl Strategy<Value = u64> {
    (0..2u64, 0..2u64, 0..2u64, 0..2u64, 0..0x1000u64)
        .prop_map(|(a, b, c, d, off)| (a << 39) | (b << 30) | (c << 21) | (d << 12) | off)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..PAGES, 0..2u64, entry()).prop_map(|(page, index, value)| Step::Write { page, index, value }),
        1 => (0..PAGES, 0..2u64, entry()).prop_map(|(page, index, value)| Step::Remap { page, index, value }),
        1 => (0..PAGES).prop_map(|p| Step::Cr3(p << 12)),
        1 => (0..3u8).prop_map(Step::Mode),
        6 => (va(), prop::sample::select(vec![Access::Read, Access::Write, Access::Fetch]))
            .prop_map(|(va, access)| Step::Translate { va, access }),
    ]
}

fn paging(mode: u8, cr3: u64) -> Paging {
    match mode {
        0 => Paging { cr0: PE | PG | WP, cr3, cr4: PAE, efer: LMA | (1 << 11) },
        1 => Paging { cr0: PE | PG, cr3, cr4: PAE, efer: 0 },
        _ => Paging { cr0: PE, cr3, cr4: 0, efer: 0 },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Every translation the cache answers equals a fresh walk of the tables as they are
    /// now, whatever the guest wrote, remapped or switched to since the walk was
    /// remembered (it fails if a hit skips the entries' re-read or the generation).
    #[test]
    fn a_remembered_walk_is_never_stale(steps in proptest::collection::vec(step(), 1..80)) {
        let mut m = Model::new();
        let cache = WalkCache::default();
        let (mut mode, mut cr3) = (0u8, 0u64);
        for s in &steps {
            match *s {
                Step::Write { page, index, value } => m.write_entry(page, index, value),
                Step::Remap { page, index, value } => m.remap(page, index, value),
                Step::Cr3(c) => cr3 = c,
                Step::Mode(x) => mode = x,
                Step::Translate { va, access } => {
                    let p = paging(mode, cr3);
                    let want = m.fresh(&p, va, access);
                    let got = cache.translate(&p, va, access, &m);
                    prop_assert_eq!(got, want, "va {:#x} {:?} after {:?}", va, access, s);
                    // Again at once: a hit, which must agree too.
                    prop_assert_eq!(cache.translate(&p, va ^ 0x8, access, &m), m.fresh(&p, va ^ 0x8, access));
                }
            }
        }
    }
}

/// The cache does remember: the second translation of a page reads the entries back
/// but makes no new walk (no `locate`).
#[test]
fn a_second_translation_locates_nothing() {
    struct Counting<'a>(&'a Model, RefCell<u32>);
    impl EntryMemory for Counting<'_> {
        type Location = (u64, u64);
        fn generation(&self) -> u64 {
            self.0.generation()
        }
        fn locate(&self, gpa: u64) -> Option<(u64, u64)> {
            *self.1.borrow_mut() += 1;
            self.0.locate(gpa)
        }
        fn load(&self, at: (u64, u64), size: usize) -> u64 {
            self.0.load(at, size)
        }
    }
    let mut m = Model::new();
    for (page, next) in [(0u64, 1u64), (1, 2), (2, 3), (3, 4)] {
        m.write_entry(page, 0, (next << 12) | 3);
    }
    let p = paging(0, 0);
    let cache = WalkCache::default();
    let c = Counting(&m, RefCell::new(0));
    assert_eq!(cache.translate(&p, 0x123, Access::Write, &c), Some(0x4123));
    assert_eq!(*c.1.borrow(), 4);
    assert_eq!(cache.translate(&p, 0x456, Access::Write, &c), Some(0x4456));
    assert_eq!(*c.1.borrow(), 4);
    m.write_entry(3, 0, (5 << 12) | 3);
    assert_eq!(cache.translate(&p, 0x456, Access::Write, &m), Some(0x5456));
}

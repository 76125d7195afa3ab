use super::*;
use std::collections::HashMap;

/// Guest-physical memory holding page tables, as 4-byte words.
#[derive(Default)]
struct Mem(HashMap<u64, u32>);

impl Mem {
    fn put(&mut self, gpa: u64, v: u64, size: usize) {
        self.0.insert(gpa, v as u32);
        if size == 8 {
            self.0.insert(gpa + 4, (v >> 32) as u32);
        }
    }

    fn reader(&self) -> impl FnMut(u64, usize) -> Option<u64> + '_ {
        |gpa, size| {
            let lo = *self.0.get(&gpa)? as u64;
            if size == 4 {
                return Some(lo);
            }
            Some(lo | (*self.0.get(&(gpa + 4))? as u64) << 32)
        }
    }
}

const PG: u64 = 1 << 31;
const PE: u64 = 1;
const WP: u64 = 1 << 16;

fn t(p: &Paging, m: &Mem, va: u64, a: Access) -> Option<u64> {
    let mut r = m.reader();
    translate(p, va, a, &mut r)
}

#[test]
fn no_paging_is_identity() {
    let p = Paging { cr0: PE, ..Default::default() };
    assert_eq!(t(&p, &Mem::default(), 0x1234_5678, Access::Write), Some(0x1234_5678));
}

/// 4-level tables: va 0xffff_8000_0040_1234 → 4 KiB page at 0x7_7000 (read-only,
/// execute-disable); va 0x4020_0000 → 2 MiB page at 0x60_0000; va 0x8000_0000 → 1 GiB at
/// 0x1_0000_0000.
fn four_level_tables() -> Mem {
    let mut m = Mem::default();
    let (pml4, pdpt_hi, pd_hi, pt, pdpt_lo, pd_lo) = (0x1000u64, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000);
    let va = 0xffff_8000_0040_1234u64;
    m.put(pml4 + ((va >> 39) & 0x1ff) * 8, pdpt_hi | 3, 8);
    m.put(pdpt_hi + ((va >> 30) & 0x1ff) * 8, pd_hi | 3, 8);
    m.put(pd_hi + ((va >> 21) & 0x1ff) * 8, pt | 3, 8);
    m.put(pt + ((va >> 12) & 0x1ff) * 8, 0x7_7000 | 1 | 1 << 63, 8);
    m.put(pml4, pdpt_lo | 3, 8);
    m.put(pdpt_lo + 8, pd_lo | 3, 8);
    m.put(pd_lo + 8, 0x60_0000 | 0x83, 8);
    m.put(pdpt_lo + 16, 0x1_0000_0000 | 0x83, 8);
    m
}

#[test]
fn four_level_paging() {
    let m = four_level_tables();
    let p = Paging { cr0: PG | PE | WP, cr3: 0x1000, cr4: 1 << 5, efer: 1 << 8 | 1 << 10 | 1 << 11 };
    assert_eq!(t(&p, &m, 0xffff_8000_0040_1234, Access::Read), Some(0x7_7234));
    assert_eq!(t(&p, &m, 0xffff_8000_0040_1234, Access::Write), None, "read-only with CR0.WP");
    assert_eq!(t(&p, &m, 0xffff_8000_0040_1234, Access::Fetch), None, "execute-disable with EFER.NXE");
    let no_wp = Paging { cr0: PG | PE, efer: 1 << 10, ..p };
    assert_eq!(t(&no_wp, &m, 0xffff_8000_0040_1234, Access::Write), Some(0x7_7234));
    assert_eq!(t(&no_wp, &m, 0xffff_8000_0040_1234, Access::Fetch), Some(0x7_7234), "XD ignored without NXE");
    assert_eq!(t(&p, &m, 0x4023_4567, Access::Write), Some(0x63_4567), "2 MiB page");
    assert_eq!(t(&p, &m, 0x8765_4321, Access::Fetch), Some(0x1_0765_4321), "1 GiB page");
    assert_eq!(t(&p, &m, 0x0000_8000_0000_0000, Access::Read), None, "not canonical");
    assert_eq!(t(&p, &m, 0xffff_9000_0000_0000, Access::Read), None, "not mapped");
}

#[test]
fn pae_paging() {
    let mut m = Mem::default();
    // CR3 = 0x8020 (32-byte aligned); PDPTE 1 → PD at 0x9000; PDE 2 → PT at 0xa000.
    m.put(0x8020 + 8, 0x9000 | 1, 8);
    m.put(0x9000 + 2 * 8, 0xa000 | 3, 8);
    m.put(0xa000 + 5 * 8, 0x12_3000 | 3, 8);
    m.put(0x9000 + 3 * 8, 0x80_0000 | 0x81, 8);
    let p = Paging { cr0: PG | PE | WP, cr3: 0x8020, cr4: 1 << 5, efer: 0 };
    let va = (1u64 << 30) | (2 << 21) | (5 << 12) | 0x42;
    assert_eq!(t(&p, &m, va, Access::Write), Some(0x12_3042));
    assert_eq!(t(&p, &m, (1 << 30) | (3 << 21) | 0x1_2345, Access::Read), Some(0x81_2345), "2 MiB page");
    assert_eq!(t(&p, &m, (1 << 30) | (3 << 21), Access::Write), None, "read-only large page");
    assert_eq!(t(&p, &m, 2 << 30, Access::Read), None, "PDPTE not present");
}

#[test]
fn legacy_paging() {
    let mut m = Mem::default();
    m.put(0xb000 + 4, 0xc000 | 3, 4); // PDE 1 → PT
    m.put(0xc000 + 7 * 4, 0x33_3000 | 1, 4); // PTE 7, read-only
    m.put(0xb000 + 8, 0x0240_0000 | 0x83 | (0x5 << 13), 4); // PDE 2: 4 MiB page, PSE-36 bits
    let p = Paging { cr0: PG | PE | WP, cr3: 0xb000, cr4: 1 << 4, efer: 0 };
    let va = (1 << 22) | (7 << 12) | 0x99;
    assert_eq!(t(&p, &m, va, Access::Read), Some(0x33_3099));
    assert_eq!(t(&p, &m, va, Access::Write), None);
    assert_eq!(t(&p, &m, (2 << 22) | 0x12_3456, Access::Write), Some(0x5_0000_0000 | 0x0240_0000 | 0x12_3456));
    let no_pse = Paging { cr4: 0, ..p };
    assert_eq!(t(&no_pse, &m, 2 << 22, Access::Read), None, "PS ignored without CR4.PSE: a table at 0x2400000");
}

//! A software walk of a guest's own page tables (Intel SDM vol. 3, chapter 4): no
//! paging, 32-bit paging (4 KiB and 4 MiB pages), PAE paging and 4-level paging (4 KiB,
//! 2 MiB, 1 GiB pages), as the guest's CR0, CR4 and EFER select. Table entries are read
//! through a callback (the backend reads them through the domain's EPT/NPT), so this
//! file is pure and tested on the host.
//!
//! Accesses are the guest kernel's (supervisor): a write needs every level writable
//! when CR0.WP is set; a fetch needs no execute-disable bit when EFER.NXE is set.
//! Accessed and dirty bits are not set (a hypercall's copy is not a guest access).

pub mod cache;

const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const PS: u64 = 1 << 7;
const XD: u64 = 1 << 63;
/// Physical-address bits of an entry (MAXPHYADDR 52).
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;

/// The guest's paging registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paging {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

/// What the guest's tables must allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Fetch,
}

/// Reads a `size`-byte (4 or 8) little-endian table entry at a guest-physical address.
pub type ReadEntry<'a> = dyn FnMut(u64, usize) -> Option<u64> + 'a;

impl Paging {
    fn paging(&self) -> bool {
        self.cr0 & CR0_PG != 0
    }

    /// Whether the vCPU is in IA-32e mode (long mode active).
    pub fn long_mode(&self) -> bool {
        self.efer & EFER_LMA != 0
    }
}

/// Checks one level's rights; false if the access is refused.
fn allows(p: &Paging, entry: u64, access: Access) -> bool {
    match access {
        Access::Read => true,
        Access::Write => entry & RW != 0 || p.cr0 & CR0_WP == 0,
        Access::Fetch => entry & XD == 0 || p.efer & EFER_NXE == 0,
    }
}

/// The guest-physical address of `va` for `access`, or `None` if the guest's tables
/// do not map it so.
pub fn translate(p: &Paging, va: u64, access: Access, read: &mut ReadEntry<'_>) -> Option<u64> {
    if !p.paging() {
        return Some(va & 0xffff_ffff);
    }
    if p.long_mode() {
        four_level(p, va, access, read)
    } else if p.cr4 & CR4_PAE != 0 {
        pae(p, va & 0xffff_ffff, access, read)
    } else {
        legacy(p, va & 0xffff_ffff, access, read)
    }
}

/// Walks levels of 8-byte entries starting at `table`; `shifts` are the index shifts
/// from the top, and a large page is allowed where `large[i]` holds.
fn walk64(
    p: &Paging,
    va: u64,
    access: Access,
    mut table: u64,
    shifts: &[u32],
    large: &[bool],
    read: &mut ReadEntry<'_>,
) -> Option<u64> {
    for (i, &shift) in shifts.iter().enumerate() {
        let entry = read(table + ((va >> shift) & 0x1ff) * 8, 8)?;
        if entry & P == 0 || !allows(p, entry, access) {
            return None;
        }
        let last = i + 1 == shifts.len();
        if last || entry & PS != 0 {
            if !last && !large[i] {
                return None; // PS where no large page exists: a reserved bit
            }
            let mask = (1u64 << shift) - 1;
            return Some((entry & ADDRESS & !mask) | (va & mask));
        }
        table = entry & ADDRESS;
    }
    None
}

fn four_level(p: &Paging, va: u64, access: Access, read: &mut ReadEntry<'_>) -> Option<u64> {
    let la57 = p.cr4 & CR4_LA57 != 0;
    let bits = if la57 { 57 } else { 48 };
    let top = (va as i64) >> (bits - 1);
    if top != 0 && top != -1 {
        return None; // not canonical
    }
    let root = p.cr3 & ADDRESS;
    if la57 {
        walk64(p, va, access, root, &[48, 39, 30, 21, 12], &[false, false, true, true], read)
    } else {
        walk64(p, va, access, root, &[39, 30, 21, 12], &[false, true, true], read)
    }
}

fn pae(p: &Paging, va: u64, access: Access, read: &mut ReadEntry<'_>) -> Option<u64> {
    let pdpte = read((p.cr3 & 0xffff_ffe0) + ((va >> 30) & 3) * 8, 8)?;
    if pdpte & P == 0 {
        return None;
    }
    walk64(p, va, access, pdpte & ADDRESS, &[21, 12], &[true], read)
}

fn legacy(p: &Paging, va: u64, access: Access, read: &mut ReadEntry<'_>) -> Option<u64> {
    let pde = read((p.cr3 & 0xffff_f000) + (va >> 22) * 4, 4)?;
    if pde & P == 0 || !allows(p, pde & 0xffff_ffff, access) {
        return None;
    }
    if pde & PS != 0 && p.cr4 & CR4_PSE != 0 {
        // 4 MiB page; bits 20:13 hold physical-address bits 39:32 (PSE-36).
        let high = ((pde >> 13) & 0xff) << 32;
        return Some(high | (pde & 0xffc0_0000) | (va & 0x3f_ffff));
    }
    let pte = read((pde & 0xffff_f000) + ((va >> 12) & 0x3ff) * 4, 4)?;
    if pte & P == 0 || !allows(p, pte & 0xffff_ffff, access) {
        return None;
    }
    Some((pte & 0xffff_f000) | (va & 0xfff))
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod tests;

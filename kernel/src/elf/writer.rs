//! Builds small ELF images for tests: a header, program headers and the segments' bytes.

use alloc::vec;
use alloc::vec::Vec;

/// One segment to write: its type, physical and virtual address, file bytes and memory
/// size (at least the file size).
#[derive(Clone, Debug)]
pub struct Part {
    pub kind: u32,
    pub paddr: u64,
    pub vaddr: u64,
    pub data: Vec<u8>,
    pub memsz: u64,
}

impl Part {
    /// A loadable segment at `paddr` (virtual = physical).
    pub fn load(paddr: u64, data: &[u8], memsz: u64) -> Self {
        Part { kind: super::PT_LOAD, paddr, vaddr: paddr, data: data.into(), memsz: memsz.max(data.len() as u64) }
    }

    /// A note segment holding one note.
    pub fn note(owner: &str, kind: u32, desc: &[u8]) -> Self {
        let data = note_bytes(owner, kind, desc);
        let memsz = data.len() as u64;
        Part { kind: super::PT_NOTE, paddr: 0, vaddr: 0, data, memsz }
    }
}

/// An address in an ELF32 field: its low half, as a 32-bit image sees a sign-extended
/// (or any) 64-bit address.
fn low32(v: u64) -> u32 {
    (v & 0xffff_ffff) as u32
}

/// `v` in a narrower ELF field; a fixture that does not fit its format is a test bug.
fn field<T: TryFrom<U>, U: Copy + core::fmt::Debug>(v: U) -> T {
    T::try_from(v).unwrap_or_else(|_| panic!("{v:?} does not fit its ELF field"))
}

/// The bytes of one note (name NUL-terminated, both fields padded to 4 bytes).
pub fn note_bytes(owner: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&field::<u32, _>(owner.len() + 1).to_le_bytes());
    out.extend_from_slice(&field::<u32, _>(desc.len()).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(owner.as_bytes());
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(desc);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// An executable ELF file (64-bit if `wide`) for `machine` with `parts`.
pub fn image(wide: bool, machine: u16, entry: u64, parts: &[Part]) -> Vec<u8> {
    let (ehsize, phentsize) = if wide { (64usize, 56usize) } else { (52, 32) };
    let mut offset = ehsize + phentsize * parts.len();
    let mut out = vec![0u8; offset];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = if wide { 2 } else { 1 };
    out[5] = 1;
    out[6] = 1;
    out[16..18].copy_from_slice(&2u16.to_le_bytes());
    out[18..20].copy_from_slice(&machine.to_le_bytes());
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    if wide {
        out[24..32].copy_from_slice(&entry.to_le_bytes());
        out[32..40].copy_from_slice(&(ehsize as u64).to_le_bytes());
        out[52..54].copy_from_slice(&field::<u16, _>(ehsize).to_le_bytes());
        out[54..56].copy_from_slice(&field::<u16, _>(phentsize).to_le_bytes());
        out[56..58].copy_from_slice(&field::<u16, _>(parts.len()).to_le_bytes());
    } else {
        out[24..28].copy_from_slice(&low32(entry).to_le_bytes());
        out[28..32].copy_from_slice(&field::<u32, _>(ehsize).to_le_bytes());
        out[40..42].copy_from_slice(&field::<u16, _>(ehsize).to_le_bytes());
        out[42..44].copy_from_slice(&field::<u16, _>(phentsize).to_le_bytes());
        out[44..46].copy_from_slice(&field::<u16, _>(parts.len()).to_le_bytes());
    }
    for (i, p) in parts.iter().enumerate() {
        let at = ehsize + i * phentsize;
        let h = &mut out[at..at + phentsize];
        let (filesz, flags) = (p.data.len() as u64, 5u32);
        if wide {
            h[0..4].copy_from_slice(&p.kind.to_le_bytes());
            h[4..8].copy_from_slice(&flags.to_le_bytes());
            h[8..16].copy_from_slice(&(offset as u64).to_le_bytes());
            h[16..24].copy_from_slice(&p.vaddr.to_le_bytes());
            h[24..32].copy_from_slice(&p.paddr.to_le_bytes());
            h[32..40].copy_from_slice(&filesz.to_le_bytes());
            h[40..48].copy_from_slice(&p.memsz.to_le_bytes());
        } else {
            h[0..4].copy_from_slice(&p.kind.to_le_bytes());
            h[4..8].copy_from_slice(&field::<u32, _>(offset).to_le_bytes());
            h[8..12].copy_from_slice(&low32(p.vaddr).to_le_bytes());
            h[12..16].copy_from_slice(&low32(p.paddr).to_le_bytes());
            h[16..20].copy_from_slice(&field::<u32, _>(filesz).to_le_bytes());
            h[20..24].copy_from_slice(&field::<u32, _>(p.memsz).to_le_bytes());
            h[24..28].copy_from_slice(&flags.to_le_bytes());
        }
        offset += p.data.len();
    }
    for p in parts {
        out.extend_from_slice(&p.data);
    }
    out
}

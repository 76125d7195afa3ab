//! The flattened device tree blob as the loader left it: checking its header and
//! removing `FDT_NOP` tokens (loaders such as QEMU and U-Boot leave them where they
//! deleted nodes, and the `fdt` crate's path lookups stop at them). Both work with the
//! MMU off: byte accesses only.

use core::fmt;

/// Largest device tree Keel accepts (the Linux boot protocol's limit is 2 MiB).
const MAX_DTB_SIZE: usize = 2 << 20;
const FDT_MAGIC: u32 = 0xd00d_feed;
const HEADER_SIZE: usize = 40;

/// Why the address in x0 is not a usable flattened device tree.
#[derive(Clone, Copy, Debug)]
pub enum DtbError {
    Null,
    Misaligned(usize),
    BadMagic(usize, u32),
    BadSize(usize, usize),
    BadVersion(u32),
    BlockOutside(&'static str),
    BadStructure,
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DtbError::Null => write!(f, "no device tree: the loader passed x0 = 0"),
            DtbError::Misaligned(a) => write!(f, "no device tree: x0 = {a:#x} is not 8-byte aligned"),
            DtbError::BadMagic(a, m) => {
                write!(f, "no device tree at x0 = {a:#x}: magic is {m:#010x}, not {FDT_MAGIC:#010x}")
            }
            DtbError::BadSize(a, s) => write!(f, "malformed device tree at {a:#x}: total size {s} bytes"),
            DtbError::BadVersion(v) => write!(f, "malformed device tree: version {v} (need 16 or later)"),
            DtbError::BlockOutside(b) => write!(f, "malformed device tree: the {b} block lies outside it"),
            DtbError::BadStructure => write!(f, "malformed device tree: bad token or length in the structure block"),
        }
    }
}

fn be32(bytes: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]])
}

/// Checks the header of the device tree at `addr` and returns its total size. Works with
/// the MMU off (byte reads only).
pub fn check_header(addr: usize) -> Result<usize, DtbError> {
    if addr == 0 {
        return Err(DtbError::Null);
    }
    if !addr.is_multiple_of(8) {
        return Err(DtbError::Misaligned(addr));
    }
    // SAFETY: the boot protocol puts the device tree in RAM at x0; reading its 40-byte
    // header is harmless even if the loader lied (RAM or flash answers any read).
    let h = unsafe { core::slice::from_raw_parts(addr as *const u8, HEADER_SIZE) };
    let magic = be32(h, 0);
    if magic != FDT_MAGIC {
        return Err(DtbError::BadMagic(addr, magic));
    }
    let size = be32(h, 4) as usize;
    if !(HEADER_SIZE..=MAX_DTB_SIZE).contains(&size) {
        return Err(DtbError::BadSize(addr, size));
    }
    let version = be32(h, 20);
    if version < 16 {
        return Err(DtbError::BadVersion(version));
    }
    let inside = |off: u32, len: u32| (off as usize).checked_add(len as usize).is_some_and(|end| end <= size);
    if !inside(be32(h, 8), be32(h, 36)) || !be32(h, 8).is_multiple_of(4) {
        return Err(DtbError::BlockOutside("structure"));
    }
    if !inside(be32(h, 12), be32(h, 32)) {
        return Err(DtbError::BlockOutside("strings"));
    }
    if !inside(be32(h, 16), 16) {
        return Err(DtbError::BlockOutside("memory reservation"));
    }
    Ok(size)
}

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Removes every `FDT_NOP` from the structure block of the checked tree at `addr`,
/// in place, and shrinks the block's size in the header accordingly.
pub fn remove_nops(addr: usize, size: usize) -> Result<(), DtbError> {
    // SAFETY: `check_header` bounded the tree to `size` bytes; it is Keel's (excluded from
    // free memory) and nothing else accesses it during boot.
    let dtb = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, size) };
    let start = be32(dtb, 8) as usize;
    let end = start + be32(dtb, 36) as usize;
    let bad = DtbError::BadStructure;
    let (mut src, mut dst) = (start, start);
    loop {
        let word = |at: usize| if at + 4 <= end { Ok(be32(dtb, at)) } else { Err(bad) };
        let token = word(src)?;
        let len = match token {
            FDT_NOP => {
                src += 4;
                continue;
            }
            FDT_BEGIN_NODE => {
                let name = dtb.get(src + 4..end).ok_or(bad)?;
                let nul = name.iter().position(|&b| b == 0).ok_or(bad)?;
                4 + (nul + 1).next_multiple_of(4)
            }
            FDT_PROP => 12 + (word(src + 4)? as usize).next_multiple_of(4),
            FDT_END_NODE | FDT_END => 4,
            _ => return Err(bad),
        };
        if src + len > end {
            return Err(bad);
        }
        dtb.copy_within(src..src + len, dst);
        dst += len;
        src += len;
        if token == FDT_END {
            break;
        }
    }
    dtb[36..40].copy_from_slice(&((dst - start) as u32).to_be_bytes());
    Ok(())
}

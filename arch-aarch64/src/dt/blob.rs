//! The flattened device tree blob as the loader left it at x0: the only unsafe part is
//! turning that address into a slice. Everything else (header, `FDT_NOP` removal,
//! structural validation) is the portable [`keel_kernel::dtb`], run before the `fdt`
//! crate, which panics on malformed trees, ever sees it.

use core::fmt;
use keel_kernel::dtb::{self, DtbError};

/// Why the address in x0 is not a usable device tree.
#[derive(Clone, Copy, Debug)]
pub enum BlobError {
    Null,
    Misaligned(usize),
    Bad(usize, DtbError),
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlobError::Null => write!(f, "no device tree: the loader passed x0 = 0"),
            BlobError::Misaligned(a) => write!(f, "no device tree: x0 = {a:#x} is not 8-byte aligned"),
            BlobError::Bad(a, e) => write!(f, "malformed device tree at {a:#x}: {e}"),
        }
    }
}

/// The tree's total size, from its first 8 bytes (magic and `totalsize`), so the caller
/// knows how much to map. Works with the MMU off (byte reads only).
pub fn total_size(addr: usize) -> Result<usize, BlobError> {
    if addr == 0 {
        return Err(BlobError::Null);
    }
    if !addr.is_multiple_of(8) {
        return Err(BlobError::Misaligned(addr));
    }
    let mut first = [0u8; 8];
    for (i, b) in first.iter_mut().enumerate() {
        // SAFETY: the boot protocol puts the device tree in RAM at x0; reading its first
        // bytes is harmless even if the loader lied (RAM or flash answers any read).
        *b = unsafe { ((addr + i) as *const u8).read_volatile() };
    }
    dtb::peek_total_size(&first).map_err(|e| BlobError::Bad(addr, e))
}

/// Checks the tree of `size` bytes at `addr` and removes its `FDT_NOP` tokens in place
/// (see [`dtb::prepare`]); returns it, ready for the `fdt` crate.
pub fn prepare(addr: usize, size: usize) -> Result<&'static [u8], BlobError> {
    // SAFETY: `total_size` bounded the tree to `size` bytes at `addr`, in RAM the loader
    // gave Keel, mapped writable (or reached with the MMU off). Keel excludes it from free
    // memory and never frees it, and nothing else accesses it: this is the only mutable
    // reference, and it becomes shared for good below.
    let bytes = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, size) };
    let size = dtb::prepare(bytes).map_err(|e| BlobError::Bad(addr, e))?;
    let bytes: &'static [u8] = bytes;
    Ok(&bytes[..size])
}

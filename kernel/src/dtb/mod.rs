//! Flattened device trees (DTB), portable and safe: the header, structural validation,
//! `FDT_NOP` removal and a small writer.
//!
//! The `fdt` crate trusts its input and panics on many malformed trees, so every tree
//! that did not come from Keel itself goes through [`prepare`] (a tree in writable
//! memory: the boot tree) or [`validate`] (a read-only tree) before the crate sees it.
//! Nothing here allocates except the [`FdtWriter`], so the boot path can check its tree
//! before there is a heap. Format: Devicetree Specification v0.4, chapter 5.

mod error;
mod header;
mod nops;
mod validate;
mod writer;

#[cfg(test)]
mod tests;

pub use error::DtbError;
pub use header::{peek_total_size, Header, HEADER_LEN, MAX_SIZE, VERSION};
pub use nops::strip_nops;
pub use validate::validate;
pub use writer::{FdtWriter, WriteError};

/// The header's first word.
pub const MAGIC: u32 = 0xd00d_feed;

/// Deepest node nesting accepted (the crate keeps a fixed stack of 64 levels).
pub const MAX_DEPTH: usize = 32;

/// Structure-block tokens.
pub(crate) mod token {
    pub const BEGIN_NODE: u32 = 1;
    pub const END_NODE: u32 = 2;
    pub const PROP: u32 = 3;
    pub const NOP: u32 = 4;
    pub const END: u32 = 9;
}

/// Makes the tree at the start of `blob` safe for the `fdt` crate: checks the header,
/// removes `FDT_NOP` tokens in place (loaders leave them where they deleted nodes, and
/// the crate's path lookups stop at them), then validates the structure. Returns the
/// tree's total size; `blob[..size]` is the tree.
pub fn prepare(blob: &mut [u8]) -> Result<usize, DtbError> {
    let header = Header::parse(blob)?;
    strip_nops(&mut blob[..header.total_size])?;
    validate(&blob[..header.total_size])?;
    Ok(header.total_size)
}

/// Reads the big-endian word at `at`, if it is inside `b`.
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// Rounds up to the next multiple of 4.
pub(crate) fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

//! The DTB header (40 bytes, big-endian words).

use super::{be32, DtbError, MAGIC};
use core::ops::Range;

pub const HEADER_LEN: usize = 40;
/// Largest tree accepted (the Linux arm64 boot protocol's limit is 2 MiB).
pub const MAX_SIZE: usize = 2 << 20;
/// The version Keel reads and writes.
pub const VERSION: u32 = 17;
/// Size of one memory-reservation entry (address, size).
const RSV_ENTRY: u32 = 16;

/// A checked header: every block lies inside `total_size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub total_size: usize,
    pub structs: Range<usize>,
    pub strings: Range<usize>,
    /// Offset of the memory-reservation block.
    pub reservations: usize,
}

impl Header {
    /// Reads and checks the header at the start of `blob`, whose length bounds the tree.
    pub fn parse(blob: &[u8]) -> Result<Header, DtbError> {
        if blob.len() < HEADER_LEN {
            return Err(DtbError::TooShort(blob.len()));
        }
        let field = |i: usize| be32(blob, 4 * i).unwrap_or(0);
        if field(0) != MAGIC {
            return Err(DtbError::BadMagic(field(0)));
        }
        let total = field(1) as usize;
        if total < HEADER_LEN || total > blob.len() || total > MAX_SIZE {
            return Err(DtbError::BadTotalSize { total, available: blob.len().min(MAX_SIZE) });
        }
        let (version, last_compatible) = (field(5), field(6));
        if version < VERSION || last_compatible > VERSION {
            return Err(DtbError::BadVersion { version, last_compatible });
        }
        let block = |off: u32, size: u32, what: &'static str| {
            let (off, size) = (off as usize, size as usize);
            match off.checked_add(size) {
                Some(end) if off >= HEADER_LEN && end <= total => Ok(off..end),
                _ => Err(DtbError::BlockOutside(what)),
            }
        };
        let structs = block(field(2), field(9), "structure")?;
        let strings = block(field(3), field(8), "strings")?;
        let reservations = block(field(4), RSV_ENTRY, "memory reservation")?.start;
        if structs.start % 4 != 0 {
            return Err(DtbError::Misaligned(structs.start));
        }
        Ok(Header { total_size: total, structs, strings, reservations })
    }
}

/// The tree's total size from its first 8 bytes (magic, `totalsize`), for a caller that
/// must know how much to map before it can look at the rest.
pub fn peek_total_size(first8: &[u8; 8]) -> Result<usize, DtbError> {
    let magic = u32::from_be_bytes([first8[0], first8[1], first8[2], first8[3]]);
    if magic != MAGIC {
        return Err(DtbError::BadMagic(magic));
    }
    let total = u32::from_be_bytes([first8[4], first8[5], first8[6], first8[7]]) as usize;
    if !(HEADER_LEN..=MAX_SIZE).contains(&total) {
        return Err(DtbError::BadTotalSize { total, available: MAX_SIZE });
    }
    Ok(total)
}

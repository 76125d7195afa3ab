//! Removing `FDT_NOP` tokens in place.

use super::token::*;
use super::{align4, be32, DtbError, Header};

/// Removes every `FDT_NOP` from the structure block of the tree in `blob` (whose header
/// must be valid), moving the following tokens down and shrinking the block's size in
/// the header. Only token framing is checked here; [`validate`](super::validate) checks
/// the rest. On error `blob` may be partly compacted but its header still frames a
/// block that holds every token not yet moved.
pub fn strip_nops(blob: &mut [u8]) -> Result<(), DtbError> {
    let h = Header::parse(blob)?;
    let (start, end) = (h.structs.start, h.structs.end);
    let (mut src, mut dst) = (start, start);
    loop {
        let rel = src - start;
        let token = be32(&blob[..end], src).ok_or(DtbError::NoEnd(rel))?;
        let len = match token {
            NOP => {
                src += 4;
                continue;
            }
            BEGIN_NODE => {
                let name = blob.get(src + 4..end).ok_or(DtbError::NoEnd(rel))?;
                let nul = name.iter().position(|&b| b == 0).ok_or(DtbError::BadNodeName(rel))?;
                4 + align4(nul + 1).ok_or(DtbError::BadNodeName(rel))?
            }
            PROP => {
                let len = be32(&blob[..end], src + 4).ok_or(DtbError::NoEnd(rel))? as usize;
                align4(len).and_then(|l| l.checked_add(12)).ok_or(DtbError::PropertyTooLong { at: rel, len })?
            }
            END_NODE | END => 4,
            other => return Err(DtbError::UnknownToken { at: rel, token: other }),
        };
        if src.checked_add(len).is_none_or(|e| e > end) {
            return Err(DtbError::PropertyTooLong { at: rel, len });
        }
        blob.copy_within(src..src + len, dst);
        dst += len;
        src += len;
        if token == END {
            break;
        }
    }
    // The struct block only shrinks: it still fits the header's 32-bit field.
    blob[36..40].copy_from_slice(&u32::try_from(dst - start).unwrap_or(u32::MAX).to_be_bytes());
    Ok(())
}

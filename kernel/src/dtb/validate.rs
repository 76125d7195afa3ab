//! Structural validation: everything the `fdt` crate would trip over (truncated blocks,
//! property lengths past the end, bad string offsets, non-UTF-8 names, unbalanced or too
//! deeply nested nodes, `FDT_NOP` tokens, duplicate properties) is refused, so that
//! walking a validated tree with the crate cannot panic. No allocation.

use super::token::*;
use super::{align4, be32, DtbError, Header, MAX_DEPTH};

/// The NUL-terminated UTF-8 string at `at` in `block`.
fn c_string(block: &[u8], at: usize) -> Option<&str> {
    let rest = block.get(at..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()
}

/// Checks `dtb` thoroughly enough that the `fdt` crate can walk it without panicking.
pub fn validate(dtb: &[u8]) -> Result<(), DtbError> {
    let h = Header::parse(dtb)?;
    let s = &dtb[h.structs];
    let strings = &dtb[h.strings];
    let mut at = 0usize;
    let mut depth = 0usize;
    // Whether the node open at each depth has started its child nodes.
    let mut in_children = [false; MAX_DEPTH + 1];
    let mut root_done = false;
    // Where the open node's first property starts (its properties are contiguous).
    let mut first_prop = 0usize;
    loop {
        let here = at;
        let token = be32(s, at).ok_or(DtbError::NoEnd(here))?;
        at += 4;
        match token {
            BEGIN_NODE => {
                if root_done {
                    return Err(DtbError::SecondRoot(here));
                }
                let name = c_string(s, at).ok_or(DtbError::BadNodeName(here))?;
                at = align4(at + name.len() + 1).ok_or(DtbError::BadNodeName(here))?;
                if depth > 0 {
                    in_children[depth] = true;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DtbError::TooDeep(here));
                }
                in_children[depth] = false;
                first_prop = at;
            }
            PROP => {
                if depth == 0 {
                    return Err(DtbError::PropertyOutsideNode(here));
                }
                if in_children[depth] {
                    return Err(DtbError::PropertyAfterChild(here));
                }
                let (len, name_off) = prop_header(s, here)?;
                let end = at.checked_add(8 + len).filter(|&e| e <= s.len());
                let end = end.ok_or(DtbError::PropertyTooLong { at: here, len })?;
                let name =
                    c_string(strings, name_off).ok_or(DtbError::BadPropertyName { at: here, offset: name_off })?;
                if earlier_property_named(s, strings, first_prop, here, name) {
                    return Err(DtbError::DuplicateProperty(here));
                }
                at = align4(end).ok_or(DtbError::PropertyTooLong { at: here, len })?;
            }
            END_NODE => {
                if depth == 0 {
                    return Err(DtbError::UnbalancedEndNode(here));
                }
                depth -= 1;
                root_done |= depth == 0;
            }
            NOP => return Err(DtbError::Nop(here)),
            END if depth == 0 && root_done => return Ok(()),
            END => return Err(DtbError::OpenNodes { at: here, depth }),
            other => return Err(DtbError::UnknownToken { at: here, token: other }),
        }
    }
}

/// Length and name offset of the property whose token is at `at`.
fn prop_header(s: &[u8], at: usize) -> Result<(usize, usize), DtbError> {
    let len = be32(s, at + 4).ok_or(DtbError::NoEnd(at))? as usize;
    let name = be32(s, at + 8).ok_or(DtbError::NoEnd(at))? as usize;
    Ok((len, name))
}

/// Whether a property between `from` and `to` (already validated) is named `name`.
fn earlier_property_named(s: &[u8], strings: &[u8], from: usize, to: usize, name: &str) -> bool {
    let mut at = from;
    while at < to {
        let Ok((len, off)) = prop_header(s, at) else { return false };
        if c_string(strings, off) == Some(name) {
            return true;
        }
        match align4(at + 12 + len) {
            Some(next) => at = next,
            None => return false,
        }
    }
    false
}

//! Structural validation of a flattened device tree (DTB), before the `fdt` crate walks
//! it. The crate trusts its input and panics on many malformations (truncated blocks,
//! property lengths past the end, bad string offsets, non-UTF-8 names, unbalanced nodes,
//! `FDT_NOP` tokens between properties). Everything it would trip over is rejected here
//! with a message, so that walking a validated tree with the crate cannot panic.
//!
//! Format: Devicetree Specification v0.4, chapter 5 (header, structure block tokens).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// Deepest node nesting accepted (the crate keeps a fixed stack of 64 levels).
pub const MAX_DEPTH: usize = 32;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// The string starting at `at` in `block`, up to its NUL, if it is UTF-8.
fn c_string(block: &[u8], at: usize) -> Result<&str, &'static str> {
    let rest = block.get(at..).ok_or("out of bounds")?;
    let len = rest.iter().position(|&b| b == 0).ok_or("not NUL-terminated")?;
    core::str::from_utf8(&rest[..len]).map_err(|_| "not UTF-8")
}

/// The ranges of the structure and strings blocks.
struct Layout {
    structs: core::ops::Range<usize>,
    strings: core::ops::Range<usize>,
}

fn header(dtb: &[u8]) -> Result<Layout, String> {
    let field = |i: usize| be32(dtb, 4 * i).unwrap_or(0) as usize;
    if dtb.len() < HEADER_LEN {
        return Err(format!("{} bytes is too short for a DTB header", dtb.len()));
    }
    if field(0) as u32 != MAGIC {
        return Err(format!("bad magic {:#x} (expected {MAGIC:#x})", field(0)));
    }
    let (total, version) = (field(1), field(5));
    if total > dtb.len() || total < HEADER_LEN {
        return Err(format!("totalsize {total} does not fit the {} bytes given", dtb.len()));
    }
    if version < 17 || field(6) > 17 {
        return Err(format!("version {version} (last compatible {}) is not supported; need 17", field(6)));
    }
    let block = |off: usize, size: usize, what: &str| match off.checked_add(size) {
        Some(end) if off >= HEADER_LEN && end <= total => Ok(off..end),
        _ => Err(format!("{what} block [{off:#x}, +{size:#x}) lies outside the {total}-byte tree")),
    };
    let structs = block(field(2), field(9), "structure")?;
    let strings = block(field(3), field(8), "strings")?;
    if structs.start % 4 != 0 {
        return Err(format!("structure block at {:#x} is not 4-byte aligned", structs.start));
    }
    Ok(Layout { structs, strings })
}

/// Checks `dtb` thoroughly enough that the `fdt` crate can walk it without panicking.
pub fn validate(dtb: &[u8]) -> Result<(), String> {
    let layout = header(dtb)?;
    let s = &dtb[layout.structs];
    let strings = &dtb[layout.strings];
    let mut at = 0usize;
    let mut depth = 0usize;
    // Whether the node open at each depth has started its child nodes.
    let mut in_children = [false; MAX_DEPTH + 1];
    let mut root_done = false;
    // Property names of the open node, to refuse duplicates.
    let mut names: Vec<&str> = Vec::new();
    loop {
        let token = be32(s, at).ok_or_else(|| format!("structure block ends without FDT_END at {at:#x}"))?;
        let here = at;
        at += 4;
        match token {
            BEGIN_NODE => {
                if root_done {
                    return Err(format!("a second root node at {here:#x}"));
                }
                let name = c_string(s, at).map_err(|e| format!("node name at {at:#x}: {e}"))?;
                at = align4(at + name.len() + 1).ok_or("overflow")?;
                if depth > 0 {
                    in_children[depth] = true;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("nodes nested deeper than {MAX_DEPTH} at {here:#x}"));
                }
                in_children[depth] = false;
                names.clear();
            }
            PROP => {
                if depth == 0 {
                    return Err(format!("property outside any node at {here:#x}"));
                }
                if in_children[depth] {
                    return Err(format!("property after a child node at {here:#x}"));
                }
                let len = be32(s, at).ok_or("truncated property")? as usize;
                let name_off = be32(s, at + 4).ok_or("truncated property")? as usize;
                at += 8;
                let end = at.checked_add(len).filter(|&e| e <= s.len());
                let end = end.ok_or_else(|| format!("property at {here:#x}: {len} bytes run past the block"))?;
                let name = c_string(strings, name_off)
                    .map_err(|e| format!("property name at string offset {name_off}: {e}"))?;
                if names.contains(&name) {
                    return Err(format!("property `{name}` appears twice in one node (at {here:#x})"));
                }
                names.push(name);
                at = align4(end).ok_or("overflow")?;
            }
            END_NODE => {
                if depth == 0 {
                    return Err(format!("unbalanced FDT_END_NODE at {here:#x}"));
                }
                depth -= 1;
                root_done |= depth == 0;
            }
            NOP => return Err(format!("FDT_NOP at {here:#x}: repack the tree (dtc -I dtb -O dtb)")),
            END if depth == 0 && root_done => return Ok(()),
            END => return Err(format!("FDT_END at {here:#x} with {depth} node(s) open")),
            other => return Err(format!("unknown token {other:#x} at {here:#x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-17 blob around a hand-written structure block and strings block.
    fn blob(tokens: &[u32], strings: &[u8]) -> Vec<u8> {
        let structs: Vec<u8> = tokens.iter().flat_map(|t| t.to_be_bytes()).collect();
        let (s_off, str_off) = (56u32, 56 + structs.len() as u32);
        let total = str_off + strings.len() as u32;
        let header = [MAGIC, total, s_off, str_off, 40, 17, 16, 0, strings.len() as u32, structs.len() as u32];
        let mut out: Vec<u8> = header.iter().flat_map(|w| w.to_be_bytes()).collect();
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&structs);
        out.extend_from_slice(strings);
        out
    }

    const ROOT: [u32; 2] = [BEGIN_NODE, 0];
    const CHILD: [u32; 2] = [BEGIN_NODE, u32::from_be_bytes(*b"a\0\0\0")];

    #[test]
    fn accepts_a_minimal_tree() {
        let t = [&ROOT[..], &[PROP, 4, 0, 7], &CHILD, &[END_NODE, END_NODE, END]].concat();
        assert_eq!(validate(&blob(&t, b"x\0")), Ok(()));
    }

    #[test]
    fn refuses_what_the_crate_would_trip_over() {
        let cases: [(&[u32], &[u8], &str); 9] = [
            (&[BEGIN_NODE, 0, END_NODE], b"", "without FDT_END"),
            (&[BEGIN_NODE, 0, END], b"", "1 node(s) open"),
            (&[BEGIN_NODE, 0, END_NODE, END_NODE, END], b"", "unbalanced"),
            (&[BEGIN_NODE, 0, NOP, END_NODE, END], b"", "FDT_NOP"),
            (&[BEGIN_NODE, 0, PROP, 100, 0, END_NODE, END], b"x\0", "run past the block"),
            (&[BEGIN_NODE, 0, PROP, 0, 9, END_NODE, END], b"x\0", "string offset 9"),
            (&[BEGIN_NODE, 0, PROP, 0, 0, PROP, 0, 0, END_NODE, END], b"x\0", "appears twice"),
            (&[BEGIN_NODE, 0, BEGIN_NODE, 0, END_NODE, PROP, 0, 0, END_NODE, END], b"x\0", "after a child node"),
            (&[BEGIN_NODE, 0xff00_0000, END_NODE, END], b"", "not UTF-8"),
        ];
        for (tokens, strings, want) in cases {
            let e = validate(&blob(tokens, strings)).unwrap_err();
            assert!(e.contains(want), "{tokens:x?}: {e}");
        }
        let deep: Vec<u32> = (0..=MAX_DEPTH).flat_map(|_| [BEGIN_NODE, 0]).collect();
        assert!(validate(&blob(&deep, b"")).unwrap_err().contains("deeper"));
        let mut v = blob(&[BEGIN_NODE, 0, END_NODE, END], b"");
        v[23] = 16; // version 16
        assert!(validate(&v).unwrap_err().contains("version 16"));
    }
}

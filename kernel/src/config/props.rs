//! Decoding device-tree property values (big-endian cells, strings, string lists,
//! `reg` with the inherited cell counts). Every decoder checks the exact length.

use crate::mm::Region;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::node::FdtNode;

/// Address and size cell counts that apply to a node's children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cells {
    pub address: u32,
    pub size: u32,
}

impl Cells {
    /// What the root node uses when it names none (Devicetree Specification 2.3.5).
    pub const ROOT_DEFAULT: Cells = Cells { address: 2, size: 1 };

    /// The counts `node` sets for its children: its own `#address-cells` and
    /// `#size-cells` where present, else those it inherited (as Xen does, rather than
    /// falling back to 2 and 1 at every level).
    pub fn of(node: FdtNode<'_, '_>, inherited: Cells) -> Result<Cells, String> {
        let mut cells = inherited;
        if let Some(v) = raw(node, "#address-cells") {
            cells.address = be_u32(v).map_err(|e| format!("#address-cells: {e}"))?;
        }
        if let Some(v) = raw(node, "#size-cells") {
            cells.size = be_u32(v).map_err(|e| format!("#size-cells: {e}"))?;
        }
        Ok(cells)
    }
}

/// The raw value of property `name`.
pub fn raw<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a [u8]> {
    node.properties().find(|p| p.name == name).map(|p| p.value)
}

/// A single 32-bit cell.
pub fn be_u32(v: &[u8]) -> Result<u32, String> {
    match <[u8; 4]>::try_from(v) {
        Ok(b) => Ok(u32::from_be_bytes(b)),
        Err(_) => Err(format!("expected one 32-bit cell, found {} bytes", v.len())),
    }
}

/// A 64-bit value in two cells.
pub fn be_u64(v: &[u8]) -> Result<u64, String> {
    match <[u8; 8]>::try_from(v) {
        Ok(b) => Ok(u64::from_be_bytes(b)),
        Err(_) => Err(format!("expected a 64-bit value (two cells), found {} bytes", v.len())),
    }
}

/// A number of `cells` 32-bit cells (1 or 2) starting at `v[0]`.
fn number(v: &[u8], cells: u32) -> Option<u64> {
    match cells {
        1 => be_u32(v.get(..4)?).ok().map(u64::from),
        2 => be_u64(v.get(..8)?).ok(),
        _ => None,
    }
}

/// A non-empty list of tuples of numbers, each number `cells[i]` cells wide (1 or 2): a
/// `reg` of several (address, size) pairs, Xen's `xen,reg` triplets, `xen,static-mem`.
/// `what` names the property in messages.
pub fn tuples<const N: usize>(v: &[u8], cells: [u32; N], what: &str) -> Result<Vec<[u64; N]>, String> {
    if let Some(c) = cells.iter().find(|&&c| c != 1 && c != 2) {
        return Err(format!("{what}: a cell count of {c}; only 1 or 2 are supported"));
    }
    let width: usize = cells.iter().map(|&c| 4 * c as usize).sum();
    if v.is_empty() || !v.len().is_multiple_of(width) {
        return Err(format!("{what} has {} bytes; each entry takes {width}", v.len()));
    }
    let mut out = Vec::new();
    for entry in v.chunks_exact(width) {
        let mut t = [0u64; N];
        let mut at = 0;
        for (slot, &c) in t.iter_mut().zip(&cells) {
            *slot = number(&entry[at..], c).ok_or_else(|| format!("{what}: a truncated entry"))?;
            at += 4 * c as usize;
        }
        out.push(t);
    }
    Ok(out)
}

/// One NUL-terminated UTF-8 string.
pub fn string(v: &[u8]) -> Result<&str, String> {
    let body = v.strip_suffix(&[0]).ok_or("not a NUL-terminated string")?;
    if body.contains(&0) {
        return Err("a string list where one string was expected".into());
    }
    core::str::from_utf8(body).map_err(|_| "not UTF-8".into())
}

/// A list of NUL-terminated UTF-8 strings (like `compatible`).
pub fn strings(v: &[u8]) -> Result<Vec<&str>, String> {
    let body = v.strip_suffix(&[0]).ok_or("not a NUL-terminated string list")?;
    body.split(|&b| b == 0).map(|s| core::str::from_utf8(s).map_err(|_| "not UTF-8".into())).collect()
}

/// The strings of `compatible`, or none if the property is absent or malformed.
pub fn compatible<'a>(node: FdtNode<'_, 'a>) -> Vec<&'a str> {
    raw(node, "compatible").and_then(|v| strings(v).ok()).unwrap_or_default()
}

/// A `reg` holding exactly one (address, size) pair, with `cells` from the parent.
pub fn reg(v: &[u8], cells: Cells) -> Result<Region, String> {
    let ok = |c: u32| c == 1 || c == 2;
    if !ok(cells.address) || !ok(cells.size) {
        return Err(format!(
            "#address-cells = {} and #size-cells = {} in the parent: only 1 or 2 are supported",
            cells.address, cells.size
        ));
    }
    let want = 4 * (cells.address + cells.size) as usize;
    if v.len() != want {
        return Err(format!(
            "reg has {} bytes; one (address, size) pair with #address-cells = {} and #size-cells = {} takes {want}",
            v.len(),
            cells.address,
            cells.size
        ));
    }
    let addr_len = 4 * cells.address as usize;
    let start = number(v, cells.address).ok_or("bad address")?;
    let size = number(&v[addr_len..], cells.size).ok_or("bad size")?;
    if size == 0 {
        return Err(format!("reg has size 0 at {start:#x}"));
    }
    let end = start.checked_add(size).ok_or_else(|| format!("reg [{start:#x}, +{size:#x}) wraps around"))?;
    Ok(Region { start, end })
}

/// The node's `phandle` (or legacy `linux,phandle`).
pub fn phandle(node: FdtNode<'_, '_>) -> Option<u32> {
    raw(node, "phandle").or_else(|| raw(node, "linux,phandle")).and_then(|v| be_u32(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_check_lengths() {
        assert_eq!(be_u32(&[0, 0, 1, 0]), Ok(256));
        assert!(be_u32(&[0, 1]).is_err());
        assert_eq!(be_u64(&[0, 0, 0, 0, 0, 2, 0, 0]), Ok(0x20000));
        assert!(be_u64(&[0, 0, 0, 1]).is_err());
        assert_eq!(string(b"hi\0"), Ok("hi"));
        assert!(string(b"hi").is_err());
        assert!(string(b"a\0b\0").is_err());
        assert_eq!(strings(b"a\0b,c\0"), Ok(alloc::vec!["a", "b,c"]));
        let two = Cells { address: 2, size: 1 };
        let r = reg(&[0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0x10, 0], two).unwrap();
        assert_eq!(r, Region { start: 0x4000_0000, end: 0x4000_1000 });
        assert!(reg(&[0; 12], two).unwrap_err().contains("size 0"));
        assert!(reg(&[0; 16], two).unwrap_err().contains("takes 12"));
        assert!(reg(&[0; 12], Cells { address: 3, size: 0 }).is_err());
        let wrap = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0x10, 0];
        assert!(reg(&wrap, two).unwrap_err().contains("wraps"));
    }

    #[test]
    fn tuples_read_mixed_widths_and_check_lengths() {
        let v: Vec<u8> = [0u32, 0x0a00_3000, 0x1000, 0, 0x0a00_3000].iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(tuples(&v, [2, 1, 2], "xen,reg"), Ok(alloc::vec![[0x0a00_3000, 0x1000, 0x0a00_3000]]));
        assert_eq!(tuples(&v[..16], [1, 1], "p"), Ok(alloc::vec![[0, 0x0a00_3000], [0x1000, 0]]));
        assert!(tuples(&v, [1, 1], "p").unwrap_err().contains("p has 20 bytes; each entry takes 8"));
        assert!(tuples(&[], [1, 1], "p").unwrap_err().contains("0 bytes"));
        assert!(tuples(&v, [3, 1], "p").unwrap_err().contains("a cell count of 3"));
    }
}

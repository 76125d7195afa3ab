//! `direct-map` and `xen,static-mem`: a domain whose RAM is host RAM named in the
//! tree, seen by the domain at the same addresses (Xen booting.txt, "Static
//! Allocation"; Xen makes `direct-map` available only together with static memory).

use super::props;
use crate::mm::Region;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::node::FdtNode;

/// The granule static memory is given in.
const PAGE: u64 = 4096;

/// The host RAM banks of a `direct-map` domain node, checked against its `memory`
/// (KiB); `None` without `direct-map`.
pub(super) fn direct_map(node: FdtNode<'_, '_>, path: &str, memory_kib: u64) -> Result<Option<Vec<Region>>, String> {
    let direct = props::raw(node, "direct-map").is_some();
    let value = props::raw(node, "xen,static-mem");
    let Some(value) = value else {
        if direct {
            return Err(format!(
                "{path}: `direct-map` without `xen,static-mem`: name the host RAM to give 1:1, as Xen requires"
            ));
        }
        return Ok(None);
    };
    if !direct {
        return Err(format!(
            "{path}: `xen,static-mem` without `direct-map` is not supported: Keel places a domain's RAM itself \
             unless it is direct-mapped"
        ));
    }
    let cell = |name: &str| -> Result<u32, String> {
        let v = props::raw(node, name).ok_or_else(|| format!("{path}: xen,static-mem needs `{name}`"))?;
        let c = props::be_u32(v).map_err(|e| format!("{path}: {name}: {e}"))?;
        if c == 1 || c == 2 {
            Ok(c)
        } else {
            Err(format!("{path}: {name} = {c}; 1 or 2 are supported"))
        }
    };
    let (ac, sc) = (cell("#xen,static-mem-address-cells")?, cell("#xen,static-mem-size-cells")?);
    let pairs = props::tuples(value, [ac, sc], "xen,static-mem").map_err(|e| format!("{path}: {e}"))?;
    let mut banks: Vec<Region> = Vec::new();
    for [start, size] in pairs {
        let end = start.checked_add(size).ok_or_else(|| format!("{path}: xen,static-mem: a bank wraps around"))?;
        let bank = Region { start, end };
        if size == 0 || start % PAGE != 0 || size % PAGE != 0 {
            return Err(format!(
                "{path}: xen,static-mem bank [{start:#x}, {end:#x}) is empty or not page aligned (4 KiB)"
            ));
        }
        if let Some(o) = banks.iter().find(|o| o.start < end && start < o.end) {
            return Err(format!(
                "{path}: xen,static-mem banks [{start:#x}, {end:#x}) and [{:#x}, {:#x}) overlap",
                o.start, o.end
            ));
        }
        banks.push(bank);
    }
    let total: u64 = banks.iter().map(Region::size).fold(0, u64::saturating_add);
    if total != memory_kib.saturating_mul(1024) {
        return Err(format!(
            "{path}: xen,static-mem gives {} KiB but memory says {memory_kib} KiB; they must match",
            total / 1024
        ));
    }
    banks.sort_by_key(|b| b.start);
    Ok(Some(banks))
}

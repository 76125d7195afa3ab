//! `memory_op`: placing shared_info and grant frames, the memory map, and giving memory
//! back or taking it (decrease_reservation / populate_physmap) with honest accounting.

use super::{Call, HcResult};
use crate::arch::Arch;
use crate::p2m::PageKind;
use keel_abi::memory::*;
use keel_abi::Errno;

/// `memory_op(cmd, arg)`.
pub fn memory_op<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    let cmd = c.args[0];
    let arg = c.args[1];
    let start = cmd >> MEMOP_EXTENT_SHIFT;
    match cmd & MEMOP_CMD_MASK {
        XENMEM_INCREASE_RESERVATION => Err(Errno::ENOSYS),
        op @ (XENMEM_DECREASE_RESERVATION | XENMEM_POPULATE_PHYSMAP) => Ok(reservation(c, op, start, arg)),
        op @ (XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION) => {
            let mut b = [0u8; 2];
            c.guest.read(arg, &mut b)?;
            let d = c.hv.resolve(c.domain, u16::from_le_bytes(b)).ok_or(Errno::ESRCH)?;
            if d.id() != c.domain.id() {
                return Err(Errno::EPERM);
            }
            let mm = d.mm.lock();
            Ok(if op == XENMEM_CURRENT_RESERVATION { mm.tot_pages() } else { mm.max_pages() })
        }
        XENMEM_ADD_TO_PHYSMAP => add_to_physmap(c, arg),
        XENMEM_MEMORY_MAP => memory_map(c, arg),
        _ => Err(Errno::ENOSYS),
    }
}

/// decrease_reservation / populate_physmap. Returns the number of extents done (as Xen,
/// errors before the first extent return the start extent).
fn reservation<A: Arch>(c: &Call<'_, '_, A>, op: u64, start: u64, arg: u64) -> u64 {
    let Ok(r) = c.guest.read_struct::<XenMemoryReservation>(arg) else { return start };
    if r.nr_extents > (u32::MAX >> MEMOP_EXTENT_SHIFT) as u64
        || start >= r.nr_extents
        || r.extent_order > MEMOP_MAX_EXTENT_ORDER
        || r.mem_flags & (1 << 16) != 0
    {
        return start;
    }
    let Some(d) = c.hv.resolve(c.domain, r.domid) else { return start };
    if d.id() != c.domain.id() {
        return start;
    }
    let pages = 1u64 << r.extent_order;
    let mut done = start;
    for i in start..r.nr_extents {
        let Ok(gfn) = c.guest.read_u64(r.extent_start, i) else { break };
        let ok = if op == XENMEM_POPULATE_PHYSMAP {
            gfn % pages == 0 && d.mm.lock().populate(c.hv.pool, gfn, pages).is_ok()
        } else {
            let mut mm = d.mm.lock();
            (0..pages).all(|j| gfn.checked_add(j).is_some_and(|g| mm.release_ram(c.hv.pool, g).is_ok()))
        };
        if !ok {
            break;
        }
        done = i + 1;
    }
    done
}

fn add_to_physmap<A: Arch>(c: &Call<'_, '_, A>, arg: u64) -> HcResult {
    let x: XenAddToPhysmap = c.guest.read_struct(arg)?;
    let d = c.hv.resolve(c.domain, x.domid).ok_or(Errno::ESRCH)?;
    if d.id() != c.domain.id() {
        return Err(Errno::EPERM);
    }
    match x.space {
        XENMAPSPACE_SHARED_INFO => {
            if x.idx != 0 {
                return Err(Errno::EINVAL);
            }
            d.mm.lock().place_special(c.hv.pool, x.gpfn, d.shared_info_frame(), PageKind::SharedInfo)?;
        }
        XENMAPSPACE_GRANT_TABLE => {
            if x.idx & XENMAPIDX_GRANT_TABLE_STATUS != 0 {
                return Err(Errno::EINVAL);
            }
            let idx = u32::try_from(x.idx).map_err(|_| Errno::EINVAL)?;
            let mut gt = d.grants.lock();
            let frame = gt.frame::<A>(c.hv.pool, idx)?;
            d.mm.lock().place_special(c.hv.pool, x.gpfn, frame, PageKind::GrantFrame(idx))?;
        }
        _ => return Err(Errno::ENOSYS),
    }
    Ok(0)
}

fn memory_map<A: Arch>(c: &Call<'_, '_, A>, arg: u64) -> HcResult {
    let mut m: XenMemoryMap = c.guest.read_struct(arg)?;
    let map = &c.domain.config().memory_map;
    if map.is_empty() {
        return Err(Errno::ENOSYS);
    }
    let n = (m.nr_entries as usize).min(map.len());
    for (i, e) in map[..n].iter().enumerate() {
        c.guest.write_element(m.buffer, i as u64, e)?;
    }
    // n is at most the guest's own u32 count.
    m.nr_entries = u32::try_from(n).unwrap_or(m.nr_entries);
    c.guest.write_struct(arg, &m)?;
    Ok(0)
}

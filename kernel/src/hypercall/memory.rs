//! `memory_op`: placing shared_info and grant frames, the memory map, and giving memory
//! back or taking it (decrease_reservation / populate_physmap) with honest accounting;
//! 32-bit x86 callers' structs in Xen's compat layouts.

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
/// A 32-bit caller's reservation is translated to the native one; its frame list holds
/// 32-bit entries.
fn reservation<A: Arch>(c: &Call<'_, '_, A>, op: u64, start: u64, arg: u64) -> u64 {
    let r = if c.compat {
        c.guest.read_struct::<XenMemoryReservationCompat>(arg).map(|r| XenMemoryReservation {
            extent_start: u64::from(r.extent_start),
            nr_extents: u64::from(r.nr_extents),
            extent_order: r.extent_order,
            mem_flags: r.mem_flags,
            domid: r.domid,
            _pad: [0; 6],
        })
    } else {
        c.guest.read_struct::<XenMemoryReservation>(arg)
    };
    let Ok(r) = r else { return start };
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
        let gfn = if c.compat {
            c.guest.read_u32(r.extent_start, i).map(u64::from)
        } else {
            c.guest.read_u64(r.extent_start, i)
        };
        let Ok(gfn) = gfn else { break };
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
    let x: XenAddToPhysmap = if c.compat {
        let x: XenAddToPhysmapCompat = c.guest.read_struct(arg)?;
        XenAddToPhysmap { domid: x.domid, size: x.size, space: x.space, idx: x.idx.into(), gpfn: x.gpfn.into() }
    } else {
        c.guest.read_struct(arg)?
    };
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
    let mut m: XenMemoryMap = if c.compat {
        let m: XenMemoryMapCompat = c.guest.read_struct(arg)?;
        XenMemoryMap { nr_entries: m.nr_entries, _pad: [0; 4], buffer: m.buffer.into() }
    } else {
        c.guest.read_struct(arg)?
    };
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
    if c.compat {
        c.guest.write(arg, &m.nr_entries.to_le_bytes())?;
    } else {
        c.guest.write_struct(arg, &m)?;
    }
    Ok(0)
}

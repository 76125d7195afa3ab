//! `grant_table_op`: batches of map, unmap and copy with a status per op; table set-up,
//! size and version.

use super::{Call, HcResult};
use crate::arch::Arch;
use crate::grant::{self, ops};
use crate::p2m::PageKind;
use alloc::vec::Vec;
use keel_abi::grant::*;
use keel_abi::Errno;

/// The most ops one call may carry (Keel has no hypercall continuations).
pub const MAX_BATCH: u32 = 4096;
/// How many unmap ops share one TLB flush (Xen's `GNTTAB_UNMAP_BATCH_SIZE`): Linux's
/// back ends unmap a request's segments in one call.
const UNMAP_CHUNK: usize = 32;
/// Offset of the status field in `gnttab_copy`.
const COPY_STATUS: u64 = 36;
/// Offset of the status field in a 32-bit caller's `gnttab_copy`.
const COPY_STATUS_COMPAT: u64 = 20;

/// `grant_table_op(cmd, uop, count)`.
pub fn grant_table_op<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    let cmd = c.arg32(0) as u64;
    let uop = c.args[1];
    let count = c.arg32(2);
    if (count as i32) < 0 || cmd & !GNTTABOP_CMD_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    let batch = matches!(cmd, GNTTABOP_MAP_GRANT_REF | GNTTABOP_UNMAP_GRANT_REF | GNTTABOP_COPY);
    if batch && count > MAX_BATCH {
        return Err(Errno::E2BIG);
    }
    let g = &c.guest;
    match cmd {
        GNTTABOP_MAP_GRANT_REF => {
            for i in 0..count as u64 {
                let mut op: GnttabMapGrantRef = g.read_element(uop, i)?;
                (op.status, op.handle) = ops::map(c.hv, c.domain, &op);
                op.dev_bus_addr = 0;
                g.write_element(uop, i, &op)?;
            }
        }
        GNTTABOP_UNMAP_GRANT_REF => {
            // In chunks, each with one TLB flush (`ops::unmap_batch`), as Xen does. An op
            // that cannot be read ends the call with `EFAULT` after those before it.
            let mut chunk: Vec<GnttabUnmapGrantRef> = Vec::with_capacity(UNMAP_CHUNK);
            let mut first = 0u64;
            while first < u64::from(count) {
                let end = (first + UNMAP_CHUNK as u64).min(u64::from(count));
                chunk.clear();
                let mut fault = None;
                for i in first..end {
                    match g.read_element(uop, i) {
                        Ok(op) => chunk.push(op),
                        Err(e) => {
                            fault = Some(e);
                            break;
                        }
                    }
                }
                ops::unmap_batch(c.hv, c.domain, &mut chunk);
                for (i, op) in (first..).zip(chunk.iter()) {
                    g.write_element(uop, i, op)?;
                }
                if let Some(e) = fault {
                    return Err(e);
                }
                first = end;
            }
        }
        GNTTABOP_COPY if c.compat => {
            // `compat_gnttab_copy`: 24 bytes, 32-bit frame numbers, status at 20.
            for i in 0..u64::from(count) {
                let op: GnttabCopyCompat = g.read_element(uop, i)?;
                let status = grant::copy(c.hv, c.domain, &op.widen());
                let at =
                    uop.checked_add(i * GnttabCopyCompat::SIZE as u64 + COPY_STATUS_COMPAT).ok_or(Errno::EFAULT)?;
                g.write(at, &status.to_le_bytes())?;
            }
        }
        GNTTABOP_COPY => {
            for i in 0..count as u64 {
                let op: GnttabCopy = g.read_element(uop, i)?;
                let status = grant::copy(c.hv, c.domain, &op);
                let at = uop.checked_add(i * GnttabCopy::SIZE as u64 + COPY_STATUS).ok_or(Errno::EFAULT)?;
                g.write(at, &status.to_le_bytes())?;
            }
        }
        GNTTABOP_SETUP_TABLE => setup_table(c, uop, count)?,
        GNTTABOP_QUERY_SIZE => {
            if count != 1 {
                return Err(Errno::EINVAL);
            }
            let mut op: GnttabQuerySize = g.read_struct(uop)?;
            op.status = match c.hv.resolve(c.domain, op.dom) {
                None => GNTST_BAD_DOMAIN,
                Some(d) if d.id() != c.domain.id() => GNTST_PERMISSION_DENIED,
                Some(d) => {
                    let gt = d.grants.lock();
                    (op.nr_frames, op.max_nr_frames) = (gt.nr_frames(), gt.max_frames());
                    GNTST_OKAY
                }
            };
            g.write_struct(uop, &op)?;
        }
        GNTTABOP_SET_VERSION => {
            let mut op: GnttabSetVersion = g.read_struct(uop)?;
            let res = match op.version {
                1 => Ok(0),
                2 => Err(Errno::ENOSYS),
                _ => Err(Errno::EINVAL),
            };
            op.version = 1;
            g.write_struct(uop, &op)?;
            return res;
        }
        GNTTABOP_GET_VERSION => {
            let mut op: GnttabGetVersion = g.read_struct(uop)?;
            let d = c.hv.resolve(c.domain, op.dom).ok_or(Errno::ESRCH)?;
            if d.id() != c.domain.id() {
                return Err(Errno::EPERM);
            }
            op.version = 1;
            g.write_struct(uop, &op)?;
        }
        _ => return Err(Errno::ENOSYS),
    }
    Ok(0)
}

/// `GNTTABOP_setup_table`. A 32-bit caller's struct (`compat_gnttab_setup_table`) has a
/// 32-bit handle of 32-bit frame numbers; a frame that does not fit in 32 bits (one not
/// placed yet) gives `GNTST_address_too_big`, as Xen's translation does.
fn setup_table<A: Arch>(c: &Call<'_, '_, A>, uop: u64, count: u32) -> Result<(), Errno> {
    if count != 1 {
        return Err(Errno::EINVAL);
    }
    let g = &c.guest;
    let op = if c.compat {
        let n: GnttabSetupTableCompat = g.read_struct(uop)?;
        GnttabSetupTable {
            dom: n.dom,
            nr_frames: n.nr_frames,
            frame_list: u64::from(n.frame_list),
            ..GnttabSetupTable::ZERO
        }
    } else {
        g.read_struct(uop)?
    };
    let status = match c.hv.resolve(c.domain, op.dom) {
        None => GNTST_BAD_DOMAIN,
        Some(d) if d.id() != c.domain.id() => GNTST_PERMISSION_DENIED,
        Some(d) => {
            let mut gt = d.grants.lock();
            if op.nr_frames > gt.max_frames() || gt.grow::<A>(c.hv.pool, op.nr_frames).is_err() {
                GNTST_GENERAL_ERROR
            } else {
                drop(gt);
                let mut status = GNTST_OKAY;
                for i in 0..op.nr_frames {
                    let gfn = d.mm.lock().placed(PageKind::GrantFrame(i)).unwrap_or(u64::MAX);
                    let written = if c.compat {
                        let Ok(gfn) = u32::try_from(gfn) else {
                            status = GNTST_ADDRESS_TOO_BIG;
                            break;
                        };
                        g.write_u32(op.frame_list, u64::from(i), gfn)
                    } else {
                        g.write_u64(op.frame_list, u64::from(i), gfn)
                    };
                    if written.is_err() {
                        status = GNTST_BAD_VIRT_ADDR;
                        break;
                    }
                }
                status
            }
        }
    };
    // `status` is at 8 in both layouts.
    g.write(uop.checked_add(8).ok_or(Errno::EFAULT)?, &status.to_le_bytes())
}

//! `memory_op` on frames and domains that are not the caller's: another domain's
//! reservation or physmap (Keel has no privileged domain: `-EPERM`, or `-ESRCH` when
//! there is none), frames beyond the guest-physical space, orders and extent counts
//! that would overflow. Reservations report failure as a short count (the extent they
//! started at), as in Xen.

use super::expect;
use crate::hcall::{err, name, Hv};
use crate::pages;
use crate::{ensure, fail, say, Outcome, Platform};
use keel_abi::memory::*;
use keel_abi::xen::{DomId, DOMID_IO, DOMID_SELF, DOMID_XEN};
use keel_abi::Errno;

/// Frames no guest-physical space holds.
const FAR_FRAMES: [u64; 4] = [1 << 40, 1 << 52, u64::MAX >> 12, u64::MAX];

pub fn run<P: Platform>(p: &P, me: DomId) -> Outcome {
    let hv = Hv(p);
    let Some(list) = pages::alloc() else { fail!("out of guest pages") };
    let Some(own) = pages::alloc() else { fail!("out of guest pages") };
    let own_gfn = p.gpa(own.va()) >> 12;

    // Another domain's physmap and reservation: some neighbour exists (the boot test
    // runs other domains beside this one), and all refuse.
    let mut neighbours = 0;
    for d in (0..8).chain([DOMID_IO, DOMID_XEN, 0x7fef]) {
        if d == me {
            continue;
        }
        let mut x = XenAddToPhysmap { domid: d, size: 0, space: XENMAPSPACE_SHARED_INFO, idx: 0, gpfn: own_gfn };
        let r = hv.memory_op(XENMEM_ADD_TO_PHYSMAP, &mut x);
        if r == err(Errno::EPERM) {
            neighbours += 1;
        } else if r != err(Errno::ESRCH) {
            fail!("add_to_physmap into domain {d}: {}", name(r));
        }
        let mut id = [0u8; 8];
        id[..2].copy_from_slice(&d.to_le_bytes());
        let r = hv.cmd_ptr(keel_abi::hypercall::MEMORY_OP, XENMEM_CURRENT_RESERVATION, id.as_ptr() as usize);
        ensure!(r == err(Errno::EPERM) || r == err(Errno::ESRCH), "current_reservation of domain {d}: {}", name(r));
        for op in [XENMEM_DECREASE_RESERVATION, XENMEM_POPULATE_PHYSMAP] {
            list.fill(0, &own_gfn.to_le_bytes());
            let mut res = reservation(list.va() as u64, 1, 0, d);
            expect(hv.memory_op(op, &mut res), 0, "a reservation of another domain (extents done)")?;
        }
    }
    ensure!(neighbours > 0, "no other domain found among ids 0..8 (the test runs some beside this one)");

    for gpfn in FAR_FRAMES {
        let mut x = XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_SHARED_INFO, idx: 0, gpfn };
        expect(hv.memory_op(XENMEM_ADD_TO_PHYSMAP, &mut x), err(Errno::EINVAL), "shared_info placed beyond the space")?;
        // Frames that are not the caller's RAM: nothing is given back or populated.
        for op in [XENMEM_DECREASE_RESERVATION, XENMEM_POPULATE_PHYSMAP] {
            list.fill(0, &gpfn.to_le_bytes());
            for order in [0, 9] {
                let mut res = reservation(list.va() as u64, 1, order, DOMID_SELF);
                expect(hv.memory_op(op, &mut res), 0, "a reservation of frames beyond the space")?;
            }
        }
    }
    for space in [XENMAPSPACE_GMFN, XENMAPSPACE_GMFN_RANGE, XENMAPSPACE_GMFN_FOREIGN, XENMAPSPACE_DEV_MMIO, u32::MAX] {
        let mut x = XenAddToPhysmap { domid: DOMID_SELF, size: 0xffff, space, idx: own_gfn, gpfn: own_gfn };
        expect(
            hv.memory_op(XENMEM_ADD_TO_PHYSMAP, &mut x),
            err(Errno::ENOSYS),
            "add_to_physmap of foreign/gmfn spaces",
        )?;
    }
    // Orders, counts and continuation starts that overflow a page count.
    list.fill(0, &own_gfn.to_le_bytes());
    for (nr, order, start) in [(1, 10, 0), (1, u32::MAX, 0), ((1 << 26) + 1, 0, 0), (u64::MAX, 0, 0), (1, 0, 5)] {
        let mut res = reservation(list.va() as u64, nr, order, DOMID_SELF);
        let cmd = XENMEM_DECREASE_RESERVATION | start << MEMOP_EXTENT_SHIFT;
        expect(hv.memory_op(cmd, &mut res), start as i64, "decrease_reservation with a bad order/count/start")?;
    }
    let mut res = reservation(p.unmapped_va() as u64, 1, 0, DOMID_SELF);
    expect(hv.memory_op(XENMEM_DECREASE_RESERVATION, &mut res), 0, "decrease_reservation from an unmapped list")?;
    expect(
        hv.cmd_ptr(keel_abi::hypercall::MEMORY_OP, XENMEM_DECREASE_RESERVATION, p.unmapped_va()),
        0,
        "decrease_reservation with an unmapped argument",
    )?;
    ensure!(own.load64(0) == 0, "the page named in refused reservations changed");
    let mut map = XenMemoryMap { nr_entries: u32::MAX, _pad: [0; 4], buffer: p.unmapped_va() as u64 };
    let r = hv.memory_op(XENMEM_MEMORY_MAP, &mut map);
    ensure!(r == err(Errno::EFAULT) || r == err(Errno::ENOSYS), "memory_map into unmapped memory: {}", name(r));
    say!(p, "xsa memory_op: other domains EPERM/ESRCH ({neighbours} neighbours), far frames refused, bad orders/counts/starts do nothing");
    Ok(())
}

fn reservation(list: u64, nr_extents: u64, extent_order: u32, domid: DomId) -> XenMemoryReservation {
    XenMemoryReservation { extent_start: list, nr_extents, extent_order, mem_flags: 0, domid, _pad: [0; 6] }
}

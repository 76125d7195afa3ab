//! Giving guest frames back to Keel and taking them again, as Linux's balloon driver
//! does before a back end maps a grant there: `XENMEM_decrease_reservation` leaves a hole
//! in guest-physical space, `XENMEM_populate_physmap` fills it with fresh RAM.

use crate::hcall::{name, Hv};
use crate::{fail, Outcome, Platform};
use keel_abi::memory::{XenMemoryReservation, XENMEM_DECREASE_RESERVATION, XENMEM_POPULATE_PHYSMAP};
use keel_abi::xen::DOMID_SELF;

/// One order-0 extent, `gfn`, with `op`; fails unless Keel did exactly one extent.
fn one_extent<P: Platform>(p: &P, op: u64, gfn: u64, what: &str) -> Outcome {
    let list = [gfn];
    let mut r = XenMemoryReservation {
        extent_start: list.as_ptr() as u64,
        nr_extents: 1,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
        _pad: [0; 6],
    };
    let done = Hv(p).memory_op(op, &mut r);
    if done != 1 {
        fail!("{what} of gfn {gfn:#x}: {done} extent(s) done ({})", name(done));
    }
    Ok(())
}

/// Gives the RAM page at `gfn` back to Keel (`decrease_reservation`): `gfn` becomes a hole.
pub fn give_back<P: Platform>(p: &P, gfn: u64) -> Outcome {
    one_extent(p, XENMEM_DECREASE_RESERVATION, gfn, "decrease_reservation")
}

/// Fills the hole at `gfn` with a fresh page of RAM (`populate_physmap`).
pub fn take_back<P: Platform>(p: &P, gfn: u64) -> Outcome {
    one_extent(p, XENMEM_POPULATE_PHYSMAP, gfn, "populate_physmap")
}

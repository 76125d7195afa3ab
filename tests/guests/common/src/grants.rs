//! Grant tables v1 from the guest's side: the table's first frame placed in a hole of
//! guest-physical space, entries written and ended as Linux does, and the map, unmap and
//! copy operations.

use crate::hcall::{name, Hv};
use crate::{fail, Outcome, Platform};
use core::sync::atomic::{AtomicU32, Ordering};
use keel_abi::grant::*;
use keel_abi::memory::{XenAddToPhysmap, XENMAPSPACE_GRANT_TABLE, XENMEM_ADD_TO_PHYSMAP};
use keel_abi::xen::{DomId, DOMID_SELF};
use keel_abi::Wire;

/// This domain's grant table: frame 0, as 1024 words (two per entry).
pub struct Table(&'static [AtomicU32; 1024]);

/// Places grant-table frame 0 at guest-physical `gpa` (a hole the guest maps as normal
/// memory, identity) and returns it.
pub fn setup<P: Platform>(p: &P, gpa: u64) -> Result<Table, crate::Failure> {
    let mut map =
        XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_GRANT_TABLE, idx: 0, gpfn: gpa >> 12 };
    let r = Hv(p).memory_op(XENMEM_ADD_TO_PHYSMAP, &mut map);
    if r != 0 {
        fail!("add_to_physmap(grant_table): {}", name(r));
    }
    // SAFETY: Keel placed a grant-table frame at `gpa`, which the platform maps identity
    // as normal memory; nothing else in the guest uses that address.
    Ok(Table(unsafe { &*(gpa as *const [AtomicU32; 1024]) }))
}

impl Table {
    /// Grants `domid` access to guest frame `frame` through entry `gref`.
    pub fn grant(&self, gref: u32, domid: DomId, frame: u64, readonly: bool) {
        let i = 2 * gref as usize;
        self.0[i + 1].store(frame as u32, Ordering::Release);
        let flags = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
        self.0[i].store(flags as u32 | (domid as u32) << 16, Ordering::Release);
    }

    /// Revokes entry `gref` as a hostile granter would: a plain store of 0 over the flags,
    /// whatever Keel holds (Linux's compare-and-swap is [`Table::end`]).
    pub fn wipe(&self, gref: u32) {
        self.0[2 * gref as usize].store(0, Ordering::Release);
    }

    /// The flags of entry `gref`.
    pub fn flags(&self, gref: u32) -> u16 {
        self.0[2 * gref as usize].load(Ordering::Acquire) as u16
    }

    /// Ends access through `gref` as Linux does: a compare-and-swap of the flags to 0,
    /// which fails while Keel has the entry mapped or copies through it.
    pub fn end(&self, gref: u32) -> bool {
        let w = &self.0[2 * gref as usize];
        let cur = w.load(Ordering::Acquire);
        if cur as u16 & (GTF_READING | GTF_WRITING) != 0 {
            return false;
        }
        w.compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

/// `GNTTABOP_map_grant_ref` of `gref` of `dom` at guest-physical `at`: `(status, handle)`.
pub fn map<P: Platform>(p: &P, dom: DomId, gref: u32, at: u64, readonly: bool) -> (i16, u32) {
    let flags = GNTMAP_HOST_MAP | if readonly { GNTMAP_READONLY } else { 0 };
    let mut op =
        GnttabMapGrantRef { host_addr: at, flags, grant_ref: gref, dom, status: 0, handle: 0, dev_bus_addr: 0 };
    let mut buf = [0u8; 32];
    let _ = op.write_bytes(&mut buf);
    if Hv(p).grant_op(GNTTABOP_MAP_GRANT_REF, &mut buf, 1) != 0 {
        return (GNTST_GENERAL_ERROR, 0);
    }
    if let Some(done) = GnttabMapGrantRef::from_bytes(&buf) {
        op = done;
    }
    (op.status, op.handle)
}

/// `GNTTABOP_unmap_grant_ref`: the status.
pub fn unmap<P: Platform>(p: &P, at: u64, handle: u32) -> i16 {
    let op = GnttabUnmapGrantRef { host_addr: at, dev_bus_addr: 0, handle, status: 0, _pad: [0; 2] };
    let mut buf = [0u8; 24];
    let _ = op.write_bytes(&mut buf);
    if Hv(p).grant_op(GNTTABOP_UNMAP_GRANT_REF, &mut buf, 1) != 0 {
        return GNTST_GENERAL_ERROR;
    }
    GnttabUnmapGrantRef::from_bytes(&buf).map_or(GNTST_GENERAL_ERROR, |o| o.status)
}

/// One side of a copy: a grant reference of `domid`, or a frame of the caller.
#[derive(Clone, Copy, Debug)]
pub enum Side {
    Grant { domid: DomId, gref: u32 },
    Frame(u64),
}

fn copy_op(src: Side, dst: Side, len: u16) -> GnttabCopy {
    let ptr = |s: Side| match s {
        Side::Grant { domid, gref } => GnttabCopyPtr { ref_or_gfn: gref as u64, domid, offset: 0, _pad: [0; 4] },
        Side::Frame(gfn) => GnttabCopyPtr { ref_or_gfn: gfn, domid: DOMID_SELF, offset: 0, _pad: [0; 4] },
    };
    let mut flags = 0;
    if matches!(src, Side::Grant { .. }) {
        flags |= GNTCOPY_SOURCE_GREF;
    }
    if matches!(dst, Side::Grant { .. }) {
        flags |= GNTCOPY_DEST_GREF;
    }
    GnttabCopy { source: ptr(src), dest: ptr(dst), len, flags, status: 0, _pad: [0; 2] }
}

/// `GNTTABOP_copy` of `len` bytes from `src` to `dst`: the status.
pub fn copy<P: Platform>(p: &P, src: Side, dst: Side, len: u16) -> i16 {
    let mut status = [GNTST_GENERAL_ERROR];
    copy_batch(p, &[(src, dst)], len, &mut status);
    status[0]
}

/// The most ops [`copy_batch`] sends in one call.
pub const COPY_BATCH: usize = 32;

/// One `GNTTABOP_copy` call of up to [`COPY_BATCH`] ops, each `len` bytes from its
/// source to its destination; each op's status lands in `status` (`general_error` for
/// all if the call itself failed).
pub fn copy_batch<P: Platform>(p: &P, ops: &[(Side, Side)], len: u16, status: &mut [i16]) {
    let n = ops.len().min(COPY_BATCH).min(status.len());
    let mut buf = [0u8; COPY_BATCH * GnttabCopy::SIZE];
    for (i, &(src, dst)) in ops[..n].iter().enumerate() {
        let _ = copy_op(src, dst, len).write_bytes(&mut buf[i * GnttabCopy::SIZE..]);
    }
    let r = Hv(p).grant_op(GNTTABOP_COPY, &mut buf, n as u32);
    for (i, s) in status[..n].iter_mut().enumerate() {
        *s = match GnttabCopy::from_bytes(&buf[i * GnttabCopy::SIZE..]) {
            Some(o) if r == 0 => o.status,
            _ => GNTST_GENERAL_ERROR,
        };
    }
}

/// Fails unless `status` is `GNTST_okay`.
pub fn ok(status: i16, what: &str) -> Outcome {
    if status != GNTST_OKAY {
        fail!("{what}: grant status {status}");
    }
    Ok(())
}

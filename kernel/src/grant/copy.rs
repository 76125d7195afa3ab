//! `GNTTABOP_copy`: copies within one page between grant references and/or the caller's
//! own frames, holding `GTF_reading` on the source and `GTF_writing` on the destination
//! only while it runs.

use super::ops::{pin_entry, unpin_entry};
use crate::arch::{Arch, HostMemory};
use crate::domain::{Domain, DomainTable};
use crate::mm::{PhysAddr, PAGE_SIZE};
use crate::p2m::PageKind;
use alloc::sync::Arc;
use keel_abi::grant::*;
use keel_abi::xen::DOMID_SELF;

/// One side of a copy, pinned.
struct Side<A: Arch> {
    domain: Arc<Domain<A>>,
    frame: PhysAddr,
    /// The grant pinned, or `None` for a frame of the caller.
    gref: Option<u32>,
    readonly: bool,
}

impl<A: Arch> Side<A> {
    fn release(self, hv: &impl DomainTable<A>) {
        match self.gref {
            Some(gref) => unpin_entry(hv, &self.domain, &mut self.domain.grants.lock(), gref, self.readonly, None),
            None => self.domain.mm.lock().unpin(hv.frame_pool(), self.frame),
        }
    }
}

fn claim<A: Arch>(
    hv: &impl DomainTable<A>,
    caller: &Arc<Domain<A>>,
    ptr: &GnttabCopyPtr,
    is_gref: bool,
    readonly: bool,
) -> Result<Side<A>, i16> {
    if ptr.domid != DOMID_SELF && !is_gref {
        return Err(GNTST_PERMISSION_DENIED);
    }
    let d = hv.resolve(caller, ptr.domid).ok_or(GNTST_BAD_DOMAIN)?;
    if is_gref {
        let gref = u32::try_from(ptr.ref_or_gfn).map_err(|_| GNTST_BAD_GNTREF)?;
        let frame = pin_entry(&d, &mut d.grants.lock(), gref, caller.id(), readonly, false)?;
        Ok(Side { domain: d, frame, gref: Some(gref), readonly })
    } else {
        let mut mm = d.mm.lock();
        match mm.lookup(ptr.ref_or_gfn) {
            Some(l) if l.kind == PageKind::Ram && (readonly || l.perms.write) => {}
            _ => return Err(GNTST_BAD_PAGE),
        }
        let frame = mm.pin_ram(ptr.ref_or_gfn).map_err(|_| GNTST_BAD_PAGE)?;
        drop(mm);
        Ok(Side { domain: d, frame, gref: None, readonly })
    }
}

/// Performs one copy op for `caller`; returns its `GNTST_*` status.
pub fn copy<A: Arch>(hv: &impl DomainTable<A>, caller: &Arc<Domain<A>>, op: &GnttabCopy) -> i16 {
    if op.len == 0 {
        return GNTST_OKAY;
    }
    // Domains are checked before anything is pinned, as Xen locks them first.
    for (ptr, gref) in
        [(&op.source, op.flags & GNTCOPY_SOURCE_GREF != 0), (&op.dest, op.flags & GNTCOPY_DEST_GREF != 0)]
    {
        if ptr.domid != DOMID_SELF && !gref {
            return GNTST_PERMISSION_DENIED;
        }
        if hv.resolve(caller, ptr.domid).is_none() {
            return GNTST_BAD_DOMAIN;
        }
    }
    let src = match claim(hv, caller, &op.source, op.flags & GNTCOPY_SOURCE_GREF != 0, true) {
        Ok(s) => s,
        Err(st) => return st,
    };
    let dst = match claim(hv, caller, &op.dest, op.flags & GNTCOPY_DEST_GREF != 0, false) {
        Ok(d) => d,
        Err(st) => {
            src.release(hv);
            return st;
        }
    };
    let len = op.len as u64;
    let status = if op.source.offset as u64 + len > PAGE_SIZE || op.dest.offset as u64 + len > PAGE_SIZE {
        GNTST_BAD_COPY_ARG
    } else {
        let mut buf = [0u8; 512];
        let mut done = 0;
        while done < len {
            let n = usize::try_from(len - done).unwrap_or(usize::MAX).min(buf.len());
            A::Memory::read(PhysAddr(src.frame.0 + op.source.offset as u64 + done), &mut buf[..n]);
            A::Memory::write(PhysAddr(dst.frame.0 + op.dest.offset as u64 + done), &buf[..n]);
            done += n as u64;
        }
        GNTST_OKAY
    };
    dst.release(hv);
    src.release(hv);
    status
}

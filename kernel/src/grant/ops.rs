//! Grant operations between domains: map, unmap, table set-up and size, and what
//! destroying a domain does to grants in both directions.
//!
//! Mapping pins the granter's entry (`GTF_reading`/`GTF_writing` set with
//! compare-and-swap) and frame, then maps the frame into the mapper's P2M at `host_addr`
//! and records the handle. A granter cannot revoke an entry under a mapping: the flags
//! stay set until the last unmap, and the frame stays allocated. Destroying a domain
//! unmaps its mappings of others' grants; others' mappings of its grants stay, as in Xen:
//! the dead domain's pages remain mapped (and its memory, id and table kept) until the
//! mappers unmap them, then it is reaped.

use super::{entry, Active, GrantTable, Mapping, Slot};
use crate::arch::Arch;
use crate::domain::{Domain, DomainTable};
use crate::mm::{PhysAddr, PAGE_SIZE};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use keel_abi::grant::*;
use keel_abi::xen::DomId;

/// Pins `gref` of `g` (its grant table locked in `gt`) for domain `ldom`: sets the entry's
/// flags and, on the first pin, pins the granted frame in `g`'s memory.
pub(crate) fn pin_entry<A: Arch>(
    g: &Domain<A>,
    gt: &mut GrantTable,
    gref: u32,
    ldom: DomId,
    readonly: bool,
    mapping: bool,
) -> Result<PhysAddr, i16> {
    if gt.dying {
        return Err(GNTST_BAD_DOMAIN);
    }
    if gref >= gt.nr_entries() {
        return Err(GNTST_BAD_GNTREF);
    }
    let word = gt.entry_word::<A>(gref).ok_or(GNTST_BAD_GNTREF)?;
    let act = gt.active.get(&gref);
    if act.is_some_and(|a| a.domid != ldom || a.readers.max(a.writers) >= u32::MAX / 2) {
        return Err(GNTST_GENERAL_ERROR);
    }
    let pinned = act.is_some();
    if !pinned || (!readonly && act.is_some_and(|a| a.writers == 0)) {
        entry::acquire(&word, pinned, readonly, mapping, ldom)?;
    }
    let frame = match gt.active.get(&gref) {
        Some(a) => a.frame,
        None => {
            let gfn = gt.entry_frame::<A>(gref).ok_or(GNTST_BAD_GNTREF)?;
            match g.mm.lock().pin_ram(gfn) {
                Ok(f) => f,
                Err(_) => {
                    entry::clear(&word, if readonly { GTF_READING } else { GTF_READING | GTF_WRITING });
                    return Err(GNTST_BAD_PAGE);
                }
            }
        }
    };
    let a = gt.active.entry(gref).or_insert(Active { domid: ldom, readers: 0, writers: 0, frame, maps: vec![] });
    if readonly {
        a.readers += 1;
    } else {
        a.writers += 1;
    }
    Ok(frame)
}

/// Drops a pin taken with [`pin_entry`]; clears `GTF_writing` when the last writable pin
/// goes and `GTF_reading` when the last pin goes, and unpins the frame.
pub(crate) fn unpin_entry<A: Arch>(
    hv: &impl DomainTable<A>,
    g: &Domain<A>,
    gt: &mut GrantTable,
    gref: u32,
    readonly: bool,
    map: Option<(DomId, u32)>,
) {
    let Some(a) = gt.active.get_mut(&gref) else { return };
    if let Some(m) = map {
        a.maps.retain(|&x| x != m);
    }
    if readonly {
        a.readers = a.readers.saturating_sub(1);
    } else {
        a.writers = a.writers.saturating_sub(1);
    }
    let (writers, total, frame) = (a.writers, a.readers + a.writers, a.frame);
    let mut clear = 0;
    if !readonly && writers == 0 {
        clear |= GTF_WRITING;
    }
    if total == 0 {
        clear |= GTF_READING;
        gt.active.remove(&gref);
        g.mm.lock().unpin(hv.frame_pool(), frame);
    }
    if clear != 0 {
        if let Some(w) = gt.entry_word::<A>(gref) {
            entry::clear(&w, clear);
        }
    }
}

/// `GNTTABOP_map_grant_ref` for one op; returns (status, handle).
pub fn map<A: Arch>(hv: &impl DomainTable<A>, m: &Arc<Domain<A>>, op: &GnttabMapGrantRef) -> (i16, u32) {
    if op.flags & (GNTMAP_HOST_MAP | GNTMAP_DEVICE_MAP) == 0 {
        return (GNTST_BAD_GNTREF, 0);
    }
    if op.flags & (GNTMAP_DEVICE_MAP | GNTMAP_APPLICATION_MAP | GNTMAP_CONTAINS_PTE) != 0 {
        return (GNTST_GENERAL_ERROR, 0);
    }
    let Some(g) = (if op.dom == m.id() { Some(m.clone()) } else { hv.domain(op.dom) }) else {
        return (GNTST_BAD_DOMAIN, 0);
    };
    let readonly = op.flags & GNTMAP_READONLY != 0;
    let Some(handle) = m.grants.lock().reserve_handle() else { return (GNTST_NO_SPACE, 0) };
    let frame = {
        let mut gt = g.grants.lock();
        match pin_entry(&g, &mut gt, op.grant_ref, m.id(), readonly, true) {
            Ok(f) => {
                if let Some(a) = gt.active.get_mut(&op.grant_ref) {
                    a.maps.push((m.id(), handle));
                }
                f
            }
            Err(st) => {
                drop(gt);
                m.grants.lock().free_handle(handle);
                // The mapper's (or the granter's) mistake, not Keel's: debug, so that a
                // hostile guest cannot flood the console.
                log::debug!("d{}: map of d{}'s grant ref {} refused ({st})", m.id(), g.id(), op.grant_ref);
                return (st, 0);
            }
        }
    };
    let gfn = op.host_addr / PAGE_SIZE;
    let mapped = m.mm.lock().map_foreign(hv.frame_pool(), gfn, frame, !readonly, handle);
    let mut mt = m.grants.lock();
    if mapped.is_ok() {
        mt.set_slot(handle, Slot::Mapped(Mapping { granter: g.id(), gref: op.grant_ref, gfn, readonly }));
        return (GNTST_OKAY, handle);
    }
    // Undo: the mapping failed.
    mt.free_handle(handle);
    drop(mt);
    if mapped.is_ok() {
        let _ = m.mm.lock().unmap_foreign(hv.frame_pool(), gfn, handle);
    }
    unpin_entry(hv, &g, &mut g.grants.lock(), op.grant_ref, readonly, Some((m.id(), handle)));
    (GNTST_GENERAL_ERROR, 0)
}

/// `GNTTABOP_unmap_grant_ref` for one op.
pub fn unmap<A: Arch>(hv: &impl DomainTable<A>, m: &Arc<Domain<A>>, op: &GnttabUnmapGrantRef) -> i16 {
    let mut ops = [*op];
    unmap_batch(hv, m, &mut ops);
    ops[0].status
}

/// `GNTTABOP_unmap_grant_ref` for a batch of ops: each op's `status` is set as [`unmap`]
/// of the ops one after the other would set it, but the mapper's TLB is flushed once
/// for the batch rather than once per op (a back end unmaps a request's segments
/// together). Every mapping is first removed from the mapper's P2M, then the TLB is
/// flushed, and only then are the granters' entries unpinned: until the flush the
/// mapper's CPUs may still reach a frame through a cached translation, so the frame
/// stays pinned, and the granter cannot revoke the entry, until nothing can reach it.
pub fn unmap_batch<A: Arch>(hv: &impl DomainTable<A>, m: &Arc<Domain<A>>, ops: &mut [GnttabUnmapGrantRef]) {
    let mut removed: Vec<(u32, Mapping)> = Vec::with_capacity(ops.len());
    for op in ops.iter_mut() {
        let mapping = {
            let mut mt = m.grants.lock();
            let Slot::Mapped(mapping) = mt.slot(op.handle) else {
                op.status = GNTST_BAD_HANDLE;
                continue;
            };
            if op.host_addr == 0 {
                // Xen: nothing to remove without an address; the mapping stays.
                op.status = GNTST_OKAY;
                continue;
            }
            if op.host_addr / PAGE_SIZE != mapping.gfn {
                op.status = GNTST_GENERAL_ERROR;
                continue;
            }
            mt.free_handle(op.handle);
            mapping
        };
        let _ = m.mm.lock().unmap_foreign_unflushed(hv.frame_pool(), mapping.gfn, op.handle);
        removed.push((op.handle, mapping));
        op.status = GNTST_OKAY;
    }
    if removed.is_empty() {
        return;
    }
    m.mm.lock().flush_tlb();
    for (handle, mapping) in removed {
        if let Some(g) = hv.domain_any(mapping.granter) {
            unpin_entry(hv, &g, &mut g.grants.lock(), mapping.gref, mapping.readonly, Some((m.id(), handle)));
        }
    }
}

/// Grant teardown of a domain being destroyed.
pub fn teardown<A: Arch>(hv: &impl DomainTable<A>, d: &Arc<Domain<A>>) {
    // Its own mappings of other domains' grants.
    let own: Vec<(u32, Mapping)> = {
        let mut gt = d.grants.lock();
        gt.dying = true;
        let own: Vec<(u32, Mapping)> = gt
            .maptrack
            .iter()
            .enumerate()
            .filter_map(|(h, s)| if let Slot::Mapped(x) = s { Some((u32::try_from(h).ok()?, *x)) } else { None })
            .collect();
        for &(h, _) in &own {
            gt.free_handle(h);
        }
        own
    };
    let mut released: BTreeMap<DomId, usize> = BTreeMap::new();
    for (h, x) in own {
        let _ = d.mm.lock().unmap_foreign(hv.frame_pool(), x.gfn, h);
        if let Some(g) = hv.domain_any(x.granter) {
            unpin_entry(hv, &g, &mut g.grants.lock(), x.gref, x.readonly, Some((d.id(), h)));
        }
        *released.entry(x.granter).or_default() += 1;
    }
    for (granter, n) in released {
        log::info!("d{}: teardown: {n} mappings of d{granter}'s grants released, its entries unpinned", d.id());
    }
    // Other domains' mappings of its grants stay until they unmap them: its pinned
    // frames keep it from being reaped (`Hypervisor::reap` waits for `active` to empty).
}

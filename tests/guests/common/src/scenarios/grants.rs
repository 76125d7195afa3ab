//! `keel.test=grants keel.role=granter|mapper keel.port=N`: two domains joined by a
//! static event channel share pages through grant tables (v1). The granter places its
//! table's first frame in a hole, grants a page read-write (ref 10), a page read-only
//! (ref 11) and a copy target (ref 12) to the domain at the other end of its port, and
//! signals. The mapper maps ref 10 and checks it byte for byte, writes a pattern through
//! it, has a write mapping of ref 11 refused and maps it read-only, copies a page into
//! ref 12 and out of ref 11 (`GNTTABOP_copy`), has a copy into ref 11 refused, unmaps,
//! and signals back. The granter then finds the mapper's bytes in its pages, the
//! read-only page unchanged and every grant idle, and ends access.

use crate::cmdline::{get, get_u64};
use crate::events::{self, send, wait_hits};
use crate::hcall::{name, Hv};
use crate::pages::{self, Page};
use crate::{ensure, expect_eq, fail, say, Outcome, Platform};
use core::sync::atomic::Ordering;
use keel_abi::event::{EvtchnStatus, EVTCHNOP_STATUS, EVTCHNSTAT_INTERDOMAIN};
use keel_abi::grant::*;
use keel_abi::memory::{XenAddToPhysmap, XENMAPSPACE_GRANT_TABLE, XENMEM_ADD_TO_PHYSMAP};
use keel_abi::xen::DOMID_SELF;
use keel_abi::Wire;

const RW_REF: u32 = 10;
const RO_REF: u32 = 11;
const COPY_REF: u32 = 12;
const PAGE: usize = 4096;

/// Byte `i` of pattern `seed`.
fn pattern(seed: u32, i: usize) -> u8 {
    ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed.wrapping_mul(40_503)) >> 13) as u8
}

fn fill(page: &Page, seed: u32) {
    let bytes: [u8; PAGE] = core::array::from_fn(|i| pattern(seed, i));
    page.fill(0, &bytes);
}

/// Bytes of the page at virtual address `va` that differ from pattern `seed`.
fn mismatches(va: usize, seed: u32) -> usize {
    (0..PAGE)
        // SAFETY: `va` is a mapped page (ours, or a grant mapping the caller made).
        .filter(|&i| unsafe { core::ptr::read_volatile((va + i) as *const u8) } != pattern(seed, i))
        .count()
}

fn gfn<P: Platform>(p: &P, page: &Page) -> u64 {
    p.gpa(page.va()) >> 12
}

fn take_page() -> Result<&'static Page, crate::Failure> {
    pages::alloc().ok_or_else(|| crate::Failure::new(format_args!("out of guest pages")))
}

/// The domain at the other end of interdomain port `port`.
fn peer<P: Platform>(p: &P, port: u32) -> Result<u16, crate::Failure> {
    let mut s = EvtchnStatus { dom: DOMID_SELF, port, ..Default::default() };
    let r = Hv(p).event_op(EVTCHNOP_STATUS, &mut s);
    ensure!(r == 0 && s.status == EVTCHNSTAT_INTERDOMAIN, "status of port {port}: {} ({})", name(r), s.status);
    Ok(s.u0 as u16)
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let line = p.cmdline();
    let granter = match get(line, "keel.role") {
        Some("granter") => true,
        Some("mapper") => false,
        other => fail!("keel.role must be granter or mapper, not {other:?}"),
    };
    let Some(port) = get_u64(line, "keel.port").map(|p| p as u32) else { fail!("no keel.port=") };
    events::setup_two_level(p)?;
    p.init_interrupts();
    p.enable_interrupts();
    let peer = peer(p, port)?;
    if granter {
        grant(p, port, peer)
    } else {
        map(p, port, peer)
    }
}

/// Grant table entry `r` (in the frame at `table`): the word with `flags` and `domid`.
fn entry_word(table: usize, r: u32) -> &'static core::sync::atomic::AtomicU32 {
    // SAFETY: `table` is the grant frame Keel placed at a guest-physical address the
    // guest maps; entries are 8 bytes, 4-aligned.
    unsafe { &*((table + 8 * r as usize) as *const core::sync::atomic::AtomicU32) }
}

fn set_entry(table: usize, r: u32, domid: u16, frame: u64, flags: u16) {
    // SAFETY: as in `entry_word`; the frame word is written before the flags enable it.
    unsafe { core::ptr::write_volatile((table + 8 * r as usize + 4) as *mut u32, frame as u32) };
    entry_word(table, r).store(flags as u32 | (domid as u32) << 16, Ordering::Release);
}

fn grant<P: Platform>(p: &P, port: u32, peer: u16) -> Outcome {
    let hv = Hv(p);
    let (hole, _) = p.hole();
    let mut map =
        XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_GRANT_TABLE, idx: 0, gpfn: hole >> 12 };
    let r = hv.memory_op(XENMEM_ADD_TO_PHYSMAP, &mut map);
    ensure!(r == 0, "add_to_physmap(grant_table 0): {}", name(r));
    let table = hole as usize;
    let (rw, ro, target) = (take_page()?, take_page()?, take_page()?);
    fill(rw, 1);
    fill(ro, 2);
    set_entry(table, RW_REF, peer, gfn(p, rw), GTF_PERMIT_ACCESS);
    set_entry(table, RO_REF, peer, gfn(p, ro), GTF_PERMIT_ACCESS | GTF_READONLY);
    set_entry(table, COPY_REF, peer, gfn(p, target), GTF_PERMIT_ACCESS);
    say!(p, "grants: refs {RW_REF} (read-write), {RO_REF} (read-only), {COPY_REF} (copy target) to d{peer}");
    expect_eq!(send(p, port), 0, "send");
    wait_hits(p, port, 1);
    expect_eq!(mismatches(rw.va(), 3), 0, "bytes of ref 10 not written by the mapper");
    expect_eq!(mismatches(target.va(), 4), 0, "bytes of ref 12 not copied by the mapper");
    expect_eq!(mismatches(ro.va(), 2), 0, "bytes of read-only ref 11 changed");
    for r in [RW_REF, RO_REF, COPY_REF] {
        let w = entry_word(table, r);
        let flags = w.load(Ordering::Acquire) as u16;
        ensure!(flags & (GTF_READING | GTF_WRITING) == 0, "ref {r}: still in use (flags {flags:#x})");
        // Ending access: the flags go to 0 unless Keel marked the entry in use meanwhile.
        let done =
            w.compare_exchange(w.load(Ordering::Acquire), (peer as u32) << 16, Ordering::AcqRel, Ordering::Acquire);
        ensure!(done.is_ok(), "ref {r}: ending access failed");
    }
    say!(
        p,
        "grants: the mapper's 4096 bytes in ref {RW_REF}, its copy in ref {COPY_REF}, ref {RO_REF} unchanged; \
         no grant in use; access ended"
    );
    Ok(())
}

/// One `GNTTABOP_map_grant_ref`; `(status, handle)`.
fn map_ref<P: Platform>(p: &P, dom: u16, r: u32, at: u64, readonly: bool) -> (i16, u32) {
    let flags = GNTMAP_HOST_MAP | if readonly { GNTMAP_READONLY } else { 0 };
    let mut op = GnttabMapGrantRef { host_addr: at, flags, grant_ref: r, dom, ..Default::default() };
    let mut b = [0u8; 32];
    let _ = op.write_bytes(&mut b);
    let ret = Hv(p).grant_op(GNTTABOP_MAP_GRANT_REF, &mut b, 1);
    op = GnttabMapGrantRef::from_bytes(&b).unwrap_or_default();
    if ret != 0 {
        return (GNTST_GENERAL_ERROR, 0);
    }
    (op.status, op.handle)
}

fn unmap<P: Platform>(p: &P, handle: u32, at: u64) -> i16 {
    let mut b = [0u8; 24];
    let _ = GnttabUnmapGrantRef { host_addr: at, handle, ..Default::default() }.write_bytes(&mut b);
    let ret = Hv(p).grant_op(GNTTABOP_UNMAP_GRANT_REF, &mut b, 1);
    if ret != 0 {
        return GNTST_GENERAL_ERROR;
    }
    GnttabUnmapGrantRef::from_bytes(&b).map_or(GNTST_GENERAL_ERROR, |o| o.status)
}

/// One `GNTTABOP_copy` of a whole page; its status.
fn copy<P: Platform>(p: &P, source: GnttabCopyPtr, dest: GnttabCopyPtr, flags: u16) -> i16 {
    let mut b = [0u8; 40];
    let _ = GnttabCopy { source, dest, len: PAGE as u16, flags, ..Default::default() }.write_bytes(&mut b);
    let ret = Hv(p).grant_op(GNTTABOP_COPY, &mut b, 1);
    if ret != 0 {
        return GNTST_GENERAL_ERROR;
    }
    GnttabCopy::from_bytes(&b).map_or(GNTST_GENERAL_ERROR, |o| o.status)
}

fn status(s: i16) -> &'static str {
    match s {
        GNTST_OKAY => "okay",
        GNTST_GENERAL_ERROR => "general_error",
        GNTST_BAD_DOMAIN => "bad_domain",
        GNTST_BAD_GNTREF => "bad_gntref",
        GNTST_BAD_HANDLE => "bad_handle",
        GNTST_PERMISSION_DENIED => "permission_denied",
        GNTST_BAD_PAGE => "bad_page",
        _ => "other",
    }
}

fn map<P: Platform>(p: &P, port: u32, peer: u16) -> Outcome {
    wait_hits(p, port, 1);
    let (hole, _) = p.hole();
    let (at_rw, at_ro) = (hole + 0x10_0000, hole + 0x10_1000);

    let (s, rw) = map_ref(p, peer, RW_REF, at_rw, false);
    ensure!(s == GNTST_OKAY, "mapping d{peer} ref {RW_REF}: {}", status(s));
    expect_eq!(mismatches(at_rw as usize, 1), 0, "bytes of ref 10 that differ from the granter's");
    let bytes: [u8; PAGE] = core::array::from_fn(|i| pattern(3, i));
    for (i, b) in bytes.iter().enumerate() {
        // SAFETY: the read-write grant mapping made above.
        unsafe { core::ptr::write_volatile((at_rw as usize + i) as *mut u8, *b) };
    }
    say!(p, "grants: d{peer} ref {RW_REF} mapped read-write at {at_rw:#x}: 4096 bytes match; pattern written");

    let (s, _) = map_ref(p, peer, RO_REF, at_ro, false);
    expect_eq!(status(s), "general_error", "write mapping of read-only ref 11");
    let (s, ro) = map_ref(p, peer, RO_REF, at_ro, true);
    ensure!(s == GNTST_OKAY, "read-only mapping of ref {RO_REF}: {}", status(s));
    expect_eq!(mismatches(at_ro as usize, 2), 0, "bytes of ref 11 that differ from the granter's");
    say!(p, "grants: ref {RO_REF}: write mapping refused (general_error); read-only mapping: 4096 bytes match");

    // Copies: one page of ours (pattern 4) into ref 12; ref 11 into a page of ours.
    let (mine, back) = (take_page()?, take_page()?);
    fill(mine, 4);
    let local = |page: &Page| GnttabCopyPtr { ref_or_gfn: gfn(p, page), domid: DOMID_SELF, ..Default::default() };
    let remote = |r: u32| GnttabCopyPtr { ref_or_gfn: r as u64, domid: peer, ..Default::default() };
    let s = copy(p, local(mine), remote(COPY_REF), GNTCOPY_DEST_GREF);
    ensure!(s == GNTST_OKAY, "copy into ref {COPY_REF}: {}", status(s));
    let s = copy(p, remote(RO_REF), local(back), GNTCOPY_SOURCE_GREF);
    ensure!(s == GNTST_OKAY, "copy out of ref {RO_REF}: {}", status(s));
    expect_eq!(mismatches(back.va(), 2), 0, "copied bytes of ref 11 that differ");
    let s = copy(p, local(mine), remote(RO_REF), GNTCOPY_DEST_GREF);
    expect_eq!(status(s), "general_error", "copy into read-only ref 11");
    say!(p, "grants: copied 4096 bytes into ref {COPY_REF} and out of ref {RO_REF}; copy into ref {RO_REF} refused");

    expect_eq!(status(unmap(p, rw, at_rw)), "okay", "unmap of ref 10");
    expect_eq!(status(unmap(p, ro, at_ro)), "okay", "unmap of ref 11");
    expect_eq!(status(unmap(p, rw, at_rw)), "bad_handle", "second unmap of ref 10");
    expect_eq!(send(p, port), 0, "send");
    say!(p, "grants: unmapped both; a stale handle gets bad_handle");
    Ok(())
}

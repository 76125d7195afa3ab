//! The back end of `backend`: maps front ends' grants into ballooned pages, copies in
//! batches, and checks what Keel does when a front end ends under its mapping.

use super::*;
use crate::balloon;
use crate::events::{send, wait_hits};
use crate::grants::{copy, copy_batch, map, ok, unmap, Side};
use crate::{ensure, expect_eq, say, Probe};
use keel_abi::grant::*;

/// A front end: its port, domain and pattern seed.
pub struct Front {
    pub port: u32,
    pub id: DomId,
    pub seed: u32,
}

/// Rounds of copying all copy pages, each way (16 pages × 16 rounds = 1 MiB).
const ROUNDS: u64 = 16;

pub fn run<P: Platform>(p: &P, fronts: &[Front; 2]) -> Outcome {
    for f in fronts {
        wait_hits(p, f.port, 1);
    }
    balloon_maps(p, fronts)?;
    let first = page()?;
    let mut local = [first; COPY_PAGES];
    for l in local.iter_mut().skip(1) {
        *l = page()?;
    }
    for f in fronts {
        refusals(p, f, local[0])?;
        copies(p, f, &local)?;
        expect_eq!(send(p, f.port), 0, "send");
    }
    // Each side waits for the other's answer before it signals again: two signals of
    // one port before the first is taken would be one event (2-level events coalesce).
    for f in fronts {
        wait_hits(p, f.port, 2);
        super::race::back(p, f, local[0])?;
        expect_eq!(send(p, f.port), 0, "send");
    }
    for f in fronts {
        wait_hits(p, f.port, 3);
    }
    granter_dies(p, &fronts[0])?;
    mapper_dies(p, &fronts[1])
}

/// Whether a read of `page`'s guest-physical address faults (a hole).
fn is_hole<P: Platform>(p: &P, page: &Page) -> bool {
    // A hole aborts the access (arm64), or reads all ones (x86, as Xen's null handler
    // for a PVH domain): two words of the page, so that RAM holding a pattern cannot pass.
    [0u64, 2048].iter().all(|&off| match p.probe_read(p.gpa(page.va()) + off) {
        Probe::Fault(_) => true,
        Probe::Value(u64::MAX) => p.unbacked_reads_all_ones(),
        Probe::Value(_) => false,
    })
}

/// Gives `page` back to Keel and checks that its frame is a hole.
fn balloon_out<P: Platform>(p: &P, page: &Page) -> Outcome {
    balloon::give_back(p, gfn(p, page))?;
    ensure!(is_hole(p, page), "gfn {:#x} still reads after decrease_reservation", gfn(p, page));
    Ok(())
}

/// Repopulates `page`'s frame and checks it is fresh, zeroed, writable RAM.
fn balloon_in<P: Platform>(p: &P, page: &Page) -> Outcome {
    ensure!(is_hole(p, page), "gfn {:#x} is not a hole before populate_physmap", gfn(p, page));
    balloon::take_back(p, gfn(p, page))?;
    ensure!(differs(page, |_| 0).is_none(), "the repopulated gfn {:#x} is not zeroed", gfn(p, page));
    fill(page, pattern(0x77));
    ensure!(differs(page, pattern(0x77)).is_none(), "the repopulated gfn {:#x} does not keep writes", gfn(p, page));
    Ok(())
}

/// Maps `gref` of `f` read-write into ballooned `page`: the handle.
fn map_into<P: Platform>(p: &P, f: &Front, gref: u32, page: &Page) -> Result<u32, Failure> {
    let (status, handle) = map(p, f.id, gref, p.gpa(page.va()), false);
    ok(status, "map_grant_ref into a ballooned page")?;
    Ok(handle)
}

/// Both front ends' data pages mapped at once into two ballooned pages.
fn balloon_maps<P: Platform>(p: &P, fronts: &[Front; 2]) -> Outcome {
    let windows = [page()?, page()?];
    let mut handles = [0u32; 2];
    for ((f, w), h) in fronts.iter().zip(windows).zip(&mut handles) {
        fill(w, pattern(0x33));
        balloon_out(p, w)?;
        *h = map_into(p, f, DATA_REF, w)?;
    }
    for (f, w) in fronts.iter().zip(windows) {
        if let Some(i) = differs(w, pattern(f.seed)) {
            fail!("byte {i} of d{}'s ref {DATA_REF} mapped here differs from what it granted", f.id);
        }
    }
    for ((f, w), h) in fronts.iter().zip(windows).zip(handles) {
        fill(w, pattern(f.seed ^ WRITTEN));
        ok(unmap(p, p.gpa(w.va()), h), "unmap")?;
        balloon_in(p, w)?;
    }
    let [a, b] = [fronts[0].id, fronts[1].id];
    say!(p, "backend: ref {DATA_REF} of d{a} and of d{b} mapped at once into 2 ballooned pages: each its own granter's bytes");
    say!(p, "backend: wrote both through the mappings, unmapped, repopulated (zeroed, writable)");
    Ok(())
}

/// Entries this domain was not granted, mapped and copied.
fn refusals<P: Platform>(p: &P, f: &Front, local: &Page) -> Outcome {
    let window = p.hole().0 + 0x10_0000;
    for (gref, want, what) in [
        (OTHERS_REF, GNTST_GENERAL_ERROR, "a ref granted to another domain"),
        (UNGRANTED_REF, GNTST_GENERAL_ERROR, "a ref never granted"),
        (1 << 20, GNTST_BAD_GNTREF, "a ref beyond the table"),
    ] {
        let (status, _) = map(p, f.id, gref, window, false);
        expect_eq!(status, want, what);
        let (status, _) = map(p, f.id, gref, window, true);
        expect_eq!(status, want, what);
    }
    ensure!(is_hole(p, window_page(window)), "a refused map left something at {window:#x}");
    let status = copy(p, Side::Grant { domid: f.id, gref: OTHERS_REF }, Side::Frame(gfn(p, local)), 4096);
    expect_eq!(status, GNTST_GENERAL_ERROR, "a copy from a ref granted to another domain");
    say!(
        p,
        "backend: d{}'s refs not granted to it refused: another domain's and never granted (general_error), beyond the table (bad_gntref)",
        f.id
    );
    Ok(())
}

/// A page-sized view of `gpa`, for [`is_hole`].
fn window_page(gpa: u64) -> &'static Page {
    // SAFETY: only its address is used (`is_hole` probes it and catches the fault).
    unsafe { &*(gpa as *const Page) }
}

/// Copies [`ROUNDS`] times into all of `f`'s copy pages and out again, in batches.
fn copies<P: Platform>(p: &P, f: &Front, local: &[&'static Page; COPY_PAGES]) -> Outcome {
    for (i, l) in local.iter().enumerate() {
        fill(l, pattern(f.seed.wrapping_add(COPIED).wrapping_add(i as u32)));
    }
    let grant = |i: usize| Side::Grant { domid: f.id, gref: COPY_REF + i as u32 };
    let into: [(Side, Side); COPY_PAGES] = core::array::from_fn(|i| (Side::Frame(gfn(p, local[i])), grant(i)));
    let out: [(Side, Side); COPY_PAGES] = core::array::from_fn(|i| (grant(i), Side::Frame(gfn(p, local[i]))));
    let mut ticks = [0u64; 2];
    for (k, ops) in [into, out].iter().enumerate() {
        if k == 1 {
            for l in local {
                fill(l, |_| 0);
            }
        }
        let start = p.ticks();
        for _ in 0..ROUNDS {
            let mut status = [GNTST_GENERAL_ERROR; COPY_PAGES];
            copy_batch(p, ops, 4096, &mut status);
            if let Some(i) = status.iter().position(|&s| s != GNTST_OKAY) {
                fail!("copy op {i} of a batch with d{}: status {}", f.id, status[i]);
            }
        }
        ticks[k] = p.ticks().wrapping_sub(start).max(1);
    }
    for (i, l) in local.iter().enumerate() {
        if let Some(b) = differs(l, pattern(f.seed.wrapping_add(COPIED).wrapping_add(i as u32))) {
            fail!("byte {b} of copy page {i} came back from d{} different", f.id);
        }
    }
    let bytes = ROUNDS * COPY_PAGES as u64 * 4096;
    let rate = |t: u64| ((bytes as u128 * p.tick_hz() as u128 * 10 / t as u128) >> 20) as u64;
    let (rin, rout) = (rate(ticks[0]), rate(ticks[1]));
    say!(
        p,
        "backend: GNTTABOP_copy with d{}: 1 MiB in and 1 MiB out in batches of {COPY_PAGES} pages, byte for byte; {}.{} MiB/s in, {}.{} MiB/s out (guest clock)",
        f.id,
        rin / 10,
        rin % 10,
        rout / 10,
        rout % 10
    );
    Ok(())
}

/// Whether the other end of interdomain port `port` is gone (Keel unbinds the survivor's
/// port when it destroys a domain).
fn peer_gone<P: Platform>(p: &P, port: u32) -> bool {
    let mut s = EvtchnStatus { dom: DOMID_SELF, _pad: [0; 2], port, status: 0, vcpu: 0, u0: 0, u1: 0 };
    Hv(p).event_op(EVTCHNOP_STATUS, &mut s) == 0 && s.status != EVTCHNSTAT_INTERDOMAIN
}

/// `f` ends while its teardown page is mapped here: as in Xen, the mapping stays (the
/// dead domain's page, unchanged) until this domain unmaps it, and the unmap succeeds.
fn granter_dies<P: Platform>(p: &P, f: &Front) -> Outcome {
    let w = page()?;
    balloon_out(p, w)?;
    let handle = map_into(p, f, TEARDOWN_REF, w)?;
    if let Some(i) = differs(w, pattern(f.seed ^ TEARDOWN)) {
        fail!("byte {i} of d{}'s ref {TEARDOWN_REF} differs from what it granted", f.id);
    }
    expect_eq!(send(p, f.port), 0, "send");
    ensure!(
        within(p, TEARDOWN_SECS, || peer_gone(p, f.port)),
        "d{} was told to end {TEARDOWN_SECS} s ago (guest time); its port is still bound",
        f.id
    );
    ensure!(!is_hole(p, w), "d{} ended and its mapped page was taken away before the unmap", f.id);
    if let Some(i) = differs(w, pattern(f.seed ^ TEARDOWN)) {
        fail!("byte {i} of the dead d{}'s page changed while still mapped", f.id);
    }
    expect_eq!(unmap(p, p.gpa(w.va()), handle), GNTST_OKAY, "unmap after the granter ended");
    ensure!(is_hole(p, w), "gfn {:#x} still reads after the unmap", gfn(p, w));
    balloon_in(p, w)?;
    say!(
        p,
        "backend: d{} ended under its mapped ref {TEARDOWN_REF}: its page stayed mapped and unchanged, unmap said okay, the gfn repopulated",
        f.id
    );
    Ok(())
}

/// This domain ends while it maps `f`'s teardown page.
fn mapper_dies<P: Platform>(p: &P, f: &Front) -> Outcome {
    let w = page()?;
    balloon_out(p, w)?;
    map_into(p, f, TEARDOWN_REF, w)?;
    if let Some(i) = differs(w, pattern(f.seed ^ TEARDOWN)) {
        fail!("byte {i} of d{}'s ref {TEARDOWN_REF} differs from what it granted", f.id);
    }
    fill(w, pattern(f.seed ^ TEARDOWN ^ WRITTEN));
    expect_eq!(send(p, f.port), 0, "send");
    wait_hits(p, f.port, 4);
    say!(p, "backend: ends holding its mapping of d{}'s ref {TEARDOWN_REF}", f.id);
    Ok(())
}

//! `keel.test=grants keel.role=granter|mapper keel.port=N`: two domains joined by a
//! static event channel share pages through grants: a read-write grant mapped, read and
//! written through, a grant copy, and a read-only grant that refuses a write mapping and
//! whose read-only mapping faults on a write. Every byte is checked on both sides.

use crate::events::{self, send, wait_hits};
use crate::grants::{self, copy, map, ok, unmap, Side};
use crate::hcall::Hv;
use crate::pages::{self, Page};
use crate::{cmdline, ensure, expect_eq, fail, say, Outcome, Platform, Probe};
use keel_abi::event::*;
use keel_abi::grant::*;
use keel_abi::xen::{DomId, DOMID_SELF};

const RW_REF: u32 = 8;
const RO_REF: u32 = 9;

fn pattern(seed: u32) -> impl Fn(usize) -> u8 {
    move |i| (i as u32).wrapping_mul(seed).wrapping_add(seed >> 4) as u8
}
const GRANTED: u32 = 0x71;
const READ_ONLY: u32 = 0xb3;
const WRITTEN: u32 = 0x2d;

fn fill(page: &Page, f: impl Fn(usize) -> u8) {
    let bytes: [u8; 4096] = core::array::from_fn(f);
    page.fill(0, &bytes);
}

/// The first byte of `page` that differs from `f`, if any.
fn differs(page: &Page, f: impl Fn(usize) -> u8) -> Option<usize> {
    let mut bytes = [0u8; 4096];
    page.read(0, &mut bytes);
    bytes.iter().enumerate().position(|(i, &b)| b != f(i))
}

/// The page at guest-physical `gpa` (a foreign mapping in the platform's hole).
fn at(gpa: u64) -> &'static Page {
    // SAFETY: `gpa` lies in the platform's hole, mapped identity as normal memory, where
    // the scenario just mapped a granted page; nothing else uses it.
    unsafe { &*(gpa as *const Page) }
}

/// The domain at the other end of static port `port`.
fn peer_of<P: Platform>(p: &P, port: u32) -> Result<DomId, crate::Failure> {
    let mut s = EvtchnStatus { dom: DOMID_SELF, _pad: [0; 2], port, status: 0, vcpu: 0, u0: 0, u1: 0 };
    let r = Hv(p).event_op(EVTCHNOP_STATUS, &mut s);
    if r != 0 || s.status != EVTCHNSTAT_INTERDOMAIN {
        fail!("port {port} is not a static interdomain channel (status {}, result {r})", s.status);
    }
    Ok(s.u0 as DomId)
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let line = p.cmdline();
    let Some(port) = cmdline::get_u64(line, "keel.port").map(|v| v as u32) else { fail!("no keel.port=") };
    events::setup_two_level(p)?;
    p.init_interrupts();
    p.enable_interrupts();
    let peer = peer_of(p, port)?;
    match cmdline::get(line, "keel.role") {
        Some("granter") => granter(p, port, peer),
        Some("mapper") => mapper(p, port, peer),
        other => fail!("keel.role must be granter or mapper, not {other:?}"),
    }
}

fn granter<P: Platform>(p: &P, port: u32, peer: DomId) -> Outcome {
    let table = grants::setup(p, p.hole().0)?;
    let (rw, ro) = (pages::alloc(), pages::alloc());
    let (Some(rw), Some(ro)) = (rw, ro) else { fail!("out of guest pages") };
    fill(rw, pattern(GRANTED));
    fill(ro, pattern(READ_ONLY));
    table.grant(RW_REF, peer, p.gpa(rw.va()) >> 12, false);
    table.grant(RO_REF, peer, p.gpa(ro.va()) >> 12, true);
    say!(p, "grants: granter offers ref {RW_REF} (read-write) and ref {RO_REF} (read-only) to d{peer}");
    expect_eq!(send(p, port), 0, "send");
    wait_hits(p, port, 1);
    if let Some(i) = differs(rw, pattern(WRITTEN)) {
        fail!("byte {i} of the read-write page is not what d{peer} wrote through its mapping");
    }
    if let Some(i) = differs(ro, pattern(READ_ONLY)) {
        fail!("byte {i} of the read-only page changed");
    }
    say!(p, "grants: d{peer} wrote all 4096 bytes of ref {RW_REF} through its mapping; ref {RO_REF} unchanged");
    for gref in [RW_REF, RO_REF] {
        ensure!(table.flags(gref) & (GTF_READING | GTF_WRITING) == 0, "ref {gref} still marked in use");
        ensure!(table.end(gref), "ending access through ref {gref} failed");
    }
    say!(p, "grants: access through both refs ended");
    Ok(())
}

fn mapper<P: Platform>(p: &P, port: u32, peer: DomId) -> Outcome {
    wait_hits(p, port, 1);
    let window = p.hole().0 + 0x10_0000;
    let (status, handle) = map(p, peer, RW_REF, window, false);
    ok(status, "map the read-write ref")?;
    if let Some(i) = differs(at(window), pattern(GRANTED)) {
        fail!("byte {i} of the mapped page differs from what d{peer} granted");
    }
    fill(at(window), pattern(WRITTEN));
    ok(unmap(p, window, handle), "unmap")?;
    say!(p, "grants: mapped ref {RW_REF} of d{peer}: 4096 bytes as granted; wrote 4096 bytes back; unmapped");

    let Some(local) = pages::alloc() else { fail!("out of guest pages") };
    let local_gfn = p.gpa(local.va()) >> 12;
    ok(copy(p, Side::Grant { domid: peer, gref: RW_REF }, Side::Frame(local_gfn), 4096), "grant copy")?;
    if let Some(i) = differs(local, pattern(WRITTEN)) {
        fail!("byte {i} of the grant copy differs");
    }
    say!(p, "grants: copied ref {RW_REF} (4096 bytes) byte for byte");

    let (status, _) = map(p, peer, RO_REF, window, false);
    expect_eq!(status, GNTST_GENERAL_ERROR, "a write mapping of a read-only grant");
    let status = copy(p, Side::Frame(local_gfn), Side::Grant { domid: peer, gref: RO_REF }, 16);
    expect_eq!(status, GNTST_GENERAL_ERROR, "a copy into a read-only grant");
    say!(p, "grants: ref {RO_REF} (read-only): write mapping and copy into it refused (general_error)");
    let (status, handle) = map(p, peer, RO_REF, window, true);
    ok(status, "map the read-only ref read-only")?;
    if let Some(i) = differs(at(window), pattern(READ_ONLY)) {
        fail!("byte {i} of the read-only mapping differs from what d{peer} granted");
    }
    let esr = match p.probe_write(window + 8, 0x5a5a) {
        Probe::Fault(esr) => esr,
        Probe::Value(_) => fail!("a write through the read-only mapping completed"),
    };
    ensure!(differs(at(window), pattern(READ_ONLY)).is_none(), "the read-only page changed");
    ok(unmap(p, window, handle), "unmap the read-only mapping")?;
    say!(
        p,
        "grants: read-only mapping of ref {RO_REF} reads as granted; a write through it faulted (syndrome {esr:#x})"
    );
    expect_eq!(send(p, port), 0, "send");
    Ok(())
}

//! `keel.test=xenbus keel.role=hostile-blkfront`: a block front end that connects to a
//! stock Linux `xen-blkback` through xenstore as blkfront does (a ring page granted to the
//! back end, an unbound event channel, `ring-ref`, `event-channel`, state Initialised),
//! then sends it garbage. The control domain attaches the disk (`vdev=xvda`, read-only);
//! the driver domain must answer every bad request with an error and stay up.
//!
//! In order: a good read (the back end's bytes arrive), segment counts of 0 and 200, a
//! ref it never granted, a ref beyond its table, a ref granted to another domain (whose
//! page must stay unchanged: Keel refuses blkback's map), a sector past the end and one
//! that wraps, a segment whose last sector precedes its first or leaves the page, a write
//! to the read-only disk, an unknown operation, a good read again; then a producer index
//! far ahead (blkback halts this ring alone) and rapid state flips, ending Closed (the
//! back end answers Closed). Each answer is a `hostile-blkfront: ...` line; `data/hostile`
//! = `done` tells the control domain it is over, and it ends when told (`data/finish`),
//! once the disk was detached without its help.

use super::xenbus::{sleep, Ring, XS_ERROR, XS_READ, XS_WRITE};
use crate::console::Text;
use crate::events::send;
use crate::grants;
use crate::hcall::{name, Hv};
use crate::pages::{self, Page};
use crate::{ensure, expect_eq, fail, say, Failure, Outcome, Platform};
use core::fmt::Write;
use keel_abi::event::{EvtchnAllocUnbound, EVTCHNOP_ALLOC_UNBOUND};
use keel_abi::xen::{DomId, DOMID_SELF};

/// The device the control domain attaches (`xvda`).
const DEV: &str = "device/vbd/51712";
/// Grant refs: the shared ring, a data page for the back end, a page granted to domain 0
/// (not the back end), an entry never filled, and one far beyond the table.
const RING_REF: u32 = 10;
const DATA_REF: u32 = 11;
const OTHERS_REF: u32 = 12;
const NEVER_REF: u32 = 20;
const BEYOND_REF: u32 = 0x7fff_fff0;
/// `io/blkif.h`: operations and statuses.
const OP_READ: u8 = 0;
const OP_WRITE: u8 = 1;
const RSP_OKAY: i16 = 0;
const RSP_ERROR: i16 = -1;
const RSP_EOPNOTSUPP: i16 = -2;
/// The shared ring: a 64-byte header, then 32 slots of 112 bytes (a request; a response
/// is 16 bytes in the same slot).
const SLOTS: u32 = 32;
const SLOT: usize = 112;
const HEADER: usize = 64;
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
/// How long the back end may take to answer one request or change state (guest time).
const ANSWER_SECS: u64 = 30;
const STATE_SECS: u64 = 300;
/// What fills the page granted to another domain.
const OTHERS_FILL: u8 = 0x5a;

/// One request's fields (`blkif_request`, one segment).
#[derive(Clone, Copy)]
struct Req {
    op: u8,
    nseg: u8,
    sector: u64,
    gref: u32,
    first: u8,
    last: u8,
}

const GOOD_READ: Req = Req { op: OP_READ, nseg: 1, sector: 0, gref: DATA_REF, first: 0, last: 7 };

struct Front<'r, 'p, P: Platform> {
    ring: &'r mut Ring<'p, P>,
    sring: &'static Page,
    port: u32,
    req_prod: u32,
    id: u64,
}

pub(super) fn run<P: Platform>(ring: &mut Ring<'_, P>) -> Outcome {
    let p = ring.p;
    let backend = wait_read(ring, path(DEV, "backend").as_str(), STATE_SECS)?;
    let be: DomId = read(ring, path(DEV, "backend-id").as_str())?.as_str().parse().unwrap_or(u16::MAX);
    ensure!(be != u16::MAX, "backend-id unreadable");
    say!(p, "hostile-blkfront: disk from d{be} ({})", backend.as_str());
    wait_state(ring, backend.as_str(), "2", "InitWait")?;

    let table = grants::setup(p, p.hole().0)?;
    let sring = page()?;
    let data = page()?;
    let others = page()?;
    others.fill(0, &[OTHERS_FILL; 4096]);
    sring.word(REQ_EVENT).store(1, core::sync::atomic::Ordering::Release);
    sring.word(RSP_EVENT).store(1, core::sync::atomic::Ordering::Release);
    table.grant(RING_REF, be, gfn(p, sring), false);
    table.grant(DATA_REF, be, gfn(p, data), false);
    table.grant(OTHERS_REF, 0, gfn(p, others), false);
    let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: be, port: 0 };
    let r = Hv(p).event_op(EVTCHNOP_ALLOC_UNBOUND, &mut a);
    ensure!(r == 0, "alloc_unbound for d{be}: {}", name(r));
    write(ring, path(DEV, "ring-ref").as_str(), num(u64::from(RING_REF)).as_str())?;
    write(ring, path(DEV, "event-channel").as_str(), num(u64::from(a.port)).as_str())?;
    write(ring, path(DEV, "state").as_str(), "3")?;
    wait_state(ring, backend.as_str(), "4", "Connected")?;
    say!(p, "hostile-blkfront: connected: ring ref {RING_REF}, port {}", a.port);

    let mut f = Front { ring, sring, port: a.port, req_prod: 0, id: 0 };
    f.expect(GOOD_READ, RSP_OKAY, "a good read")?;
    let mut head = [0u8; 18];
    data.read(0, &mut head);
    ensure!(&head == b"KEEL-DISK-PATTERN-", "the good read brought {head:?}, not the disk's pattern");
    say!(p, "hostile-blkfront: a good read: okay, the disk's bytes");
    f.expect(Req { nseg: 0, ..GOOD_READ }, RSP_ERROR, "0 segments")?;
    f.expect(Req { nseg: 200, ..GOOD_READ }, RSP_ERROR, "200 segments")?;
    f.expect(Req { gref: NEVER_REF, ..GOOD_READ }, RSP_ERROR, "a ref never granted")?;
    f.expect(Req { gref: BEYOND_REF, ..GOOD_READ }, RSP_ERROR, "a ref beyond the table")?;
    f.expect(Req { gref: OTHERS_REF, ..GOOD_READ }, RSP_ERROR, "a ref granted to d0")?;
    let mut b = [0u8; 4096];
    others.read(0, &mut b);
    if let Some(i) = b.iter().position(|&x| x != OTHERS_FILL) {
        fail!("byte {i} of the page granted to d0 changed: the back end wrote through a ref not granted to it");
    }
    say!(p, "hostile-blkfront: the page granted to d0 is unchanged");
    f.expect(Req { sector: 1 << 40, ..GOOD_READ }, RSP_ERROR, "a sector past the end")?;
    f.expect(Req { sector: u64::MAX - 3, ..GOOD_READ }, RSP_ERROR, "a sector that wraps")?;
    f.expect(Req { first: 5, last: 2, ..GOOD_READ }, RSP_ERROR, "last sector before the first")?;
    f.expect(Req { last: 8, ..GOOD_READ }, RSP_ERROR, "last sector beyond the page")?;
    f.expect(Req { op: OP_WRITE, ..GOOD_READ }, RSP_ERROR, "a write to the read-only disk")?;
    f.expect(Req { op: 0xee, ..GOOD_READ }, RSP_EOPNOTSUPP, "operation 0xee")?;
    f.expect(GOOD_READ, RSP_OKAY, "a good read again")?;

    // A producer index far ahead of what the ring can hold: blkback halts this ring.
    let before = f.rsp_prod();
    f.req_prod = f.req_prod.wrapping_add(1000);
    f.sring.word(REQ_PROD).store(f.req_prod, core::sync::atomic::Ordering::Release);
    expect_eq!(send(p, f.port), 0, "send");
    sleep(p, 2 * p.tick_hz());
    say!(p, "hostile-blkfront: producer 1000 ahead: {} responses (ring halted)", f.rsp_prod().wrapping_sub(before));

    // Rapid state flips, ending Closed.
    let flips = ["1", "3", "5", "3", "6", "1", "3", "4", "5", "6"];
    for _ in 0..5 {
        for s in flips {
            write(f.ring, path(DEV, "state").as_str(), s)?;
        }
    }
    say!(p, "hostile-blkfront: {} state flips written, last Closed", flips.len() * 5);
    // blkback answers the last flip with Closed and, still online, keeps the device.
    wait_state(f.ring, backend.as_str(), "6", "Closed")?;
    say!(p, "hostile-blkfront: back end Closed after the flips");
    write(f.ring, "data/hostile", "done")?;
    // The control domain detaches the disk as libxl does: over a back end already Closed
    // it writes only `online` 0 (a Closing would never be answered), and the driver
    // domain's agent lets the device go with no further step of this front end's.
    wait_read(f.ring, "data/finish", STATE_SECS)?;
    say!(p, "hostile-blkfront: finished");
    Ok(())
}

impl<P: Platform> Front<'_, '_, P> {
    fn rsp_prod(&self) -> u32 {
        self.sring.word(RSP_PROD).load(core::sync::atomic::Ordering::Acquire)
    }

    /// Puts `r` on the ring, notifies, and waits for its response: its status must be
    /// `want`.
    fn expect(&mut self, r: Req, want: i16, what: &str) -> Outcome {
        let p = self.ring.p;
        self.id += 1;
        let slot = HEADER + (self.req_prod % SLOTS) as usize * SLOT;
        let mut b = [0u8; SLOT];
        b[0] = r.op;
        b[1] = r.nseg;
        b[8..16].copy_from_slice(&self.id.to_le_bytes());
        b[16..24].copy_from_slice(&r.sector.to_le_bytes());
        b[24..28].copy_from_slice(&r.gref.to_le_bytes());
        b[28] = r.first;
        b[29] = r.last;
        self.sring.fill(slot, &b);
        let rsp = self.rsp_prod();
        self.req_prod = self.req_prod.wrapping_add(1);
        self.sring.word(REQ_PROD).store(self.req_prod, core::sync::atomic::Ordering::Release);
        expect_eq!(send(p, self.port), 0, "send");
        let end = p.ticks().saturating_add(ANSWER_SECS * p.tick_hz());
        while self.rsp_prod() == rsp {
            ensure!(p.ticks() < end, "{what}: no response in {ANSWER_SECS} s");
            sleep(p, p.tick_hz() / 100);
        }
        let at = HEADER + (rsp % SLOTS) as usize * SLOT;
        let mut out = [0u8; 16];
        self.sring.read(at, &mut out);
        let id = u64::from_le_bytes([out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]]);
        let status = i16::from_le_bytes([out[10], out[11]]);
        expect_eq!(id, self.id, "{what}: response id");
        say!(p, "hostile-blkfront: {what}: status {status}");
        expect_eq!(status, want, what);
        Ok(())
    }
}

pub(super) fn page() -> Result<&'static Page, Failure> {
    match pages::alloc() {
        Some(p) => Ok(p),
        None => fail!("out of guest pages"),
    }
}

pub(super) fn gfn<P: Platform>(p: &P, page: &Page) -> u64 {
    p.gpa(page.va()) >> 12
}

pub(super) fn num(v: u64) -> Text<24> {
    let mut t = Text::new();
    let _ = write!(t, "{v}");
    t
}

pub(super) fn path(dir: &str, leaf: &str) -> Text<96> {
    let mut t = Text::new();
    let _ = write!(t, "{dir}/{leaf}");
    t
}

/// A node's value (`XS_READ` of `path`, NUL-terminated on the wire).
pub(super) fn read<P: Platform>(ring: &mut Ring<'_, P>, path: &str) -> Result<Text<96>, Failure> {
    let mut z: Text<100> = Text::new();
    let _ = write!(z, "{path}\0");
    let r = ring.call(XS_READ, 0, &[z.as_bytes()])?;
    ensure!(r.ty == XS_READ, "read {path}: {}", if r.ty == XS_ERROR { r.text() } else { "wrong reply type" });
    let mut t = Text::new();
    let _ = write!(t, "{}", r.text());
    Ok(t)
}

pub(super) fn write<P: Platform>(ring: &mut Ring<'_, P>, path: &str, value: &str) -> Outcome {
    let mut z: Text<100> = Text::new();
    let _ = write!(z, "{path}\0");
    ring.ok(XS_WRITE, 0, &[z.as_bytes(), value.as_bytes()], "write")?;
    Ok(())
}

/// Polls `path` every 200 ms until it exists: its value.
pub(super) fn wait_read<P: Platform>(ring: &mut Ring<'_, P>, path: &str, secs: u64) -> Result<Text<96>, Failure> {
    let p = ring.p;
    let end = p.ticks().saturating_add(secs * p.tick_hz());
    loop {
        if let Ok(v) = read(ring, path) {
            return Ok(v);
        }
        ensure!(p.ticks() < end, "{path}: not there after {secs} s");
        sleep(p, p.tick_hz() / 5);
    }
}

/// Polls the back end's `state` until it reads `want`.
fn wait_state<P: Platform>(ring: &mut Ring<'_, P>, backend: &str, want: &str, what: &str) -> Outcome {
    let p = ring.p;
    let state = path(backend, "state");
    let end = p.ticks().saturating_add(STATE_SECS * p.tick_hz());
    loop {
        let now = read(ring, state.as_str()).ok();
        if now.as_ref().is_some_and(|v| v.as_str() == want) {
            say!(p, "hostile-blkfront: back end {what}");
            return Ok(());
        }
        ensure!(
            p.ticks() < end,
            "back end state {:?}, not {what}, after {STATE_SECS} s",
            now.as_ref().map(|v| v.as_str())
        );
        sleep(p, p.tick_hz() / 5);
    }
}

//! `keel.test=xenbus [keel.role=client|flood|poke]`: a xenbus client over the store ring Keel
//! gave the domain (`HVM_PARAM_STORE_PFN`/`_EVTCHN`), served by the xenstore domain.
//!
//! - It waits until the server connects the ring (`connection` 1 → 0, as Linux does).
//! - `client`: `XS_READ domid`; `WRITE`/`READ`/`DIRECTORY` under its own `data`; a watch
//!   that fires at once and on a write; a transaction that conflicts (`EAGAIN`); writes
//!   outside its subtree and to its read-only `name` are `EACCES`.
//! - `flood`: writes nodes under `data` until a quota refuses one (`ENOSPC`: the node
//!   size of `data`, its children's names), then is still answered; a `client` beside it keeps being answered meanwhile.
//! - `hostile-blkfront`: a block front end that talks garbage to a stock Linux blkback
//!   (`xenbus_blkfront.rs`).
//! - `hostile-netfront`: a network front end that talks garbage to a stock Linux netback
//!   (`xenbus_netfront.rs`).
//! - `poke` (`keel.peer=ID`): changes its `data/poke`, readable by domain ID, every 100 ms
//!   until ID's `data/seen` exists (a stock Linux peer's `xenstore-watch` saw a change).

use crate::console::Text;
use crate::events::{self, hits, send};
use crate::hcall::{name, Hv};
use crate::{cmdline, ensure, expect_eq, fail, say, Failure, Outcome, Platform};
use core::fmt::Write;
use core::sync::atomic::{fence, AtomicU32, Ordering};
use keel_abi::hvm::{XenHvmParam, HVMOP_GET_PARAM, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use keel_abi::xen::DOMID_SELF;

const REQ: usize = 0;
const RSP: usize = 1024;
const REQ_CONS: usize = 2048;
const REQ_PROD: usize = 2052;
const RSP_CONS: usize = 2056;
const RSP_PROD: usize = 2060;
const CONNECTION: usize = 2068;
const RING: u32 = 1024;

const XS_DIRECTORY: u32 = 1;
pub(super) const XS_READ: u32 = 2;
const XS_WATCH: u32 = 4;
const XS_TRANSACTION_START: u32 = 6;
const XS_TRANSACTION_END: u32 = 7;
pub(super) const XS_WRITE: u32 = 11;
const XS_SET_PERMS: u32 = 14;
const XS_WATCH_EVENT: u32 = 15;
pub(super) const XS_ERROR: u32 = 16;

/// Longest reply payload kept.
const MAX: usize = 512;

/// The store page, as 32-bit words.
pub(super) struct Ring<'p, P: Platform> {
    pub(super) p: &'p P,
    words: &'static [AtomicU32; 1024],
    port: u32,
    next_id: u32,
    /// Watch events received so far.
    events: u32,
}

/// A reply: its type and payload.
pub(super) struct Reply {
    pub(super) ty: u32,
    len: usize,
    body: [u8; MAX],
}

impl Reply {
    pub(super) fn text(&self) -> &str {
        let b = &self.body[..self.len];
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        core::str::from_utf8(&b[..end]).unwrap_or("?")
    }
}

impl<'p, P: Platform> Ring<'p, P> {
    fn word(&self, at: usize) -> &AtomicU32 {
        &self.words[at / 4]
    }
    fn load(&self, at: usize) -> u32 {
        self.word(at).load(Ordering::Acquire)
    }
    fn byte(&self, at: usize) -> u8 {
        self.load(at & !3).to_le_bytes()[at % 4]
    }
    /// Writes one byte of the request ring (only this side writes there).
    fn put_byte(&self, at: usize, b: u8) {
        let w = self.word(at & !3);
        let mut bytes = w.load(Ordering::Relaxed).to_le_bytes();
        bytes[at % 4] = b;
        w.store(u32::from_le_bytes(bytes), Ordering::Relaxed);
    }

    /// Waits (halting) for an event on the store port after `seen` events.
    fn wait(&self, seen: u32) {
        self.p.disable_interrupts();
        if hits(self.port) == seen {
            self.p.wait_for_interrupt();
        }
        self.p.enable_interrupts();
    }

    fn write_req(&self, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            let seen = hits(self.port);
            let (cons, prod) = (self.load(REQ_CONS), self.load(REQ_PROD));
            let room = (RING - prod.wrapping_sub(cons)) as usize;
            if room == 0 {
                self.wait(seen);
                continue;
            }
            let n = room.min(bytes.len() - done);
            for i in 0..n {
                let at = (prod.wrapping_add(i as u32) & (RING - 1)) as usize;
                self.put_byte(REQ + at, bytes[done + i]);
            }
            fence(Ordering::SeqCst);
            self.word(REQ_PROD).store(prod.wrapping_add(n as u32), Ordering::Release);
            send(self.p, self.port);
            done += n;
        }
    }

    fn read_rsp(&self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let seen = hits(self.port);
            let (cons, prod) = (self.load(RSP_CONS), self.load(RSP_PROD));
            let avail = prod.wrapping_sub(cons) as usize;
            if avail == 0 {
                self.wait(seen);
                continue;
            }
            let n = avail.min(out.len() - done);
            fence(Ordering::SeqCst);
            for (i, slot) in out[done..done + n].iter_mut().enumerate() {
                *slot = self.byte(RSP + (cons.wrapping_add(i as u32) & (RING - 1)) as usize);
            }
            fence(Ordering::SeqCst);
            self.word(RSP_CONS).store(cons.wrapping_add(n as u32), Ordering::Release);
            send(self.p, self.port);
            done += n;
        }
    }

    /// One request; watch events that arrive before its reply are counted.
    pub(super) fn call(&mut self, ty: u32, tx: u32, parts: &[&[u8]]) -> Result<Reply, Failure> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut head = [0u8; 16];
        for (i, v) in [ty, id, tx, len as u32].iter().enumerate() {
            head[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        self.write_req(&head);
        for part in parts {
            self.write_req(part);
        }
        loop {
            let mut h = [0u8; 16];
            self.read_rsp(&mut h);
            let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            let (rty, rid, rlen) = (word(0), word(4), word(12) as usize);
            ensure!(rlen <= MAX, "reply of {rlen} bytes");
            let mut r = Reply { ty: rty, len: rlen, body: [0; MAX] };
            self.read_rsp(&mut r.body[..rlen]);
            if rty == XS_WATCH_EVENT {
                self.events += 1;
                continue;
            }
            expect_eq!(rid, id, "reply id");
            return Ok(r);
        }
    }

    /// A request that must succeed: its reply.
    pub(super) fn ok(&mut self, ty: u32, tx: u32, parts: &[&[u8]], what: &str) -> Result<Reply, Failure> {
        let r = self.call(ty, tx, parts)?;
        ensure!(r.ty == ty, "{what}: {}", if r.ty == XS_ERROR { r.text() } else { "wrong reply type" });
        Ok(r)
    }

    /// A request that must fail with `error`.
    fn refused(&mut self, ty: u32, tx: u32, parts: &[&[u8]], error: &str, what: &str) -> Outcome {
        let r = self.call(ty, tx, parts)?;
        ensure!(r.ty == XS_ERROR, "{what}: accepted, expected {error}");
        expect_eq!(r.text(), error, what);
        Ok(())
    }
}

fn param<P: Platform>(p: &P, index: u32) -> Result<u64, Failure> {
    let mut x = XenHvmParam { domid: DOMID_SELF, index, ..Default::default() };
    let r = Hv(p).hvm_op(HVMOP_GET_PARAM, &mut x);
    ensure!(r == 0, "HVMOP_get_param({index}): {}", name(r));
    Ok(x.value)
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let pfn = param(p, HVM_PARAM_STORE_PFN)?;
    let port = param(p, HVM_PARAM_STORE_EVTCHN)? as u32;
    ensure!(pfn != 0 && pfn != u64::MAX && port != 0, "no store page: pfn {pfn:#x}, port {port}");
    let Some(va) = p.phys_to_virt(pfn << 12) else { fail!("the platform cannot reach frame {pfn:#x}") };
    events::setup_two_level(p)?;
    p.init_interrupts();
    p.enable_interrupts();
    // SAFETY: the store page Keel placed at `pfn`, mapped by the platform at `va`; it is
    // shared with the server, so it is only reached through atomics.
    let words = unsafe { &*(va as *const [AtomicU32; 1024]) };
    let mut ring = Ring { p, words, port, next_id: 1, events: 0 };
    say!(p, "xenbus: store page {pfn:#x}, port {port}; waiting for the server");
    while ring.load(CONNECTION) != 0 {
        ring.wait(hits(port));
    }
    let r = ring.ok(XS_READ, 0, &[b"domid\0"], "read domid")?;
    say!(p, "xenbus: connected; domid {}", r.text());
    let mut domid: Text<8> = Text::new();
    let _ = write!(domid, "{}", r.text());
    let r = ring.ok(XS_READ, 0, &[b"name\0"], "read name")?;
    let mut me: Text<32> = Text::new();
    let _ = write!(me, "{}", r.text());
    match cmdline::get(p.cmdline(), "keel.role") {
        Some("flood") => flood(&mut ring),
        Some("poke") => poke(&mut ring, domid.as_str(), cmdline::get(p.cmdline(), "keel.peer").unwrap_or("")),
        Some("hostile-blkfront") => super::xenbus_blkfront::run(&mut ring),
        Some("hostile-netfront") => super::xenbus_netfront::run(&mut ring),
        _ => client(&mut ring, me.as_str()),
    }
}

fn client<P: Platform>(ring: &mut Ring<'_, P>, me: &str) -> Outcome {
    let p = ring.p;
    ring.ok(XS_WRITE, 0, &[b"data/greeting\0", me.as_bytes()], "write data/greeting")?;
    let r = ring.ok(XS_READ, 0, &[b"data/greeting\0"], "read data/greeting")?;
    expect_eq!(&r.body[..r.len], me.as_bytes(), "data/greeting read back");
    ring.ok(XS_WRITE, 0, &[b"data/other\0", b"1"], "write data/other")?;
    let r = ring.ok(XS_DIRECTORY, 0, &[b"data\0"], "directory data")?;
    expect_eq!(&r.body[..r.len], b"greeting\0other\0".as_slice(), "directory of data");
    say!(p, "xenbus: write, read, directory: ok");

    ring.ok(XS_WATCH, 0, &[b"data/watched\0", b"tok\0"], "watch")?;
    ring.ok(XS_WRITE, 0, &[b"data/watched\0", b"x"], "write data/watched")?;
    // The event of the write follows its reply: one more request flushes it in.
    ring.ok(XS_READ, 0, &[b"data/watched\0"], "read data/watched")?;
    ensure!(ring.events >= 2, "watch events: {} (expected the first one and the write's)", ring.events);
    say!(p, "xenbus: watch fired {} times", ring.events);

    let r = ring.ok(XS_TRANSACTION_START, 0, &[b"\0"], "transaction start")?;
    let tx: u32 = r.text().parse().unwrap_or(0);
    ensure!(tx != 0, "transaction id '{}'", r.text());
    ring.ok(XS_READ, tx, &[b"data/greeting\0"], "read in the transaction")?;
    ring.ok(XS_WRITE, 0, &[b"data/greeting\0", b"changed outside"], "write outside the transaction")?;
    ring.ok(XS_WRITE, tx, &[b"data/greeting\0", b"changed inside"], "write in the transaction")?;
    ring.refused(XS_TRANSACTION_END, tx, &[b"T\0"], "EAGAIN", "commit of a conflicting transaction")?;
    let r = ring.ok(XS_READ, 0, &[b"data/greeting\0"], "read after the conflict")?;
    expect_eq!(r.text(), "changed outside", "value after the failed commit");
    say!(p, "xenbus: conflicting transaction: EAGAIN");

    ring.refused(XS_WRITE, 0, &[b"/local/intruder\0", b"x"], "EACCES", "write outside its subtree")?;
    ring.refused(XS_WRITE, 0, &[b"name\0", b"renamed"], "EACCES", "write to its read-only name")?;
    say!(p, "xenbus: writes outside its subtree: EACCES");
    Ok(())
}

fn flood<P: Platform>(ring: &mut Ring<'_, P>) -> Outcome {
    let p = ring.p;
    let mut n = 0u32;
    let start = p.ticks();
    loop {
        let mut path: Text<32> = Text::new();
        let _ = write!(path, "data/n{n}\0");
        let r = ring.call(XS_WRITE, 0, &[path.as_bytes(), b"v"])?;
        if r.ty == XS_ERROR {
            expect_eq!(r.text(), "ENOSPC", "the write over the quota");
            break;
        }
        ensure!(r.ty == XS_WRITE, "write {n}: wrong reply type {}", r.ty);
        n += 1;
        ensure!(n <= 5000, "no quota after {n} nodes");
    }
    // A figure, not a bound: the guest's own clock, round trips through the server.
    let us = p.ticks().wrapping_sub(start).saturating_mul(1_000_000) / p.tick_hz().max(1);
    let per_s = u64::from(n + 1).saturating_mul(1_000_000) / us.max(1);
    say!(p, "xenbus: flood: ENOSPC after {n} nodes ({} writes in {us} us of guest time, {per_s}/s)", n + 1);
    let r = ring.ok(XS_READ, 0, &[b"data/n0\0"], "read after the flood")?;
    expect_eq!(r.text(), "v", "data/n0");
    say!(p, "xenbus: flood: still answered");
    Ok(())
}

/// How long `poke` keeps changing its node for a peer that never says it saw a change, on
/// the guest's own clock.
const POKE_LIMIT_S: u64 = 300;

/// `poke` (`keel.peer=ID`): another domain's watch target. Makes its `data/poke` readable
/// by domain ID, then writes a new value there every 100 ms until ID's `data/seen` (which ID
/// lets it read) exists: the peer's watch saw a change made by this domain.
fn poke<P: Platform>(ring: &mut Ring<'_, P>, me: &str, peer: &str) -> Outcome {
    let p = ring.p;
    ensure!(!peer.is_empty() && peer.bytes().all(|b| b.is_ascii_digit()), "keel.peer='{peer}': not a domain id");
    ring.ok(XS_WRITE, 0, &[b"data/poke\0", b"0"], "write data/poke")?;
    let mut perms: Text<32> = Text::new();
    let _ = write!(perms, "n{me}\0r{peer}\0");
    ring.ok(XS_SET_PERMS, 0, &[b"data/poke\0", perms.as_bytes()], "set_perms data/poke")?;
    say!(p, "xenbus: poke: data/poke readable by d{peer}");
    let mut seen: Text<48> = Text::new();
    let _ = write!(seen, "/local/domain/{peer}/data/seen\0");
    let start = p.ticks();
    let mut n = 0u32;
    loop {
        n += 1;
        let mut value: Text<12> = Text::new();
        let _ = write!(value, "{n}");
        ring.ok(XS_WRITE, 0, &[b"data/poke\0", value.as_bytes()], "write data/poke")?;
        let r = ring.call(XS_READ, 0, &[seen.as_bytes()])?;
        if r.ty == XS_READ {
            say!(p, "xenbus: poke: d{peer} saw data/poke change (it says '{}')", r.text());
            return Ok(());
        }
        let elapsed = p.ticks().wrapping_sub(start) / p.tick_hz().max(1);
        ensure!(elapsed < POKE_LIMIT_S, "d{peer} saw no change in {elapsed} s ({n} writes)");
        sleep(p, p.tick_hz() / 10);
    }
}

/// Halts for `ticks` of the guest's clock.
pub(super) fn sleep<P: Platform>(p: &P, ticks: u64) {
    let deadline = p.ticks().saturating_add(ticks);
    p.set_timer(deadline);
    p.disable_interrupts();
    while p.ticks() < deadline {
        p.wait_for_interrupt();
        p.enable_interrupts();
        p.disable_interrupts();
    }
    p.enable_interrupts();
    p.stop_timer();
}

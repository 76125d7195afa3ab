//! `keel.test=xenbus keel.role=hostile-netfront`: a network front end that connects to a
//! stock Linux `xen-netback` through xenstore as netfront does (`io/netif.h`: a tx and an
//! rx ring page granted to the back end, an unbound event channel, `tx-ring-ref`,
//! `rx-ring-ref`, `event-channel`, `request-rx-copy`, `feature-rx-notify`, state
//! Connected), then sends it garbage. The control domain attaches three vifs to it.
//!
//! vif 0, each answered with a tx response (netback goes on serving the vif): a good
//! ARP request for the back end's bridge (and its reply through the rx ring), refs never
//! granted, beyond the table and granted to another domain (whose page stays unchanged),
//! a packet of 0 bytes, a packet of 20 slots (netback drops more than 18), rx requests
//! with bad refs (each answered with the failed copy's status), a grant revoked (a plain
//! store over the entry) while netback maps it, then a request crossing the end of its
//! page, which netback treats as fatal: it halts the vif. vif 1: a packet of 26 slots
//! (netback's "malicious" threshold is 20). vif 2: a producer index 1000 ahead. Each step
//! is a `hostile-netfront: ...` line; then it stops answering altogether (it never reads
//! its rings again) and says `data/hostile` = `done`; it ends when told (`data/finish`).

use super::xenbus::{sleep, Ring};
use super::xenbus_blkfront::{gfn, num, page, path, read, wait_read, write};
use crate::console::Text;
use crate::events::send;
use crate::grants::{self, Table};
use crate::hcall::{name, Hv};
use crate::pages::Page;
use crate::{ensure, expect_eq, fail, say, Failure, Outcome, Platform};
use core::sync::atomic::Ordering;
use keel_abi::event::{EvtchnAllocUnbound, EVTCHNOP_ALLOC_UNBOUND};
use keel_abi::xen::{DomId, DOMID_SELF};

/// Ring refs of vif n: tx `10 + 2n`, rx `11 + 2n`.
const RING_REF: u32 = 10;
/// The tx data page (read-only to the back end), the rx pages (ids 0..RX_PAGES), a page
/// granted to another domain, the page revoked mid-request, an entry never filled and
/// one far beyond the table.
const TX_REF: u32 = 30;
const RX_REF: u32 = 31;
const RX_PAGES: u16 = 4;
const OTHERS_REF: u32 = 40;
const REVOKE_REF: u32 = 41;
const NEVER_REF: u32 = 60;
const BEYOND_REF: u32 = 0x7fff_fff0;
/// `io/ring.h` with `io/netif.h`'s entries: a 64-byte header, then 256 slots of 12 bytes
/// (tx) or 8 bytes (rx).
const HEADER: usize = 64;
const SLOTS: u32 = 256;
const TX_SLOT: usize = 12;
const RX_SLOT: usize = 8;
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
/// `NETTXF_more_data`, `NETIF_RSP_ERROR`, `NETIF_RSP_OKAY`.
const MORE_DATA: u16 = 4;
const RSP_ERROR: i16 = -1;
const RSP_OKAY: i16 = 0;
/// How long the back end may take to answer (guest time), and how long a halted vif is
/// watched for an answer that must not come.
const ANSWER_SECS: u64 = 30;
const STATE_SECS: u64 = 300;
const HALTED_SECS: u64 = 5;
/// What fills the page granted to another domain.
const OTHERS_FILL: u8 = 0x5a;
/// vif 0's IPv4 address, and the back end's bridge it asks for (`10.0.0.3`, `10.0.0.1`).
const MY_IP: [u8; 4] = [10, 0, 0, 3];
const BRIDGE_IP: [u8; 4] = [10, 0, 0, 1];

/// One tx request (`netif_tx_request`).
#[derive(Clone, Copy)]
struct Tx {
    gref: u32,
    offset: u16,
    flags: u16,
    size: u16,
}

/// An ARP request (60 bytes, at offset 0 of the tx data page).
const ARP: Tx = Tx { gref: TX_REF, offset: 0, flags: 0, size: 60 };

/// One connected vif.
struct Vif {
    n: u32,
    tx: &'static Page,
    rx: &'static Page,
    port: u32,
    tx_prod: u32,
    tx_cons: u32,
    rx_prod: u32,
    rx_cons: u32,
    next_id: u16,
}

/// The pages every vif uses.
struct Pages {
    table: Table,
    rxd: [&'static Page; RX_PAGES as usize],
    others: &'static Page,
    revoke: &'static Page,
    be: DomId,
    other: DomId,
}

pub(super) fn run<P: Platform>(ring: &mut Ring<'_, P>) -> Outcome {
    let p = ring.p;
    let backend = wait_read(ring, "device/vif/0/backend", STATE_SECS)?;
    let be: DomId = read(ring, "device/vif/0/backend-id")?.as_str().parse().unwrap_or(u16::MAX);
    ensure!(be != u16::MAX, "backend-id unreadable");
    // A domain that is neither the back end nor this one (the xenstore domain is 1).
    let other: DomId = if be == 0 { 1 } else { 0 };
    say!(p, "hostile-netfront: vif from d{be} ({})", backend.as_str());
    let mac = mac_of(ring, "device/vif/0/mac")?;

    let table = grants::setup(p, p.hole().0)?;
    let txd = page()?;
    let rxd = [page()?, page()?, page()?, page()?];
    let others = page()?;
    let revoke = page()?;
    others.fill(0, &[OTHERS_FILL; 4096]);
    txd.fill(0, &arp_request(&mac));
    revoke.fill(0, &[0x77; 4096]);
    table.grant(TX_REF, be, gfn(p, txd), true);
    for (i, d) in rxd.iter().enumerate() {
        table.grant(RX_REF + i as u32, be, gfn(p, d), false);
    }
    table.grant(OTHERS_REF, other, gfn(p, others), false);
    let pg = Pages { table, rxd, others, revoke, be, other };

    let mut v = connect(ring, &pg, 0)?;
    for id in 0..RX_PAGES {
        v.rx_post(p, id, RX_REF + u32::from(id));
    }
    // The ARP exchange: the back end's bridge answers through the rx ring.
    v.expect(p, &[ARP], RSP_OKAY, "a good ARP request")?;
    let bridge_mac = v.arp_reply(p, &pg, true)?;
    say!(p, "hostile-netfront: the ARP reply from 10.0.0.1 arrived through the rx ring");

    let bad = Tx { size: 200, ..ARP };
    v.expect(p, &[Tx { gref: NEVER_REF, ..bad }], RSP_ERROR, "a ref never granted")?;
    v.expect(p, &[Tx { gref: BEYOND_REF, ..bad }], RSP_ERROR, "a ref beyond the table")?;
    let what = label("a ref granted to d", pg.other);
    v.expect(p, &[Tx { gref: OTHERS_REF, ..bad }], RSP_ERROR, what.as_str())?;
    v.expect(p, &[Tx { size: 0, ..ARP }], RSP_ERROR, "a packet of 0 bytes")?;
    // 20 slots: more than the 18 netback takes, fewer than the 20 after which it calls
    // the front end malicious: each slot is answered with an error.
    let mut chain = [Tx { size: 60, flags: MORE_DATA, ..ARP }; 20];
    chain[0].size = 2000;
    chain[19].flags = 0;
    v.expect(p, &chain, RSP_ERROR, "a packet of 20 slots")?;

    rx_garbage(p, &mut v, &pg)?;
    v.expect(p, &[ARP], RSP_OKAY, "a good ARP request again")?;
    v.arp_reply(p, &pg, true)?;
    say!(p, "hostile-netfront: the vif still serves: ARP reply received");

    // Grant, then revoke while netback has it: a 1000-byte frame to the bridge (128
    // bytes copied, the rest mapped), the entry wiped right after the notification.
    let mut frame = [0u8; 64];
    frame[0..6].copy_from_slice(&bridge_mac);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&[0x88, 0xb5]);
    pg.revoke.fill(0, &frame);
    pg.table.grant(REVOKE_REF, pg.be, gfn(p, pg.revoke), true);
    v.push(p, &[Tx { gref: REVOKE_REF, offset: 0, flags: 0, size: 1000 }]);
    pg.table.wipe(REVOKE_REF);
    let (got, status) = v.answers(p, 1, ANSWER_SECS);
    ensure!(got == 1, "the revoked grant's request: no answer in {ANSWER_SECS} s");
    say!(p, "hostile-netfront: a grant revoked mid-request: answered (status {status})");
    v.expect(p, &[ARP], RSP_OKAY, "a good ARP request after the revoke")?;
    v.arp_reply(p, &pg, true)?;

    // Fatal for netback: a request crossing the end of its page.
    v.halts(p, &[Tx { offset: 4000, size: 200, ..ARP }], "a request crossing its page")?;

    // vif 1: 26 slots, vif 2: a producer 1000 ahead.
    let mut v1 = connect(ring, &pg, 1)?;
    let mut chain = [Tx { size: 60, flags: MORE_DATA, ..ARP }; 26];
    chain[0].size = 4000;
    chain[25].flags = 0;
    v1.halts(p, &chain, "a packet of 26 slots")?;
    let mut v2 = connect(ring, &pg, 2)?;
    v2.tx_prod = v2.tx_prod.wrapping_add(1000);
    v2.halts(p, &[ARP], "a producer 1000 ahead")?;

    // From now on it answers nothing: its rings are never read again.
    write(ring, "data/hostile", "done")?;
    say!(p, "hostile-netfront: silent from now on");
    wait_read(ring, "data/finish", 3 * STATE_SECS)?;
    say!(p, "hostile-netfront: finished");
    Ok(())
}

/// Rx requests whose refs are bad: never granted, beyond the table, granted to another
/// domain. Good rx pages are not posted again until all three are answered (ARP requests
/// make the back end send); each answer carries the failed copy's status, and the page
/// granted to another domain is unchanged.
fn rx_garbage<P: Platform>(p: &P, v: &mut Vif, pg: &Pages) -> Outcome {
    let bad = [
        (100u16, NEVER_REF, "never granted"),
        (101, BEYOND_REF, "beyond the table"),
        (102, OTHERS_REF, "granted to another domain"),
    ];
    for (id, gref, _) in bad {
        v.rx_post(p, id, gref);
    }
    let mut seen = [None::<i16>; 3];
    let end = p.ticks().saturating_add(2 * ANSWER_SECS * p.tick_hz());
    while seen.iter().any(Option::is_none) {
        ensure!(p.ticks() < end, "rx requests with bad refs: answered {seen:?} in {} s", 2 * ANSWER_SECS);
        v.expect_quiet(p, &[ARP], RSP_OKAY, "an ARP request")?;
        sleep(p, p.tick_hz() / 2);
        while let Some((id, _off, _flags, status)) = v.rx_next() {
            if let Some(i) = bad.iter().position(|b| b.0 == id) {
                seen[i] = Some(status);
            }
        }
    }
    for (i, (_, _, what)) in bad.iter().enumerate() {
        let s = seen[i].unwrap_or(0);
        say!(p, "hostile-netfront: an rx request with a ref {what}: status {s}");
        ensure!(s < 0, "an rx request with a ref {what}: status {s}, not an error");
    }
    let mut b = [0u8; 4096];
    pg.others.read(0, &mut b);
    if let Some(i) = b.iter().position(|&x| x != OTHERS_FILL) {
        fail!(
            "byte {i} of the page granted to d{} changed: the back end wrote through a ref not granted to it",
            pg.other
        );
    }
    say!(p, "hostile-netfront: the page granted to d{} is unchanged", pg.other);
    for id in 0..RX_PAGES {
        v.rx_post(p, id, RX_REF + u32::from(id));
    }
    Ok(())
}

/// Connects vif `n` as netfront does and waits for the back end to say Connected.
fn connect<P: Platform>(ring: &mut Ring<'_, P>, pg: &Pages, n: u32) -> Result<Vif, Failure> {
    let p = ring.p;
    let dev = dev_path(n);
    let backend = wait_read(ring, path(dev.as_str(), "backend").as_str(), STATE_SECS)?;
    wait_state(ring, backend.as_str(), "2", n, "InitWait")?;
    let tx = page()?;
    let rx = page()?;
    for r in [tx, rx] {
        r.word(REQ_EVENT).store(1, Ordering::Release);
        r.word(RSP_EVENT).store(1, Ordering::Release);
    }
    pg.table.grant(RING_REF + 2 * n, pg.be, gfn(p, tx), false);
    pg.table.grant(RING_REF + 2 * n + 1, pg.be, gfn(p, rx), false);
    let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: pg.be, port: 0 };
    let r = Hv(p).event_op(EVTCHNOP_ALLOC_UNBOUND, &mut a);
    ensure!(r == 0, "alloc_unbound for d{}: {}", pg.be, name(r));
    let d = dev.as_str();
    write(ring, path(d, "tx-ring-ref").as_str(), num(u64::from(RING_REF + 2 * n)).as_str())?;
    write(ring, path(d, "rx-ring-ref").as_str(), num(u64::from(RING_REF + 2 * n + 1)).as_str())?;
    write(ring, path(d, "event-channel").as_str(), num(u64::from(a.port)).as_str())?;
    write(ring, path(d, "request-rx-copy").as_str(), "1")?;
    write(ring, path(d, "feature-rx-notify").as_str(), "1")?;
    write(ring, path(d, "state").as_str(), "4")?;
    wait_state(ring, backend.as_str(), "4", n, "Connected")?;
    Ok(Vif { n, tx, rx, port: a.port, tx_prod: 0, tx_cons: 0, rx_prod: 0, rx_cons: 0, next_id: 0 })
}

impl Vif {
    /// Puts `reqs` on the tx ring and notifies.
    fn push<P: Platform>(&mut self, p: &P, reqs: &[Tx]) {
        for r in reqs {
            let at = HEADER + (self.tx_prod % SLOTS) as usize * TX_SLOT;
            let mut b = [0u8; TX_SLOT];
            b[0..4].copy_from_slice(&r.gref.to_le_bytes());
            b[4..6].copy_from_slice(&r.offset.to_le_bytes());
            b[6..8].copy_from_slice(&r.flags.to_le_bytes());
            b[8..10].copy_from_slice(&self.next_id.to_le_bytes());
            b[10..12].copy_from_slice(&r.size.to_le_bytes());
            self.tx.fill(at, &b);
            self.next_id = (self.next_id + 1) % 256;
            self.tx_prod = self.tx_prod.wrapping_add(1);
        }
        self.tx.word(REQ_PROD).store(self.tx_prod, Ordering::Release);
        let _ = send(p, self.port);
    }

    /// Waits up to `secs` for `want` tx responses: how many came, and the status of the
    /// first one that is not okay (else okay).
    fn answers<P: Platform>(&mut self, p: &P, want: u32, secs: u64) -> (u32, i16) {
        let end = p.ticks().saturating_add(secs * p.tick_hz());
        let mut got = 0;
        let mut status = RSP_OKAY;
        while got < want && p.ticks() < end {
            let prod = self.tx.word(RSP_PROD).load(Ordering::Acquire);
            while self.tx_cons != prod {
                let at = HEADER + (self.tx_cons % SLOTS) as usize * TX_SLOT;
                let w = self.tx.word(at).load(Ordering::Acquire);
                let s = (w >> 16) as u16 as i16;
                if status == RSP_OKAY {
                    status = s;
                }
                self.tx_cons = self.tx_cons.wrapping_add(1);
                got += 1;
            }
            if got < want {
                sleep(p, p.tick_hz() / 100);
            }
        }
        (got, status)
    }

    /// Sends `reqs` and wants one answer per slot, the first not okay being `want`.
    fn expect<P: Platform>(&mut self, p: &P, reqs: &[Tx], want: i16, what: &str) -> Outcome {
        let (got, status) = self.send_and_wait(p, reqs, what)?;
        say!(p, "hostile-netfront: {what}: {got} answers, status {status}");
        expect_eq!(status, want, what);
        Ok(())
    }

    /// [`Vif::expect`] without a line.
    fn expect_quiet<P: Platform>(&mut self, p: &P, reqs: &[Tx], want: i16, what: &str) -> Outcome {
        let (_, status) = self.send_and_wait(p, reqs, what)?;
        expect_eq!(status, want, what);
        Ok(())
    }

    fn send_and_wait<P: Platform>(&mut self, p: &P, reqs: &[Tx], what: &str) -> Result<(u32, i16), Failure> {
        self.push(p, reqs);
        let want = u32::try_from(reqs.len()).unwrap_or(u32::MAX);
        let (got, status) = self.answers(p, want, ANSWER_SECS);
        ensure!(got == want, "{what}: {got} answers of {want} in {ANSWER_SECS} s");
        Ok((got, status))
    }

    /// Sends `reqs`, which netback must take as fatal: no answer, and none to a good
    /// packet after it.
    fn halts<P: Platform>(&mut self, p: &P, reqs: &[Tx], what: &str) -> Outcome {
        self.push(p, reqs);
        let (got, _) = self.answers(p, 1, HALTED_SECS);
        self.push(p, &[ARP]);
        let (after, _) = self.answers(p, 1, HALTED_SECS);
        say!(
            p,
            "hostile-netfront: vif {}: {what}: {got} answers; a good packet after it: {after} answers (vif halted)",
            self.n
        );
        ensure!(got == 0 && after == 0, "vif {}: {what}: netback answered ({got}, {after})", self.n);
        Ok(())
    }

    fn rx_post<P: Platform>(&mut self, p: &P, id: u16, gref: u32) {
        let at = HEADER + (self.rx_prod % SLOTS) as usize * RX_SLOT;
        let mut b = [0u8; RX_SLOT];
        b[0..2].copy_from_slice(&id.to_le_bytes());
        b[4..8].copy_from_slice(&gref.to_le_bytes());
        self.rx.fill(at, &b);
        self.rx_prod = self.rx_prod.wrapping_add(1);
        self.rx.word(REQ_PROD).store(self.rx_prod, Ordering::Release);
        let _ = send(p, self.port);
    }

    /// The next rx response: id, offset, flags, status.
    fn rx_next(&mut self) -> Option<(u16, u16, u16, i16)> {
        if self.rx_cons == self.rx.word(RSP_PROD).load(Ordering::Acquire) {
            return None;
        }
        let at = HEADER + (self.rx_cons % SLOTS) as usize * RX_SLOT;
        let a = self.rx.word(at).load(Ordering::Acquire);
        let b = self.rx.word(at + 4).load(Ordering::Acquire);
        self.rx_cons = self.rx_cons.wrapping_add(1);
        Some((a as u16, (a >> 16) as u16, b as u16, (b >> 16) as u16 as i16))
    }

    /// Waits for the bridge's ARP reply on the rx ring, putting each good page back
    /// (`repost`); other frames (the bridge floods multicast) are skipped. Its sender MAC.
    fn arp_reply<P: Platform>(&mut self, p: &P, pg: &Pages, repost: bool) -> Result<[u8; 6], Failure> {
        let end = p.ticks().saturating_add(ANSWER_SECS * p.tick_hz());
        loop {
            while let Some((id, off, _flags, status)) = self.rx_next() {
                let Some(d) = pg.rxd.get(usize::from(id)) else { continue };
                let mut f = [0u8; 64];
                if status >= 42 && usize::from(off) + 64 <= 4096 {
                    let base = usize::from(off) & !3;
                    let mut w = [0u8; 68];
                    d.read(base, &mut w);
                    let s = usize::from(off) - base;
                    f.copy_from_slice(&w[s..s + 64]);
                }
                if repost {
                    self.rx_post(p, id, RX_REF + u32::from(id));
                }
                let arp_reply = f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2];
                if arp_reply && f[28..32] == BRIDGE_IP && f[38..42] == MY_IP {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(&f[22..28]);
                    return Ok(mac);
                }
            }
            ensure!(p.ticks() < end, "no ARP reply from 10.0.0.1 in {ANSWER_SECS} s");
            sleep(p, p.tick_hz() / 100);
        }
    }
}

/// A broadcast ARP request from `mac` (10.0.0.3) for 10.0.0.1, padded to 60 bytes.
fn arp_request(mac: &[u8; 6]) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(mac);
    f[28..32].copy_from_slice(&MY_IP);
    f[38..42].copy_from_slice(&BRIDGE_IP);
    f
}

/// The MAC address in node `node` (`00:16:3e:..`).
fn mac_of<P: Platform>(ring: &mut Ring<'_, P>, node: &str) -> Result<[u8; 6], Failure> {
    let t = read(ring, node)?;
    let mut mac = [0u8; 6];
    let mut n = 0;
    for part in t.as_str().split(':') {
        let Some(slot) = mac.get_mut(n) else { fail!("{node}: {} is not a MAC address", t.as_str()) };
        *slot = match u8::from_str_radix(part, 16) {
            Ok(b) => b,
            Err(_) => fail!("{node}: {} is not a MAC address", t.as_str()),
        };
        n += 1;
    }
    ensure!(n == 6, "{node}: {} is not a MAC address", t.as_str());
    Ok(mac)
}

fn dev_path(n: u32) -> Text<32> {
    let mut t = Text::new();
    let _ = core::fmt::Write::write_fmt(&mut t, format_args!("device/vif/{n}"));
    t
}

fn label(what: &str, d: DomId) -> Text<48> {
    let mut t = Text::new();
    let _ = core::fmt::Write::write_fmt(&mut t, format_args!("{what}{d}"));
    t
}

/// Polls the back end's `state` until it reads `want`.
fn wait_state<P: Platform>(ring: &mut Ring<'_, P>, backend: &str, want: &str, n: u32, what: &str) -> Outcome {
    let p = ring.p;
    let state = path(backend, "state");
    let end = p.ticks().saturating_add(STATE_SECS * p.tick_hz());
    loop {
        let now = read(ring, state.as_str()).ok();
        if now.as_ref().is_some_and(|v| v.as_str() == want) {
            say!(p, "hostile-netfront: vif {n}: back end {what}");
            return Ok(());
        }
        ensure!(
            p.ticks() < end,
            "vif {n}: back end state {:?}, not {what}, after {STATE_SECS} s",
            now.as_ref().map(|v| v.as_str())
        );
        sleep(p, p.tick_hz() / 5);
    }
}

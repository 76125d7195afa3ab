//! `keel.test=backend`: what a back end in a driver domain needs from Keel, between one
//! back end (`keel.role=back keel.port=P keel.port2=Q keel.seed=S keel.seed2=T`) and two
//! front ends (`keel.role=front keel.port=N keel.seed=S keel.end=granter-dies|mapper-dies`),
//! each joined to the back end by a static event channel.
//!
//! 1. Each front end grants the back end a data page (ref 8, its own pattern), 16 copy
//!    pages (refs 16–31) and a teardown page (ref 11), and grants ref 9 to another domain.
//! 2. The back end gives two of its pages back (`decrease_reservation`), maps both front
//!    ends' ref 8 there at once (Linux's balloon + `xenbus_map_ring_valloc` path), finds
//!    each front end's own pattern, writes back, unmaps and repopulates (`populate_physmap`).
//! 3. Refs not granted to it are refused; `GNTTABOP_copy` moves 1 MiB into each front
//!    end's copy pages and 1 MiB out in batches, checked byte for byte, timed on the
//!    guest's clock (a figure, not a bound).
//! 4. A front end grants and wipes a page in a tight loop while the back end maps and
//!    copies it: each attempt gets the page's bytes or `general_error`.
//! 5. Teardown: the `granter-dies` front end ends while the back end maps its ref 11 (as
//!    in Xen, the page stays mapped and unchanged until the back end unmaps it, and that
//!    unmap succeeds); the back end ends while
//!    it maps the `mapper-dies` front end's ref 11 (Keel unpins the entry, the front end
//!    ends access and finds what the back end wrote).
//!
//! The two sides take turns: each signals its port only after the other's last signal
//! arrived, so no signal is lost to coalescing (a port pending twice is one event).

mod back;
mod front;
mod race;

use crate::events::{self};
use crate::hcall::Hv;
use crate::pages::{self, Page};
use crate::{cmdline, fail, Failure, Outcome, Platform};
use keel_abi::event::*;
use keel_abi::xen::{DomId, DOMID_SELF};

/// The data page each front end grants the back end.
const DATA_REF: u32 = 8;
/// The data page again, granted to a domain that is not the back end.
const OTHERS_REF: u32 = 9;
/// An entry never granted.
const UNGRANTED_REF: u32 = 10;
/// The page the teardown checks map.
const TEARDOWN_REF: u32 = 11;
/// The first of the copy pages.
const COPY_REF: u32 = 16;
/// Copy pages per front end.
const COPY_PAGES: usize = 16;
/// A domain id no domain has: [`OTHERS_REF`] is granted to it.
const NOBODY: DomId = 0x7fef;

/// How long (guest time) a domain waits for Keel to tear its peer down: well inside the
/// boot tests' hard timeout, so a teardown Keel never does fails with the guest's word.
const TEARDOWN_SECS: u64 = 20;

/// Pattern salts, mixed with a front end's seed.
const WRITTEN: u32 = 0x5a;
const TEARDOWN: u32 = 0xc3;
const RACE: u32 = 0xe7;
const COPIED: u32 = 0x100;

/// The byte pattern of `seed`: a function of the byte's index.
fn pattern(seed: u32) -> impl Fn(usize) -> u8 {
    move |i| ((i as u32).wrapping_mul(seed | 1) ^ seed.wrapping_mul(0x9e37_79b9) >> 24).wrapping_add(seed) as u8
}

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

fn page() -> Result<&'static Page, Failure> {
    match pages::alloc() {
        Some(p) => Ok(p),
        None => fail!("out of guest pages"),
    }
}

/// The guest frame of `page`.
fn gfn<P: Platform>(p: &P, page: &Page) -> u64 {
    p.gpa(page.va()) >> 12
}

/// Waits, yielding, until `done` holds or `secs` seconds of the guest's own clock pass;
/// returns whether it held.
fn within<P: Platform>(p: &P, secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = p.ticks().saturating_add(secs.saturating_mul(p.tick_hz()));
    loop {
        if done() {
            return true;
        }
        if p.ticks() > end {
            return false;
        }
        Hv(p).yield_cpu();
    }
}

/// The domain at the other end of static port `port`.
fn peer_of<P: Platform>(p: &P, port: u32) -> Result<DomId, Failure> {
    let mut s = EvtchnStatus { dom: DOMID_SELF, _pad: [0; 2], port, status: 0, vcpu: 0, u0: 0, u1: 0 };
    let r = Hv(p).event_op(EVTCHNOP_STATUS, &mut s);
    if r != 0 || s.status != EVTCHNSTAT_INTERDOMAIN {
        fail!("port {port} is not a static interdomain channel (status {}, result {r})", s.status);
    }
    Ok(s.u0 as DomId)
}

fn arg<P: Platform>(p: &P, key: &str) -> Result<u32, Failure> {
    match cmdline::get_u64(p.cmdline(), key).and_then(|v| u32::try_from(v).ok()) {
        Some(v) => Ok(v),
        None => fail!("no {key}="),
    }
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    events::setup_two_level(p)?;
    p.init_interrupts();
    p.enable_interrupts();
    match cmdline::get(p.cmdline(), "keel.role") {
        Some("front") => {
            let port = arg(p, "keel.port")?;
            let dies = match cmdline::get(p.cmdline(), "keel.end") {
                Some("granter-dies") => front::End::GranterDies,
                Some("mapper-dies") => front::End::MapperDies,
                other => fail!("keel.end must be granter-dies or mapper-dies, not {other:?}"),
            };
            front::run(p, port, peer_of(p, port)?, arg(p, "keel.seed")?, dies)
        }
        Some("back") => {
            let ports = [arg(p, "keel.port")?, arg(p, "keel.port2")?];
            let fronts = [
                back::Front { port: ports[0], id: peer_of(p, ports[0])?, seed: arg(p, "keel.seed")? },
                back::Front { port: ports[1], id: peer_of(p, ports[1])?, seed: arg(p, "keel.seed2")? },
            ];
            back::run(p, &fronts)
        }
        other => fail!("keel.role must be front or back, not {other:?}"),
    }
}

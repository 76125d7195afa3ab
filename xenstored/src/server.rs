//! The service loop: introduce the domains Keel gave a store page, serve their rings on
//! every event, release the ones that end.

use crate::control::{self, Listed};
use crate::nodes::{self, Basics};
use crate::ring::MappedRing;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use keel_abi::control::CAP_XENSTORE;
use keel_abi::event::{EvtchnBindInterdomain, EvtchnBindVirq, EvtchnPort, EVTCHNOP_BIND_INTERDOMAIN};
use keel_abi::event::{EVTCHNOP_BIND_VIRQ, EVTCHNOP_CLOSE};
use keel_abi::grant::{GNTST_BAD_HANDLE, GNTST_OKAY, GNTTAB_RESERVED_XENSTORE};
use keel_abi::xen::{DomId, VIRQ_DOM_EXC};
use keel_test_guest::events::{self, hits, send};
use keel_test_guest::grants;
use keel_test_guest::hcall::Hv;
use keel_test_guest::{say, Platform};
use keel_xenstore::quota::Quotas;
use keel_xenstore::ring::RingServer;
use keel_xenstore::service::Action;
use keel_xenstore::{ConnId, Xenstore};

/// One guest ring being served.
struct Served {
    conn: ConnId,
    /// Our end of the guest's store channel.
    port: u32,
    /// The guest's end, as `CTL_STORE_INFO` reported it.
    remote_port: u32,
    /// Where the page is mapped, and the grant handle.
    at: u64,
    handle: u32,
    mem: MappedRing,
    server: RingServer,
    /// The mapping faulted: Keel revoked it (the domain ended); not served any more, and
    /// released at the next `VIRQ_DOM_EXC`.
    revoked: bool,
}

struct Service<'p, P: Platform> {
    p: &'p P,
    xs: Xenstore,
    /// The service's own privileged connection (the toolstack's requests).
    me: ConnId,
    my_id: DomId,
    rings: BTreeMap<DomId, Served>,
    /// Events seen on each port at the last pass.
    seen: BTreeMap<u32, u32>,
    dom_exc: u32,
    /// `xenstored.exit=last`: power off once no other domain is left (boot tests).
    exit_when_last: bool,
}

/// Runs the xenstore service; never returns.
pub fn serve<P: Platform>(p: &'static P) -> ! {
    crate::logger::init(p);
    if let Err(why) = start(p) {
        say!(p, "xenstored: cannot start: {why}");
        let _ = Hv(p).shutdown(keel_abi::sched::SHUTDOWN_CRASH);
    }
    loop {
        p.wait_for_interrupt();
    }
}

fn start<P: Platform>(p: &'static P) -> Result<(), keel_test_guest::Failure> {
    // A guest's ring mapping goes when the guest ends, possibly while it is being served.
    p.tolerate_hole_faults();
    events::setup_two_level(p)?;
    p.init_interrupts();
    p.enable_interrupts();
    let mut b = EvtchnBindVirq { virq: VIRQ_DOM_EXC, vcpu: 0, port: 0 };
    let r = Hv(p).event_op(EVTCHNOP_BIND_VIRQ, &mut b);
    if r != 0 {
        keel_test_guest::fail!("bind VIRQ_DOM_EXC: {}", keel_test_guest::hcall::name(r));
    }
    let listed = match control::list(p) {
        Ok(l) => l,
        Err(e) => keel_test_guest::fail!("CTL_LIST: {}", keel_test_guest::hcall::name(e)),
    };
    let Some(me) = listed.iter().find(|d| d.caps & CAP_XENSTORE != 0) else {
        keel_test_guest::fail!("no domain holds the xenstore capability")
    };
    let my_id = me.domid;
    let mut xs = Xenstore::new(Quotas::default());
    let conn = xs.connect(my_id, true);
    let exit_when_last = keel_test_guest::cmdline::get(p.cmdline(), "xenstored.exit") == Some("last");
    let mut s = Service {
        p,
        xs,
        me: conn,
        my_id,
        rings: BTreeMap::new(),
        seen: BTreeMap::new(),
        dom_exc: b.port,
        exit_when_last,
    };
    say!(p, "xenstored: d{my_id} serving; {} domain(s) listed", listed.len());
    s.rescan(&listed);
    s.run()
}

impl<P: Platform> Service<'_, P> {
    /// Introduces the listed domains with a store page that are not yet introduced, and
    /// releases introduced domains that are gone or ending.
    fn rescan(&mut self, listed: &[Listed]) {
        let gone: Vec<DomId> =
            self.rings.keys().copied().filter(|id| !listed.iter().any(|d| d.domid == *id && !d.ending())).collect();
        for id in gone {
            self.xs.domain_gone(id);
        }
        // A control domain whose kernel serves its own store page handed its connection
        // over to a new port (CTL_STORE_CONNECT): connect its ring again there.
        let moved: Vec<(DomId, u32, ConnId)> = listed
            .iter()
            .filter(|d| !d.ending())
            .filter_map(|d| {
                let r = self.rings.get(&d.domid)?;
                let (_, port) = control::store_info(self.p, d.domid)?;
                (port != r.remote_port).then_some((d.domid, port, r.conn))
            })
            .collect();
        for (id, port, conn) in moved {
            say!(self.p, "xenstored: d{id} moved its store connection to port {port}");
            self.detach(id);
            if let Err(why) = self.attach(id, port, conn) {
                log::warn!("d{id}: not connected again: {why}");
            }
        }
        let my_id = self.my_id;
        for d in listed.iter().filter(|d| d.domid != my_id && !d.ending()) {
            if self.rings.contains_key(&d.domid) || self.xs.domains().contains_key(&d.domid) {
                continue;
            }
            let Some((gfn, port)) = control::store_info(self.p, d.domid) else { continue };
            if let Err(why) = self.introduce(d, gfn, port) {
                log::warn!("d{}: not introduced: {why}", d.domid);
            }
        }
        self.act();
        self.xs.flush_events();
        if self.exit_when_last && listed.iter().all(|d| d.domid == my_id || d.ending()) {
            say!(self.p, "xenstored: no other domain left; powering off");
            let _ = Hv(self.p).shutdown(keel_abi::sched::SHUTDOWN_POWEROFF);
        }
    }

    fn introduce(&mut self, d: &Listed, gfn: u64, port: u32) -> Result<(), alloc::string::String> {
        let basics = Basics { domid: d.domid, name: &d.name, max_kib: d.max_pages.saturating_mul(4), vcpus: d.vcpus };
        nodes::write_basics(&mut self.xs, self.me, &basics)?;
        if d.domid == 0 {
            // Xen's dom0 is not introduced: xenstored connects it itself, privileged.
            let conn = self.xs.connect(0, true);
            return self.attach(0, port, conn);
        }
        nodes::introduce(&mut self.xs, self.me, d.domid, gfn, port)
    }

    /// Carries out what INTRODUCE and RELEASE asked for.
    fn act(&mut self) {
        for a in self.xs.take_actions() {
            match a {
                Action::Introduce { domid, port, conn, .. } => {
                    if let Err(why) = self.attach(domid, port, conn) {
                        log::warn!("d{domid}: ring not served: {why}");
                        self.xs.domain_gone(domid);
                    }
                }
                Action::Release { domid, .. } => self.detach(domid),
            }
        }
    }

    /// Maps `domid`'s store page (grant ref 1), binds its store port and starts serving.
    fn attach(&mut self, domid: DomId, port: u32, conn: ConnId) -> Result<(), alloc::string::String> {
        let at = self.p.hole().0 + u64::from(domid) * 4096;
        if at >= self.p.hole().1 {
            return Err(alloc::format!("no room to map the ring of d{domid}"));
        }
        let (status, handle) = grants::map(self.p, domid, GNTTAB_RESERVED_XENSTORE, at, false);
        if status != GNTST_OKAY {
            return Err(alloc::format!("map of grant ref 1: status {status}"));
        }
        let mut b = EvtchnBindInterdomain { remote_dom: domid, _pad: [0; 2], remote_port: port, local_port: 0 };
        let r = Hv(self.p).event_op(EVTCHNOP_BIND_INTERDOMAIN, &mut b);
        if r != 0 {
            grants::unmap(self.p, at, handle);
            return Err(alloc::format!("bind of port {port}: {}", keel_test_guest::hcall::name(r)));
        }
        let phys_to_virt = self.p.phys_to_virt(at).unwrap_or(at as usize);
        // SAFETY: the grant was just mapped read-write at `at` (identity in the hole);
        // `detach` drops the ring before unmapping it.
        let mut mem = unsafe { MappedRing::new(phys_to_virt) };
        let server = RingServer::new(&mut mem);
        self.seen.insert(b.local_port, events::hits(b.local_port));
        self.rings.insert(
            domid,
            Served { conn, port: b.local_port, remote_port: port, at, handle, mem, server, revoked: false },
        );
        say!(self.p, "xenstored: d{domid} introduced (ring mapped, port {port} bound as {})", b.local_port);
        // The guest may have written before we came: serve it now. Then signal it once, as
        // Xen's xenstored does when it connects a domain: a kernel that set up its own
        // ring (Linux's XS_LOCAL) starts using it at its first event.
        self.serve_one(domid);
        send(self.p, b.local_port);
        Ok(())
    }

    fn detach(&mut self, domid: DomId) {
        let Some(r) = self.rings.remove(&domid) else { return };
        // `r` (and its MappedRing) is gone before the page is unmapped.
        let Served { port, at, handle, .. } = r;
        let _ = Hv(self.p).event_op(EVTCHNOP_CLOSE, &mut EvtchnPort { port });
        // A domain that ended had its grants revoked by Keel with it: the handle is gone.
        let unmapped = match grants::unmap(self.p, at, handle) {
            GNTST_OKAY => "ring unmapped",
            GNTST_BAD_HANDLE => "ring mapping already revoked",
            _ => "ring unmap refused",
        };
        self.seen.remove(&port);
        say!(self.p, "xenstored: d{domid} released ({unmapped})");
    }

    /// Serves `domid`'s ring once; whether anything moved.
    fn serve_one(&mut self, domid: DomId) -> bool {
        let Some(r) = self.rings.get_mut(&domid).filter(|r| !r.revoked) else { return false };
        let (faults, _) = self.p.hole_faults();
        let served = r.server.serve(&mut self.xs, r.conn, &mut r.mem);
        let (after, at) = self.p.hole_faults();
        if after != faults && (r.at..r.at + 4096).contains(&at) {
            r.revoked = true;
            log::info!("d{domid}: ring mapping revoked by Keel; not served until released");
            return false;
        }
        if served.notify {
            send(self.p, r.port);
        }
        // Served again after the signal even if only part of a request was taken
        // (`Served::moved`): the guest may have written the rest without signalling.
        served.moved()
    }

    /// Serves every ring, round-robin, until none moves (a request of one connection may
    /// queue watch events for another).
    fn serve_all(&mut self) {
        loop {
            let ids: Vec<DomId> = self.rings.keys().copied().collect();
            let mut moved = false;
            for id in ids {
                moved |= self.serve_one(id);
            }
            if !moved {
                return;
            }
        }
    }

    /// Serves, then waits for an event; a `VIRQ_DOM_EXC` lists the domains again.
    fn run(&mut self) -> ! {
        let mut exc_seen = hits(self.dom_exc);
        loop {
            self.serve_all();
            let mut rescan = false;
            self.p.disable_interrupts();
            loop {
                let exc = hits(self.dom_exc);
                if exc != exc_seen {
                    exc_seen = exc;
                    rescan = true;
                    break;
                }
                if self.seen.iter().any(|(&port, &n)| hits(port) != n) {
                    break;
                }
                self.p.wait_for_interrupt();
                self.p.enable_interrupts();
                self.p.disable_interrupts();
            }
            self.p.enable_interrupts();
            for (port, n) in self.seen.iter_mut() {
                *n = hits(*port);
            }
            if rescan {
                match control::list(self.p) {
                    Ok(listed) => self.rescan(&listed),
                    Err(e) => log::warn!("CTL_LIST: {e}"),
                }
            }
        }
    }
}

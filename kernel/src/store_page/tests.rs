//! The store page against the core: what the builder sets up, the xenstore domain mapping
//! the page by grant ref 1 and binding the port, `CTL_STORE_INFO`, refusals, and destroy
//! releasing everything.

use super::StoreStart;
use crate::domain::{Domain, DomainConfig};
use crate::event::Binding;
use crate::hypervisor::Hypervisor;
use crate::mm::GuestPhysAddr;
use crate::mock::MockArch;
use crate::p2m::PageKind;
use crate::test_support::*;
use alloc::sync::Arc;
use keel_abi::control::{CtlStore, CAP_CONTROL, CAP_XENSTORE, CTL_STORE_CONNECT, CTL_STORE_INFO, KEEL_CONTROL_OP};
use keel_abi::event::{EvtchnAllocUnbound, EvtchnBindVirq, EvtchnPort, EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_BIND_VIRQ};
use keel_abi::event::{EvtchnBindInterdomain, EVTCHNOP_BIND_INTERDOMAIN, EVTCHNOP_SEND};
use keel_abi::grant::*;
use keel_abi::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use keel_abi::hypercall::{EVENT_CHANNEL_OP, GRANT_TABLE_OP};
use keel_abi::layout::AARCH64;
use keel_abi::xen::{DOMID_SELF, VIRQ_DOM_EXC};
use keel_abi::xenstore::{ARM_STORE_GFN, XENSTORE_RECONNECT, XENSTORE_RING_CONNECTION};
use keel_abi::Errno;

type Hv = Hypervisor<'static, MockArch>;
type D = Arc<Domain<MockArch>>;

const GFN: u64 = ARM_STORE_GFN;
/// Where the xenstore domain maps a guest's store page.
const HOLE: u64 = 0x8000_0000;

fn err(e: Errno) -> i64 {
    -(e.code() as i64)
}

fn domain(hv: &Hv, caps: u32) -> D {
    let mut cfg = DomainConfig::new(&AARCH64, 1, 16);
    cfg.capabilities = caps;
    let d = hv.create_domain(cfg).unwrap();
    d.populate_ram(hv.pool(), GuestPhysAddr(RAM), 64 * 1024).unwrap();
    d
}

fn map_store(hv: &Hv, xs: &D, guest: u16) -> GnttabMapGrantRef {
    let op = GnttabMapGrantRef {
        host_addr: HOLE,
        flags: GNTMAP_HOST_MAP,
        grant_ref: GNTTAB_RESERVED_XENSTORE,
        dom: guest,
        status: 0,
        handle: 0,
        dev_bus_addr: 0,
    };
    put(xs, ARG, &op);
    assert_eq!(call(hv, xs, 0, GRANT_TABLE_OP, &[GNTTABOP_MAP_GRANT_REF, ARG, 1]), 0);
    get(xs, ARG)
}

fn bind(hv: &Hv, xs: &D, guest: u16, port: u32) -> Result<u32, i64> {
    put(xs, ARG, &EvtchnBindInterdomain { remote_dom: guest, _pad: [0; 2], remote_port: port, local_port: 0 });
    match call(hv, xs, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_INTERDOMAIN, ARG]) {
        0 => Ok(get::<EvtchnBindInterdomain>(xs, ARG).local_port),
        e => Err(e),
    }
}

#[test]
fn the_builder_sets_up_page_port_grant_and_params() {
    let (hv, _) = hypervisor();
    let xs = domain(&hv, CAP_XENSTORE);
    let g = domain(&hv, 0);
    assert_eq!(hv.xenstore_domain().map(|d| d.id()), Some(xs.id()));
    let before = g.mm.lock().max_pages();
    let port = hv.attach_store(&g, GFN, xs.id(), StoreStart::WaitForServer).unwrap();
    assert_eq!(g.param(HVM_PARAM_STORE_PFN), GFN);
    assert_eq!(g.param(HVM_PARAM_STORE_EVTCHN), u64::from(port));
    assert_eq!(g.lookup(GFN).unwrap().kind, PageKind::Ram, "RAM the domain owns, grantable");
    assert_eq!(g.mm.lock().max_pages(), before + 1, "the page is beyond the configured memory");
    assert_eq!(get_u32(&g, (GFN << 12) + XENSTORE_RING_CONNECTION as u64), XENSTORE_RECONNECT);
    assert_eq!(g.events.lock().ports.get(port).unwrap().binding, Binding::Unbound { remote: xs.id() });
    let e: GrantEntryV1 = {
        let w = g.grants.lock().entry_word::<MockArch>(GNTTAB_RESERVED_XENSTORE).unwrap();
        let mut b = [0u8; 8];
        <crate::mock::MockMemory as crate::arch::HostMemory>::read(w.address(), &mut b);
        keel_abi::Wire::from_bytes(&b).unwrap()
    };
    assert_eq!((e.flags, e.domid, u64::from(e.frame)), (GTF_PERMIT_ACCESS, xs.id(), GFN));
    assert_eq!(hv.attach_store(&g, GFN, xs.id(), StoreStart::WaitForServer), Err(Errno::EEXIST));
    assert_eq!(hv.attach_store(&xs, GFN, xs.id(), StoreStart::WaitForServer), Err(Errno::EINVAL));
    let h = domain(&hv, 0);
    assert_eq!(hv.attach_store(&h, RAM >> 12, xs.id(), StoreStart::Immediate), Err(Errno::EBUSY), "not over RAM");
    assert_eq!(hv.attach_store(&h, 1 << 40, xs.id(), StoreStart::Immediate), Err(Errno::EINVAL));
    assert_eq!(h.param(HVM_PARAM_STORE_PFN), 0, "a refusal sets nothing");
    let port = hv.attach_store(&h, GFN, xs.id(), StoreStart::Immediate).unwrap();
    assert_eq!(get_u32(&h, (GFN << 12) + XENSTORE_RING_CONNECTION as u64), 0, "legacy: connected at once");
    assert_eq!(port, g.param(HVM_PARAM_STORE_EVTCHN) as u32);
}

#[test]
fn the_xenstore_domain_maps_the_page_binds_the_port_and_talks() {
    let (hv, _) = hypervisor();
    let xs = domain(&hv, CAP_XENSTORE);
    let g = domain(&hv, 0);
    let other = domain(&hv, 0);
    let port = hv.attach_store(&g, GFN, xs.id(), StoreStart::WaitForServer).unwrap();
    // Nobody else may bind the store port or map the page.
    assert_eq!(bind(&hv, &other, g.id(), port), Err(err(Errno::EINVAL)));
    put(
        &other,
        ARG,
        &GnttabMapGrantRef {
            host_addr: HOLE,
            flags: GNTMAP_HOST_MAP,
            grant_ref: GNTTAB_RESERVED_XENSTORE,
            dom: g.id(),
            status: 0,
            handle: 0,
            dev_bus_addr: 0,
        },
    );
    assert_eq!(call(&hv, &other, 0, GRANT_TABLE_OP, &[GNTTABOP_MAP_GRANT_REF, ARG, 1]), 0);
    assert_ne!(get::<GnttabMapGrantRef>(&other, ARG).status, GNTST_OKAY);
    let m = map_store(&hv, &xs, g.id());
    assert_eq!(m.status, GNTST_OKAY);
    let local = bind(&hv, &xs, g.id(), port).unwrap();
    // The server writes through its mapping; the guest sees it in its own page.
    let mapped = xs.lookup(HOLE >> 12).unwrap();
    assert_eq!(mapped.kind, PageKind::Foreign { handle: m.handle });
    let at = crate::mm::PhysAddr(mapped.frame.0 + XENSTORE_RING_CONNECTION as u64);
    <crate::mock::MockMemory as crate::arch::HostMemory>::write(at, &0u32.to_le_bytes());
    assert_eq!(get_u32(&g, (GFN << 12) + XENSTORE_RING_CONNECTION as u64), 0);
    put(&xs, ARG, &EvtchnPort { port: local });
    assert_eq!(call(&hv, &xs, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_SEND, ARG]), 0);
    assert!(g.events.lock().is_pending(port), "the guest's store port is raised");
}

#[test]
fn store_info_reports_the_page_and_port() {
    let (hv, _) = hypervisor();
    let xs = domain(&hv, CAP_XENSTORE);
    let ctl = domain(&hv, CAP_CONTROL);
    let g = domain(&hv, 0);
    let info = |caller: &D, id: u16| {
        put(caller, ARG, &CtlStore { domid: id, _pad: [0; 2], evtchn: 0, gfn: 0 });
        match call(&hv, caller, 0, KEEL_CONTROL_OP, &[u64::from(CTL_STORE_INFO), ARG]) {
            0 => Ok(get::<CtlStore>(caller, ARG)),
            e => Err(e),
        }
    };
    assert_eq!(info(&xs, g.id()).map(|s| (s.gfn, s.evtchn)), Ok((0, 0)), "no store page yet");
    let port = hv.attach_store(&g, GFN, xs.id(), StoreStart::WaitForServer).unwrap();
    assert_eq!(info(&xs, g.id()).map(|s| (s.gfn, s.evtchn)), Ok((GFN, port)));
    assert_eq!(info(&ctl, g.id()).map(|s| (s.gfn, s.evtchn)), Ok((GFN, port)));
    assert_eq!(info(&g, g.id()), Err(err(Errno::EPERM)), "a plain domain may not ask");
}

#[test]
fn store_connect_hands_the_connection_over_to_a_new_port() {
    let (hv, _) = hypervisor();
    let xs = domain(&hv, CAP_XENSTORE);
    // An initial domain whose kernel found no store port and served its own page.
    let dom0 = domain(&hv, CAP_CONTROL);
    let g = domain(&hv, 0);
    put(&xs, ARG, &EvtchnBindVirq { virq: VIRQ_DOM_EXC, vcpu: 0, port: 0 });
    assert_eq!(call(&hv, &xs, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_VIRQ, ARG]), 0);
    let exc = get::<EvtchnBindVirq>(&xs, ARG).port;
    let alloc = |d: &D, remote: u16| {
        put(d, ARG, &EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: remote, port: 0 });
        assert_eq!(call(&hv, d, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_ALLOC_UNBOUND, ARG]), 0);
        get::<EvtchnAllocUnbound>(d, ARG).port
    };
    let connect = |caller: &D, domid: u16, evtchn: u32, gfn: u64| {
        put(caller, ARG, &CtlStore { domid, _pad: [0; 2], evtchn, gfn });
        call(&hv, caller, 0, KEEL_CONTROL_OP, &[u64::from(CTL_STORE_CONNECT), ARG])
    };
    let to_xs = alloc(&dom0, xs.id());
    let to_self = alloc(&dom0, dom0.id());
    assert_eq!(connect(&dom0, DOMID_SELF, to_xs, 0), err(Errno::EINVAL), "entry 1 grants nothing yet");
    // What Linux's IOCTL_XENBUS_BACKEND_SETUP does: grant its page as entry 1.
    let page = (RAM >> 12) + 3;
    let page32 = u32::try_from(page).unwrap();
    dom0.grants.lock().seed_entry::<MockArch>(hv.pool(), GNTTAB_RESERVED_XENSTORE, g.id(), page32).unwrap();
    assert_eq!(connect(&dom0, DOMID_SELF, to_xs, 0), err(Errno::EINVAL), "entry 1 grants another domain");
    let outside = u32::try_from(GFN).unwrap();
    dom0.grants.lock().seed_entry::<MockArch>(hv.pool(), GNTTAB_RESERVED_XENSTORE, xs.id(), outside).unwrap();
    assert_eq!(connect(&dom0, DOMID_SELF, to_xs, 0), err(Errno::EINVAL), "entry 1 names no RAM of the domain");
    dom0.grants.lock().seed_entry::<MockArch>(hv.pool(), GNTTAB_RESERVED_XENSTORE, xs.id(), page32).unwrap();
    assert_eq!(connect(&dom0, DOMID_SELF, to_self, 0), err(Errno::EINVAL), "a port not toward the xenstore domain");
    assert_eq!(connect(&dom0, DOMID_SELF, 4000, 0), err(Errno::EINVAL), "no such port");
    assert_eq!(connect(&dom0, DOMID_SELF, to_xs, page), err(Errno::EINVAL), "gfn must be 0");
    assert_eq!(connect(&dom0, xs.id(), to_xs, 0), err(Errno::EINVAL), "the xenstore domain has no store");
    assert_eq!(connect(&xs, dom0.id(), to_xs, 0), err(Errno::EPERM), "the xenstore domain may not");
    assert_eq!(connect(&g, DOMID_SELF, to_xs, 0), err(Errno::EPERM), "nor a plain domain");
    assert_eq!((dom0.param(HVM_PARAM_STORE_PFN), dom0.param(HVM_PARAM_STORE_EVTCHN)), (0, 0), "nothing set yet");
    assert!(!xs.events.lock().is_pending(exc));
    assert_eq!(connect(&dom0, DOMID_SELF, to_xs, 0), 0);
    assert_eq!(dom0.param(HVM_PARAM_STORE_PFN), page);
    assert_eq!(dom0.param(HVM_PARAM_STORE_EVTCHN), u64::from(to_xs));
    assert!(xs.events.lock().is_pending(exc), "VIRQ_DOM_EXC tells the xenstore domain");
    assert_eq!(map_store(&hv, &xs, dom0.id()).status, GNTST_OKAY, "the xenstore domain maps the page");
    assert_eq!(bind(&hv, &xs, dom0.id(), to_xs).map(|p| p != 0), Ok(true), "and binds the port");
}

#[test]
fn destroy_keeps_the_page_until_the_server_unmaps_it() {
    let (hv, _) = hypervisor();
    let start = hv.pool().stats().allocated;
    let xs = domain(&hv, CAP_XENSTORE);
    let g = domain(&hv, 0);
    hv.attach_store(&g, GFN, xs.id(), StoreStart::WaitForServer).unwrap();
    assert_eq!(map_store(&hv, &xs, g.id()).status, GNTST_OKAY);
    let (gid, xid) = (g.id(), xs.id());
    drop(g);
    crate::run::destroy_domain(&hv, gid).unwrap();
    // As in Xen: the server keeps its mapping until it unmaps it (or ends), and the dead
    // domain's memory is kept until then.
    assert!(xs.lookup(HOLE >> 12).is_some(), "the server's mapping stays");
    assert_eq!(hv.reap(), 0, "the dead domain is kept while its page is mapped");
    drop(xs);
    crate::run::destroy_domain(&hv, xid).unwrap();
    hv.reap();
    assert!(hv.domain_any(gid).is_none(), "released with the server's mapping");
    assert_eq!(hv.pool().stats().allocated, start, "nothing leaked");
}

/// A domain left in late init (STORE_PFN = ~0, its port unbound toward the control
/// domain) gets its page once a xenstore domain exists: the same page, connection word and
/// grant as at build time, the port it already had now for the xenstore domain (which
/// maps, binds and signals it), and STORE_PFN naming the page.
#[test]
fn a_domain_in_late_init_gets_its_page_and_keeps_its_port() {
    let (hv, _) = hypervisor();
    let ctl = domain(&hv, CAP_CONTROL);
    let g = domain(&hv, 0);
    let late = |d: &D| {
        let port = d.events.lock().alloc(Binding::Unbound { remote: ctl.id() }, 0).unwrap();
        d.set_param(HVM_PARAM_STORE_EVTCHN, u64::from(port)).unwrap();
        d.set_param(HVM_PARAM_STORE_PFN, u64::MAX).unwrap();
        port
    };
    let port = late(&g);
    let xs = domain(&hv, CAP_XENSTORE);
    let free = hv.pool().stats().allocated;
    let before = g.mm.lock().max_pages();
    assert_eq!(hv.complete_late_store(&g, GFN, xs.id()), Ok(port));
    assert_eq!((g.param(HVM_PARAM_STORE_PFN), g.param(HVM_PARAM_STORE_EVTCHN)), (GFN, u64::from(port)));
    assert_eq!(g.mm.lock().max_pages(), before + 1);
    assert_eq!(get_u32(&g, (GFN << 12) + XENSTORE_RING_CONNECTION as u64), XENSTORE_RECONNECT);
    assert_eq!(g.events.lock().ports.get(port).unwrap().binding, Binding::Unbound { remote: xs.id() });
    assert_eq!(hv.complete_late_store(&g, GFN, xs.id()), Err(Errno::EINVAL), "not in late init any more");
    assert_eq!(map_store(&hv, &xs, g.id()).status, GNTST_OKAY);
    let local = bind(&hv, &xs, g.id(), port).unwrap();
    put(&xs, ARG, &EvtchnPort { port: local });
    assert_eq!(call(&hv, &xs, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_SEND, ARG]), 0);
    assert!(g.events.lock().is_pending(port), "the store event reaches the waiting guest");
    assert!(hv.pool().stats().allocated > free);

    // Refusals leave everything as it was, to the frame.
    let plain = domain(&hv, 0);
    let closed = domain(&hv, 0);
    let p = late(&closed);
    closed.events.lock().free(p);
    let bound = domain(&hv, 0);
    let p = late(&bound);
    bind(&hv, &ctl, bound.id(), p).unwrap();
    let busy = domain(&hv, 0);
    late(&busy);
    let free = hv.pool().stats().allocated;
    assert_eq!(hv.complete_late_store(&plain, GFN, xs.id()), Err(Errno::EINVAL), "never asked for a store");
    assert_eq!(hv.complete_late_store(&closed, GFN, xs.id()), Err(Errno::EINVAL), "its port is gone");
    assert_eq!(hv.complete_late_store(&bound, GFN, xs.id()), Err(Errno::EINVAL), "its port is bound");
    assert_eq!(hv.complete_late_store(&busy, RAM >> 12, xs.id()), Err(Errno::EBUSY), "not over RAM");
    assert_eq!(hv.complete_late_store(&xs, GFN, xs.id()), Err(Errno::EINVAL), "the xenstore domain itself");
    for d in [&closed, &bound, &busy] {
        assert_eq!(d.param(HVM_PARAM_STORE_PFN), u64::MAX, "still waiting");
        assert!(d.lookup(GFN).is_none(), "no page left");
    }
    assert_eq!(hv.pool().stats().allocated, free, "no frame taken by a refusal");
}

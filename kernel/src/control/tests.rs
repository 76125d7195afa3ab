//! The control hypercall against the core with recording hooks (no scheduler): the
//! capability, every sub-op's checks, state changes, `VIRQ_DOM_EXC`, destroy releasing
//! everything, and garbage arguments.

use crate::domain::{Domain, DomainConfig, DomainState, ShutdownReason};
use crate::hypervisor::Hypervisor;
use crate::mm::GuestPhysAddr;
use crate::mock::MockArch;
use crate::test_support::*;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use keel_abi::control::*;
use keel_abi::event::{EvtchnBindVirq, EVTCHNOP_BIND_VIRQ};
use keel_abi::hypercall::EVENT_CHANNEL_OP;
use keel_abi::layout::AARCH64;
use keel_abi::sched::{SHUTDOWN_MAX, SHUTDOWN_REBOOT};
use keel_abi::xen::{DOMID_SELF, VIRQ_DOM_EXC};
use keel_abi::Errno;
use proptest::prelude::*;

fn err(e: Errno) -> i64 {
    -(e.code() as i64)
}

/// A domain with 64 KiB of RAM at [`RAM`], named `name`, with capabilities `caps`.
fn domain(hv: &Hypervisor<'_, MockArch>, name: &str, caps: u32) -> Arc<Domain<MockArch>> {
    let mut cfg = DomainConfig::new(&AARCH64, 2, 1 << 16);
    cfg.name = name.into();
    cfg.capabilities = caps;
    let d = hv.create_domain(cfg).unwrap();
    d.populate_ram(hv.pool(), GuestPhysAddr(RAM), 64 * 1024).unwrap();
    d
}

fn ctl(hv: &Hypervisor<'_, MockArch>, d: &Arc<Domain<MockArch>>, cmd: u32, arg: u64) -> i64 {
    call(hv, d, 0, KEEL_CONTROL_OP, &[u64::from(cmd), arg])
}

/// Runs `cmd` on `domid` with a [`CtlDomain`] at [`ARG`].
fn on(hv: &Hypervisor<'_, MockArch>, d: &Arc<Domain<MockArch>>, cmd: u32, domid: u16) -> i64 {
    put(d, ARG, &CtlDomain { domid, _pad: [0; 6] });
    ctl(hv, d, cmd, ARG)
}

fn query(hv: &Hypervisor<'_, MockArch>, d: &Arc<Domain<MockArch>>, domid: u16) -> Result<CtlDomainInfo, i64> {
    put(d, ARG, &CtlDomainInfo { domid, ..CtlDomainInfo::ZERO });
    match ctl(hv, d, CTL_QUERY, ARG) {
        0 => Ok(get(d, ARG)),
        e => Err(e),
    }
}

fn bind_dom_exc(hv: &Hypervisor<'_, MockArch>, d: &Arc<Domain<MockArch>>) -> Result<u32, i64> {
    put(d, ARG, &EvtchnBindVirq { virq: VIRQ_DOM_EXC, vcpu: 0, port: 0 });
    match call(hv, d, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_VIRQ, ARG]) {
        0 => Ok(get::<EvtchnBindVirq>(d, ARG).port),
        e => Err(e),
    }
}

#[test]
fn without_the_capability_every_sub_op_is_eperm() {
    let (hv, _) = hypervisor();
    let ctl_dom = domain(&hv, "ctl", CAP_CONTROL);
    let other = domain(&hv, "plain", CAP_HARDWARE);
    for cmd in (0..16).chain([u32::MAX]) {
        put(&other, ARG, &CtlDomain { domid: ctl_dom.id(), _pad: [0; 6] });
        assert_eq!(ctl(&hv, &other, cmd, ARG), err(Errno::EPERM), "sub-op {cmd}");
        assert_eq!(ctl(&hv, &other, cmd, 0), err(Errno::EPERM), "sub-op {cmd}, no struct");
    }
    assert_eq!(ctl_dom.state(), DomainState::Running);
    assert_eq!(bind_dom_exc(&hv, &other), Err(err(Errno::EBUSY)), "VIRQ_DOM_EXC is for control domains");
}

#[test]
fn the_xenstore_domain_may_only_find_domains() {
    let (hv, _) = hypervisor();
    let xs = domain(&hv, "xenstore", CAP_XENSTORE);
    let guest = domain(&hv, "guest", 0);
    let allowed = [CTL_VERSION, CTL_LIST, CTL_QUERY, CTL_STORE_INFO];
    for cmd in (0..16).chain([u32::MAX]).filter(|c| !allowed.contains(c)) {
        put(&xs, ARG, &CtlDomain { domid: guest.id(), _pad: [0; 6] });
        assert_eq!(ctl(&hv, &xs, cmd, ARG), err(Errno::EPERM), "sub-op {cmd}");
    }
    assert_eq!(guest.state(), DomainState::Running);
    assert_eq!(ctl(&hv, &xs, CTL_VERSION, 0), i64::from(CONTROL_VERSION.packed()));
    assert_eq!(query(&hv, &xs, guest.id()).map(|i| i.domid), Ok(guest.id()));
    put(&xs, ARG, &CtlStore { domid: guest.id(), _pad: [0; 2], evtchn: 0, gfn: 0 });
    assert_eq!(ctl(&hv, &xs, CTL_STORE_INFO, ARG), 0);
    let port = bind_dom_exc(&hv, &xs).expect("the xenstore domain learns of domain deaths");
    let gid = guest.id();
    drop(guest);
    crate::run::destroy_domain(&hv, gid).unwrap();
    assert!(xs.events.lock().is_pending(port), "VIRQ_DOM_EXC raised on destroy");
}

#[test]
fn version_list_and_query() {
    let (hv, _) = hypervisor();
    let c = domain(&hv, "a-control-domain-with-a-very-long-name", CAP_CONTROL);
    let u = domain(&hv, "guest", 0);
    assert_eq!(ctl(&hv, &c, CTL_VERSION, 0), 0x0001_0004);
    assert_eq!(ctl(&hv, &c, CTL_VERSION | 1 << 31, 0), err(Errno::ENOSYS), "unknown sub-op");
    assert_eq!(call(&hv, &c, 0, KEEL_CONTROL_OP, &[u64::from(CTL_VERSION) | 1 << 32]), 0x0001_0004, "unsigned int");

    let buf = ARG + 0x100;
    put(&c, ARG, &CtlList { start_domid: 0, _pad: [0; 2], max_entries: CTL_LIST_MAX, buffer: buf });
    assert_eq!(ctl(&hv, &c, CTL_LIST, ARG), 2);
    let first: CtlDomainInfo = get(&c, buf);
    let second: CtlDomainInfo = get(&c, buf + CtlDomainInfo::SIZE as u64);
    assert_eq!((first.domid, second.domid), (c.id(), u.id()));
    assert_eq!(&first.name[..], &b"a-control-domain-with-a-"[..], "truncated to 24 bytes");
    assert_eq!((first.caps, second.caps), (CAP_CONTROL, 0));
    assert_eq!(&second.name[..6], b"guest\0");
    assert_eq!((second.vcpus, second.vcpus_online), (2, 1));
    assert_eq!((second.tot_pages, second.max_pages), (16, 1 << 16));
    assert_eq!((second.state, second.shutdown_reason), (CTL_STATE_RUNNING, CTL_NO_REASON));

    put(&c, ARG, &CtlList { start_domid: u.id(), _pad: [0; 2], max_entries: 1, buffer: buf });
    assert_eq!(ctl(&hv, &c, CTL_LIST, ARG), 1);
    assert_eq!(get::<CtlDomainInfo>(&c, buf).domid, u.id());
    put(&c, ARG, &CtlList { start_domid: u.id() + 1, _pad: [0; 2], max_entries: 1, buffer: buf });
    assert_eq!(ctl(&hv, &c, CTL_LIST, ARG), 0);
    put(&c, ARG, &CtlList { start_domid: 0, _pad: [0; 2], max_entries: 0, buffer: 0 });
    assert_eq!(ctl(&hv, &c, CTL_LIST, ARG), 0, "nothing asked, nothing written");
    put(&c, ARG, &CtlList { start_domid: 0, _pad: [0; 2], max_entries: CTL_LIST_MAX + 1, buffer: buf });
    assert_eq!(ctl(&hv, &c, CTL_LIST, ARG), err(Errno::EINVAL), "too many entries");
    put(&c, ARG, &CtlList { start_domid: 0, _pad: [1, 0], max_entries: 1, buffer: buf });
    assert_eq!(ctl(&hv, &c, CTL_LIST, ARG), err(Errno::EINVAL), "padding");
    put(&c, ARG, &CtlList { start_domid: 0, _pad: [0; 2], max_entries: 2, buffer: RAM + 64 * 1024 - 70 });
    assert_eq!(ctl(&hv, &c, CTL_LIST, ARG), err(Errno::EFAULT), "the array runs out of RAM");
    assert_eq!(ctl(&hv, &c, CTL_LIST, 0x10), err(Errno::EFAULT), "unmapped struct");

    assert_eq!(query(&hv, &c, u.id()).unwrap().domid, u.id());
    assert_eq!(query(&hv, &c, DOMID_SELF).unwrap().domid, c.id(), "DOMID_SELF is the caller");
    assert_eq!(query(&hv, &c, 999), Err(err(Errno::ESRCH)));
    assert_eq!(query(&hv, &c, 0xffff), Err(err(Errno::ESRCH)));
    for v in 0..2 {
        hv.block(&u, v, None);
    }
    assert_eq!(query(&hv, &c, u.id()).unwrap().state, CTL_STATE_BLOCKED, "its online vCPU waits");
}

#[test]
fn pause_unpause_and_shutdown_change_the_state_and_tell_control_domains() {
    let (hv, rec) = hypervisor();
    let c = domain(&hv, "ctl", CAP_CONTROL);
    let u = domain(&hv, "guest", 0);
    let port = bind_dom_exc(&hv, &c).unwrap();
    assert_eq!(bind_dom_exc(&hv, &c), Err(err(Errno::EEXIST)));
    let pending = || c.events.lock().is_pending(port);
    let state = |id| query(&hv, &c, id).map(|i| (i.state, i.shutdown_reason));

    assert_eq!(on(&hv, &c, CTL_PAUSE, u.id()), 0);
    assert_eq!(state(u.id()), Ok((CTL_STATE_PAUSED, CTL_NO_REASON)));
    assert_eq!(on(&hv, &c, CTL_PAUSE, u.id()), 0, "paused already: nothing to do");
    assert_eq!(on(&hv, &c, CTL_UNPAUSE, u.id()), 0);
    assert_eq!(u.state(), DomainState::Running);
    assert_eq!(on(&hv, &c, CTL_UNPAUSE, u.id()), 0);
    assert!(!pending(), "pausing is no exception");
    for cmd in [CTL_PAUSE, CTL_UNPAUSE, CTL_DESTROY] {
        assert_eq!(on(&hv, &c, cmd, DOMID_SELF), err(Errno::EINVAL), "not itself ({cmd})");
        assert_eq!(on(&hv, &c, cmd, c.id()), err(Errno::EINVAL), "not itself ({cmd})");
        assert_eq!(on(&hv, &c, cmd, 4242), err(Errno::ESRCH));
        put(&c, ARG, &CtlDomain { domid: u.id(), _pad: [0, 0, 0, 0, 0, 1] });
        assert_eq!(ctl(&hv, &c, cmd, ARG), err(Errno::EINVAL), "padding ({cmd})");
    }

    let shut = |domid: u16, reason: u32, pad: [u8; 2]| {
        put(&c, ARG, &CtlShutdown { domid, _pad: pad, reason });
        ctl(&hv, &c, CTL_SHUTDOWN, ARG)
    };
    assert_eq!(shut(u.id(), SHUTDOWN_MAX + 1, [0; 2]), err(Errno::EINVAL));
    assert_eq!(shut(u.id(), SHUTDOWN_REBOOT, [0, 9]), err(Errno::EINVAL));
    assert_eq!(shut(c.id(), SHUTDOWN_REBOOT, [0; 2]), err(Errno::EINVAL));
    assert_eq!(u.state(), DomainState::Running);
    assert_eq!(on(&hv, &c, CTL_PAUSE, u.id()), 0);
    assert_eq!(shut(u.id(), SHUTDOWN_REBOOT, [0; 2]), 0, "a paused domain may be shut down");
    assert_eq!(u.state(), DomainState::ShutDown(ShutdownReason::Reboot));
    assert_eq!(state(u.id()), Ok((CTL_STATE_SHUTDOWN, 1)));
    assert!(rec.stopped.lock().contains(&u.id()));
    assert!(pending(), "VIRQ_DOM_EXC");
    assert_eq!(shut(u.id(), 0, [0; 2]), err(Errno::EINVAL), "stopped already");
    assert_eq!(on(&hv, &c, CTL_PAUSE, u.id()), err(Errno::EINVAL));
    assert_eq!(on(&hv, &c, CTL_UNPAUSE, u.id()), err(Errno::EINVAL));

    let other = domain(&hv, "other", 0);
    let remote = |caller: &Arc<Domain<MockArch>>, domain_id: u16, reason: u32| {
        put(caller, ARG, &keel_abi::sched::SchedRemoteShutdown { domain_id, _pad: [0; 2], reason });
        call(&hv, caller, 0, keel_abi::hypercall::SCHED_OP, &[keel_abi::sched::SCHEDOP_REMOTE_SHUTDOWN, ARG])
    };
    assert_eq!(remote(&other, c.id(), 0), err(Errno::EPERM), "SCHEDOP_remote_shutdown is privileged");
    assert_eq!(remote(&c, c.id(), 0), err(Errno::EINVAL), "not itself");
    assert_eq!(remote(&c, other.id(), 0), 0, "a control domain may");
    assert_eq!(other.state(), DomainState::ShutDown(ShutdownReason::Poweroff));
    hv.crash(&domain(&hv, "crashy", 0));
    assert_eq!(state(u.id() + 2), Ok((CTL_STATE_CRASHED, CTL_NO_REASON)));
}

#[test]
fn destroy_releases_memory_events_and_the_id() {
    let (hv, _) = hypervisor();
    let c = domain(&hv, "ctl", CAP_CONTROL);
    let port = bind_dom_exc(&hv, &c).unwrap();
    let before = hv.pool().stats().allocated;
    let u = domain(&hv, "victim", 0);
    let id = u.id();
    crate::event::interdomain::bind_static(&u, 5, &c, 7).unwrap();
    assert!(hv.pool().stats().allocated > before);
    drop(u);
    assert_eq!(on(&hv, &c, CTL_DESTROY, id), 0);
    assert!(c.events.lock().is_pending(port), "VIRQ_DOM_EXC");
    assert_eq!(query(&hv, &c, id), Err(err(Errno::ESRCH)));
    assert_eq!(on(&hv, &c, CTL_DESTROY, id), err(Errno::ESRCH));
    assert_eq!(hv.pool().stats().allocated, before, "every page back");
    assert!(hv.domain(id).is_none());
    let again = domain(&hv, "again", 0);
    assert_eq!(again.id(), id, "the id is free again");
}

/// The ids `CTL_LIST` returns, with their states.
fn listed(hv: &Hypervisor<'_, MockArch>, c: &Arc<Domain<MockArch>>) -> Vec<(u16, u8)> {
    let buf = ARG + 0x100;
    put(c, ARG, &CtlList { start_domid: 0, _pad: [0; 2], max_entries: CTL_LIST_MAX, buffer: buf });
    let n = usize::try_from(ctl(hv, c, CTL_LIST, ARG)).unwrap();
    (0..n)
        .map(|i| get::<CtlDomainInfo>(c, buf + (i * CtlDomainInfo::SIZE) as u64))
        .map(|i| (i.domid, i.state))
        .collect()
}

#[test]
fn a_destroyed_domain_stays_listed_as_dying_until_its_memory_is_back() {
    let (hv, _) = hypervisor();
    let c = domain(&hv, "ctl", CAP_CONTROL);
    let before = hv.pool().stats().allocated;
    let u = domain(&hv, "victim", 0);
    let id = u.id();
    // Something still refers to it (in a running system: another domain's mapping of
    // its grants, as a block back end holds until it closes): it cannot be reaped yet.
    let held = u.clone();
    drop(u);
    assert_eq!(on(&hv, &c, CTL_DESTROY, id), 0);
    hv.reap();
    assert!(hv.pool().stats().allocated > before, "its memory is held");
    assert_eq!(listed(&hv, &c), [(c.id(), CTL_STATE_RUNNING), (id, CTL_STATE_DYING)], "listed until then");
    let info = query(&hv, &c, id).unwrap();
    assert_eq!((info.state, info.tot_pages), (CTL_STATE_DYING, 16));
    assert_eq!(on(&hv, &c, CTL_DESTROY, id), err(Errno::ESRCH), "nothing more to destroy");
    assert_eq!(on(&hv, &c, CTL_PAUSE, id), err(Errno::ESRCH));
    assert_ne!(domain(&hv, "other", 0).id(), id, "its id is not free yet");
    // Let go: the next reap frees it, and only then it leaves the list.
    drop(held);
    assert_eq!(hv.reap(), 1);
    assert_eq!(query(&hv, &c, id), Err(err(Errno::ESRCH)));
    assert!(!listed(&hv, &c).iter().any(|&(d, _)| d == id));
}

#[test]
fn sched_ops_need_a_scheduler_and_check_their_values() {
    let (hv, _) = hypervisor();
    let c = domain(&hv, "ctl", CAP_CONTROL);
    let u = domain(&hv, "guest", 0);
    let set = |weight: u16, cap: u8, pad: [u8; 3]| {
        put(&c, ARG, &CtlSched { domid: u.id(), weight, cap, _pad: pad });
        ctl(&hv, &c, CTL_SET_SCHED, ARG)
    };
    assert_eq!(set(0, 0, [0; 3]), err(Errno::EINVAL));
    assert_eq!(set(256, 101, [0; 3]), err(Errno::EINVAL));
    assert_eq!(set(256, 0, [0, 1, 0]), err(Errno::EINVAL));
    assert_eq!(set(256, 50, [0; 3]), err(Errno::ENOSYS), "these hooks have no scheduler");
    put(&c, ARG, &CtlSched { domid: u.id(), ..CtlSched::ZERO });
    assert_eq!(ctl(&hv, &c, CTL_GET_SCHED, ARG), err(Errno::ESRCH));
    let aff = |vcpu: u32, cpumap: [u64; 4]| {
        put(&c, ARG, &CtlAffinity { domid: u.id(), _pad: [0; 2], vcpu, cpumap });
        ctl(&hv, &c, CTL_SET_AFFINITY, ARG)
    };
    assert_eq!(aff(0, [0; 4]), err(Errno::EINVAL), "no CPU");
    assert_eq!(aff(2, [1, 0, 0, 0]), err(Errno::EINVAL), "no such vCPU");
    assert_eq!(aff(0, [0, 0, 0, 1 << 63]), err(Errno::ENOSYS));
}

#[test]
fn console_output_is_read_back_and_input_delivered() {
    let (hv, _) = hypervisor();
    let c = domain(&hv, "ctl", CAP_CONTROL);
    let u = domain(&hv, "guest", 0);
    u.console.lock().output(b"hello\n\x1b[1mworld\n", |_| {});
    let buf = ARG + 0x200;
    let read = |offset: u64, len: u32, buffer: u64| {
        put(&c, ARG, &CtlConsole { domid: u.id(), _pad: [0; 2], len, buffer, offset });
        let n = ctl(&hv, &c, CTL_CONSOLE_READ, ARG);
        let mut out = vec![0u8; n.max(0) as usize];
        c.read_phys(buffer, &mut out).unwrap();
        (n, get::<CtlConsole>(&c, ARG).offset, out)
    };
    assert_eq!(read(0, 100, buf), (16, 0, b"hello\n\x1b[1mworld\n".to_vec()), "raw bytes");
    assert_eq!(read(6, 4, buf), (4, 6, b"\x1b[1m".to_vec()));
    assert_eq!(read(1000, 4, buf), (0, 16, vec![]), "nothing new");
    assert_eq!(read(0, CTL_CONSOLE_MAX + 1, buf).0, err(Errno::EINVAL));
    assert_eq!(read(0, 100, 0x10).0, err(Errno::EFAULT), "unmapped buffer");
    assert_eq!(read(0, 100, RAM + 64 * 1024 - 3).0, err(Errno::EFAULT), "runs out of RAM");

    c.write_phys(buf, b"ls\r").unwrap();
    let write = |len: u32, buffer: u64, offset: u64| {
        put(&c, ARG, &CtlConsole { domid: u.id(), _pad: [0; 2], len, buffer, offset });
        ctl(&hv, &c, CTL_CONSOLE_WRITE, ARG)
    };
    assert_eq!(write(3, buf, 0), 3);
    assert_eq!(u.console.lock().peek_input(10), b"ls\r");
    assert_eq!(write(3, buf, 1), err(Errno::EINVAL), "no offset for input");
    assert_eq!(write(CTL_CONSOLE_MAX + 1, buf, 0), err(Errno::EINVAL));
    assert_eq!(write(100, 0x10, 0), err(Errno::EFAULT));
    assert_eq!(u.console.lock().peek_input(10), b"ls\r", "nothing more");
}

#[test]
fn store_info_reports_the_params() {
    let (hv, _) = hypervisor();
    let c = domain(&hv, "ctl", CAP_CONTROL);
    let u = domain(&hv, "guest", 0);
    u.set_param(keel_abi::hvm::HVM_PARAM_STORE_PFN, u64::MAX).unwrap();
    u.set_param(keel_abi::hvm::HVM_PARAM_STORE_EVTCHN, 3).unwrap();
    put(&c, ARG, &CtlStore { domid: u.id(), ..CtlStore::ZERO });
    assert_eq!(ctl(&hv, &c, CTL_STORE_INFO, ARG), 0);
    let s: CtlStore = get(&c, ARG);
    assert_eq!((s.evtchn, s.gfn), (3, u64::MAX));
}

proptest! {
    #![proptest_config(cases(256))]

    /// Random sub-ops and random structs never panic; a garbage call on a sibling
    /// leaves the control domain running and answering.
    #[test]
    fn garbage_never_panics(cmd in 0u32..16, bytes in proptest::collection::vec(any::<u8>(), 64), arg in prop_oneof![
        Just(ARG), Just(0u64), Just(RAM + 64 * 1024 - 8), any::<u64>()
    ]) {
        let (hv, _) = hypervisor();
        let c = domain(&hv, "ctl", CAP_CONTROL);
        let _u = domain(&hv, "guest", 0);
        let mut b = bytes.clone();
        // Aim at the sibling now and then, so the sub-ops get past the id check.
        if b[0] & 1 == 0 {
            b[..2].copy_from_slice(&_u.id().to_le_bytes());
        }
        c.write_phys(ARG, &b).unwrap();
        let _ = ctl(&hv, &c, cmd, arg);
        prop_assert_eq!(c.state(), DomainState::Running);
        prop_assert_eq!(ctl(&hv, &c, CTL_VERSION, 0), 0x0001_0004);
        let ids: Vec<u16> = hv.domain_ids();
        prop_assert!(ids.contains(&c.id()));
    }
}

#[test]
fn creation_needs_a_run_loop_and_physinfo_reports_the_pool() {
    let (hv, _) = hypervisor();
    let c = domain(&hv, "ctl", CAP_CONTROL);
    let mut name = [0u8; CTL_CREATE_NAME_LEN];
    name[..3].copy_from_slice(b"new");
    let a = CtlCreate { weight: 256, vcpus: 1, memory_kib: 1024, kernel_size: 4096, name, ..CtlCreate::ZERO };
    put(&c, ARG, &a);
    assert_eq!(ctl(&hv, &c, CTL_CREATE, ARG), err(Errno::ENOSYS), "no run loop serves builds");
    put(&c, ARG, &CtlStart { domid: 7, _pad: [0; 2], flags: 0 });
    assert_eq!(ctl(&hv, &c, CTL_START, ARG), err(Errno::ESRCH));
    put(&c, ARG, &CtlPhysInfo { total_pages: 1, free_pages: 1 });
    assert_eq!(ctl(&hv, &c, CTL_PHYSINFO, ARG), 0);
    let p: CtlPhysInfo = get(&c, ARG);
    // Other tests share the pool: only its size is fixed.
    assert_eq!(p.total_pages, u64::try_from(hv.pool().stats().total).unwrap());
    assert!(p.free_pages > 0 && p.free_pages <= p.total_pages);
}

//! The control interface on running domains: a control domain (not scheduled; the test
//! makes its hypercalls) pauses a spinning domain and sees its CPU time stop, unpauses
//! it, changes its weight, cap and affinity in the scheduler, and destroys it; the
//! destroyed domain's memory and id are released and `VIRQ_DOM_EXC` reaches the
//! control domain.

use super::programs::spinner;
use super::world::{describe, Guest, World};
use crate::arch::CpuId;
use crate::domain::{Domain, DomainConfig};
use crate::mm::GuestPhysAddr;
use crate::mock::{sim, MockArch};
use crate::sched::{CpuMask, VcpuKey};
use crate::test_support::{call, get, put, ARG, RAM};
use alloc::sync::Arc;
use keel_abi::control::*;
use keel_abi::event::{EvtchnBindVirq, EVTCHNOP_BIND_VIRQ};
use keel_abi::hypercall::EVENT_CHANNEL_OP;
use keel_abi::layout::AARCH64;
use keel_abi::xen::{DomId, VIRQ_DOM_EXC};

const MS: u64 = 1_000_000;

fn controller(w: &World) -> Arc<Domain<MockArch>> {
    let hv = w.m.hypervisor();
    let mut cfg = DomainConfig::new(&AARCH64, 1, 64);
    cfg.name = "ctl".into();
    cfg.capabilities = CAP_CONTROL;
    let d = hv.create_domain(cfg).unwrap();
    d.populate_ram(hv.pool(), GuestPhysAddr(RAM), 64 * 1024).unwrap();
    d
}

fn ctl<T: keel_abi::Wire>(w: &World, c: &Arc<Domain<MockArch>>, cmd: u32, arg: &T) -> i64 {
    sim::set_current(CpuId(0));
    put(c, ARG, arg);
    call(w.m.hypervisor(), c, 0, KEEL_CONTROL_OP, &[u64::from(cmd), ARG])
}

fn cpu_time(w: &World, c: &Arc<Domain<MockArch>>, id: DomId) -> u64 {
    assert_eq!(ctl(w, c, CTL_QUERY, &CtlDomainInfo { domid: id, ..CtlDomainInfo::ZERO }), 0);
    get::<CtlDomainInfo>(c, ARG).cpu_time_ns
}

#[test]
fn a_control_domain_pauses_tunes_and_destroys_a_running_domain() {
    let mut w = World::new(2);
    let c = controller(&w);
    put(&c, ARG, &EvtchnBindVirq { virq: VIRQ_DOM_EXC, vcpu: 0, port: 0 });
    assert_eq!(call(w.m.hypervisor(), &c, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_VIRQ, ARG]), 0);
    let port = get::<EvtchnBindVirq>(&c, ARG).port;
    let before = w.pool.stats().allocated;
    let built = w.boot(&describe(&[Guest::new("victim", spinner())]));
    let id = built[0].result.clone().unwrap();
    let one = |domid| CtlDomain { domid, _pad: [0; 6] };

    w.run_until(5 * MS, |_| false);
    let ran = cpu_time(&w, &c, id);
    assert!(ran > MS, "it ran: {ran} ns");
    assert_eq!(ctl(&w, &c, CTL_PAUSE, &one(id)), 0);
    w.run_until(MS, |_| false);
    let paused_at = cpu_time(&w, &c, id);
    w.run_until(10 * MS, |_| false);
    assert_eq!(cpu_time(&w, &c, id), paused_at, "no CPU time while paused");
    assert_eq!(get::<CtlDomainInfo>(&c, ARG).state, CTL_STATE_PAUSED);
    assert_eq!(ctl(&w, &c, CTL_UNPAUSE, &one(id)), 0);
    w.run_until(5 * MS, |_| false);
    assert!(cpu_time(&w, &c, id) > paused_at + MS, "runs again once unpaused");

    assert_eq!(ctl(&w, &c, CTL_SET_SCHED, &CtlSched { domid: id, weight: 512, cap: 50, _pad: [0; 3] }), 0);
    assert_eq!(ctl(&w, &c, CTL_GET_SCHED, &CtlSched { domid: id, ..CtlSched::ZERO }), 0);
    let s: CtlSched = get(&c, ARG);
    assert_eq!((s.weight, s.cap), (512, 50));
    let aff = |cpumap: [u64; 4]| CtlAffinity { domid: id, _pad: [0; 2], vcpu: CTL_ALL_VCPUS, cpumap };
    assert_eq!(ctl(&w, &c, CTL_SET_AFFINITY, &aff([1 << 5, 0, 0, 0])), -22, "no such CPU online");
    assert_eq!(ctl(&w, &c, CTL_SET_AFFINITY, &aff([0b10, 0, 0, 0])), 0);
    let info = w.m.scheduler().info(VcpuKey::new(id, 0)).unwrap();
    assert_eq!(info.params.affinity, CpuMask::of(&[1]));
    w.run_until(5 * MS, |_| false);
    assert_eq!(w.m.scheduler().info(VcpuKey::new(id, 0)).unwrap().cpu, CpuId(1), "moved to CPU 1");

    assert!(!c.events.lock().is_pending(port));
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &one(id)), 0);
    assert!(c.events.lock().is_pending(port), "VIRQ_DOM_EXC");
    let ends = w.run(10 * MS);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].to_string(), alloc::format!("domain {id} (victim): destroyed"));
    assert_eq!(w.pool.stats().allocated, before, "all its memory is back");
    assert!(w.m.hypervisor().domain(id).is_none());
    assert_eq!(ctl(&w, &c, CTL_QUERY, &CtlDomainInfo { domid: id, ..CtlDomainInfo::ZERO }), -3, "ESRCH");
    assert!(w.m.scheduler().vcpus().is_empty());
}

/// One domain of [`boot_tree`]: name, `capabilities`, `xen,enhanced`.
type Spec = (&'static str, Option<u32>, Option<&'static str>);

/// Boots spinners described by a tree with an initial domain (if `initial`) and
/// dom0less domains `specs`, on `w`.
fn boot_tree(w: &World, initial: bool, specs: &[Spec]) -> alloc::vec::Vec<crate::run::Described> {
    use crate::config::tests::builder::Dtb;
    use crate::config::{parse, InitialDefaults, Limits};
    use crate::mm::PhysAddr;
    use crate::mock::MockMemory;
    let image = spinner();
    let mut t = Dtb::new();
    t.cells("#address-cells", &[2]).cells("#size-cells", &[2]).node("chosen");
    t.cells("#address-cells", &[2]).cells("#size-cells", &[2]);
    let mut at = 0x20_0000_0000u64;
    let module = |t: &mut Dtb, at: u64| {
        <MockMemory as crate::arch::HostMemory>::write(PhysAddr(at), &image);
        t.node(&alloc::format!("module@{at:x}"));
        t.strs("compatible", &["multiboot,kernel", "multiboot,module"]);
        t.cells("reg", &[(at >> 32) as u32, at as u32, 0, image.len() as u32]).end();
    };
    if initial {
        module(&mut t, at);
    }
    for &(name, caps, enhanced) in specs {
        at += 0x10_0000;
        t.node(name).strs("compatible", &["xen,domain"]).cells("memory", &[0, 1024]).cells("cpus", &[1]);
        if let Some(caps) = caps {
            t.cells("capabilities", &[caps]);
        }
        if let Some(e) = enhanced {
            t.str("xen,enhanced", e);
        }
        t.cells("#address-cells", &[2]).cells("#size-cells", &[2]);
        module(&mut t, at);
        t.end();
    }
    t.end();
    let initial = InitialDefaults { memory_kib: 1024, min_vcpus: 1, max_vcpus: 1 };
    let limits = Limits { max_vcpus: 8, nr_pcpus: 1, max_memory_kib: 1 << 20, ram: &[], boot_modules: &[], initial };
    let set = parse(&t.finish(), &limits);
    assert!(set.problems.is_empty(), "{:#?}", set.problems);
    crate::run::build_all(w.m, &set)
}

/// The initial domain (modules directly under `/chosen`, Xen's dom0) is a control
/// domain, as in Xen; a dom0less domain only with the control bit in `capabilities`.
#[test]
fn the_initial_domain_and_capable_dom0less_domains_are_control_domains() {
    let w = World::new(1);
    let built = boot_tree(&w, true, &[("plain", None, None), ("capable", Some(CAP_CONTROL), None)]);
    let caps = |i: usize| {
        let id = built[i].result.clone().unwrap();
        w.m.hypervisor().domain(id).unwrap().config().capabilities
    };
    assert_eq!(built[0].result, Ok(0), "the initial domain is domain 0");
    assert_eq!((caps(0), caps(1), caps(2)), (CAP_CONTROL, 0, CAP_CONTROL));
}

/// A domain that asks for xenstore (`xen,enhanced`) gets an unbound event channel for
/// the xenstore domain (else the control domain) and STORE_PFN = ~0 (late init); the
/// control interface reports both.
#[test]
fn domains_asking_for_xenstore_get_a_store_port_and_wait_for_the_page() {
    use keel_abi::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
    let w = World::new(1);
    let built = boot_tree(
        &w,
        false,
        &[
            ("ctl", Some(CAP_CONTROL), None),
            ("store", Some(CAP_XENSTORE), Some("no-xenstore")),
            ("enabled", None, Some("enabled")),
            ("legacy", None, Some("legacy")),
            ("without", None, Some("no-xenstore")),
            ("plain", None, None),
        ],
    );
    let hv = w.m.hypervisor();
    let d = |i: usize| hv.domain(built[i].result.clone().unwrap()).unwrap();
    let store_id = d(1).id();
    for i in [2, 3] {
        let port = u32::try_from(d(i).param(HVM_PARAM_STORE_EVTCHN)).unwrap();
        assert!(port > 0, "{}", built[i].name);
        assert_eq!(d(i).param(HVM_PARAM_STORE_PFN), u64::MAX);
        let binding = d(i).events.lock().ports.get(port).unwrap().binding;
        assert_eq!(binding, crate::event::Binding::Unbound { remote: store_id }, "for the xenstore domain");
    }
    for i in [0, 1, 4, 5] {
        assert_eq!((d(i).param(HVM_PARAM_STORE_EVTCHN), d(i).param(HVM_PARAM_STORE_PFN)), (0, 0), "{}", built[i].name);
    }
    let c = controller(&w);
    let info = CtlStore { domid: d(2).id(), ..CtlStore::ZERO };
    assert_eq!(ctl(&w, &c, CTL_STORE_INFO, &info), 0);
    let got: CtlStore = get(&c, ARG);
    assert_eq!((u64::from(got.evtchn), got.gfn), (d(2).param(HVM_PARAM_STORE_EVTCHN), u64::MAX));
}

/// A domain left paused does not keep the machine up past `keel.timeout`.
#[test]
fn keel_timeout_ends_a_paused_domain() {
    let mut w = World::with_deadline(1, 1_000_000 + 20 * MS);
    let c = controller(&w);
    let built = w.boot(&describe(&[Guest::new("paused", spinner())]));
    let id = built[0].result.clone().unwrap();
    w.run_until(2 * MS, |_| false);
    assert_eq!(ctl(&w, &c, CTL_PAUSE, &CtlDomain { domid: id, _pad: [0; 6] }), 0);
    let ends = w.run(100 * MS);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].state, crate::domain::DomainState::Crashed);
}

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

/// The initial domain (modules directly under `/chosen`, Xen's dom0) is a control
/// domain, as in Xen; a dom0less domain only with the control bit in `capabilities`.
#[test]
fn the_initial_domain_and_capable_dom0less_domains_are_control_domains() {
    use crate::config::tests::builder::Dtb;
    use crate::config::{parse, InitialDefaults, Limits};
    use crate::mm::PhysAddr;
    use crate::mock::MockMemory;
    let w = World::new(1);
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
    module(&mut t, at);
    for (name, caps) in [("plain", None), ("capable", Some(CAP_CONTROL))] {
        at += 0x10_0000;
        t.node(name).strs("compatible", &["xen,domain"]).cells("memory", &[0, 1024]).cells("cpus", &[1]);
        if let Some(caps) = caps {
            t.cells("capabilities", &[caps]);
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
    let built = crate::run::build_all(w.m, &set);
    let caps = |i: usize| {
        let id = built[i].result.clone().unwrap();
        w.m.hypervisor().domain(id).unwrap().config().capabilities
    };
    assert_eq!(built[0].result, Ok(0), "the initial domain is domain 0");
    assert_eq!((caps(0), caps(1), caps(2)), (CAP_CONTROL, 0, CAP_CONTROL));
}

//! Domains created at run time through the control interface (`control/create.rs`,
//! `run/create.rs`): a control domain (not scheduled; the test makes its hypercalls and
//! serves them as its run loop would) creates a domain, hands over its kernel in chunks
//! and starts it; the guest runs and powers off. Every refusal leaves the free-frame
//! count exactly as it was.

use super::programs::{spinner, worker};
use super::world::{describe, lines_of, Guest, World};
use crate::arch::CpuId;
use crate::domain::{Domain, DomainConfig};
use crate::mm::GuestPhysAddr;
use crate::mock::{sim, MockArch};
use crate::test_support::{call, get, put, ARG, RAM};
use alloc::sync::Arc;
use alloc::vec::Vec;
use keel_abi::control::*;
use keel_abi::event::{EvtchnBindVirq, EVTCHNOP_BIND_VIRQ};
use keel_abi::hypercall::EVENT_CHANNEL_OP;
use keel_abi::layout::AARCH64;
use keel_abi::xen::{DomId, VIRQ_DOM_EXC};
use keel_abi::Errno;
use proptest::prelude::*;

const MS: u64 = 1_000_000;
/// Where the control domain keeps the kernel it hands over.
const BUF: u64 = RAM + 0x10000;
const CMDLINE: u64 = RAM + 0x2000;
const EINVAL: i64 = -22;

/// The control domain, and a spinning domain beside it so that the machine never
/// finishes (the control domain is not one of its guests).
fn controller(w: &World) -> Arc<Domain<MockArch>> {
    let built = w.boot(&describe(&[Guest::new("bystander", spinner())]));
    assert!(built[0].result.is_ok());
    let hv = w.m.hypervisor();
    let mut cfg = DomainConfig::new(&AARCH64, 1, 256);
    cfg.name = "ctl".into();
    cfg.capabilities = CAP_CONTROL;
    let d = hv.create_domain(cfg).unwrap();
    d.populate_ram(hv.pool(), GuestPhysAddr(RAM), 256 * 4096).unwrap();
    d
}

/// Makes control call `cmd` and serves what it queued, as the caller's run loop does.
fn ctl<T: keel_abi::Wire>(w: &World, c: &Arc<Domain<MockArch>>, cmd: u32, arg: &T) -> i64 {
    sim::set_current(CpuId(0));
    put(c, ARG, arg);
    let r = call(w.m.hypervisor(), c, 0, KEEL_CONTROL_OP, &[u64::from(cmd), ARG]);
    w.m.serve_build(c.id(), 0).map_or(r, |v| v as i64)
}

fn name(s: &str) -> [u8; CTL_CREATE_NAME_LEN] {
    let mut n = [0; CTL_CREATE_NAME_LEN];
    n[..s.len()].copy_from_slice(s.as_bytes());
    n
}

fn create_args(n: &str, kernel_size: u64) -> CtlCreate {
    CtlCreate { weight: 256, vcpus: 1, memory_kib: 1024, kernel_size, name: name(n), ..CtlCreate::ZERO }
}

/// Hands `image` over as module `module` of `id` in chunks of `chunk` bytes.
fn load(w: &World, c: &Arc<Domain<MockArch>>, id: DomId, module: u8, image: &[u8], chunk: usize) -> i64 {
    for (i, piece) in image.chunks(chunk).enumerate() {
        c.write_phys(BUF, piece).unwrap();
        let a = CtlLoad {
            domid: id,
            module,
            _pad: 0,
            len: u32::try_from(piece.len()).unwrap(),
            offset: (i * chunk) as u64,
            buffer: BUF,
        };
        let r = ctl(w, c, CTL_LOAD, &a);
        if r != 0 {
            return r;
        }
    }
    0
}

fn start(w: &World, c: &Arc<Domain<MockArch>>, id: DomId, flags: u32) -> i64 {
    ctl(w, c, CTL_START, &CtlStart { domid: id, _pad: [0; 2], flags })
}

fn free_pages(w: &World, c: &Arc<Domain<MockArch>>) -> u64 {
    assert_eq!(ctl(w, c, CTL_PHYSINFO, &CtlPhysInfo::ZERO), 0);
    get::<CtlPhysInfo>(c, ARG).free_pages
}

fn query(w: &World, c: &Arc<Domain<MockArch>>, id: DomId) -> Result<CtlDomainInfo, i64> {
    match ctl(w, c, CTL_QUERY, &CtlDomainInfo { domid: id, ..CtlDomainInfo::ZERO }) {
        0 => Ok(get(c, ARG)),
        e => Err(e),
    }
}

/// Creates, loads and starts `image` as `n`; returns its id.
fn create_and_start(w: &World, c: &Arc<Domain<MockArch>>, n: &str, image: &[u8], flags: u32) -> DomId {
    let id = ctl(w, c, CTL_CREATE, &create_args(n, image.len() as u64));
    assert!(id > 0, "created: {id}");
    let id = DomId::try_from(id).unwrap();
    assert_eq!(load(w, c, id, CTL_MODULE_KERNEL, image, 1000), 0);
    assert_eq!(start(w, c, id, flags), 0);
    id
}

#[test]
fn a_created_domain_runs_its_kernel_and_leaves_nothing_when_it_ends() {
    let mut w = World::new(2);
    let c = controller(&w);
    let before = free_pages(&w, &c);
    let image = worker(1000);
    let id = ctl(&w, &c, CTL_CREATE, &create_args("made", image.len() as u64));
    assert!(id > 0);
    let id = DomId::try_from(id).unwrap();
    let info = query(&w, &c, id).unwrap();
    assert_eq!((info.state, info.cpu_time_ns, &info.name[..5]), (CTL_STATE_PAUSED, 0, &b"made\0"[..]));
    assert!(free_pages(&w, &c) < before - 256, "its RAM and staging block are taken");
    assert_eq!(ctl(&w, &c, CTL_PAUSE, &CtlDomain { domid: id, _pad: [0; 6] }), EINVAL, "being built");
    assert_eq!(ctl(&w, &c, CTL_UNPAUSE, &CtlDomain { domid: id, _pad: [0; 6] }), EINVAL, "being built");
    assert_eq!(start(&w, &c, id, 0), EINVAL, "kernel not loaded yet");
    assert_eq!(load(&w, &c, id, CTL_MODULE_KERNEL, &image, 3000), 0);
    assert_eq!(start(&w, &c, id, 0), 0);
    assert_eq!(start(&w, &c, id, 0), EINVAL, "started already");
    assert!(w.run_until(100 * MS, |w| w.m.ends().iter().any(|e| e.id == id)));
    let ends = w.m.ends();
    assert!(ends[0].is_clean(), "{}", ends[0]);
    assert!(lines_of(id).iter().any(|l| l.starts_with("worked=")), "{:?}", lines_of(id));
    assert_eq!(free_pages(&w, &c), before, "every frame back");
    assert_eq!(query(&w, &c, id), Err(-3));
}

/// `CTL_CREATE_VUART` gives the domain the backend's emulated console UART (arm64's
/// virtual PL011, built into its device tree from the same description as a boot-time
/// `vpl011`); what it writes there is its console output.
#[test]
fn a_domain_created_with_a_virtual_uart_has_one_and_its_writes_are_its_console() {
    let mut w = World::new(1);
    let c = controller(&w);
    let image = super::programs::uart_writer("login: \r\n# ");
    let plain = create_and_start(&w, &c, "plain", &spinner(), 0);
    let a = CtlCreate { flags: CTL_CREATE_VUART, ..create_args("uart", image.len() as u64) };
    let id: DomId = ctl(&w, &c, CTL_CREATE, &a).try_into().unwrap();
    let hv = w.m.hypervisor();
    assert!(hv.domain(id).unwrap().config().virtual_uart, "asked for");
    assert!(!hv.domain(plain).unwrap().config().virtual_uart, "not asked for");
    assert_eq!(load(&w, &c, id, CTL_MODULE_KERNEL, &image, 1000), 0);
    assert_eq!(start(&w, &c, id, 0), 0);
    assert!(w.run_until(100 * MS, |w| w.m.ends().iter().any(|e| e.id == id)));
    assert_eq!(lines_of(id), ["login: "]);
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: plain, _pad: [0; 6] }), 0);
}

/// `CTL_CREATE_XENSTORE` makes the xenstore domain (Xen's `init-xenstore-domain`): it
/// holds the xenstore capability from its creation on, and there is only one.
#[test]
fn a_created_xenstore_domain_holds_the_capability_and_is_the_only_one() {
    let mut w = World::new(1);
    let c = controller(&w);
    let image = spinner();
    let before = free_pages(&w, &c);
    let a = CtlCreate { flags: CTL_CREATE_XENSTORE, ..create_args("xs", image.len() as u64) };
    let id: DomId = ctl(&w, &c, CTL_CREATE, &a).try_into().unwrap();
    let hv = w.m.hypervisor();
    assert_eq!(hv.domain(id).unwrap().config().capabilities, CAP_XENSTORE);
    assert_eq!(hv.xenstore_domain().map(|d| d.id()), Some(id), "being built, it is the xenstore domain already");
    let again = CtlCreate { flags: CTL_CREATE_XENSTORE, ..create_args("xs2", image.len() as u64) };
    let taken = free_pages(&w, &c);
    assert_eq!(ctl(&w, &c, CTL_CREATE, &again), -17, "EEXIST: one xenstore domain");
    assert_eq!(free_pages(&w, &c), taken, "the refusal took nothing");
    assert_eq!(load(&w, &c, id, CTL_MODULE_KERNEL, &image, 1000), 0);
    assert_eq!(start(&w, &c, id, 0), 0);
    w.run_until(MS, |_| false);
    assert_eq!(query(&w, &c, id).unwrap().caps, CAP_XENSTORE);
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: id, _pad: [0; 6] }), 0);
    w.run_until(MS, |_| false);
    assert_eq!(free_pages(&w, &c), before);
    let id: DomId = ctl(&w, &c, CTL_CREATE, &again).try_into().unwrap();
    assert!(hv.domain(id).is_some(), "another once the first is gone");
}

#[test]
fn a_domain_kept_after_its_end_stays_listed_until_destroyed() {
    let mut w = World::new(2);
    let c = controller(&w);
    let before = free_pages(&w, &c);
    let id = create_and_start(&w, &c, "kept", &worker(1000), CTL_START_KEEP_POWEROFF);
    assert!(w.run_until(100 * MS, |w| w.m.ends().iter().any(|e| e.id == id)));
    let info = query(&w, &c, id).unwrap();
    assert_eq!((info.state, info.shutdown_reason), (CTL_STATE_SHUTDOWN, 0), "listed as powered off");
    assert!(free_pages(&w, &c) < before - 256, "its memory is held");
    let one = CtlDomain { domid: id, _pad: [0; 6] };
    assert_eq!(ctl(&w, &c, CTL_UNPAUSE, &one), EINVAL, "it does not run again");
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &one), 0);
    w.run_until(10 * MS, |_| false);
    assert_eq!(query(&w, &c, id), Err(-3), "gone once destroyed");
    assert_eq!(free_pages(&w, &c), before, "every frame back");
}

#[test]
fn only_the_ends_asked_for_are_kept() {
    let mut w = World::new(2);
    let c = controller(&w);
    let before = free_pages(&w, &c);
    // Kept after a reboot, not after a power-off.
    let a = create_and_start(&w, &c, "off", &worker(1000), CTL_START_KEEP_REBOOT | CTL_START_KEEP_CRASH);
    assert!(w.run_until(100 * MS, |w| w.m.ends().iter().any(|e| e.id == a)));
    w.run_until(5 * MS, |_| false);
    assert_eq!(query(&w, &c, a), Err(-3), "destroyed at once");
    assert_eq!(free_pages(&w, &c), before);
    let b = create_and_start(&w, &c, "again", &spinner(), CTL_START_KEEP_REBOOT);
    w.run_until(5 * MS, |_| false);
    let reboot = CtlShutdown { domid: b, _pad: [0; 2], reason: 1 };
    assert_eq!(ctl(&w, &c, CTL_SHUTDOWN, &reboot), 0);
    assert!(w.run_until(100 * MS, |w| w.m.ends().iter().any(|e| e.id == b)));
    let info = query(&w, &c, b).unwrap();
    assert_eq!((info.state, info.shutdown_reason), (CTL_STATE_SHUTDOWN, 1), "listed as rebooted");
    assert_eq!(ctl(&w, &c, CTL_SHUTDOWN, &reboot), EINVAL, "stopped already");
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: b, _pad: [0; 6] }), 0);
    w.run_until(5 * MS, |_| false);
    assert_eq!(free_pages(&w, &c), before, "every frame back");
}

#[test]
fn a_domain_started_paused_runs_only_once_unpaused() {
    let mut w = World::new(1);
    let c = controller(&w);
    let id = create_and_start(&w, &c, "later", &spinner(), CTL_START_PAUSED);
    w.run_until(10 * MS, |_| false);
    let info = query(&w, &c, id).unwrap();
    assert_eq!((info.state, info.cpu_time_ns), (CTL_STATE_PAUSED, 0), "never ran");
    assert_eq!(ctl(&w, &c, CTL_UNPAUSE, &CtlDomain { domid: id, _pad: [0; 6] }), 0);
    w.run_until(10 * MS, |_| false);
    assert!(query(&w, &c, id).unwrap().cpu_time_ns > MS / 2, "runs once unpaused");
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: id, _pad: [0; 6] }), 0);
}

#[test]
fn a_started_domain_is_announced_with_virq_dom_exc() {
    let w = World::new(1);
    let c = controller(&w);
    put(&c, ARG, &EvtchnBindVirq { virq: VIRQ_DOM_EXC, vcpu: 0, port: 0 });
    assert_eq!(call(w.m.hypervisor(), &c, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_VIRQ, ARG]), 0);
    let port = get::<EvtchnBindVirq>(&c, ARG).port;
    let id = ctl(&w, &c, CTL_CREATE, &create_args("later", spinner().len() as u64));
    let id = DomId::try_from(id).unwrap();
    assert_eq!(load(&w, &c, id, CTL_MODULE_KERNEL, &spinner(), 1000), 0);
    assert!(!c.events.lock().is_pending(port), "nothing to announce before it is built");
    assert_eq!(start(&w, &c, id, CTL_START_PAUSED), 0);
    assert!(c.events.lock().is_pending(port), "the xenstore domain lists the domains again");
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: id, _pad: [0; 6] }), 0);
}

#[test]
fn refusals_are_the_documented_errors_and_leave_nothing_behind() {
    let mut w = World::new(1);
    let c = controller(&w);
    let before = free_pages(&w, &c);
    let image = worker(10);
    let len = image.len() as u64;
    let bad = |f: &dyn Fn(&mut CtlCreate)| {
        let mut a = create_args("bad", len);
        f(&mut a);
        a
    };
    let cases: Vec<(CtlCreate, Errno)> = alloc::vec![
        (bad(&|a| a.name = name("")), Errno::EINVAL),
        (bad(&|a| a.name = name("a b")), Errno::EINVAL),
        (bad(&|a| a.name[10] = b'x'), Errno::EINVAL),
        (bad(&|a| a.vcpus = 0), Errno::EINVAL),
        (bad(&|a| a.vcpus = CTL_CREATE_MAX_VCPUS + 1), Errno::EINVAL),
        (bad(&|a| a.memory_kib = 0), Errno::EINVAL),
        (bad(&|a| a.memory_kib = 1023), Errno::EINVAL),
        (bad(&|a| a.memory_kib = u64::MAX / 4 * 4), Errno::EINVAL),
        (bad(&|a| a.memory_kib = 1 << 40), Errno::ENOMEM),
        (bad(&|a| a.weight = 0), Errno::EINVAL),
        (bad(&|a| a.cap = 101), Errno::EINVAL),
        (bad(&|a| a.kernel_size = 0), Errno::EINVAL),
        (bad(&|a| a.kernel_size = CTL_KERNEL_MAX + 1), Errno::EINVAL),
        (bad(&|a| a.ramdisk_size = CTL_RAMDISK_MAX + 1), Errno::EINVAL),
        (bad(&|a| a.cmdline_len = CTL_CMDLINE_MAX + 1), Errno::EINVAL),
        (bad(&|a| a._pad[1] = 1), Errno::EINVAL),
        (bad(&|a| a.flags = 0x4), Errno::EINVAL),
        (bad(&|a| a.flags = 0x80 | CTL_CREATE_VUART), Errno::EINVAL),
        (bad(&|a| a.name = name("ctl")), Errno::EEXIST),
        (
            bad(&|a| {
                a.cmdline_len = 4;
                a.cmdline = 0x10
            }),
            Errno::EFAULT
        ),
    ];
    for (a, want) in &cases {
        assert_eq!(ctl(&w, &c, CTL_CREATE, a), -i64::from(want.code()), "{a:?}");
        assert_eq!(free_pages(&w, &c), before, "{a:?}");
    }
    assert_eq!(w.m.hypervisor().domain_ids().len(), 2, "no domain left but the bystander and the control domain");

    // A second creation with the name of one being built.
    let id: DomId = ctl(&w, &c, CTL_CREATE, &create_args("twice", len)).try_into().unwrap();
    assert_eq!(ctl(&w, &c, CTL_CREATE, &create_args("twice", len)), -17, "EEXIST");
    let chunk = |offset: u64, n: u32, module: u8| CtlLoad { domid: id, module, _pad: 0, len: n, offset, buffer: BUF };
    assert_eq!(ctl(&w, &c, CTL_LOAD, &chunk(8, 8, CTL_MODULE_KERNEL)), EINVAL, "out of order");
    assert_eq!(
        ctl(&w, &c, CTL_LOAD, &chunk(0, u32::try_from(len).unwrap() + 1, CTL_MODULE_KERNEL)),
        EINVAL,
        "past its size"
    );
    assert_eq!(ctl(&w, &c, CTL_LOAD, &chunk(0, 8, CTL_MODULE_RAMDISK)), EINVAL, "no ramdisk");
    assert_eq!(ctl(&w, &c, CTL_LOAD, &chunk(0, CTL_LOAD_MAX + 1, CTL_MODULE_KERNEL)), EINVAL, "chunk too large");
    assert_eq!(ctl(&w, &c, CTL_LOAD, &CtlLoad { buffer: 0x10, ..chunk(0, 8, CTL_MODULE_KERNEL) }), -14, "EFAULT");
    assert_eq!(ctl(&w, &c, CTL_LOAD, &CtlLoad { domid: 77, ..chunk(0, 8, CTL_MODULE_KERNEL) }), -3, "ESRCH");
    assert_eq!(ctl(&w, &c, CTL_LOAD, &CtlLoad { domid: c.id(), ..chunk(0, 8, 0) }), EINVAL, "not being built");
    assert_eq!(start(&w, &c, 77, 0), -3, "ESRCH");
    assert_eq!(start(&w, &c, id, 0x10), EINVAL, "unknown flag");
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: id, _pad: [0; 6] }), 0);
    assert_eq!(free_pages(&w, &c), before, "destroying a domain being built frees its staging");

    // A kernel the loader refuses: the domain is gone at once.
    let mut junk = image.clone();
    junk[0] = 0;
    let id: DomId = ctl(&w, &c, CTL_CREATE, &create_args("junk", len)).try_into().unwrap();
    assert_eq!(load(&w, &c, id, CTL_MODULE_KERNEL, &junk, 4096), 0);
    assert_eq!(start(&w, &c, id, 0), EINVAL);
    assert_eq!(query(&w, &c, id), Err(-3));
    assert_eq!(free_pages(&w, &c), before);
    w.run_until(MS, |_| false);
    assert!(w.m.ends().is_empty());
}

#[test]
fn a_command_line_and_ramdisk_are_handed_over() {
    let w = World::new(1);
    let c = controller(&w);
    let before = free_pages(&w, &c);
    let image = worker(10);
    c.write_phys(CMDLINE, b"console=hvc0").unwrap();
    let a =
        CtlCreate { cmdline: CMDLINE, cmdline_len: 12, ramdisk_size: 5000, ..create_args("full", image.len() as u64) };
    let id: DomId = ctl(&w, &c, CTL_CREATE, &a).try_into().unwrap();
    let p = w.m.hypervisor().builds.find(id).unwrap();
    assert_eq!(p.lock().args.cmdline.as_deref(), Some("console=hvc0"));
    drop(p);
    assert_eq!(load(&w, &c, id, CTL_MODULE_KERNEL, &image, 4096), 0);
    assert_eq!(start(&w, &c, id, 0), EINVAL, "ramdisk missing");
    assert_eq!(load(&w, &c, id, CTL_MODULE_RAMDISK, &[7u8; 5000], 4096), 0);
    assert_eq!(start(&w, &c, id, CTL_START_PAUSED), 0);
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: id, _pad: [0; 6] }), 0);
    let mut w = w;
    w.run_until(MS, |w| w.m.guest_ids().len() == 1);
    assert_eq!(free_pages(&w, &c), before);
}

#[test]
fn a_hundred_create_destroy_cycles_leak_nothing() {
    let mut w = World::new(2);
    let c = controller(&w);
    let before = free_pages(&w, &c);
    let image = spinner();
    let mut ids = alloc::collections::BTreeSet::new();
    for i in 0..100 {
        let id = create_and_start(&w, &c, "cycle", &image, if i % 2 == 0 { 0 } else { CTL_START_PAUSED });
        ids.insert(id);
        w.run_until(MS / 2, |_| false);
        assert_eq!(ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: id, _pad: [0; 6] }), 0);
        w.run_until(MS, |w| w.m.guest_ids().is_empty());
        assert_eq!(free_pages(&w, &c), before, "cycle {i}");
    }
    assert!(ids.len() <= 2, "ids are reused: {ids:?}");
}

proptest! {
    #![proptest_config(crate::test_support::cases(64))]

    /// Garbage creation requests never panic, and whatever they do, a destroy of what
    /// they created gives every frame back.
    #[test]
    fn garbage_creations_leave_nothing(raw in proptest::collection::vec(any::<u8>(), CtlCreate::SIZE), flags in any::<u32>()) {
        let mut w = World::new(1);
        let c = controller(&w);
        let before = free_pages(&w, &c);
        let mut a = <CtlCreate as keel_abi::Wire>::from_bytes(&raw).unwrap();
        a.kernel_size %= 1 << 16;
        a.ramdisk_size %= 1 << 16;
        a.memory_kib %= 1 << 13;
        let r = ctl(&w, &c, CTL_CREATE, &a);
        if r > 0 {
            let id: DomId = r.try_into().unwrap();
            let _ = start(&w, &c, id, flags);
            let _ = ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: id, _pad: [0; 6] });
            w.run_until(MS, |w| w.m.guest_ids().len() == 1);
        }
        prop_assert_eq!(free_pages(&w, &c), before);
    }
}

/// Since 1.2, `CTL_SET_AFFINITY` on a domain being built records each vCPU's hard
/// affinity for `CTL_START` (xl's per-vCPU `cpus` list), so that no vCPU ever runs
/// outside it; a map with no CPU that runs vCPUs is refused by the start, which then
/// leaves nothing behind.
#[test]
fn per_vcpu_affinity_set_while_being_built_reaches_the_scheduler() {
    use crate::sched::{CpuMask, VcpuKey};
    let mut w = World::new(2);
    let c = controller(&w);
    let image = spinner();
    let aff = |id: DomId, vcpu: u32, cpumap: [u64; 4]| CtlAffinity { domid: id, _pad: [0; 2], vcpu, cpumap };
    let args = CtlCreate { vcpus: 2, ..create_args("pinned", image.len() as u64) };
    let id = DomId::try_from(ctl(&w, &c, CTL_CREATE, &args)).unwrap();
    assert_eq!(ctl(&w, &c, CTL_SET_AFFINITY, &aff(id, 1, [0b10, 0, 0, 0])), 0);
    assert_eq!(ctl(&w, &c, CTL_SET_AFFINITY, &aff(id, 2, [0b10, 0, 0, 0])), EINVAL, "no vCPU 2");
    assert_eq!(ctl(&w, &c, CTL_SET_AFFINITY, &aff(id, 0, [0; 4])), EINVAL, "an empty map");
    assert_eq!(load(&w, &c, id, CTL_MODULE_KERNEL, &image, 1000), 0);
    assert_eq!(start(&w, &c, id, CTL_START_PAUSED), 0);
    let affinity = |v: u32| w.m.scheduler().info(VcpuKey::new(id, v)).map(|i| i.params.affinity);
    assert_eq!(affinity(0), Some(CpuMask::of(&[0, 1])), "vCPU 0: any CPU");
    assert_eq!(affinity(1), Some(CpuMask::of(&[1])), "vCPU 1: CPU 1");
    assert_eq!(ctl(&w, &c, CTL_DESTROY, &CtlDomain { domid: id, _pad: [0; 6] }), 0);

    w.run_until(MS, |_| false);
    let before = free_pages(&w, &c);
    let args = CtlCreate { vcpus: 2, ..create_args("offline", image.len() as u64) };
    let id = DomId::try_from(ctl(&w, &c, CTL_CREATE, &args)).unwrap();
    assert_eq!(ctl(&w, &c, CTL_SET_AFFINITY, &aff(id, CTL_ALL_VCPUS, [1 << 5, 0, 0, 0])), 0, "recorded");
    assert_eq!(load(&w, &c, id, CTL_MODULE_KERNEL, &image, 1000), 0);
    assert_eq!(start(&w, &c, id, 0), EINVAL, "CPU 5 is not online");
    assert_eq!(query(&w, &c, id), Err(-3), "destroyed");
    w.run_until(MS, |_| false);
    assert_eq!(free_pages(&w, &c), before, "nothing left");
}

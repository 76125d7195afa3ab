use crate::arch::UpcallRoute;
use crate::domain::{DomainState, RunState, ShutdownReason};
use crate::mock::MockArch;
use crate::test_support::*;
use alloc::string::String;
use alloc::vec::Vec;
use keel_abi::event::{EvtchnBindVirq, EVTCHNOP_BIND_VIRQ};
use keel_abi::hvm::*;
use keel_abi::hypercall::*;
use keel_abi::layout::{AARCH64, X86_64};
use keel_abi::sched::*;
use keel_abi::vcpu::*;
use keel_abi::version::*;
use keel_abi::xen::*;
use keel_abi::Errno;
use proptest::prelude::*;

fn err(e: Errno) -> i64 {
    -(e.code() as i64)
}

fn cstr(d: &crate::domain::Domain<MockArch>, gpa: u64, len: usize) -> String {
    let mut b = alloc::vec![0u8; len];
    d.read_phys(gpa, &mut b).unwrap();
    String::from_utf8(b.into_iter().take_while(|&c| c != 0).collect()).unwrap()
}

/// Only the initial domain (Xen's dom0) is told `XENFEAT_dom0`, on both architectures,
/// as Xen tells its hardware domain; every other domain sees the plain submap.
#[test]
fn only_the_initial_domain_sees_xenfeat_dom0() {
    use crate::domain::DomainConfig;
    use crate::mm::GuestPhysAddr;
    use keel_abi::features::{FEATURES_AARCH64, FEATURES_X86_64, XENFEAT_DOM0};
    let (hv, _) = hypervisor();
    for (layout, base) in [(&AARCH64, FEATURES_AARCH64), (&X86_64, FEATURES_X86_64)] {
        let mut config = DomainConfig::new(layout, 1, 1 << 16);
        config.initial = true;
        let dom0 = hv.create_domain(config).unwrap();
        dom0.populate_ram(hv.pool(), GuestPhysAddr(RAM), 16 * 1024).unwrap();
        let domu = guest(&hv, layout, 1, 16);
        for (d, want) in [(&dom0, base | 1 << XENFEAT_DOM0), (&domu, base)] {
            put(d, ARG, &XenFeatureInfo { submap_idx: 0, submap: 0 });
            assert_eq!(call(&hv, d, 0, XEN_VERSION, &[XENVER_GET_FEATURES, ARG]), 0);
            assert_eq!(get::<XenFeatureInfo>(d, ARG).submap, want);
        }
    }
    assert_eq!(FEATURES_AARCH64 | 1 << XENFEAT_DOM0, 0x0001_0805);
}

#[test]
fn unknown_numbers_are_enosys() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 16);
    for nr in [0, 1, 11, 13, 16, 19, 22, 23, 33, 35, 41, 63, 64, 1 << 32, u64::MAX] {
        assert_eq!(call(&hv, &d, 0, nr, &[0, ARG]), err(Errno::ENOSYS), "hypercall {nr}");
    }
    assert_eq!(call(&hv, &d, 1, XEN_VERSION, &[0]), err(Errno::EINVAL), "no such calling vCPU");
}

#[test]
fn xen_version_reports_4_19_keel() {
    let (hv, _) = hypervisor();
    let x = guest(&hv, &X86_64, 1, 16);
    let a = guest(&hv, &AARCH64, 1, 16);
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_VERSION]), 0x0004_0013);
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_VERSION | 1 << 32]), 0x0004_0013, "int cmd");
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_EXTRAVERSION, ARG]), 0);
    assert_eq!(cstr(&x, ARG, 16), ".0-keel");
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_CHANGESET, ARG]), 0);
    assert_eq!(cstr(&x, ARG, 64), "keel-abi 1.0");
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_CAPABILITIES, ARG]), 0);
    assert_eq!(cstr(&x, ARG, 1024), "hvm-3.0-x86_64");
    assert_eq!(call(&hv, &a, 0, XEN_VERSION, &[XENVER_CAPABILITIES, ARG]), 0);
    assert_eq!(cstr(&a, ARG, 1024), "xen-3.0-aarch64");
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_COMPILE_INFO, ARG]), 0);
    assert_eq!(cstr(&x, ARG, 64), "rustc");
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_PAGESIZE]), 4096);
    for (d, want) in [(&x, keel_abi::features::FEATURES_X86_64), (&a, keel_abi::features::FEATURES_AARCH64)] {
        put(d, ARG, &XenFeatureInfo { submap_idx: 0, submap: 0 });
        assert_eq!(call(&hv, d, 0, XEN_VERSION, &[XENVER_GET_FEATURES, ARG]), 0);
        assert_eq!(get::<XenFeatureInfo>(d, ARG).submap, want);
        put(d, ARG, &XenFeatureInfo { submap_idx: 1, submap: 0 });
        assert_eq!(call(&hv, d, 0, XEN_VERSION, &[XENVER_GET_FEATURES, ARG]), err(Errno::EINVAL));
    }
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_GET_FEATURES, 0x10]), err(Errno::EFAULT));
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_EXTRAVERSION, RAM + 16 * 1024 - 8]), err(Errno::EFAULT));
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_COMMANDLINE, ARG]), err(Errno::EPERM));
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_BUILD_ID, ARG]), err(Errno::EPERM));
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[11, ARG]), err(Errno::ENOSYS));
    assert_eq!(call(&hv, &x, 0, XEN_VERSION, &[XENVER_GUEST_HANDLE, ARG]), 0);
}

#[test]
fn hvm_params_are_validated() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 2, 16);
    d.set_param(HVM_PARAM_CONSOLE_PFN, 0xfefff).unwrap();
    let p = |op: u64, domid: u16, index: u32, value: u64| {
        put(&d, ARG, &XenHvmParam { domid, _pad: [0; 2], index, value });
        (call(&hv, &d, 0, HVM_OP, &[op, ARG]), get::<XenHvmParam>(&d, ARG).value)
    };
    assert_eq!(p(HVMOP_GET_PARAM, DOMID_SELF, HVM_PARAM_CONSOLE_PFN, 0), (0, 0xfefff));
    assert_eq!(d.upcall_route(0), UpcallRoute::Platform);
    assert_eq!(p(HVMOP_SET_PARAM, DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, 2 << 56 | 0xf3).0, 0);
    assert_eq!(d.param(HVM_PARAM_CALLBACK_IRQ), 2 << 56 | 0xf3);
    assert_eq!(d.upcall_route(0), UpcallRoute::CallbackVector(0xf3));
    assert_eq!(p(HVMOP_GET_PARAM, d.id(), HVM_PARAM_STORE_PFN, 9), (0, 0));
    assert_eq!(p(HVMOP_SET_PARAM, DOMID_SELF, HVM_PARAM_CONSOLE_PFN, 1).0, err(Errno::EPERM));
    assert_eq!(p(HVMOP_GET_PARAM, DOMID_SELF, HVM_PARAM_IOREQ_SERVER_PFN, 0).0, err(Errno::EPERM));
    assert_eq!(p(HVMOP_GET_PARAM, DOMID_SELF, HVM_NR_PARAMS, 0).0, err(Errno::EINVAL));
    assert_eq!(p(HVMOP_GET_PARAM, 0x6000, 1, 0).0, err(Errno::ESRCH));
    let other = guest(&hv, &X86_64, 1, 16);
    assert_eq!(p(HVMOP_GET_PARAM, other.id(), 1, 0).0, err(Errno::EPERM));
    assert_eq!(call(&hv, &d, 0, HVM_OP, &[HVMOP_PAGETABLE_DYING, ARG]), err(Errno::ENOSYS));
    // Xen 4.17's checks and folding of the x86 writes it takes from a guest.
    for (width, want) in [(4, 0), (8, 0), (0, 0), (3, err(Errno::EINVAL)), (u64::MAX, err(Errno::EINVAL))] {
        assert_eq!(p(HVMOP_SET_PARAM, DOMID_SELF, HVM_PARAM_X87_FIP_WIDTH, width).0, want);
    }
    assert_eq!(p(HVMOP_GET_PARAM, DOMID_SELF, HVM_PARAM_X87_FIP_WIDTH, 9), (0, 0));
    assert_eq!(p(HVMOP_SET_PARAM, DOMID_SELF, HVM_PARAM_VM86_TSS, 0x1_0000_0000).0, err(Errno::EINVAL));
    assert_eq!(p(HVMOP_SET_PARAM, DOMID_SELF, HVM_PARAM_VM86_TSS, 0x1000).0, 0);
    assert_eq!(p(HVMOP_GET_PARAM, DOMID_SELF, HVM_PARAM_VM86_TSS, 0), (0, 0x1000));
    assert_eq!(p(HVMOP_GET_PARAM, DOMID_SELF, HVM_PARAM_VM86_TSS_SIZED, 0), (0, 128 << 32 | 0x1000));
    assert_eq!(p(HVMOP_SET_PARAM, DOMID_SELF, HVM_PARAM_VM86_TSS_SIZED, 103 << 32 | 0x2000).0, err(Errno::EINVAL));
    assert_eq!(p(HVMOP_SET_PARAM, DOMID_SELF, HVM_PARAM_VM86_TSS_SIZED, u64::MAX).0, 0);
    assert_eq!(p(HVMOP_GET_PARAM, DOMID_SELF, HVM_PARAM_VM86_TSS_SIZED, 0), (0, 8329 << 32 | 0xffff_ffff));
    assert_eq!(p(HVMOP_GET_PARAM, DOMID_SELF, HVM_PARAM_VM86_TSS, 0), (0, 0xffff_ffff));
    let vec = |vcpu: u32, vector: u8| {
        put(&d, ARG, &XenHvmEvtchnUpcallVector { vcpu, vector, _pad: [0; 3] });
        call(&hv, &d, 0, HVM_OP, &[HVMOP_SET_EVTCHN_UPCALL_VECTOR, ARG])
    };
    assert_eq!(vec(1, 0xf3), 0);
    assert_eq!(d.vcpu(1).unwrap().upcall_vector, Some(0xf3));
    assert_eq!(
        (d.upcall_route(1), d.upcall_route(0)),
        (UpcallRoute::LapicVector(0xf3), UpcallRoute::CallbackVector(0xf3))
    );
    assert_eq!(vec(1, 0x0f), err(Errno::EINVAL));
    assert_eq!(vec(2, 0xf3), err(Errno::ENOENT));
    let arm = guest(&hv, &AARCH64, 1, 16);
    assert_eq!(call(&hv, &arm, 0, HVM_OP, &[HVMOP_SET_EVTCHN_UPCALL_VECTOR, ARG]), err(Errno::ENOSYS));
}

#[test]
fn console_io_tags_lines_and_reads_input() {
    let (hv, rec) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 16);
    let text = b"hello keel\npartial";
    d.write_phys(ARG, text).unwrap();
    assert_eq!(call(&hv, &d, 0, CONSOLE_IO, &[CONSOLEIO_WRITE, text.len() as u64, ARG]), 0);
    d.write_phys(ARG, b" line\n").unwrap();
    assert_eq!(call(&hv, &d, 0, CONSOLE_IO, &[CONSOLEIO_WRITE, 6, ARG]), 0);
    let lines: Vec<String> = rec.lines.lock().iter().map(|(_, l)| l.clone()).collect();
    assert_eq!(lines, ["hello keel", "partial line"]);
    assert!(rec.lines.lock().iter().all(|&(id, _)| id == d.id()));
    assert_eq!(call(&hv, &d, 0, CONSOLE_IO, &[CONSOLEIO_WRITE, 65537, ARG]), err(Errno::EINVAL));
    assert_eq!(call(&hv, &d, 0, CONSOLE_IO, &[CONSOLEIO_WRITE, 64, RAM + 16 * 1024 - 8]), err(Errno::EFAULT));
    hv.console_input(&d, b"ls\n");
    assert_eq!(call(&hv, &d, 0, CONSOLE_IO, &[CONSOLEIO_READ, 2, ARG]), 2);
    assert_eq!(call(&hv, &d, 0, CONSOLE_IO, &[CONSOLEIO_READ, 9, ARG + 2]), 1);
    assert_eq!(cstr(&d, ARG, 3), "ls\n");
    assert_eq!(call(&hv, &d, 0, CONSOLE_IO, &[2, 0, 0]), err(Errno::ENOSYS));
}

#[test]
fn sched_op_block_poll_shutdown() {
    let (hv, rec) = hypervisor();
    let d = guest(&hv, &X86_64, 2, 16);
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_YIELD]), 0);
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_BLOCK]), 0);
    assert_eq!(d.vcpu(0).unwrap().run_state(), RunState::Blocked);
    assert_eq!(rec.blocks.lock().as_slice(), &[(d.id(), 0)]);
    let port = d.events.lock().bind_ipi(0).unwrap();
    crate::event::interdomain::send(&hv, &d, port).unwrap();
    assert_eq!(d.vcpu(0).unwrap().run_state(), RunState::Runnable, "an event wakes it");
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_BLOCK]), 0);
    assert_eq!(d.vcpu(0).unwrap().run_state(), RunState::Runnable, "upcall still pending: no block");

    // Poll: port 1 is pending, so it returns at once; a masked, idle port blocks.
    let poll = |ports: &[u32], timeout: u64| {
        for (i, p) in ports.iter().enumerate() {
            put_u32(&d, ARG + 0x100 + 4 * i as u64, *p);
        }
        put(&d, ARG, &SchedPoll { ports: ARG + 0x100, nr_ports: ports.len() as u32, _pad: [0; 4], timeout });
        call(&hv, &d, 1, SCHED_OP, &[SCHEDOP_POLL, ARG])
    };
    assert_eq!(poll(&[port], 0), 0);
    assert_eq!(d.vcpu(1).unwrap().run_state(), RunState::Offline, "vCPU 1 never started");
    d.start_vcpu(1, now()).unwrap();
    let idle = d.events.lock().bind_ipi(1).unwrap();
    assert_eq!(poll(&[idle, 5000], 0), err(Errno::EINVAL));
    put(&d, ARG, &SchedPoll { ports: ARG + 0x100, nr_ports: 129, _pad: [0; 4], timeout: 0 });
    assert_eq!(call(&hv, &d, 1, SCHED_OP, &[SCHEDOP_POLL, ARG]), err(Errno::EINVAL));
    // Mask it in shared_info so raising it gives no upcall: only the poll wakes.
    let si = d.shared_info_frame().0 + X86_64.evtchn_mask as u64;
    <crate::mock::MockMemory as crate::arch::HostMemory>::write(crate::mm::PhysAddr(si), &(1u64 << idle).to_le_bytes());
    assert_eq!(poll(&[idle], now() + 1_000_000), 0);
    assert_eq!(d.vcpu(1).unwrap().run_state(), RunState::Blocked);
    assert!(d.vcpu(1).unwrap().poll.is_some());
    crate::event::interdomain::send(&hv, &d, idle).unwrap();
    assert_eq!(d.vcpu(1).unwrap().run_state(), RunState::Runnable, "the polled port woke it");
    assert!(d.vcpu(1).unwrap().poll.is_none());

    put(&d, ARG, &SchedShutdown { reason: 9 });
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_SHUTDOWN, ARG]), err(Errno::EINVAL));
    put(&d, ARG, &SchedRemoteShutdown { domain_id: 0x6000, _pad: [0; 2], reason: 0 });
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_REMOTE_SHUTDOWN, ARG]), err(Errno::ESRCH));
    put(&d, ARG, &SchedRemoteShutdown { domain_id: DOMID_SELF, _pad: [0; 2], reason: 0 });
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_REMOTE_SHUTDOWN, ARG]), err(Errno::EPERM));
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_PIN_OVERRIDE, ARG]), err(Errno::EPERM));
    put(&d, ARG, &SchedShutdown { reason: SHUTDOWN_CRASH });
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_SHUTDOWN_CODE, ARG]), 0);
    put(&d, ARG, &SchedShutdown { reason: SHUTDOWN_REBOOT });
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_SHUTDOWN, ARG]), 0);
    assert_eq!(d.state(), DomainState::ShutDown(ShutdownReason::Crash), "the recorded code wins");
    assert_eq!(rec.stopped.lock().as_slice(), &[d.id()]);
    assert_eq!(d.vcpu(0).unwrap().run_state(), RunState::Offline);
}

/// `SCHEDOP_watchdog` with Xen's rules: id 0 creates (ids 1 and 2, then `-ENOSPC`), a
/// non-zero timeout re-arms, a zero timeout destroys; unknown ids are `-EINVAL`. The
/// earliest watchdog rides on vCPU 0's timer; when it expires the domain shuts down.
#[test]
fn sched_op_watchdog_creates_pets_and_destroys() {
    let (hv, rec) = hypervisor();
    let d = guest(&hv, &X86_64, 2, 16);
    let wd = |vcpu: u32, id: u32, timeout: u32| {
        put(&d, ARG, &SchedWatchdog { id, timeout });
        call(&hv, &d, vcpu, SCHED_OP, &[SCHEDOP_WATCHDOG, ARG])
    };
    let s = 1_000_000_000;
    let vcpu0_timer = || rec.timers.lock().iter().rev().find(|t| t.1 == 0).map(|t| t.2);
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_WATCHDOG, 0x10]), err(Errno::EFAULT));
    assert_eq!(call(&hv, &d, 0, SCHED_OP, &[SCHEDOP_WATCHDOG, RAM + 16 * 1024 - 4]), err(Errno::EFAULT));
    assert_eq!(wd(0, 1, 5), err(Errno::EINVAL), "not created yet");
    assert_eq!(wd(0, 0, 30), 1);
    assert_eq!(vcpu0_timer(), Some(Some(now() + 30 * s)));
    assert_eq!(wd(1, 0, 20), 2, "any vCPU may create one");
    assert_eq!(vcpu0_timer(), Some(Some(now() + 20 * s)), "the earliest rides on vCPU 0's timer");
    assert_eq!(wd(0, 0, 5), err(Errno::ENOSPC));
    assert_eq!(wd(0, 3, 5), err(Errno::EINVAL));
    assert_eq!(wd(0, u32::MAX, 0), err(Errno::EINVAL));
    assert_eq!(wd(0, 1, 10), 0, "pet: re-armed with a new timeout");
    assert_eq!(vcpu0_timer(), Some(Some(now() + 10 * s)));
    assert_eq!(wd(0, 1, 0), 0, "destroyed");
    assert_eq!(wd(0, 1, 0), err(Errno::EINVAL));
    assert_eq!(wd(0, 1, 10), err(Errno::EINVAL));
    assert_eq!(vcpu0_timer(), Some(Some(now() + 20 * s)));
    // vCPU 0's own timer and the watchdog share its entry.
    assert_eq!(call(&hv, &d, 0, SET_TIMER_OP, &[now() + 7]), 0);
    assert_eq!(vcpu0_timer(), Some(Some(now() + 7)));
    assert_eq!(call(&hv, &d, 0, SET_TIMER_OP, &[0]), 0);
    assert_eq!(vcpu0_timer(), Some(Some(now() + 20 * s)));
    assert_eq!(wd(0, 0, 1), 1, "the freed id is reused");
    assert_eq!(wd(0, 1, 0), 0);
    assert_eq!(wd(1, 2, 0), 0);
    assert_eq!(vcpu0_timer(), Some(None), "no watchdog left");

    // Expiry: nothing before the deadline, then the domain shuts down (watchdog).
    assert_eq!(wd(0, 0, 2), 1);
    let deadline = now() + 2 * s;
    assert_eq!(hv.fire_timers(&d, deadline - 1), None);
    assert_eq!(d.state(), DomainState::Running);
    assert!(rec.stopped.lock().is_empty());
    assert_eq!(hv.fire_timers(&d, deadline), Some(crate::domain::Expired { id: 1, timeout_s: 2 }));
    assert_eq!(d.state(), DomainState::ShutDown(ShutdownReason::Watchdog));
    assert_eq!(rec.stopped.lock().as_slice(), &[d.id()]);
    assert_eq!(hv.fire_timers(&d, deadline + s), None, "a stopped domain is not shut down again");

    // As in Xen, a reason recorded with SCHEDOP_shutdown_code wins.
    let e = guest(&hv, &AARCH64, 1, 16);
    put(&e, ARG, &SchedShutdown { reason: SHUTDOWN_CRASH });
    assert_eq!(call(&hv, &e, 0, SCHED_OP, &[SCHEDOP_SHUTDOWN_CODE, ARG]), 0);
    put(&e, ARG, &SchedWatchdog { id: 0, timeout: 0 });
    assert_eq!(call(&hv, &e, 0, SCHED_OP, &[SCHEDOP_WATCHDOG, ARG]), 1, "a zero timeout expires at once");
    assert_eq!(hv.fire_timers(&e, now()), Some(crate::domain::Expired { id: 1, timeout_s: 0 }));
    assert_eq!(e.state(), DomainState::ShutDown(ShutdownReason::Crash));
}

#[test]
fn vcpu_op_timers_and_online_state() {
    let (hv, rec) = hypervisor();
    let d = guest(&hv, &X86_64, 2, 16);
    let v = |cmd: u64, vcpu: u64| call(&hv, &d, 0, VCPU_OP, &[cmd, vcpu, ARG]);
    assert_eq!(v(VCPUOP_IS_UP, 0), 1);
    assert_eq!(v(VCPUOP_IS_UP, 1), 0);
    assert_eq!(v(VCPUOP_IS_UP, 2), err(Errno::ENOENT));
    assert_eq!(v(VCPUOP_UP, 1), err(Errno::EINVAL), "never initialised");
    d.start_vcpu(1, now()).unwrap();
    assert_eq!(v(VCPUOP_DOWN, 1), 0);
    assert_eq!(v(VCPUOP_IS_UP, 1), 0);
    assert_eq!(v(VCPUOP_UP, 1), 0);
    assert_eq!(v(VCPUOP_IS_UP, 1), 1);
    assert_eq!(v(VCPUOP_INITIALISE, 1), err(Errno::EEXIST), "started before");
    assert_eq!(v(VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA, 0), err(Errno::ENOSYS));

    // VIRQ_TIMER bound on vCPU 0; a one-shot timer fires it.
    put(&d, ARG, &EvtchnBindVirq { virq: VIRQ_TIMER, vcpu: 0, port: 0 });
    assert_eq!(call(&hv, &d, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_VIRQ, ARG]), 0);
    let deadline = now() + 5_000;
    put(&d, ARG, &VcpuSetSingleshotTimer { timeout_abs_ns: deadline, flags: 0, _pad: [0; 4] });
    assert_eq!(v(VCPUOP_SET_SINGLESHOT_TIMER, 1), err(Errno::EINVAL), "only the calling vCPU");
    assert_eq!(v(VCPUOP_SET_SINGLESHOT_TIMER, 0), 0);
    assert_eq!(rec.timers.lock().last(), Some(&(d.id(), 0, Some(deadline))));
    hv.fire_timers(&d, deadline - 1);
    assert!(!d.upcall_pending(0));
    hv.fire_timers(&d, deadline);
    assert!(d.upcall_pending(0), "VIRQ_TIMER raised");
    assert_eq!(d.vcpu(0).unwrap().singleshot_ns, None);
    // An expired timeout fires at once.
    d.write_phys(RAM, &[0u8; 8]).unwrap();
    <crate::mock::MockMemory as crate::arch::HostMemory>::write(d.shared_info_frame(), &[0u8; 16]);
    <crate::mock::MockMemory as crate::arch::HostMemory>::write(
        crate::mm::PhysAddr(d.shared_info_frame().0 + 2048),
        &[0u8; 8],
    );
    put(&d, ARG, &VcpuSetSingleshotTimer { timeout_abs_ns: 1, flags: VCPU_SSHOTTMR_FUTURE, _pad: [0; 4] });
    assert_eq!(v(VCPUOP_SET_SINGLESHOT_TIMER, 0), 0);
    assert!(d.upcall_pending(0));

    put(&d, ARG, &VcpuSetPeriodicTimer { period_ns: 999_999 });
    assert_eq!(v(VCPUOP_SET_PERIODIC_TIMER, 0), err(Errno::EINVAL));
    put(&d, ARG, &VcpuSetPeriodicTimer { period_ns: 1_000_000 });
    assert_eq!(v(VCPUOP_SET_PERIODIC_TIMER, 0), 0);
    let next = d.vcpu(0).unwrap().periodic.unwrap().next_ns;
    hv.fire_timers(&d, next + 2_500_000);
    assert_eq!(d.vcpu(0).unwrap().periodic.unwrap().next_ns, next + 3_000_000, "missed periods skipped");
    assert_eq!(v(VCPUOP_STOP_PERIODIC_TIMER, 0), 0);
    assert_eq!(v(VCPUOP_STOP_SINGLESHOT_TIMER, 0), 0);
    assert_eq!(call(&hv, &d, 0, SET_TIMER_OP, &[now() + 10]), 0);
    assert_eq!(d.vcpu(0).unwrap().singleshot_ns, Some(now() + 10));
    assert_eq!(call(&hv, &d, 0, SET_TIMER_OP, &[u64::MAX]), 0);
    assert!(d.vcpu(0).unwrap().singleshot_ns.unwrap() <= now() + 100_000_000);
    assert_eq!(call(&hv, &d, 0, SET_TIMER_OP, &[0]), 0);
    assert_eq!(d.vcpu(0).unwrap().singleshot_ns, None);

    // Runstate area (identity translation): written on registration.
    put(&d, ARG, &VcpuRegisterRunstateMemoryArea { addr: ARG + 0x200 });
    assert_eq!(call(&hv, &d, 0, VM_ASSIST, &[VMASST_CMD_ENABLE, VMASST_TYPE_RUNSTATE_UPDATE_FLAG]), 0);
    assert_eq!(v(VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0), 0);
    let r: VcpuRunstateInfo = get(&d, ARG + 0x200);
    assert_eq!(r.state, RUNSTATE_RUNNABLE);
    assert_eq!(r.state_entry_time & XEN_RUNSTATE_UPDATE, 0, "update flag cleared after the update");
    assert_eq!(v(VCPUOP_GET_RUNSTATE_INFO, 1), 0);
    assert_eq!(get::<VcpuRunstateInfo>(&d, ARG).state, RUNSTATE_RUNNABLE);

    // Taking down the last online vCPU powers the domain off.
    assert_eq!(v(VCPUOP_DOWN, 1), 0);
    assert_eq!(v(VCPUOP_DOWN, 0), 0);
    assert_eq!(d.state(), DomainState::ShutDown(ShutdownReason::Poweroff));
}

#[test]
fn vm_assist_accepts_only_the_runstate_flag() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 16);
    assert_eq!(call(&hv, &d, 0, VM_ASSIST, &[VMASST_CMD_DISABLE, 5]), 0);
    assert_eq!(call(&hv, &d, 0, VM_ASSIST, &[VMASST_CMD_ENABLE, 2]), err(Errno::EINVAL));
    assert_eq!(call(&hv, &d, 0, VM_ASSIST, &[VMASST_CMD_ENABLE, 64]), err(Errno::EINVAL));
    assert_eq!(call(&hv, &d, 0, VM_ASSIST, &[7, 5]), err(Errno::ENOSYS));
}

/// The errors each hypercall may return (`docs/abi.md`).
fn documented(nr: u64) -> &'static [Errno] {
    use Errno as E;
    match nr {
        MEMORY_OP => &[E::ENOSYS, E::EFAULT, E::ESRCH, E::EPERM, E::EINVAL, E::EBUSY, E::ENOMEM],
        SET_TIMER_OP => &[],
        XEN_VERSION => &[E::EFAULT, E::EINVAL, E::EPERM, E::ENOSYS],
        CONSOLE_IO => &[E::EFAULT, E::EINVAL, E::ENOSYS],
        GRANT_TABLE_OP => &[E::EINVAL, E::E2BIG, E::EFAULT, E::ENOSYS, E::ESRCH, E::EPERM],
        VM_ASSIST => &[E::EINVAL, E::ENOSYS],
        VCPU_OP => &[E::ENOENT, E::EINVAL, E::EFAULT, E::ENOSYS, E::EBUSY, E::EEXIST, E::ENXIO],
        SCHED_OP => &[E::EFAULT, E::EINVAL, E::ESRCH, E::EPERM, E::ENOSPC, E::ENOSYS],
        EVENT_CHANNEL_OP => &[
            E::EFAULT,
            E::EINVAL,
            E::ESRCH,
            E::EPERM,
            E::ENOSPC,
            E::ENOENT,
            E::EEXIST,
            E::EBUSY,
            E::ENOSYS,
            E::EOPNOTSUPP,
        ],
        HVM_OP => &[E::EFAULT, E::EINVAL, E::ESRCH, E::EPERM, E::ENOENT, E::ENOSYS],
        // The domain has no control capability.
        keel_abi::control::KEEL_CONTROL_OP => &[E::EPERM],
        _ => &[E::ENOSYS],
    }
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => prop::sample::select(alloc::vec![MEMORY_OP, SET_TIMER_OP, XEN_VERSION, CONSOLE_IO, GRANT_TABLE_OP, VM_ASSIST, VCPU_OP, SCHED_OP, EVENT_CHANNEL_OP, PHYSDEV_OP, HVM_OP]),
        1 => 0..70u64,
        1 => any::<u64>(),
    ]
}

fn argument() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..16u64,
        3 => (0..0x4000u64).prop_map(|o| RAM + o),
        1 => Just(ARG),
        1 => (0..0x100u64).prop_map(|v| v << 6 | 1),
        1 => prop::sample::select(alloc::vec![DOMID_SELF as u64, 1, 2, u64::MAX, 1 << 63, 0xffff_ffff, RAM >> 12]),
        1 => any::<u64>(),
    ]
}

proptest! {
    #![proptest_config(cases(64))]

    /// Random hypercalls with random arguments over random guest memory, from 64-bit
    /// callers and (x86) 32-bit ones reading Xen's compat layouts, never panic, always
    /// return success or a documented error, and leak nothing once the domains are
    /// destroyed.
    #[test]
    fn random_hypercalls_return_documented_results(
        arm in any::<bool>(),
        calls in proptest::collection::vec((number(), proptest::collection::vec(argument(), 5), 0..2u32, proptest::collection::vec(any::<u8>(), 0..96), any::<bool>()), 1..40),
    ) {
        let (hv, _) = hypervisor();
        let start = hv.pool().stats();
        let layout = if arm { &AARCH64 } else { &X86_64 };
        let d = guest(&hv, layout, 2, 64);
        let peer = guest(&hv, &X86_64, 1, 16);
        d.events.lock().bind_ipi(0).unwrap();
        for (nr, args, vcpu, bytes, compat) in calls {
            let compat = compat && !arm;
            // Random guest memory where pointers tend to point.
            let _ = d.write_phys(ARG, &bytes);
            let _ = d.write_phys(RAM + 0x100 + (args[0] & 0xfff), &bytes);
            let r = if compat { call_compat(&hv, &d, vcpu, nr, &args) } else { call(&hv, &d, vcpu, nr, &args) };
            if r < 0 {
                let e = Errno::from_return(r as u64);
                prop_assert!(e.is_some(), "hypercall {} returned {}", nr, r);
                let e = e.unwrap();
                let control32 = compat && nr == keel_abi::control::KEEL_CONTROL_OP && e == Errno::ENOSYS;
                let ok = documented(nr).contains(&e) || e == Errno::EINVAL && vcpu >= 2 || control32;
                prop_assert!(ok, "hypercall {}({:x?}) returned undocumented {}", nr, args, e);
            }
        }
        let (did, pid) = (d.id(), peer.id());
        drop((d, peer));
        crate::run::destroy_domain(&hv, did).unwrap();
        crate::run::destroy_domain(&hv, pid).unwrap();
        prop_assert_eq!(hv.pool().stats(), start);
    }
}

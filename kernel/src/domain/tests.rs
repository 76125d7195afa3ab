use super::*;
use crate::mock::MockArch;
use crate::p2m::PageKind;
use crate::test_support::*;
use keel_abi::event::*;
use keel_abi::hypercall::{EVENT_CHANNEL_OP, MEMORY_OP};
use keel_abi::layout::{AARCH64, X86_64};
use keel_abi::memory::*;
use keel_abi::xen::DOMID_SELF;
use keel_abi::Wire;

fn err(e: Errno) -> i64 {
    -(e.code() as i64)
}

fn reservation(
    hv: &crate::Hypervisor<'static, MockArch>,
    d: &alloc::sync::Arc<Domain<MockArch>>,
    op: u64,
    gfns: &[u64],
    order: u32,
) -> i64 {
    for (i, g) in gfns.iter().enumerate() {
        d.write_phys(ARG + 0x100 + i as u64 * 8, &g.to_le_bytes()).unwrap();
    }
    let r = XenMemoryReservation {
        extent_start: ARG + 0x100,
        nr_extents: gfns.len() as u64,
        extent_order: order,
        mem_flags: 0,
        domid: DOMID_SELF,
        _pad: [0; 6],
    };
    put(d, ARG, &r);
    call(hv, d, 0, MEMORY_OP, &[op, ARG])
}

#[test]
fn creation_rules() {
    let (hv, _) = hypervisor();
    assert_eq!(hv.create_domain(DomainConfig::new(&X86_64, 0, 16)).err(), Some(Errno::EINVAL));
    assert_eq!(hv.create_domain(DomainConfig::new(&X86_64, MAX_VCPUS + 1, 16)).err(), Some(Errno::EINVAL));
    let mut c = DomainConfig::new(&X86_64, 1, 16);
    c.id = Some(DOMID_SELF);
    assert_eq!(hv.create_domain(c.clone()).err(), Some(Errno::EINVAL));
    c.id = Some(5);
    let d = hv.create_domain(c.clone()).unwrap();
    assert_eq!(d.id(), 5);
    assert_eq!(hv.create_domain(c).err(), Some(Errno::EEXIST));
    assert_eq!(hv.create_domain(DomainConfig::new(&X86_64, 1, 16)).unwrap().id(), 1);
    assert_eq!(crate::run::destroy_domain(&hv, 77), Err(Errno::ESRCH));
    assert_eq!(d.vcpu(0).unwrap().run_state(), RunState::Runnable);
    assert_eq!(d.vcpu(0).map(|v| v.online), Some(true));
}

#[test]
fn reservations_are_accounted() {
    let (hv, _) = hypervisor();
    let mut cfg = DomainConfig::new(&AARCH64, 1, 80);
    cfg.memory_map = alloc::vec![E820Entry::new(RAM, 0x40000, E820_RAM)];
    let d = hv.create_domain(cfg).unwrap();
    d.populate_ram(hv.pool(), crate::mm::GuestPhysAddr(RAM), 64 * 4096).unwrap();
    let base = RAM >> 12;
    assert_eq!(d.tot_pages(), 64);
    assert_eq!(reservation(&hv, &d, XENMEM_DECREASE_RESERVATION, &[base + 40, base + 41, 0x5], 0), 2);
    assert_eq!(d.tot_pages(), 62);
    assert!(d.lookup(base + 40).is_none());
    assert_eq!(
        reservation(&hv, &d, XENMEM_POPULATE_PHYSMAP, &[base + 40, base + 3], 0),
        1,
        "gfn in use stops the batch"
    );
    assert_eq!(d.tot_pages(), 63);
    assert_eq!(reservation(&hv, &d, XENMEM_POPULATE_PHYSMAP, &[0x100000], 4), 1);
    assert_eq!(d.tot_pages(), 79);
    assert_eq!(reservation(&hv, &d, XENMEM_POPULATE_PHYSMAP, &[0x100010], 1), 0, "max_pages reached");
    assert_eq!(reservation(&hv, &d, XENMEM_POPULATE_PHYSMAP, &[0x100011], 0), 1);
    assert_eq!(reservation(&hv, &d, XENMEM_POPULATE_PHYSMAP, &[0x200001], 1), 0, "misaligned extent");
    assert_eq!(reservation(&hv, &d, XENMEM_POPULATE_PHYSMAP, &[0x200000], 10), 0, "order too large");
    assert_eq!(call(&hv, &d, 0, MEMORY_OP, &[XENMEM_INCREASE_RESERVATION, ARG]), err(Errno::ENOSYS));
    d.write_phys(ARG, &DOMID_SELF.to_le_bytes()).unwrap();
    assert_eq!(call(&hv, &d, 0, MEMORY_OP, &[XENMEM_CURRENT_RESERVATION, ARG]), 80);
    assert_eq!(call(&hv, &d, 0, MEMORY_OP, &[XENMEM_MAXIMUM_RESERVATION, ARG]), 80);
    // Continuation encoding: start at extent 1.
    assert_eq!(reservation(&hv, &d, XENMEM_DECREASE_RESERVATION | 1 << 6, &[base + 1, base + 2], 0), 2);
    assert!(d.lookup(base + 1).is_some() && d.lookup(base + 2).is_none());

    put(&d, ARG, &XenMemoryMap { nr_entries: 4, _pad: [0; 4], buffer: ARG + 0x200 });
    assert_eq!(call(&hv, &d, 0, MEMORY_OP, &[XENMEM_MEMORY_MAP, ARG]), 0);
    assert_eq!(get::<XenMemoryMap>(&d, ARG).nr_entries, 1);
    assert_eq!(get::<E820Entry>(&d, ARG + 0x200), E820Entry::new(RAM, 0x40000, E820_RAM));
}

#[test]
fn shared_info_replaces_a_ram_page_and_moves() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 64);
    let before = d.tot_pages();
    let place = |gfn: u64, space: u32, idx: u64| {
        put(&d, ARG, &XenAddToPhysmap { domid: DOMID_SELF, size: 0, space, idx, gpfn: gfn });
        call(&hv, &d, 0, MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, ARG])
    };
    let gfn = (RAM >> 12) + 5;
    assert_eq!(place(gfn, XENMAPSPACE_SHARED_INFO, 1), err(Errno::EINVAL));
    assert_eq!(place(gfn, XENMAPSPACE_GMFN, 0), err(Errno::ENOSYS));
    assert_eq!(place(gfn, XENMAPSPACE_SHARED_INFO, 0), 0);
    assert_eq!(d.tot_pages(), before - 1, "the RAM page was given back");
    assert_eq!(d.lookup(gfn).unwrap().frame, d.shared_info_frame());
    // The guest writes wc_sec through its mapping; it lands in shared_info.
    d.write_phys((gfn << 12) + X86_64.wc_version as u64 + 4, &7u32.to_le_bytes()).unwrap();
    let mut b = [0u8; 4];
    <crate::mock::MockMemory as crate::arch::HostMemory>::read(
        crate::mm::PhysAddr(d.shared_info_frame().0 + 3076),
        &mut b,
    );
    assert_eq!(u32::from_le_bytes(b), 7);
    // Moving it leaves a hole behind.
    assert_eq!(place(0x9_0000, XENMAPSPACE_SHARED_INFO, 0), 0);
    assert!(d.lookup(gfn).is_none());
    assert_eq!(d.mm.lock().placed(PageKind::SharedInfo), Some(0x9_0000));
    // A grant frame placed on top of it unhooks it.
    assert_eq!(place(0x9_0000, XENMAPSPACE_GRANT_TABLE, 0), 0);
    assert_eq!(d.mm.lock().placed(PageKind::SharedInfo), None);
    assert_eq!(d.tot_pages(), before - 1);
    put(&d, ARG, &XenAddToPhysmap { domid: 0x6000, size: 0, space: 0, idx: 0, gpfn: gfn });
    assert_eq!(call(&hv, &d, 0, MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, ARG]), err(Errno::ESRCH));
}

#[test]
fn destroy_leaves_no_leak() {
    let (hv, _) = hypervisor();
    let start = hv.pool().stats();
    let a = guest(&hv, &X86_64, 2, 512);
    let b = guest(&hv, &AARCH64, 1, 512);
    // Everything a domain can hold: shared_info and grant frames placed, FIFO control
    // blocks and array pages, a registered vcpu_info, ports of every kind, a page given
    // back while pinned.
    for (d, si) in [(&a, 0x9_0000u64), (&b, 0x9_0000)] {
        put(d, ARG, &XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_SHARED_INFO, idx: 0, gpfn: si });
        assert_eq!(call(&hv, d, 0, MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, ARG]), 0);
        put(
            d,
            ARG,
            &XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_GRANT_TABLE, idx: 3, gpfn: si + 1 },
        );
        assert_eq!(call(&hv, d, 0, MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, ARG]), 0);
    }
    let init = |d: &alloc::sync::Arc<Domain<MockArch>>, vcpu: u32, gfn: u64| {
        put(d, ARG, &EvtchnInitControl { control_gfn: gfn, offset: 0, vcpu, link_bits: 0, _pad: [0; 7] });
        call(&hv, d, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_INIT_CONTROL, ARG])
    };
    assert_eq!(init(&a, 0, (RAM >> 12) + 10), 0);
    assert_eq!(init(&a, 1, (RAM >> 12) + 11), 0);
    put(&a, ARG, &EvtchnExpandArray { array_gfn: (RAM >> 12) + 12 });
    assert_eq!(call(&hv, &a, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_EXPAND_ARRAY, ARG]), 0);
    put(&a, ARG, &keel_abi::vcpu::VcpuRegisterVcpuInfo { mfn: (RAM >> 12) + 13, offset: 64, rsvd: 0 });
    assert_eq!(call(&hv, &a, 1, keel_abi::hypercall::VCPU_OP, &[keel_abi::vcpu::VCPUOP_REGISTER_VCPU_INFO, 1, ARG]), 0);
    assert_eq!(
        reservation(&hv, &a, XENMEM_DECREASE_RESERVATION, &[(RAM >> 12) + 12], 0),
        1,
        "array page given back while pinned"
    );
    a.events.lock().bind_ipi(1).unwrap();
    a.events.lock().bind_virq(0, 0).unwrap();
    put(&a, ARG, &EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: b.id(), port: 0 });
    assert_eq!(call(&hv, &a, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_ALLOC_UNBOUND, ARG]), 0);
    let pa = get::<EvtchnAllocUnbound>(&a, ARG).port;
    put(&b, ARG, &EvtchnBindInterdomain { remote_dom: a.id(), _pad: [0; 2], remote_port: pa, local_port: 0 });
    assert_eq!(call(&hv, &b, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_INTERDOMAIN, ARG]), 0);
    assert!(hv.pool().stats().allocated > start.allocated);

    let (aid, bid) = (a.id(), b.id());
    drop(a);
    crate::run::destroy_domain(&hv, aid).unwrap();
    assert_eq!(
        b.events.lock().status(get::<EvtchnBindInterdomain>(&b, ARG).local_port).unwrap().status,
        EVTCHNSTAT_UNBOUND
    );
    // An extra reference delays freeing until it is dropped.
    let keep = b.clone();
    drop(b);
    crate::run::destroy_domain(&hv, bid).unwrap();
    assert_ne!(hv.pool().stats(), start);
    drop(keep);
    assert_eq!(hv.reap(), 1);
    assert_eq!(hv.pool().stats(), start, "every frame is back");
    assert!(hv.domain_ids().is_empty());
}

#[test]
fn pvclock_and_wallclock_use_the_version_protocol() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 16);
    let t = keel_abi::layout::VcpuTimeInfo {
        system_time: 12345,
        tsc_to_system_mul: 7,
        tsc_shift: -1,
        ..Default::default()
    };
    assert!(d.write_vcpu_time(0, &t));
    assert!(d.write_vcpu_time(0, &t));
    let mut b = [0u8; 32];
    <crate::mock::MockMemory as crate::arch::HostMemory>::read(
        crate::mm::PhysAddr(d.shared_info_frame().0 + 32),
        &mut b,
    );
    let got = keel_abi::layout::VcpuTimeInfo::from_bytes(&b).unwrap();
    assert_eq!((got.version, got.system_time, got.tsc_shift), (4, 12345, -1), "two updates: version 4, even");
    d.set_wallclock(0x1_0000_0002, 500);
    let mut w = [0u8; 16];
    <crate::mock::MockMemory as crate::arch::HostMemory>::read(
        crate::mm::PhysAddr(d.shared_info_frame().0 + 3072),
        &mut w,
    );
    assert_eq!(w, [2, 0, 0, 0, 2, 0, 0, 0, 0xf4, 1, 0, 0, 1, 0, 0, 0]);
    let arm = guest(&hv, &keel_abi::layout::AARCH64, 2, 16);
    assert!(!arm.write_vcpu_time(1, &t), "vCPU 1 has no vcpu_info yet");
}

#[test]
fn the_backend_reaches_its_domain_through_the_services() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 2, 64);
    let services = d.arch().services().expect("attached at creation");
    assert_eq!(services.domain_id(), d.id());
    services.write_phys(RAM + 0x1ff8, b"0123456789abcdef").unwrap();
    let mut b = [0u8; 16];
    d.read_phys(RAM + 0x1ff8, &mut b).unwrap();
    assert_eq!(&b, b"0123456789abcdef");
    let mut c = [0u8; 4];
    services.read_phys(RAM + 0x2000, &mut c).unwrap();
    assert_eq!(&c, b"89ab");
    assert_eq!(services.write_phys(RAM + 64 * 1024, &[1]), Err(Errno::EFAULT), "outside RAM");
    let time = keel_abi::layout::VcpuTimeInfo { system_time: 77, ..Default::default() };
    assert!(services.write_vcpu_time(1, &time));
    assert!(!services.upcall_pending(1));
    d.events.lock().mark_pending(1);
    assert!(services.upcall_pending(1) && !services.upcall_pending(0));
    let at = d.shared_info_frame().0 + 64 + 32 + 16;
    assert_eq!(crate::mock::MockMemory::load_u64(crate::mm::PhysAddr(at)), 77, "vcpu_info[1].time.system_time");
    drop(services);
    let id = d.id();
    drop(d);
    crate::run::destroy_domain(&hv, id).unwrap();
    assert!(hv.domain_any(id).is_none(), "nothing keeps the domain alive");
}

#[test]
fn device_memory_is_mapped_into_holes_and_is_never_hypercall_memory() {
    let (hv, _) = hypervisor();
    let pool = hv.pool();
    let d = guest(&hv, &X86_64, 1, 64);
    let dev = crate::mm::PhysAddr(0x7_0000_0000);
    let at = crate::mm::GuestPhysAddr(0x0300_2000);
    assert_eq!(d.map_device(pool, at, dev, 0x2000, crate::arch::Perms::RW), Ok(()));
    let l = d.lookup(0x3002).unwrap();
    assert_eq!((l.frame, l.kind, l.perms), (dev, PageKind::Other, crate::arch::Perms::RW));
    assert_eq!(d.lookup(0x3003).unwrap().frame.0, dev.0 + 0x1000);
    assert_eq!(d.read_phys(0x0300_2000, &mut [0u8; 4]), Err(Errno::EFAULT));
    assert_eq!(d.map_device(pool, at, dev, 0x1000, crate::arch::Perms::RW), Err(Errno::EBUSY));
    assert_eq!(
        d.map_device(pool, crate::mm::GuestPhysAddr(RAM), dev, 0x1000, crate::arch::Perms::RW),
        Err(Errno::EBUSY)
    );
    assert_eq!(
        d.map_device(pool, crate::mm::GuestPhysAddr(0x100), dev, 0x1000, crate::arch::Perms::RW),
        Err(Errno::EINVAL)
    );
}

/// Static RAM (a direct-mapped domain's `xen,static-mem`) is the domain's RAM, but never
/// the pool's: a page given back and the whole bank at destruction stay reserved, and the
/// pool never hands them out; only reserved memory can be mapped as static RAM.
#[test]
fn static_ram_is_never_handed_to_the_pool() {
    let (hv, _) = hypervisor();
    let bank = crate::mm::Region::new(0x10_0800_0000, 0x20_0000);
    hv.pool().reserve(bank).unwrap();
    let start = hv.pool().stats();
    let d = hv.create_domain(DomainConfig::new(&AARCH64, 1, 512)).unwrap();
    let size = bank.size();
    assert_eq!(
        d.map_static_ram(hv.pool(), GuestPhysAddr(RAM), PhysAddr(0x10_0a00_0000), 0x1000),
        Err(Errno::EINVAL),
        "pool memory that is not reserved"
    );
    assert_eq!(
        d.map_static_ram(hv.pool(), GuestPhysAddr(RAM), PhysAddr(bank.start), size + 0x1000),
        Err(Errno::EINVAL)
    );
    d.map_static_ram(hv.pool(), GuestPhysAddr(RAM), PhysAddr(bank.start), size).unwrap();
    assert_eq!(
        d.map_static_ram(hv.pool(), GuestPhysAddr(RAM), PhysAddr(bank.start), 0x1000),
        Err(Errno::ENOMEM),
        "beyond max_pages"
    );
    assert_eq!(d.tot_pages(), 512);
    let l = d.lookup((RAM >> 12) + 5).unwrap();
    assert_eq!((l.frame, l.kind), (PhysAddr(bank.start + 5 * 0x1000), PageKind::Ram));
    d.write_phys(RAM + 0x5000, b"static").unwrap();
    assert_eq!(reservation(&hv, &d, XENMEM_DECREASE_RESERVATION, &[(RAM >> 12) + 7], 0), 1);
    assert!(d.lookup((RAM >> 12) + 7).is_none());
    assert_eq!(d.tot_pages(), 511);
    let next = hv.create_domain(DomainConfig::new(&AARCH64, 1, 512)).unwrap();
    let again = |n: &Domain<MockArch>| n.map_static_ram(hv.pool(), GuestPhysAddr(RAM), PhysAddr(bank.start), size);
    assert_eq!(again(&next), Err(Errno::EBUSY), "claimed by a domain not yet torn down");
    let id = d.id();
    drop(d);
    crate::run::destroy_domain(&hv, id).unwrap();
    assert!(hv.pool().is_reserved(PhysAddr(bank.start), size));
    again(&next).unwrap();
    let l = next.lookup((RAM >> 12) + 5).unwrap();
    assert_eq!((l.frame, l.kind), (PhysAddr(bank.start + 5 * 0x1000), PageKind::Ram));
    let mut word = [0u8; 6];
    next.read_phys(RAM + 0x5000, &mut word).unwrap();
    assert_eq!(word, [0; 6], "the next domain does not see the last one's data");
    let id = next.id();
    drop(next);
    crate::run::destroy_domain(&hv, id).unwrap();
    assert_eq!(hv.pool().stats(), start, "the P2M's tables are back, nothing more");
    let mut taken = alloc::vec::Vec::new();
    while let Some(a) = hv.pool().alloc(1) {
        assert!(!hv.pool().is_reserved(a, 0x1000), "the pool handed out static RAM at {a:?}");
        taken.push(a);
    }
    assert_eq!(taken.len() as u64, ((256 << 20) - size) / 0x1000);
}

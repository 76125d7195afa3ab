//! 32-bit x86 callers (Xen's compat layouts): the structs Keel translates, byte for byte,
//! and the calls it refuses with -ENOSYS rather than misreading (`docs/abi.md` §2).

use crate::domain::RunState;
use crate::guest_memory::IdentityTranslation;
use crate::p2m::PageKind;
use crate::test_support::*;
use keel_abi::grant::*;
use keel_abi::hypercall::*;
use keel_abi::layout::X86_64;
use keel_abi::memory::*;
use keel_abi::sched::{SchedPollCompat, SCHEDOP_POLL};
use keel_abi::vcpu::*;
use keel_abi::version::XENVER_PLATFORM_PARAMETERS;
use keel_abi::wire::U64Align4;
use keel_abi::xen::{DOMID_SELF, VMASST_CMD_ENABLE, VMASST_TYPE_RUNSTATE_UPDATE_FLAG};
use keel_abi::Errno;

/// A 32-bit caller's address or frame number (the test's are below 4 GiB).
fn low(v: u64) -> u32 {
    u32::try_from(v).unwrap()
}

fn err(e: Errno) -> i64 {
    -(e.code() as i64)
}

#[test]
fn compat_layouts_are_translated() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 512);
    let base = RAM >> 12;
    // xen_add_to_physmap, 16 bytes: a 64-bit reader would take idx from gpfn's bytes.
    let si = base + 7;
    put(
        &d,
        ARG,
        &XenAddToPhysmapCompat { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_SHARED_INFO, idx: 0, gpfn: low(si) },
    );
    d.write_phys(ARG + 16, &[0xee; 8]).unwrap();
    assert_eq!(call_compat(&hv, &d, 0, MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, ARG]), 0);
    assert_eq!(d.mm.lock().placed(PageKind::SharedInfo), Some(si));
    // The same bytes from a 64-bit caller are refused (idx is not 0): the layouts differ.
    assert_eq!(call(&hv, &d, 0, MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, ARG]), err(Errno::EINVAL));
    // xen_memory_reservation, 20 bytes, with a list of 32-bit frame numbers.
    d.write_phys(ARG + 0x100, &low(base + 40).to_le_bytes()).unwrap();
    d.write_phys(ARG + 0x104, &low(base + 41).to_le_bytes()).unwrap();
    let r = XenMemoryReservationCompat {
        extent_start: low(ARG + 0x100),
        nr_extents: 2,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
        _pad: [0; 2],
    };
    put(&d, ARG, &r);
    let before = d.tot_pages();
    assert_eq!(call_compat(&hv, &d, 0, MEMORY_OP, &[XENMEM_DECREASE_RESERVATION, ARG]), 2);
    assert_eq!(d.tot_pages(), before - 2);
    assert!(d.lookup(base + 40).is_none() && d.lookup(base + 41).is_none());
    // xen_memory_map, 8 bytes: only nr_entries is written back.
    put(&d, ARG, &XenMemoryMapCompat { nr_entries: 4, buffer: low(ARG + 0x200) });
    d.write_phys(ARG + 8, &[0xee; 8]).unwrap();
    let r = call_compat(&hv, &d, 0, MEMORY_OP, &[XENMEM_MEMORY_MAP, ARG]);
    assert!(r == 0 || r == err(Errno::ENOSYS), "memory_map: {r}");
    let mut after = [0u8; 8];
    d.read_phys(ARG + 8, &mut after).unwrap();
    assert_eq!(after, [0xee; 8], "bytes past the 8-byte compat struct were written");
    // XENVER_platform_parameters: a 32-bit xen_ulong_t.
    d.write_phys(ARG, &[0xee; 8]).unwrap();
    assert_eq!(call_compat(&hv, &d, 0, XEN_VERSION, &[XENVER_PLATFORM_PARAMETERS, ARG]), 0);
    d.read_phys(ARG, &mut after).unwrap();
    assert_eq!(after, [0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee]);
}

#[test]
fn compat_calls_keel_does_not_translate_are_enosys() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 64);
    assert_eq!(call_compat(&hv, &d, 0, keel_abi::control::KEEL_CONTROL_OP, &[0, ARG]), err(Errno::ENOSYS));
    // Layouts that are the same on both: answered as for a 64-bit caller.
    assert_eq!(call_compat(&hv, &d, 0, XEN_VERSION, &[0, 0]), call(&hv, &d, 0, XEN_VERSION, &[0, 0]));
}

/// `compat_sched_poll` (16 bytes: a 32-bit handle, the timeout 4-aligned at 8).
#[test]
fn compat_sched_poll_reads_the_16_byte_layout() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 2, 64);
    let poll = |ports: &[u32], timeout: u64| {
        for (i, p) in (0u64..).zip(ports) {
            put_u32(&d, ARG + 0x100 + 4 * i, *p);
        }
        let nr_ports = u32::try_from(ports.len()).unwrap();
        put(&d, ARG, &SchedPollCompat { ports: low(ARG + 0x100), nr_ports, timeout: U64Align4::new(timeout) });
        call_compat(&hv, &d, 1, SCHED_OP, &[SCHEDOP_POLL, ARG])
    };
    d.start_vcpu(1, now()).unwrap();
    let pending = d.events.lock().bind_ipi(0).unwrap();
    crate::event::interdomain::send(&hv, &d, pending).unwrap();
    let idle = d.events.lock().bind_ipi(1).unwrap();
    assert_eq!(poll(&[idle, 5000], 0), err(Errno::EINVAL), "a port that is not bound");
    put(&d, ARG, &SchedPollCompat { ports: low(ARG + 0x100), nr_ports: 129, timeout: U64Align4::new(0) });
    assert_eq!(call_compat(&hv, &d, 1, SCHED_OP, &[SCHEDOP_POLL, ARG]), err(Errno::EINVAL));
    assert_eq!(poll(&[idle, pending], 0), 0);
    assert_eq!(d.vcpu(1).unwrap().run_state(), RunState::Runnable, "a listed port is pending: no block");
    let deadline = now() + 0x1_2345_6789;
    assert_eq!(poll(&[idle], deadline), 0);
    let v = d.vcpu(1).unwrap();
    assert_eq!(v.run_state(), RunState::Blocked);
    let p = v.poll.as_ref().unwrap();
    assert_eq!((p.ports.as_slice(), p.deadline), (&[idle][..], Some(deadline)), "the timeout read at 8");
    crate::event::interdomain::send(&hv, &d, idle).unwrap();
    assert_eq!(d.vcpu(1).unwrap().run_state(), RunState::Runnable, "the polled port woke it");
}

/// `compat_gnttab_setup_table` (16 bytes, a list of 32-bit frame numbers) and
/// `compat_gnttab_copy` (24 bytes, status at 20).
#[test]
fn compat_grant_setup_table_and_copy() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 512);
    let base = RAM >> 12;
    let list = ARG + 0x100;
    let setup = |nr_frames: u32| {
        put(
            &d,
            ARG,
            &GnttabSetupTableCompat {
                dom: DOMID_SELF,
                _pad: [0; 2],
                nr_frames,
                status: 99,
                _pad2: [0; 2],
                frame_list: low(list),
            },
        );
        d.write_phys(list, &[0xee; 16]).unwrap();
        let r = call_compat(&hv, &d, 0, GRANT_TABLE_OP, &[GNTTABOP_SETUP_TABLE, ARG, 1]);
        (r, get::<GnttabSetupTableCompat>(&d, ARG).status)
    };
    // Not placed yet: Xen's translation cannot narrow INVALID_GFN.
    assert_eq!(setup(2), (0, GNTST_ADDRESS_TOO_BIG));
    for (idx, gfn) in [(0, base + 20), (1, base + 21)] {
        let a =
            XenAddToPhysmapCompat { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_GRANT_TABLE, idx, gpfn: low(gfn) };
        put(&d, ARG, &a);
        assert_eq!(call_compat(&hv, &d, 0, MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, ARG]), 0);
    }
    assert_eq!(setup(2), (0, GNTST_OKAY));
    assert_eq!([get_u32(&d, list), get_u32(&d, list + 4)], [low(base + 20), low(base + 21)]);
    assert_eq!(get_u64(&d, list + 8), u64::from_le_bytes([0xee; 8]), "u32 entries, not u64");
    assert_eq!(setup(65), (0, GNTST_GENERAL_ERROR));

    let (src, dst) = (RAM + 0x5000, RAM + 0x6000);
    d.write_phys(src + 100, b"compat copy").unwrap();
    d.write_phys(dst, &[0; 32]).unwrap();
    let side = |addr: u64, offset: u16| GnttabCopyPtrCompat { ref_or_gfn: low(addr >> 12), domid: DOMID_SELF, offset };
    let ok =
        GnttabCopyCompat { source: side(src, 100), dest: side(dst, 8), len: 11, flags: 0, status: 99, _pad: [0; 2] };
    let not_ram = GnttabCopyCompat { source: side(0x10 << 12, 0), ..ok };
    put(&d, ARG, &ok);
    put(&d, ARG + 24, &not_ram);
    assert_eq!(call_compat(&hv, &d, 0, GRANT_TABLE_OP, &[GNTTABOP_COPY, ARG, 2]), 0);
    let st: [i16; 2] = [get::<GnttabCopyCompat>(&d, ARG).status, get::<GnttabCopyCompat>(&d, ARG + 24).status];
    assert_eq!(st, [GNTST_OKAY, GNTST_BAD_PAGE]);
    let mut got = [0u8; 11];
    d.read_phys(dst + 8, &mut got).unwrap();
    assert_eq!(&got, b"compat copy");
}

/// `compat_vcpu_runstate_info` (44 bytes, `state_entry_time` at 4): from
/// `VCPUOP_get_runstate_info`, and in a registered area while shared_info has the compat
/// layout (Xen's `has_32bit_shinfo`).
#[test]
fn compat_runstate_has_the_44_byte_layout() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 64);
    d.write_phys(ARG, &[0xee; 48]).unwrap();
    assert_eq!(call_compat(&hv, &d, 0, VCPU_OP, &[VCPUOP_GET_RUNSTATE_INFO, 0, ARG]), 0);
    let c: VcpuRunstateInfoCompat = get(&d, ARG);
    assert_eq!(get_u32(&d, ARG + 44), 0xeeee_eeee, "nothing past 44 bytes");
    assert_eq!(call(&hv, &d, 0, VCPU_OP, &[VCPUOP_GET_RUNSTATE_INFO, 0, ARG + 0x100]), 0);
    let n: VcpuRunstateInfo = get(&d, ARG + 0x100);
    assert_eq!(c, VcpuRunstateInfoCompat::narrow(&n));
    assert_eq!(get_u64(&d, ARG + 4), n.state_entry_time);

    // The area's handle is the low half of the 8-byte union.
    let area = ARG + 0x200;
    d.write_phys(area, &[0xee; 48]).unwrap();
    d.latch_shared_layout(true);
    assert_eq!(call(&hv, &d, 0, VM_ASSIST, &[VMASST_CMD_ENABLE, VMASST_TYPE_RUNSTATE_UPDATE_FLAG]), 0);
    put(&d, ARG, &VcpuRegisterRunstateMemoryArea { addr: 0xdead_beef_0000_0000 | area });
    assert_eq!(call_compat(&hv, &d, 0, VCPU_OP, &[VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0, ARG]), 0);
    let r: VcpuRunstateInfoCompat = get(&d, area);
    assert_eq!(r.state, n.state);
    assert_eq!(r.state_entry_time.get() & XEN_RUNSTATE_UPDATE, 0, "update flag cleared after the update");
    assert_eq!(r.state_entry_time.get(), get_u64(&d, area + 4));
    assert_eq!(get_u32(&d, area + 44), 0xeeee_eeee, "nothing past 44 bytes");
    // 64-bit code latching the native layout: the area is written with it.
    d.latch_shared_layout(false);
    crate::hypercall::update_runstate_area(&hv, &d, 0, &IdentityTranslation);
    let r: VcpuRunstateInfo = get(&d, area);
    assert_eq!((r.state, r.state_entry_time & XEN_RUNSTATE_UPDATE), (n.state, 0));
    assert_ne!(get_u32(&d, area + 44), 0xeeee_eeee, "48 bytes in the native layout");
}

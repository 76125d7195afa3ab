//! 32-bit x86 callers (Xen's compat layouts): the structs Keel translates and the calls it
//! refuses with -ENOSYS rather than misreading (`docs/abi.md` §2).

use crate::p2m::PageKind;
use crate::test_support::*;
use keel_abi::grant::GNTTABOP_SETUP_TABLE;
use keel_abi::hypercall::*;
use keel_abi::layout::X86_64;
use keel_abi::memory::*;
use keel_abi::sched::SCHEDOP_POLL;
use keel_abi::vcpu::{VCPUOP_GET_RUNSTATE_INFO, VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA};
use keel_abi::version::XENVER_PLATFORM_PARAMETERS;
use keel_abi::xen::DOMID_SELF;
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
fn compat_layouts_keel_does_not_translate_are_enosys() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 64);
    let enosys = err(Errno::ENOSYS);
    assert_eq!(call_compat(&hv, &d, 0, GRANT_TABLE_OP, &[GNTTABOP_SETUP_TABLE, ARG, 1]), enosys);
    assert_eq!(call_compat(&hv, &d, 0, SCHED_OP, &[SCHEDOP_POLL, ARG]), enosys);
    assert_eq!(call_compat(&hv, &d, 0, VCPU_OP, &[VCPUOP_GET_RUNSTATE_INFO, 0, ARG]), enosys);
    assert_eq!(call_compat(&hv, &d, 0, VCPU_OP, &[VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0, ARG]), enosys);
    assert_eq!(call_compat(&hv, &d, 0, keel_abi::control::KEEL_CONTROL_OP, &[0, ARG]), enosys);
    // Layouts that are the same on both: answered as for a 64-bit caller.
    assert_eq!(call_compat(&hv, &d, 0, XEN_VERSION, &[0, 0]), call(&hv, &d, 0, XEN_VERSION, &[0, 0]));
}

use crate::domain::Domain;
use crate::hypervisor::Hypervisor;
use crate::mock::MockArch;
use crate::test_support::*;
use alloc::sync::Arc;
use alloc::vec::Vec;
use keel_abi::grant::*;
use keel_abi::hypercall::{GRANT_TABLE_OP, MEMORY_OP};
use keel_abi::layout::{AARCH64, X86_64};
use keel_abi::memory::*;
use keel_abi::xen::DOMID_SELF;
use keel_abi::{Errno, Wire};

pub(super) type Hv = Hypervisor<'static, MockArch>;
pub(super) type D = Arc<Domain<MockArch>>;

fn err(e: Errno) -> i64 {
    -(e.code() as i64)
}

/// Runs `GNTTABOP_<cmd>` on `ops` (written at ARG); returns the result and the ops as
/// written back.
pub(super) fn gnt<T: Wire>(hv: &Hv, d: &D, cmd: u64, ops: &[T]) -> (i64, Vec<T>) {
    for (i, o) in ops.iter().enumerate() {
        put(d, ARG + (i * T::SIZE) as u64, o);
    }
    let r = call(hv, d, 0, GRANT_TABLE_OP, &[cmd, ARG, ops.len() as u64]);
    (r, (0..ops.len()).map(|i| get(d, ARG + (i * T::SIZE) as u64)).collect())
}

/// Places grant frame `idx` of `d` at `gfn`.
pub(super) fn place(hv: &Hv, d: &D, idx: u64, gfn: u64) -> i64 {
    put(d, ARG, &XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_GRANT_TABLE, idx, gpfn: gfn });
    call(hv, d, 0, MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, ARG])
}

pub(super) const TABLE: u64 = RAM + 0x20000;
pub(super) const PAGE: u64 = RAM + 0x30000;
pub(super) const HOLE: u64 = 0x8000_0000;

fn entry_gpa(gref: u32) -> u64 {
    TABLE + gref as u64 * 8
}

pub(super) fn grant(d: &D, gref: u32, to: u16, gfn: u64, flags: u16) {
    put(d, entry_gpa(gref), &GrantEntryV1 { flags, domid: to, frame: gfn as u32 });
}

pub(super) fn flags(d: &D, gref: u32) -> u16 {
    get::<GrantEntryV1>(d, entry_gpa(gref)).flags
}

pub(super) fn map_op(dom: u16, gref: u32, host_addr: u64, flags: u32) -> GnttabMapGrantRef {
    GnttabMapGrantRef { host_addr, flags, grant_ref: gref, dom, status: 0, handle: 0, dev_bus_addr: 0 }
}

pub(super) fn unmap_op(host_addr: u64, handle: u32) -> GnttabUnmapGrantRef {
    GnttabUnmapGrantRef { host_addr, dev_bus_addr: 0, handle, status: 0, _pad: [0; 2] }
}

fn copy_op(src: (u64, u16, u16), dst: (u64, u16, u16), len: u16, flags: u16) -> GnttabCopy {
    let ptr = |(r, d, o): (u64, u16, u16)| GnttabCopyPtr { ref_or_gfn: r, domid: d, offset: o, _pad: [0; 4] };
    GnttabCopy { source: ptr(src), dest: ptr(dst), len, flags, status: 0, _pad: [0; 2] }
}

pub(super) fn pair() -> (Hv, D, D) {
    let (hv, _) = hypervisor();
    let a = guest(&hv, &X86_64, 1, 256);
    let b = guest(&hv, &AARCH64, 1, 256);
    assert_eq!(place(&hv, &a, 0, TABLE >> 12), 0);
    (hv, a, b)
}

#[test]
fn map_write_unmap_and_the_entry_cannot_be_reused_meanwhile() {
    let (hv, a, b) = pair();
    let before = a.tot_pages();
    a.write_phys(PAGE, b"hello").unwrap();
    grant(&a, 10, b.id(), PAGE >> 12, GTF_PERMIT_ACCESS);
    let (r, out) = gnt(&hv, &b, GNTTABOP_MAP_GRANT_REF, &[map_op(a.id(), 10, HOLE, GNTMAP_HOST_MAP)]);
    assert_eq!((r, out[0].status, out[0].dev_bus_addr), (0, GNTST_OKAY, 0));
    let h = out[0].handle;
    assert_eq!(flags(&a, 10), GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING);
    let l = b.lookup(HOLE >> 12).unwrap();
    assert!(l.perms.write);
    assert_eq!(Some(l.frame), a.lookup(PAGE >> 12).map(|x| x.frame), "b sees a's frame");
    assert_eq!(b.read_phys(HOLE, &mut [0u8; 4]), Err(Errno::EFAULT), "foreign pages are not hypercall memory");

    // A second, read-only mapping of the same entry.
    let (_, out2) =
        gnt(&hv, &b, GNTTABOP_MAP_GRANT_REF, &[map_op(a.id(), 10, HOLE + 0x1000, GNTMAP_HOST_MAP | GNTMAP_READONLY)]);
    assert_eq!(out2[0].status, GNTST_OKAY);
    assert!(!b.lookup((HOLE >> 12) + 1).unwrap().perms.write);

    // The granter sees the entry in use; it gives the page back, but the frame lives on.
    assert_eq!(call(&hv, &a, 0, MEMORY_OP, &[XENMEM_CURRENT_RESERVATION, 0]), err(Errno::EFAULT));
    a.write_phys(ARG + 64, &(PAGE >> 12).to_le_bytes()).unwrap();
    put(
        &a,
        ARG,
        &XenMemoryReservation {
            extent_start: ARG + 64,
            nr_extents: 1,
            extent_order: 0,
            mem_flags: 0,
            domid: DOMID_SELF,
            _pad: [0; 6],
        },
    );
    assert_eq!(call(&hv, &a, 0, MEMORY_OP, &[XENMEM_DECREASE_RESERVATION, ARG]), 1);
    assert_eq!(a.tot_pages(), before - 1);
    assert_eq!(a.mm.lock().released_pending(), 1);

    let bad = [unmap_op(HOLE, 99), unmap_op(HOLE + 0x5000, h), unmap_op(0, h)];
    let (r, out) = gnt(&hv, &b, GNTTABOP_UNMAP_GRANT_REF, &bad);
    assert_eq!(r, 0);
    assert_eq!(out.iter().map(|o| o.status).collect::<Vec<_>>(), [GNTST_BAD_HANDLE, GNTST_GENERAL_ERROR, GNTST_OKAY]);
    assert!(b.lookup(HOLE >> 12).is_some(), "host_addr 0 removes nothing");
    let (_, out) = gnt(&hv, &b, GNTTABOP_UNMAP_GRANT_REF, &[unmap_op(HOLE, h)]);
    assert_eq!(out[0].status, GNTST_OKAY);
    assert_eq!(flags(&a, 10), GTF_PERMIT_ACCESS | GTF_READING, "the read-only mapping remains");
    assert!(b.lookup(HOLE >> 12).is_none());
    let (_, out) = gnt(&hv, &b, GNTTABOP_UNMAP_GRANT_REF, &[unmap_op(HOLE + 0x1000, out2[0].handle)]);
    assert_eq!(out[0].status, GNTST_OKAY);
    assert_eq!(flags(&a, 10), GTF_PERMIT_ACCESS, "flags clear after the last unmap");
    assert_eq!(a.mm.lock().released_pending(), 0, "frame freed at the last unmap");
    assert_eq!(gnt(&hv, &b, GNTTABOP_UNMAP_GRANT_REF, &[unmap_op(HOLE, h)]).1[0].status, GNTST_BAD_HANDLE);
}

#[test]
fn map_errors_are_per_op() {
    let (hv, a, b) = pair();
    grant(&a, 1, b.id(), PAGE >> 12, GTF_PERMIT_ACCESS | GTF_READONLY);
    grant(&a, 2, 0x55, PAGE >> 12, GTF_PERMIT_ACCESS);
    grant(&a, 3, b.id(), 0x10, GTF_PERMIT_ACCESS);
    grant(&a, 4, b.id(), PAGE >> 12, GTF_PERMIT_ACCESS | GTF_SUB_PAGE);
    grant(&a, 5, b.id(), PAGE >> 12, GTF_PERMIT_ACCESS);
    let h = GNTMAP_HOST_MAP;
    let ops = [
        map_op(a.id(), 1, HOLE, h),                     // write map of a read-only grant
        map_op(a.id(), 2, HOLE, h),                     // granted to someone else
        map_op(a.id(), 3, HOLE, h),                     // frame is not a's RAM
        map_op(a.id(), 4, HOLE, h),                     // sub-page grants cannot be mapped
        map_op(a.id(), 512, HOLE, h),                   // beyond the table
        map_op(0x6000, 5, HOLE, h),                     // no such domain
        map_op(DOMID_SELF, 5, HOLE, h),                 // Xen: DOMID_SELF is not resolved here
        map_op(a.id(), 5, HOLE, 0),                     // neither host nor device map
        map_op(a.id(), 5, HOLE, h | GNTMAP_DEVICE_MAP), // no device maps for translated guests
        map_op(a.id(), 5, RAM, h),                      // b's RAM is there
        map_op(a.id(), 1, HOLE, h | GNTMAP_READONLY),   // fine
    ];
    let (r, out) = gnt(&hv, &b, GNTTABOP_MAP_GRANT_REF, &ops);
    assert_eq!(r, 0);
    let st: Vec<i16> = out.iter().map(|o| o.status).collect();
    use keel_abi::grant::{
        GNTST_BAD_DOMAIN as BD, GNTST_BAD_GNTREF as BR, GNTST_BAD_PAGE as BP, GNTST_GENERAL_ERROR as GE,
    };
    assert_eq!(st, [GE, GE, BP, GE, BR, BD, BD, BR, GE, GE, GNTST_OKAY]);
    assert_eq!(flags(&a, 3), GTF_PERMIT_ACCESS, "a failed map leaves no flag behind");
    assert_eq!(flags(&a, 5), GTF_PERMIT_ACCESS, "ref 5: the failed RAM-target map was undone");
    assert_eq!(flags(&a, 1), GTF_PERMIT_ACCESS | GTF_READONLY | GTF_READING);
    // Pinned by b: nobody else may pin it.
    let c = guest(&hv, &X86_64, 1, 256);
    grant(&a, 1, c.id(), PAGE >> 12, GTF_PERMIT_ACCESS | GTF_READONLY);
    let (_, out) = gnt(&hv, &c, GNTTABOP_MAP_GRANT_REF, &[map_op(a.id(), 1, HOLE, h | GNTMAP_READONLY)]);
    assert_eq!(out[0].status, GE);
}

#[test]
fn copy_between_grants_and_frames() {
    let (hv, a, b) = pair();
    a.write_phys(PAGE + 100, b"granted data").unwrap();
    grant(&a, 7, b.id(), PAGE >> 12, GTF_PERMIT_ACCESS);
    grant(&a, 8, b.id(), (PAGE >> 12) + 1, GTF_PERMIT_ACCESS | GTF_READONLY);
    let mine = RAM + 0x5000;
    let s = GNTCOPY_SOURCE_GREF;
    let dgr = GNTCOPY_DEST_GREF;
    let ops = [
        copy_op((7, a.id(), 100), (mine >> 12, DOMID_SELF, 8), 12, s),
        copy_op((mine >> 12, DOMID_SELF, 0), (8, a.id(), 0), 4, dgr), // read-only destination
        copy_op((7, a.id(), 4000), (mine >> 12, DOMID_SELF, 0), 200, s), // crosses the page
        copy_op((7, a.id(), 0), (mine >> 12, a.id(), 0), 4, s),       // frame of another domain
        copy_op((7, 0x6000, 0), (mine >> 12, DOMID_SELF, 0), 4, s),   // no such domain
        copy_op((0x10, DOMID_SELF, 0), (mine >> 12, DOMID_SELF, 0), 4, 0), // not RAM
        copy_op((9999, a.id(), 0), (mine >> 12, DOMID_SELF, 0), 4, s), // bad ref
        copy_op((9999, 0x6000, 0), (0, 0x6000, 0), 0, 0),             // zero length: nothing checked
        copy_op((mine >> 12, DOMID_SELF, 8), (7, a.id(), 0), 12, dgr), // write into a's page
    ];
    let (r, out) = gnt(&hv, &b, GNTTABOP_COPY, &ops);
    assert_eq!(r, 0);
    let st: Vec<i16> = out.iter().map(|o| o.status).collect();
    assert_eq!(
        st,
        [
            GNTST_OKAY,
            GNTST_GENERAL_ERROR,
            GNTST_BAD_COPY_ARG,
            GNTST_PERMISSION_DENIED,
            GNTST_BAD_DOMAIN,
            GNTST_BAD_PAGE,
            GNTST_BAD_GNTREF,
            GNTST_OKAY,
            GNTST_OKAY
        ]
    );
    let mut got = [0u8; 12];
    b.read_phys(mine + 8, &mut got).unwrap();
    assert_eq!(&got, b"granted data");
    a.read_phys(PAGE, &mut got).unwrap();
    assert_eq!(&got, b"granted data");
    assert_eq!(flags(&a, 7), GTF_PERMIT_ACCESS, "no flags left after copies");
    assert_eq!(flags(&a, 8), GTF_PERMIT_ACCESS | GTF_READONLY);
}

#[test]
fn table_size_version_and_batch_limits() {
    let (hv, a, _) = pair();
    let q = GnttabQuerySize { dom: DOMID_SELF, _pad: [0; 2], nr_frames: 0, max_nr_frames: 0, status: 0, _pad2: [0; 2] };
    let (r, out) = gnt(&hv, &a, GNTTABOP_QUERY_SIZE, &[q]);
    assert_eq!((r, out[0].nr_frames, out[0].max_nr_frames, out[0].status), (0, 1, 64, GNTST_OKAY));
    assert_eq!(gnt(&hv, &a, GNTTABOP_QUERY_SIZE, &[q, q]).0, err(Errno::EINVAL));
    let st = GnttabSetupTable {
        dom: DOMID_SELF,
        _pad: [0; 2],
        nr_frames: 2,
        status: 0,
        _pad2: [0; 6],
        frame_list: ARG + 0x100,
    };
    let (r, out) = gnt(&hv, &a, GNTTABOP_SETUP_TABLE, &[st]);
    assert_eq!((r, out[0].status), (0, GNTST_OKAY));
    assert_eq!([get_u64(&a, ARG + 0x100), get_u64(&a, ARG + 0x108)], [TABLE >> 12, u64::MAX]);
    let (_, out) = gnt(&hv, &a, GNTTABOP_SETUP_TABLE, &[GnttabSetupTable { nr_frames: 65, ..st }]);
    assert_eq!(out[0].status, GNTST_GENERAL_ERROR);
    let (_, out) = gnt(&hv, &a, GNTTABOP_SETUP_TABLE, &[GnttabSetupTable { dom: 0x6000, ..st }]);
    assert_eq!(out[0].status, GNTST_BAD_DOMAIN);
    let (r, out) = gnt(&hv, &a, GNTTABOP_SETUP_TABLE, &[GnttabSetupTable { frame_list: 0x10, ..st }]);
    assert_eq!((r, out[0].status), (0, GNTST_BAD_VIRT_ADDR));

    let (r, out) = gnt(&hv, &a, GNTTABOP_SET_VERSION, &[GnttabSetVersion { version: 2 }]);
    assert_eq!((r, out[0].version), (err(Errno::ENOSYS), 1));
    assert_eq!(gnt(&hv, &a, GNTTABOP_SET_VERSION, &[GnttabSetVersion { version: 3 }]).0, err(Errno::EINVAL));
    assert_eq!(gnt(&hv, &a, GNTTABOP_SET_VERSION, &[GnttabSetVersion { version: 1 }]).0, 0);
    let (r, out) =
        gnt(&hv, &a, GNTTABOP_GET_VERSION, &[GnttabGetVersion { dom: DOMID_SELF, _pad: [0; 2], version: 0 }]);
    assert_eq!((r, out[0].version), (0, 1));

    assert_eq!(call(&hv, &a, 0, GRANT_TABLE_OP, &[GNTTABOP_COPY, ARG, 4097]), err(Errno::E2BIG));
    assert_eq!(call(&hv, &a, 0, GRANT_TABLE_OP, &[GNTTABOP_COPY, ARG, 0x8000_0000]), err(Errno::EINVAL));
    assert_eq!(call(&hv, &a, 0, GRANT_TABLE_OP, &[GNTTABOP_COPY | 1 << 12, ARG, 1]), err(Errno::EINVAL));
    assert_eq!(call(&hv, &a, 0, GRANT_TABLE_OP, &[3, ARG, 1]), err(Errno::ENOSYS));
    assert_eq!(call(&hv, &a, 0, GRANT_TABLE_OP, &[GNTTABOP_MAP_GRANT_REF, 0x10, 1]), err(Errno::EFAULT));
    assert_eq!(place(&hv, &a, 64, TABLE >> 12), err(Errno::EINVAL));
    assert_eq!(place(&hv, &a, XENMAPIDX_GRANT_TABLE_STATUS, TABLE >> 12), err(Errno::EINVAL));
}

#[test]
fn destroying_either_side_releases_the_mapping() {
    let (hv, _) = hypervisor();
    let start = hv.pool().stats().allocated;
    let a = guest(&hv, &X86_64, 1, 256);
    let b = guest(&hv, &X86_64, 1, 256);
    assert_eq!(place(&hv, &a, 0, TABLE >> 12), 0);
    assert_eq!(place(&hv, &b, 0, TABLE >> 12), 0);
    grant(&a, 10, b.id(), PAGE >> 12, GTF_PERMIT_ACCESS);
    grant(&b, 11, a.id(), PAGE >> 12, GTF_PERMIT_ACCESS);
    let (_, out) = gnt(&hv, &b, GNTTABOP_MAP_GRANT_REF, &[map_op(a.id(), 10, HOLE, GNTMAP_HOST_MAP)]);
    assert_eq!(out[0].status, 0);
    let bh = out[0].handle;
    assert_eq!(gnt(&hv, &a, GNTTABOP_MAP_GRANT_REF, &[map_op(b.id(), 11, HOLE, GNTMAP_HOST_MAP)]).1[0].status, 0);
    assert_eq!(flags(&b, 11) & GTF_WRITING, GTF_WRITING);
    let (aid, bid) = (a.id(), b.id());
    let a_frame = a.lookup(PAGE >> 12).unwrap().frame;
    drop(a);
    crate::run::destroy_domain(&hv, aid).unwrap();
    assert_eq!(flags(&b, 11), GTF_PERMIT_ACCESS, "a's mapping of b's grant was released");
    // As in Xen: b keeps its mapping of the dead a's page until it unmaps it; a's memory
    // (and id) stay until then, never handed to anyone else.
    assert_eq!(b.lookup(HOLE >> 12).map(|l| l.frame), Some(a_frame), "b still maps a's page");
    assert_eq!(b.grants.lock().mappings(), 1);
    assert_eq!(hv.reap(), 0, "a is kept while b maps its page");
    assert!(hv.domain(aid).is_none() && hv.domain_any(aid).is_some(), "a is dying, not gone");
    let (_, out) = gnt(&hv, &b, GNTTABOP_UNMAP_GRANT_REF, &[unmap_op(HOLE, bh)]);
    assert_eq!(out[0].status, GNTST_OKAY, "the unmap after the granter died succeeds");
    assert!(b.lookup(HOLE >> 12).is_none(), "b's frame is a hole again");
    assert_eq!(hv.reap(), 1, "a is reaped at the last unmap");
    assert!(hv.domain_any(aid).is_none());
    assert_eq!(b.grants.lock().mappings(), 0);
    drop(b);
    crate::run::destroy_domain(&hv, bid).unwrap();
    assert_eq!(hv.reap(), 0);
    assert_eq!(hv.pool().stats().allocated, start, "nothing leaked");
}

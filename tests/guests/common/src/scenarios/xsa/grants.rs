//! Grant tables. XSA-255, XSA-380 and XSA-382 came from switching between grant versions
//! 1 and 2 and from v2's status frames; Keel has version 1 only, so every way into v2 is
//! refused and leaves version 1 in force. Maptrack: one grant mapped 4096 times at once,
//! the batch unmapped, and again for `keel.rounds` rounds (17 by default: 69 632 maps,
//! beyond Keel's 65 536 live mappings per domain, so a leaked handle would show as
//! `GNTST_no_space`); mapping twice at one place, unmapping twice, and batches beyond
//! 4096 are refused.

use super::expect;
use crate::grants;
use crate::hcall::{err, Hv, Ret};
use crate::pages::{self, Page};
use crate::{cmdline, ensure, expect_eq, fail, say, Outcome, Platform, Probe};
use core::sync::atomic::{AtomicU64, Ordering};
use keel_abi::grant::*;
use keel_abi::hypercall::GRANT_TABLE_OP;
use keel_abi::memory::{XenAddToPhysmap, XENMAPIDX_GRANT_TABLE_STATUS, XENMAPSPACE_GRANT_TABLE, XENMEM_ADD_TO_PHYSMAP};
use keel_abi::xen::{DomId, DOMID_SELF};
use keel_abi::Errno;
use keel_abi::Wire;

/// Ops per batch: Keel's limit.
const BATCH: usize = 4096;
/// `GNTTABOP_get_status_frames` (v2 only).
const GNTTABOP_GET_STATUS_FRAMES: u64 = 9;
const GREF: u32 = 10;
const PATTERN: u64 = 0x5a5a_0188_0221_0343;

/// One batch of map or unmap ops (32 bytes each), as words.
static OPS: [AtomicU64; BATCH * 4] = [const { AtomicU64::new(0) }; BATCH * 4];

fn ops_ptr() -> u64 {
    OPS.as_ptr() as u64
}

/// `grant_table_op(cmd, s, count)` on one struct in `page`.
fn one<P: Platform, T: Wire>(p: &P, page: &Page, cmd: u64, s: &mut T, count: u64) -> Ret {
    let mut b = [0u8; 64];
    let _ = s.write_bytes(&mut b);
    page.fill(0, &b);
    let r = Hv(p).raw(GRANT_TABLE_OP, [cmd, page.va() as u64, count, 0, 0]);
    page.read(0, &mut b);
    if let Some(v) = T::from_bytes(&b) {
        *s = v;
    }
    r
}

fn versions<P: Platform>(p: &P, page: &Page) -> Outcome {
    for (want, r) in [
        (2, err(Errno::ENOSYS)),
        (0, err(Errno::EINVAL)),
        (3, err(Errno::EINVAL)),
        (u32::MAX, err(Errno::EINVAL)),
        (1, 0),
    ] {
        let mut v = GnttabSetVersion { version: want };
        expect(one(p, page, GNTTABOP_SET_VERSION, &mut v, 1), r, "set_version")?;
        expect_eq!(v.version, 1, "the version in force after set_version");
    }
    let mut g = GnttabGetVersion { dom: DOMID_SELF, _pad: [0; 2], version: 0 };
    expect(one(p, page, GNTTABOP_GET_VERSION, &mut g, 1), 0, "get_version")?;
    expect_eq!(g.version, 1, "get_version");
    let mut g = GnttabGetVersion { dom: 0x7fef, _pad: [0; 2], version: 0 };
    expect(one(p, page, GNTTABOP_GET_VERSION, &mut g, 1), err(Errno::ESRCH), "get_version of no domain")?;
    let mut s =
        GnttabQuerySize { dom: DOMID_SELF, _pad: [0; 2], nr_frames: 0, max_nr_frames: 0, status: 0, _pad2: [0; 2] };
    expect(one(p, page, GNTTABOP_GET_STATUS_FRAMES, &mut s, 1), err(Errno::ENOSYS), "get_status_frames")?;
    expect(one(p, page, GNTTABOP_GET_STATUS_FRAMES | 1 << 12, &mut s, 1), err(Errno::EINVAL), "a continuation bit")?;
    // Status frames and frames beyond the table's maximum through the physmap.
    let gpfn = (p.hole().0 >> 12) + 8;
    for idx in [XENMAPIDX_GRANT_TABLE_STATUS, XENMAPIDX_GRANT_TABLE_STATUS | 1, 64, 1 << 32, u64::MAX] {
        let mut x = XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_GRANT_TABLE, idx, gpfn };
        expect(Hv(p).memory_op(XENMEM_ADD_TO_PHYSMAP, &mut x), err(Errno::EINVAL), "a status or too-high grant frame")?;
    }
    let mut q =
        GnttabQuerySize { dom: DOMID_SELF, _pad: [0; 2], nr_frames: 0, max_nr_frames: 0, status: 0, _pad2: [0; 2] };
    expect(one(p, page, GNTTABOP_QUERY_SIZE, &mut q, 1), 0, "query_size")?;
    expect_eq!(q.status, GNTST_OKAY, "query_size status");
    let max = q.max_nr_frames;
    for nr_frames in [max + 1, u32::MAX] {
        let mut t = GnttabSetupTable {
            dom: DOMID_SELF,
            _pad: [0; 2],
            nr_frames,
            status: 0,
            _pad2: [0; 6],
            frame_list: p.unmapped_va() as u64,
        };
        expect(one(p, page, GNTTABOP_SETUP_TABLE, &mut t, 1), 0, "setup_table beyond the maximum")?;
        expect_eq!(t.status, GNTST_GENERAL_ERROR, "setup_table beyond the maximum: status");
        expect(one(p, page, GNTTABOP_SETUP_TABLE, &mut t, 2), err(Errno::EINVAL), "setup_table with count 2")?;
    }
    Ok(())
}

/// Encodes map op `i`: `gref` of `dom` at `at`.
fn put_map(i: usize, at: u64, dom: DomId) {
    let op = GnttabMapGrantRef {
        host_addr: at,
        flags: GNTMAP_HOST_MAP,
        grant_ref: GREF,
        dom,
        status: 0x7fff,
        handle: 0,
        dev_bus_addr: 0,
    };
    put(i, &op);
}

/// Op `i` of an array of `T` (24 or 32 bytes each) in [`OPS`].
fn put<T: Wire>(i: usize, op: &T) {
    let mut b = [0u8; 32];
    let _ = op.write_bytes(&mut b);
    for (w, chunk) in b[..T::SIZE].chunks(8).enumerate() {
        OPS[i * T::SIZE / 8 + w].store(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])), Ordering::Release);
    }
}

fn get<T: Wire>(i: usize) -> Option<T> {
    let mut b = [0u8; 32];
    for (w, chunk) in b[..T::SIZE].chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&OPS[i * T::SIZE / 8 + w].load(Ordering::Acquire).to_le_bytes());
    }
    T::from_bytes(&b[..T::SIZE])
}

fn batch<P: Platform>(p: &P, cmd: u64, count: u64) -> Ret {
    Hv(p).raw(GRANT_TABLE_OP, [cmd, ops_ptr(), count, 0, 0])
}

fn maptrack<P: Platform>(p: &P, me: DomId, rounds: u64) -> Result<u64, crate::Failure> {
    let base = p.hole().0 + 0x10_0000;
    let table = grants::setup(p, p.hole().0)?;
    let Some(page) = pages::alloc() else { fail!("out of guest pages") };
    page.fill(0, &PATTERN.to_le_bytes());
    table.grant(GREF, me, p.gpa(page.va()) >> 12, false);
    let mut handles = [0u32; BATCH];
    let mut maps = 0;
    for round in 0..rounds {
        for i in 0..BATCH {
            put_map(i, base + 4096 * i as u64, me);
        }
        expect(batch(p, GNTTABOP_MAP_GRANT_REF, BATCH as u64), 0, "a batch of 4096 maps of one grant")?;
        for (i, h) in handles.iter_mut().enumerate() {
            let Some(op) = get::<GnttabMapGrantRef>(i) else { fail!("map op {i} unreadable") };
            if op.status != GNTST_OKAY {
                fail!("round {round}, map {i} of one grant: status {} after {maps} maps", op.status);
            }
            ensure!(op.dev_bus_addr == 0, "map {i}: dev_bus_addr {:#x} disclosed", op.dev_bus_addr);
            *h = op.handle;
            maps += 1;
        }
        if round == 0 {
            match p.probe_read(base + 4096 * (BATCH as u64 - 1)) {
                Probe::Value(v) if v == PATTERN => {}
                other => fail!("the 4096th mapping of the grant reads {other:?}"),
            }
            // A second mapping where one already is.
            let (st, _) = grants::map(p, me, GREF, base, false);
            expect_eq!(st, GNTST_GENERAL_ERROR, "a map over an existing mapping");
            // Beyond the table; a grant of nobody.
            let (st, _) = grants::map(p, me, 1 << 20, base - 4096, false);
            expect_eq!(st, GNTST_BAD_GNTREF, "a map of a grant beyond the table");
            let (st, _) = grants::map(p, 0x7fef, GREF, base - 4096, false);
            expect_eq!(st, GNTST_BAD_DOMAIN, "a map from no domain");
            // XSA-224: device mappings (Keel has no IOMMU mappings to give).
            put_map(0, base - 4096, me);
            let mut op = get::<GnttabMapGrantRef>(0).unwrap_or_default();
            op.flags |= GNTMAP_DEVICE_MAP;
            put(0, &op);
            expect(batch(p, GNTTABOP_MAP_GRANT_REF, 1), 0, "a device map")?;
            let st = get::<GnttabMapGrantRef>(0).map_or(0x7fff, |o| o.status);
            expect_eq!(st, GNTST_GENERAL_ERROR, "a device map (GNTMAP_device_map)");
            ensure!(!table.end(GREF), "the granter ended access while 4096 mappings were live");
        }
        for (i, &h) in handles.iter().enumerate() {
            let op = GnttabUnmapGrantRef {
                host_addr: base + 4096 * i as u64,
                dev_bus_addr: 0,
                handle: h,
                status: 0x7fff,
                _pad: [0; 2],
            };
            put(i, &op);
        }
        expect(batch(p, GNTTABOP_UNMAP_GRANT_REF, BATCH as u64), 0, "a batch of 4096 unmaps")?;
        for i in 0..BATCH {
            let st = get::<GnttabUnmapGrantRef>(i).map_or(0x7fff, |o| o.status);
            ensure!(st == GNTST_OKAY, "round {round}, unmap {i}: status {st}");
        }
        if round == 0 {
            // The same handles again: gone.
            expect(batch(p, GNTTABOP_UNMAP_GRANT_REF, 16), 0, "unmapping 16 handles twice")?;
            for i in 0..16 {
                let st = get::<GnttabUnmapGrantRef>(i).map_or(0x7fff, |o| o.status);
                expect_eq!(st, GNTST_BAD_HANDLE, "an unmap of a handle already unmapped");
            }
            match p.probe_read(base) {
                Probe::Fault(_) => {}
                Probe::Value(u64::MAX) if p.unbacked_reads_all_ones() => {}
                Probe::Value(v) => fail!("an unmapped grant still reads {v:#x}"),
            }
        }
    }
    ensure!(table.end(GREF), "the granter could not end access after every mapping was gone");
    expect(batch(p, GNTTABOP_MAP_GRANT_REF, BATCH as u64 + 1), err(Errno::E2BIG), "a batch of 4097 maps")?;
    expect(batch(p, GNTTABOP_COPY, 0xffff), err(Errno::E2BIG), "a batch of 65535 copies")?;
    expect(batch(p, GNTTABOP_UNMAP_GRANT_REF, 0x8000_0000), err(Errno::EINVAL), "a negative count")?;
    Ok(maps)
}

pub fn run<P: Platform>(p: &P, me: DomId) -> Outcome {
    let Some(page) = pages::alloc() else { fail!("out of guest pages") };
    versions(p, page)?;
    let rounds = cmdline::get_u64(p.cmdline(), "keel.rounds").unwrap_or(17);
    let maps = maptrack(p, me, rounds)?;
    say!(p, "xsa grants: v2 and status frames refused, version 1 kept; {maps} maps of one grant in batches of 4096, all unmapped; double map/unmap refused");
    Ok(())
}

//! Batched `GNTTABOP_unmap_grant_ref`: one TLB flush per chunk of ops, and the same
//! statuses and end state as unmapping the ops one call at a time.

use super::tests::*;
use crate::mock::flush_count;
use crate::test_support::*;
use alloc::vec::Vec;
use keel_abi::grant::*;
use keel_abi::layout::X86_64;
use proptest::prelude::*;

/// Grant refs each granter offers the mapper, one page each from `PAGE`.
const REFS: u32 = 6;

/// The mapper `b` and two granters, `a` and `c`, each granting `REFS` pages to `b`.
fn world() -> (Hv, D, D, D) {
    let (hv, a, b) = pair();
    let c = guest(&hv, &X86_64, 1, 256);
    assert_eq!(place(&hv, &c, 0, TABLE >> 12), 0);
    for d in [&a, &c] {
        for r in 0..REFS {
            let gfn = (PAGE >> 12) + u64::from(r);
            d.write_phys(gfn << 12, &[r as u8 + 1; 8]).unwrap();
            grant(d, r, b.id(), gfn, GTF_PERMIT_ACCESS);
        }
    }
    (hv, a, b, c)
}

fn slot_addr(i: usize) -> u64 {
    HOLE + (i as u64) * 0x1000
}

/// Maps `(granter is c, ref, read-only)` each at its own slot; returns the handles of
/// those that mapped (None where refused).
fn map_all(hv: &Hv, a: &D, b: &D, c: &D, maps: &[(bool, u32, bool)]) -> Vec<Option<u32>> {
    maps.iter()
        .enumerate()
        .map(|(i, &(on_c, r, ro))| {
            let dom = if on_c { c.id() } else { a.id() };
            let fl = GNTMAP_HOST_MAP | if ro { GNTMAP_READONLY } else { 0 };
            let (_, out) = gnt(hv, b, GNTTABOP_MAP_GRANT_REF, &[map_op(dom, r, slot_addr(i), fl)]);
            (out[0].status == GNTST_OKAY).then_some(out[0].handle)
        })
        .collect()
}

/// What the granters' entries and the mapper's slots look like.
fn state(a: &D, b: &D, c: &D, slots: usize) -> (Vec<u16>, Vec<bool>, usize) {
    let fl = (0..REFS).map(|r| flags(a, r)).chain((0..REFS).map(|r| flags(c, r))).collect();
    let mapped = (0..slots).map(|i| b.lookup(slot_addr(i) >> 12).is_some()).collect();
    (fl, mapped, b.grants.lock().mappings())
}

#[test]
fn one_flush_per_chunk_and_every_entry_unpinned() {
    let (hv, a, b, c) = world();
    let maps: Vec<(bool, u32, bool)> = (0..40).map(|i| (i % 2 == 1, (i / 2) % REFS, i % 3 == 0)).collect();
    let handles = map_all(&hv, &a, &b, &c, &maps);
    assert!(handles.iter().all(Option::is_some));
    let mut ops: Vec<GnttabUnmapGrantRef> =
        handles.iter().enumerate().map(|(i, h)| unmap_op(slot_addr(i), h.unwrap())).collect();
    ops.insert(5, unmap_op(HOLE, 9999));
    let before = flush_count();
    let (r, out) = gnt(&hv, &b, GNTTABOP_UNMAP_GRANT_REF, &ops);
    assert_eq!(r, 0);
    assert_eq!(flush_count() - before, 2, "41 ops: chunks of 32 and 9, one flush each");
    for (i, o) in out.iter().enumerate() {
        assert_eq!(o.status, if i == 5 { GNTST_BAD_HANDLE } else { GNTST_OKAY }, "op {i}");
    }
    let (fl, mapped, n) = state(&a, &b, &c, maps.len());
    assert!(fl.iter().all(|&f| f == GTF_PERMIT_ACCESS), "every entry unpinned: {fl:x?}");
    assert!(mapped.iter().all(|&m| !m), "every slot a hole again");
    assert_eq!(n, 0);
    // A batch that removes nothing flushes nothing.
    let before = flush_count();
    let (_, out) = gnt(&hv, &b, GNTTABOP_UNMAP_GRANT_REF, &[unmap_op(HOLE, 1), unmap_op(HOLE, 9999)]);
    assert_eq!([out[0].status, out[1].status], [GNTST_BAD_HANDLE, GNTST_BAD_HANDLE]);
    assert_eq!(flush_count(), before);
}

#[test]
fn an_unreadable_op_ends_the_batch_after_the_ops_before_it() {
    let (hv, a, b, c) = world();
    let handles = map_all(&hv, &a, &b, &c, &[(false, 0, false), (true, 1, false)]);
    let ops = [unmap_op(slot_addr(0), handles[0].unwrap()), unmap_op(slot_addr(1), handles[1].unwrap())];
    // Three ops claimed, the last two in b's RAM, the third beyond its end.
    let end = RAM + 256 * 1024;
    let at = end - 2 * GnttabUnmapGrantRef::SIZE as u64;
    for (i, o) in ops.iter().enumerate() {
        put(&b, at + (i * GnttabUnmapGrantRef::SIZE) as u64, o);
    }
    let r = call(&hv, &b, 0, keel_abi::hypercall::GRANT_TABLE_OP, &[GNTTABOP_UNMAP_GRANT_REF, at, 3]);
    assert_eq!(r, -(keel_abi::Errno::EFAULT.code() as i64));
    let (fl, mapped, n) = state(&a, &b, &c, 2);
    assert_eq!((fl[0], fl[REFS as usize + 1]), (GTF_PERMIT_ACCESS, GTF_PERMIT_ACCESS), "both unmapped");
    assert_eq!((mapped, n), (alloc::vec![false, false], 0));
    let out: GnttabUnmapGrantRef = get(&b, at);
    assert_eq!(out.status, GNTST_OKAY);
}

/// One unmap op of the property test: which mapping (by index) and how the op is wrong.
#[derive(Clone, Copy, Debug)]
enum Op {
    Good(usize),
    NoAddress(usize),
    WrongAddress(usize),
    BadHandle,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..16).prop_map(Op::Good),
        1 => (0usize..16).prop_map(Op::NoAddress),
        1 => (0usize..16).prop_map(Op::WrongAddress),
        1 => Just(Op::BadHandle),
    ]
}

fn unmap_ops(handles: &[Option<u32>], ops: &[Op]) -> Vec<GnttabUnmapGrantRef> {
    let n = handles.len();
    let handle = |i: usize| handles[i % n].unwrap_or(7777);
    ops.iter()
        .map(|&o| match o {
            Op::Good(i) => unmap_op(slot_addr(i % n), handle(i)),
            Op::NoAddress(i) => unmap_op(0, handle(i)),
            Op::WrongAddress(i) => unmap_op(slot_addr(i % n + 1), handle(i)),
            Op::BadHandle => unmap_op(HOLE, 9999),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Unmapping a batch in one call gives each op the status, and leaves the entries,
    /// the mapper's P2M and its maptrack as, unmapping them one call each; it flushes at
    /// most once per chunk of 32 and at least once if it removed anything, and no slot
    /// an op unmapped still reaches a frame.
    #[test]
    fn a_batch_is_the_ops_one_by_one_with_fewer_flushes(
        maps in proptest::collection::vec((any::<bool>(), 0..REFS, any::<bool>()), 1..16),
        ops in proptest::collection::vec(op_strategy(), 0..70),
    ) {
        let (hv1, a1, b1, c1) = world();
        let h1 = map_all(&hv1, &a1, &b1, &c1, &maps);
        let (hv2, a2, b2, c2) = world();
        let h2 = map_all(&hv2, &a2, &b2, &c2, &maps);
        prop_assert_eq!(&h1, &h2);
        let ops = unmap_ops(&h1, &ops);

        let one_by_one: Vec<i16> =
            ops.iter().map(|o| gnt(&hv1, &b1, GNTTABOP_UNMAP_GRANT_REF, &[*o]).1[0].status).collect();
        let before = flush_count();
        let (r, out) = gnt(&hv2, &b2, GNTTABOP_UNMAP_GRANT_REF, &ops);
        let flushes = flush_count() - before;
        prop_assert_eq!(r, 0);
        let batched: Vec<i16> = out.iter().map(|o| o.status).collect();
        prop_assert_eq!(&batched, &one_by_one);
        prop_assert_eq!(state(&a2, &b2, &c2, maps.len() + 1), state(&a1, &b1, &c1, maps.len() + 1));

        let removed = ops.iter().zip(&batched).filter(|(o, &s)| s == GNTST_OKAY && o.host_addr != 0).count();
        prop_assert!(flushes <= ops.len().div_ceil(32) as u64);
        prop_assert!(removed == 0 || flushes >= 1);
        for (o, &s) in ops.iter().zip(&batched) {
            if s == GNTST_OKAY && o.host_addr != 0 {
                prop_assert!(b2.lookup(o.host_addr >> 12).is_none(), "slot {:#x} still mapped", o.host_addr);
            }
        }
    }
}

//! The cached event words against a guest that moves its pages: whatever the guest
//! gives back or remaps between sends (its registered `vcpu_info`, FIFO control blocks
//! and event-array pages, its shared_info), a send never writes into a page another
//! domain was given since.

extern crate std;

use super::{bind_ipi, fifo, send};
use crate::mm::PAGE_SIZE;
use crate::p2m::PageKind;
use crate::test_support::*;
use alloc::vec::Vec;
use keel_abi::layout::X86_64;
use proptest::prelude::*;

/// The registered `vcpu_info` of vCPU 1, and the FIFO pages (control blocks of vCPUs 0
/// and 1, one event-array page): the guest frames the hypervisor pinned.
const VCPU_INFO_GFN: u64 = (RAM >> 12) + 4;
const PINNED: [u64; 4] = [VCPU_INFO_GFN, (RAM + 0x8000) >> 12, (RAM + 0x9000) >> 12, (RAM + 0x10000) >> 12];
/// Where shared_info may be placed (never the hypercall argument's page).
const SHARED_INFO_GFNS: [u64; 2] = [(RAM >> 12) + 6, (RAM >> 12) + 7];

#[derive(Clone, Copy, Debug)]
enum Step {
    /// A send on one of the bound ports.
    Send(usize),
    /// The guest gives back one of the pinned frames (decrease_reservation).
    Balloon(usize),
    /// The guest populates a pinned frame's gfn again (a new frame there).
    Repopulate(usize),
    /// shared_info moves (XENMAPSPACE_shared_info), over RAM the guest gives back.
    MoveSharedInfo(usize),
    /// The other domain is given `n` new pages (increase_reservation).
    Grow(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize).prop_map(Step::Send),
        2 => (0..PINNED.len()).prop_map(Step::Balloon),
        1 => (0..PINNED.len()).prop_map(Step::Repopulate),
        1 => (0..SHARED_INFO_GFNS.len()).prop_map(Step::MoveSharedInfo),
        2 => (1..8u64).prop_map(Step::Grow),
    ]
}

proptest! {
    #![proptest_config(cases(48))]

    /// Sends (2-level or FIFO) between any changes of the sender-and-receiver's P2M,
    /// while another domain takes every page the pool hands out: the other domain's
    /// pages stay exactly as it left them (zero), so no send wrote into a page after its
    /// domain gave it back. It fails if the hypervisor kept using a frame it did not keep
    /// pinned (a freed frame is the next one the pool hands out).
    #[test]
    fn a_send_never_writes_into_a_page_the_guest_gave_back(
        use_fifo in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let (hv, _) = hypervisor();
        let d = guest(&hv, &X86_64, 2, 256);
        let other = guest(&hv, &X86_64, 1, 4);
        // vCPU 1's vcpu_info in a page of its own.
        put(&d, ARG, &keel_abi::vcpu::VcpuRegisterVcpuInfo { mfn: VCPU_INFO_GFN, offset: 64, rsvd: 0 });
        let r = call(&hv, &d, 1, keel_abi::hypercall::VCPU_OP, &[keel_abi::vcpu::VCPUOP_REGISTER_VCPU_INFO, 1, ARG]);
        prop_assert_eq!(r, 0);
        if use_fifo {
            let _ = fifo(&hv, &d, 1);
        }
        let ports: Vec<u32> = (0..4).map(|i| bind_ipi(&hv, &d, i % 2)).collect();
        let mut other_gfns: Vec<u64> = (0..1).map(|i| (RAM >> 12) + i).collect();
        let mut next_other = (RAM >> 12) + 1;
        for s in steps {
            match s {
                Step::Send(i) => prop_assert_eq!(send(&hv, &d, ports[i]), 0),
                Step::Balloon(i) => {
                    let _ = d.mm.lock().release_ram(hv.pool(), PINNED[i]);
                }
                Step::Repopulate(i) => {
                    let _ = d.mm.lock().populate(hv.pool(), PINNED[i], 1);
                }
                Step::MoveSharedInfo(i) => {
                    let _ = d.mm.lock().place_special(hv.pool(), SHARED_INFO_GFNS[i], d.shared_info_frame(), PageKind::SharedInfo);
                }
                Step::Grow(n) => {
                    let mut mm = other.mm.lock();
                    for _ in 0..n {
                        mm.populate(hv.pool(), next_other, 1).unwrap();
                        other_gfns.push(next_other);
                        next_other += 1;
                    }
                }
            }
            let mut page = [0u8; PAGE_SIZE as usize];
            for &g in &other_gfns {
                other.read_phys(g << 12, &mut page).unwrap();
                prop_assert!(page.iter().all(|&b| b == 0), "a send wrote into gfn {:#x} of another domain after {:?}", g, s);
            }
        }
        // 2-level delivery still reaches shared_info wherever the guest put it.
        let placed = d.mm.lock().placed(PageKind::SharedInfo);
        if let (false, Some(g)) = (use_fifo, placed) {
            let pending = (g << 12) + X86_64.evtchn_pending as u64;
            d.write_phys(pending, &[0u8; 8]).unwrap();
            prop_assert_eq!(send(&hv, &d, ports[0]), 0);
            prop_assert_eq!(get_u64(&d, pending), 1 << ports[0]);
        }
    }
}

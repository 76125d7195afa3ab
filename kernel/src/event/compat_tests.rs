//! The x86 compat layout of shared_info/`vcpu_info` (32-bit callers): chosen when the
//! domain sets `HVM_PARAM_CALLBACK_IRQ`, by the caller's mode, as Xen's
//! `hvm_latch_shinfo_size`; 2-level send, unmask and poll behave in it as in the 64-bit
//! layout.

extern crate std;

use crate::arch::HostMemory;
use crate::domain::Domain;
use crate::hypervisor::Hypervisor;
use crate::mm::PhysAddr;
use crate::mock::{MockArch, MockMemory};
use crate::test_support::*;
use alloc::sync::Arc;
use alloc::vec::Vec;
use keel_abi::event::*;
use keel_abi::hvm::{XenHvmParam, HVMOP_SET_PARAM, HVM_PARAM_CALLBACK_IRQ};
use keel_abi::hypercall::{EVENT_CHANNEL_OP, HVM_OP};
use keel_abi::layout::{GuestLayout, AARCH64, X86_32, X86_64};
use keel_abi::xen::DOMID_SELF;
use keel_abi::{Errno, Wire};
use proptest::prelude::*;

type Hv = Hypervisor<'static, MockArch>;
type D = Arc<Domain<MockArch>>;

fn set_callback(hv: &Hv, d: &D, compat: bool) -> i64 {
    let p = XenHvmParam { domid: DOMID_SELF, _pad: [0; 2], index: HVM_PARAM_CALLBACK_IRQ, value: 2 << 56 | 0xf3 };
    put(d, ARG, &p);
    let args = [HVMOP_SET_PARAM, ARG];
    if compat {
        call_compat(hv, d, 0, HVM_OP, &args)
    } else {
        call(hv, d, 0, HVM_OP, &args)
    }
}

fn ev_op<T: Wire>(hv: &Hv, d: &D, cmd: u64, arg: T) -> (i64, T) {
    put(d, ARG + 0x100, &arg);
    let r = call(hv, d, 0, EVENT_CHANNEL_OP, &[cmd, ARG + 0x100]);
    (r, get(d, ARG + 0x100))
}

fn bind_ipi(hv: &Hv, d: &D, vcpu: u32) -> u32 {
    let (r, x) = ev_op(hv, d, EVTCHNOP_BIND_IPI, EvtchnBindIpi { vcpu, port: 0 });
    assert_eq!(r, 0);
    x.port
}

fn si(d: &D, off: usize) -> PhysAddr {
    PhysAddr(d.shared_info_frame().0 + off as u64)
}

/// Bit `bit` of the little-endian bitmap at `at` (any word size reads the same).
fn bit(at: PhysAddr, bit: u32) -> bool {
    let mut b = [0u8];
    MockMemory::read(PhysAddr(at.0 + u64::from(bit / 8)), &mut b);
    b[0] >> (bit % 8) & 1 != 0
}

fn set_bit(at: PhysAddr, bit: u32, on: bool) {
    let a = PhysAddr(at.0 + u64::from(bit / 8));
    let mut b = [0u8];
    MockMemory::read(a, &mut b);
    let m = 1u8 << (bit % 8);
    b[0] = if on { b[0] | m } else { b[0] & !m };
    MockMemory::write(a, &b);
}

/// `vcpu`'s selector word as a number (32 or 64 bits, by the layout).
fn selector(d: &D, l: &GuestLayout, vcpu: usize) -> u64 {
    let mut b = [0u8; 8];
    let at = si(d, l.shared_vcpu_info(vcpu).unwrap() + l.pending_sel);
    MockMemory::read(at, &mut b[..l.word_bytes]);
    u64::from_le_bytes(b)
}

#[test]
fn the_caller_mode_at_set_param_chooses_the_layout() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 2, 64);
    assert_eq!(d.shared_layout(), &X86_64, "64-bit until told otherwise");
    d.set_wallclock(0x2_0000_0007, 9);
    assert_eq!(set_callback(&hv, &d, true), 0);
    assert_eq!(d.shared_layout(), &X86_32);
    // The wall clock is published again where a 32-bit guest reads it.
    assert_eq!(get_u32_at(&d, X86_32.wc_version) % 2, 0);
    assert_ne!(get_u32_at(&d, X86_32.wc_version), 0);
    assert_eq!(get_u32_at(&d, X86_32.wc_version + 4), 7);
    assert_eq!(get_u32_at(&d, X86_32.wc_version + 8), 9);
    assert_eq!(get_u32_at(&d, X86_32.wc_sec_hi), 2);

    // A send lands in 32-bit words: port 40 is bit 8 of pending word 1, selector bit 1
    // in the 32-bit selector at 4.
    let ports: Vec<u32> = (0..40).map(|_| bind_ipi(&hv, &d, 1)).collect();
    assert_eq!(ports.last(), Some(&40));
    assert_eq!(ev_op(&hv, &d, EVTCHNOP_SEND, EvtchnPort { port: 40 }).0, 0);
    assert!(bit(si(&d, X86_32.evtchn_pending), 40));
    assert_eq!(get_u32_at(&d, X86_32.shared_vcpu_info(1).unwrap() + 4), 1 << 1);
    assert_eq!(get_u32_at(&d, X86_32.shared_vcpu_info(1).unwrap() + 8), 0, "arch.cr2 untouched");
    assert!(d.upcall_pending(1));
    assert!(d.events.lock().is_pending(40));
    // Ports from 1024 on do not exist in the compat 2-level ABI.
    assert_eq!(ev_op(&hv, &d, EVTCHNOP_UNMASK, EvtchnPort { port: 1024 }).0, -(Errno::EINVAL.code() as i64));

    // A 64-bit caller setting it again switches back.
    assert_eq!(set_callback(&hv, &d, false), 0);
    assert_eq!(d.shared_layout(), &X86_64);
    assert_eq!(get_u32_at(&d, X86_64.wc_version + 4), 7);
    assert_eq!(get_u32_at(&d, X86_64.wc_sec_hi), 2);
}

#[test]
fn every_latch_writes_the_wall_clock_again_changed_layout_or_not() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 64);
    d.latch_shared_layout(false);
    assert_eq!(get_u32_at(&d, X86_64.wc_version), 0, "nothing published, nothing written");
    d.set_wallclock(0x2_0000_0007, 9);
    let version = get_u32_at(&d, X86_64.wc_version);
    // The same layout again: no switch, but the wall clock is written again (as Xen's
    // hvm_latch_shinfo_size does), which a guest sees as a new even version.
    d.latch_shared_layout(false);
    assert_eq!(d.shared_layout(), &X86_64);
    let again = get_u32_at(&d, X86_64.wc_version);
    assert!(again > version && again.is_multiple_of(2), "wc_version {version} then {again}");
    assert_eq!(get_u32_at(&d, X86_64.wc_version + 4), 7);
}

#[test]
fn arm64_has_one_layout() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &AARCH64, 1, 64);
    d.latch_shared_layout(true);
    assert_eq!(d.shared_layout(), &AARCH64);
}

#[test]
fn a_registered_vcpu_info_gets_a_32_bit_selector() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 64);
    assert_eq!(set_callback(&hv, &d, true), 0);
    let area = RAM + 4 * 4096 + 64;
    // Stale bytes where the 64-bit selector would be.
    d.write_phys(area + 8, &[0x5a; 8]).unwrap();
    put(&d, ARG + 0x200, &keel_abi::vcpu::VcpuRegisterVcpuInfo { mfn: (RAM >> 12) + 4, offset: 64, rsvd: 0 });
    let r =
        call(&hv, &d, 0, keel_abi::hypercall::VCPU_OP, &[keel_abi::vcpu::VCPUOP_REGISTER_VCPU_INFO, 0, ARG + 0x200]);
    assert_eq!(r, 0);
    assert_eq!(get_u32(&d, area + 4), u32::MAX, "every selector bit set");
    // arch.cr2 comes from the old vcpu_info (shared_info's zeroes), not the selector fill.
    assert_eq!(get_u64(&d, area + 8), 0);
}

fn get_u32_at(d: &D, off: usize) -> u32 {
    let mut b = [0u8; 4];
    MockMemory::read(si(d, off), &mut b);
    u32::from_le_bytes(b)
}

/// A guest's or Keel's step on a few ports spread over 32- and 64-bit word boundaries.
#[derive(Clone, Debug)]
enum Step {
    Send(usize),
    Unmask(usize),
    /// The guest sets a mask bit (it clears one with `EVTCHNOP_unmask`: clearing it by
    /// hand leaves a pending port unselected, and which ports share its selector bit
    /// is what differs between the layouts).
    Mask(usize),
    /// The guest handles vCPU `v`'s events: clears its upcall flag, its selector and the
    /// pending bits of every port it finds through the selector.
    Handle(usize),
}

/// Port numbers used (bound as IPIs to alternate vCPUs).
const PORTS: [u32; 8] = [1, 31, 32, 33, 63, 64, 65, 100];

fn step() -> impl Strategy<Value = Step> {
    let p = 0..PORTS.len();
    prop_oneof![
        3 => p.clone().prop_map(Step::Send),
        2 => p.clone().prop_map(Step::Unmask),
        2 => p.prop_map(Step::Mask),
        2 => (0..2usize).prop_map(Step::Handle),
    ]
}

/// A domain in layout `compat`'s shared_info, with every port of [`PORTS`] bound.
fn domain(hv: &Hv, compat: bool) -> D {
    let d = guest(hv, &X86_64, 2, 64);
    assert_eq!(set_callback(hv, &d, compat), 0);
    for n in 1..=*PORTS.last().unwrap() {
        assert_eq!(bind_ipi(hv, &d, n % 2), n);
    }
    d
}

/// What the guest handling `vcpu`'s events finds, in the guest's own scan order.
fn handle(d: &D, vcpu: usize) -> Vec<u32> {
    let l = d.shared_layout();
    let vi = si(d, l.shared_vcpu_info(vcpu).unwrap());
    MockMemory::write(vi, &[0]);
    let sel = selector(d, l, vcpu);
    MockMemory::write(PhysAddr(vi.0 + l.pending_sel as u64), &[0u8; 8][..l.word_bytes]);
    let mut found = Vec::new();
    for w in 0..l.word_bits() {
        if sel >> w & 1 == 0 {
            continue;
        }
        for b in 0..l.word_bits() {
            let port = w * l.word_bits() + b;
            if bit(si(d, l.evtchn_pending), port) && !bit(si(d, l.evtchn_mask), port) {
                let notify = d.events.lock().port(port).map(|p| p.notify_vcpu as usize);
                if notify == Ok(vcpu) {
                    set_bit(si(d, l.evtchn_pending), port, false);
                    found.push(port);
                }
            }
        }
    }
    found.sort_unstable();
    found
}

/// Everything the two layouts must agree on after a step: the hypercall's result, the
/// ports the guest found, both vCPUs' upcall levels, and per port of [`PORTS`] its
/// pending and mask bits and whether poll would see it pending.
type Seen = (i64, Vec<u32>, [bool; 2], Vec<(bool, bool, bool)>);

fn observe(d: &D, out: i64, found: Vec<u32>) -> Seen {
    let l = d.shared_layout();
    let ports = PORTS
        .iter()
        .map(|&p| (bit(si(d, l.evtchn_pending), p), bit(si(d, l.evtchn_mask), p), d.events.lock().is_pending(p)))
        .collect();
    (out, found, [d.upcall_pending(0), d.upcall_pending(1)], ports)
}

fn apply(hv: &Hv, d: &D, s: &Step) -> Seen {
    let l = d.shared_layout();
    let (out, found) = match *s {
        Step::Send(i) => (ev_op(hv, d, EVTCHNOP_SEND, EvtchnPort { port: PORTS[i] }).0, Vec::new()),
        Step::Unmask(i) => (ev_op(hv, d, EVTCHNOP_UNMASK, EvtchnPort { port: PORTS[i] }).0, Vec::new()),
        Step::Mask(i) => {
            set_bit(si(d, l.evtchn_mask), PORTS[i], true);
            (0, Vec::new())
        }
        Step::Handle(v) => (0, handle(d, v)),
    };
    observe(d, out, found)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Send, unmask and poll's view give the same results in both layouts; every event
    /// sent to an unmasked port is found by the guest that owns it.
    #[test]
    fn two_level_is_the_same_in_both_layouts(steps in proptest::collection::vec(step(), 1..60)) {
        let (hv, _) = hypervisor();
        let wide = domain(&hv, false);
        let narrow = domain(&hv, true);
        prop_assert_eq!(wide.shared_layout(), &X86_64);
        prop_assert_eq!(narrow.shared_layout(), &X86_32);
        for s in &steps {
            let a = apply(&hv, &wide, s);
            let b = apply(&hv, &narrow, s);
            prop_assert_eq!(&a, &b, "after {:?}", s);
        }
    }
}

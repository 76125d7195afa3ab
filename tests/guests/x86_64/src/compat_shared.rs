//! `keel.test=compat-hypercalls`, its second half: shared_info and `vcpu_info` in Xen's
//! 32-bit (compat) layout. Setting `HVM_PARAM_CALLBACK_IRQ` from 32-bit code latches it
//! (Xen's `hvm_latch_shinfo_size`); the guest then reads its wall clock (`wc_version`
//! at 2304, `wc_sec_hi` at 2340), its pvclock (`vcpu_info.time` at 32) and its events
//! (32-bit pending and mask words at 2048 and 2176, a 32-bit selector at 4 of
//! `vcpu_info`) where a 32-bit Xen guest finds them. Setting the parameter again from
//! 64-bit code switches back.

use crate::compat::call32;
use crate::cpu;
use core::sync::atomic::Ordering;
use keel_abi::event::{EvtchnBindIpi, EvtchnPort, EVTCHNOP_BIND_IPI, EVTCHNOP_SEND, EVTCHNOP_UNMASK};
use keel_abi::hvm::{XenHvmParam, HVMOP_SET_PARAM, HVM_PARAM_CALLBACK_IRQ};
use keel_abi::hypercall::HVM_OP;
use keel_abi::layout::{VcpuTimeInfo, X86_32, X86_64};
use keel_abi::xen::DOMID_SELF;
use keel_abi::Wire;
use keel_test_guest::hcall::{name, Hv};
use keel_test_guest::pages::Page;
use keel_test_guest::{ensure, expect_eq, fail, say, Outcome, Platform};

/// The port the events part raises: in 32-bit word 1, where a 64-bit reader would look
/// in word 0.
const PORT: u32 = 40;
/// 2020-01-01 and 2100-01-01 in seconds since the epoch.
const PLAUSIBLE_WALLCLOCK: core::ops::Range<u64> = 1_577_836_800..4_102_444_800;

/// Reads `N` bytes at `at` of `page` under the version word at `at` (even and unchanged
/// across the read); `None` if it never settles.
fn versioned<const N: usize>(page: &Page, at: usize) -> Option<[u8; N]> {
    for _ in 0..1000 {
        let v1 = page.word(at).load(Ordering::Acquire);
        let mut b = [0u8; N];
        page.read(at, &mut b);
        let v2 = page.word(at).load(Ordering::Acquire);
        if v1 == v2 && v1.is_multiple_of(2) {
            return Some(b);
        }
    }
    None
}

/// `wc_sec` (with `wc_sec_hi`) and `wc_nsec` of shared_info in `layout`.
fn wallclock(si: &Page, layout: &keel_abi::layout::GuestLayout) -> Option<(u32, u64, u32)> {
    let b: [u8; 12] = versioned(si, layout.wc_version)?;
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let hi = u64::from(si.word(layout.wc_sec_hi).load(Ordering::Acquire));
    Some((word(0), hi << 32 | u64::from(word(4)), word(8)))
}

fn set_callback_param(p: &impl Platform, args: &Page, from_32_bit: bool) -> i64 {
    let q = XenHvmParam { domid: DOMID_SELF, _pad: [0; 2], index: HVM_PARAM_CALLBACK_IRQ, value: 0 };
    if from_32_bit {
        args.fill(0x600, &q.to_bytes());
        call32(HVM_OP, [HVMOP_SET_PARAM, args.va() as u64 + 0x600])
    } else {
        let mut q = q;
        Hv(p).hvm_op(HVMOP_SET_PARAM, &mut q)
    }
}

/// The second half of `compat-hypercalls`: `si` is the page shared_info was placed on.
pub fn run(p: &impl Platform, si: &Page, args: &Page) -> Outcome {
    // Nothing here handles an upcall: the guest looks at the words itself.
    p.disable_interrupts();
    expect_eq!(set_callback_param(p, args, true), 0, "set_param(CALLBACK_IRQ) from 32-bit code");

    let Some((version, sec, _nsec)) = wallclock(si, &X86_32) else { fail!("wc_version at 2304 never settles") };
    ensure!(version != 0, "no wall clock at 2304 (compat wc_version)");
    ensure!(PLAUSIBLE_WALLCLOCK.contains(&sec), "compat wall clock {sec} s is not a date of this century");

    let slot = X86_32.shared_vcpu_info(0).unwrap_or(0);
    let time = slot + X86_32.vcpu_info_time;
    let read_clock = || versioned::<32>(si, time).and_then(|b| VcpuTimeInfo::from_bytes(&b));
    let Some(t) = read_clock() else { fail!("the pvclock at {time} never settles") };
    ensure!(t.version != 0 && t.tsc_to_system_mul != 0, "no pvclock in the compat vcpu_info: {t:?}");
    let n1 = t.system_time_at(cpu::rdtsc());
    let start = cpu::rdtsc();
    while cpu::rdtsc().wrapping_sub(start) < 1_000_000 {
        core::hint::spin_loop();
    }
    let n2 = read_clock().map_or(0, |t| t.system_time_at(cpu::rdtsc()));
    ensure!(n2 > n1, "the compat pvclock does not advance: {n1} then {n2} ns");
    say!(p, "compat: 32-bit shared_info after set_param(CALLBACK_IRQ) from 32-bit code: wall clock at 2304 (sec_hi at 2340), pvclock at 32 of vcpu_info; it ran {} ns", n2 - n1);

    // Bind IPIs up to PORT.
    let hv = Hv(p);
    let mut port = 0;
    for _ in 0..64 {
        let mut b = EvtchnBindIpi { vcpu: 0, port: 0 };
        let r = hv.event_op(EVTCHNOP_BIND_IPI, &mut b);
        ensure!(r == 0, "bind_ipi: {}", name(r));
        port = b.port;
        if port >= PORT {
            break;
        }
    }
    expect_eq!(port, PORT, "the IPI port bound last");
    let (pending, mask) = (X86_32.evtchn_pending, X86_32.evtchn_mask);
    let sel = slot + X86_32.pending_sel;
    let clear = || {
        si.word(slot).store(0, Ordering::Release);
        si.word(sel).store(0, Ordering::Release);
        si.test_and_clear(pending, PORT as usize);
    };
    let send = || {
        let mut s = EvtchnPort { port: PORT };
        hv.event_op(EVTCHNOP_SEND, &mut s)
    };
    clear();
    expect_eq!(send(), 0, "send");
    ensure!(si.test_bit(pending, PORT as usize), "port {PORT} not pending at 2048 + 4 (word 1)");
    let selector = si.word(sel).load(Ordering::Acquire);
    expect_eq!(selector, 1 << (PORT / 32), "the 32-bit selector at 4");
    expect_eq!(si.word(slot).load(Ordering::Acquire) & 0xff, 1, "evtchn_upcall_pending");
    expect_eq!(si.word(slot + 8).load(Ordering::Acquire), 0, "arch.cr2 (a 64-bit selector's place)");

    // Masked at 2176: pending, no selector, no upcall, until EVTCHNOP_unmask.
    clear();
    si.set_bit(mask, PORT as usize);
    expect_eq!(send(), 0, "send to the masked port");
    ensure!(si.test_bit(pending, PORT as usize), "masked port {PORT} not pending");
    expect_eq!(si.word(sel).load(Ordering::Acquire), 0, "selector of a masked port");
    expect_eq!(si.word(slot).load(Ordering::Acquire) & 0xff, 0, "upcall for a masked port");
    let mut u = EvtchnPort { port: PORT };
    expect_eq!(hv.event_op(EVTCHNOP_UNMASK, &mut u), 0, "unmask");
    ensure!(!si.test_bit(mask, PORT as usize), "unmask left the mask bit at 2176");
    expect_eq!(si.word(sel).load(Ordering::Acquire), 1 << (PORT / 32), "selector after unmask");
    expect_eq!(si.word(slot).load(Ordering::Acquire) & 0xff, 1, "upcall after unmask");
    clear();
    say!(p, "compat: port {PORT} raised in 32-bit word 1, selector {selector:#x} at 4; masked at 2176 until unmask");

    expect_eq!(set_callback_param(p, args, false), 0, "set_param(CALLBACK_IRQ) from 64-bit code");
    let Some((_, sec64, _)) = wallclock(si, &X86_64) else { fail!("wc_version at 3072 never settles") };
    expect_eq!(sec64, sec, "the 64-bit wall clock after switching back");
    say!(p, "compat: set_param(CALLBACK_IRQ) from 64-bit code: the wall clock at 3072 again");
    Ok(())
}

use crate::event::Binding;
use crate::p2m::PageKind;
use crate::test_support::*;
use alloc::string::ToString;
use alloc::vec;
use keel_abi::console::*;
use keel_abi::event::{EvtchnPort, EvtchnStatus, EVTCHNOP_SEND, EVTCHNOP_STATUS, EVTCHNSTAT_INTERDOMAIN};
use keel_abi::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};
use keel_abi::hypercall::EVENT_CHANNEL_OP;
use keel_abi::layout::AARCH64;
use keel_abi::xen::{DOMID_SELF, DOMID_XEN};
use keel_abi::Errno;
use proptest::prelude::*;

const GFN: u64 = 0x39000;
const PAGE: u64 = GFN << 12;

fn send(
    hv: &crate::Hypervisor<'static, crate::mock::MockArch>,
    d: &alloc::sync::Arc<crate::domain::Domain<crate::mock::MockArch>>,
    port: u32,
) -> i64 {
    put(d, ARG, &EvtchnPort { port });
    call(hv, d, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_SEND, ARG])
}

#[test]
fn attaching_places_the_ring_and_names_it() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &AARCH64, 1, 64);
    let port = hv.attach_pv_console(&d, GFN).unwrap();
    assert_eq!(port, 1, "the lowest free port");
    assert_eq!(d.param(HVM_PARAM_CONSOLE_PFN), GFN);
    assert_eq!(d.param(HVM_PARAM_CONSOLE_EVTCHN), 1);
    assert_eq!(d.lookup(GFN).unwrap().kind, PageKind::ConsoleRing);
    assert_eq!(d.events.lock().ports.get(1).unwrap().binding, Binding::Console);
    assert_eq!(hv.attach_pv_console(&d, GFN), Err(Errno::EEXIST));
    let e = guest(&hv, &AARCH64, 1, 64);
    assert_eq!(hv.attach_pv_console(&e, RAM >> 12), Err(Errno::EBUSY), "not over RAM");
    put(&d, ARG, &EvtchnStatus { dom: DOMID_SELF, port, ..Default::default() });
    assert_eq!(call(&hv, &d, 0, EVENT_CHANNEL_OP, &[EVTCHNOP_STATUS, ARG]), 0);
    let s: EvtchnStatus = get(&d, ARG);
    assert_eq!((s.status, s.u0), (EVTCHNSTAT_INTERDOMAIN, DOMID_XEN as u32));
}

#[test]
fn output_is_drained_into_tagged_lines_across_the_wrap() {
    let (hv, rec) = hypervisor();
    let d = guest(&hv, &AARCH64, 1, 64);
    let port = hv.attach_pv_console(&d, GFN).unwrap();
    d.write_phys(PAGE + 1024, b"hello\nwor").unwrap();
    put_u32(&d, PAGE + XENCONS_OUT_PROD as u64, 9);
    assert_eq!(send(&hv, &d, port), 0);
    assert_eq!(get_u32(&d, PAGE + XENCONS_OUT_CONS as u64), 9);
    // "ld\n" straddling the end of the 2048-byte ring.
    put_u32(&d, PAGE + XENCONS_OUT_CONS as u64, 2047);
    d.write_phys(PAGE + 1024 + 2047, b"l").unwrap();
    d.write_phys(PAGE + 1024, b"d\n").unwrap();
    put_u32(&d, PAGE + XENCONS_OUT_PROD as u64, 2050);
    assert_eq!(send(&hv, &d, port), 0);
    assert_eq!(get_u32(&d, PAGE + XENCONS_OUT_CONS as u64), 2050);
    // A producer more than a ring ahead: nothing printed, the consumer catches up.
    put_u32(&d, PAGE + XENCONS_OUT_PROD as u64, 2050 + 4096);
    assert_eq!(send(&hv, &d, port), 0);
    assert_eq!(get_u32(&d, PAGE + XENCONS_OUT_CONS as u64), 2050 + 4096);
    let lines: alloc::vec::Vec<_> = rec.lines.lock().iter().map(|(id, l)| (*id, l.to_string())).collect();
    assert_eq!(lines, vec![(d.id(), "hello".to_string()), (d.id(), "world".to_string())]);
}

#[test]
fn input_fills_the_ring_and_raises_the_port() {
    let (hv, rec) = hypervisor();
    let d = guest(&hv, &AARCH64, 1, 64);
    let port = hv.attach_pv_console(&d, GFN).unwrap();
    rec.kicks.lock().clear();
    hv.console_input(&d, b"abc");
    assert_eq!(get_u32(&d, PAGE + XENCONS_IN_PROD as u64), 3);
    let mut b = [0u8; 3];
    d.read_phys(PAGE, &mut b).unwrap();
    assert_eq!(&b, b"abc");
    assert!(d.events.lock().is_pending(port));
    assert_eq!(rec.kicks.lock().as_slice(), &[(d.id(), 0)]);
    // Only the room left is used, wrapping at 1024.
    put_u32(&d, PAGE + XENCONS_IN_CONS as u64, 2);
    put_u32(&d, PAGE + XENCONS_IN_PROD as u64, 1022);
    hv.console_input(&d, b"wxyz-dropped");
    assert_eq!(get_u32(&d, PAGE + XENCONS_IN_PROD as u64), 1026);
    let (mut hi, mut lo) = ([0u8; 2], [0u8; 2]);
    d.read_phys(PAGE + 1022, &mut hi).unwrap();
    d.read_phys(PAGE, &mut lo).unwrap();
    assert_eq!((&hi, &lo), (b"wx", b"yz"));
    // A full ring takes nothing.
    hv.console_input(&d, b"q");
    assert_eq!(get_u32(&d, PAGE + XENCONS_IN_PROD as u64), 1026);
}

proptest! {
    #![proptest_config(cases(64))]

    /// Whatever the guest puts in the indices, Keel stays inside the page's rings and
    /// leaves the other ring and the rest of the page alone.
    #[test]
    fn hostile_indices_stay_in_their_rings(in_cons: u32, in_prod: u32, out_cons: u32, out_prod: u32, n in 0usize..1500) {
        let (hv, _) = hypervisor();
        let d = guest(&hv, &AARCH64, 1, 64);
        let port = hv.attach_pv_console(&d, GFN).unwrap();
        d.write_phys(PAGE + 1024, &[0x55; 2048]).unwrap();
        d.write_phys(PAGE + 3092, &[0x77; 1004]).unwrap();
        for (off, v) in [(XENCONS_IN_CONS, in_cons), (XENCONS_IN_PROD, in_prod), (XENCONS_OUT_CONS, out_cons), (XENCONS_OUT_PROD, out_prod)] {
            put_u32(&d, PAGE + off as u64, v);
        }
        hv.console_input(&d, &vec![0xaa; n]);
        prop_assert_eq!(send(&hv, &d, port), 0);
        let mut page = vec![0u8; 4096];
        d.read_phys(PAGE, &mut page).unwrap();
        prop_assert!(page[1024..3072].iter().all(|&b| b == 0x55));
        prop_assert!(page[3092..].iter().all(|&b| b == 0x77));
        let written = page[..1024].iter().filter(|&&b| b == 0xaa).count();
        let used = in_prod.wrapping_sub(in_cons);
        let room = if used <= 1024 { 1024 - used as usize } else { 0 };
        prop_assert_eq!(written, room.min(n));
    }
}

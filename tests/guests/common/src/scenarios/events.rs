//! `keel.test=events-2l` and `keel.test=events-fifo`: one domain's own event channels,
//! delivered through the upcall interrupt with the 2-level or the FIFO ABI.

use crate::events::{self, hits, send, wait_hits};
use crate::hcall::{err, name, Hv};
use crate::irq::{ipis, NR_IPIS};
use crate::{ensure, expect_eq, fail, say, Outcome, Platform};
use keel_abi::event::*;
use keel_abi::xen::{DOMID_SELF, VIRQ_TIMER};
use keel_abi::Errno;

/// Busy-waits `ns` of guest time.
pub fn spin<P: Platform>(p: &P, ns: u64) {
    let end = p.ticks() + ns * p.tick_hz() / 1_000_000_000;
    while p.ticks() < end {
        core::hint::spin_loop();
    }
}

/// Polls `done` every 10 µs of guest time; fails naming `what` after `seconds`.
pub fn wait_up_to<P: Platform>(p: &P, seconds: u64, what: &str, mut done: impl FnMut() -> bool) -> Outcome {
    let deadline = p.ticks() + seconds * p.tick_hz();
    while !done() {
        if p.ticks() > deadline {
            fail!("timed out waiting for {what}");
        }
        spin(p, 10_000);
    }
    Ok(())
}

fn bind_ipi<P: Platform>(p: &P) -> Result<u32, crate::Failure> {
    let mut b = EvtchnBindIpi { vcpu: p.cpu(), port: 0 };
    let r = Hv(p).event_op(EVTCHNOP_BIND_IPI, &mut b);
    if r != 0 {
        fail!("bind_ipi: {}", name(r));
    }
    Ok(b.port)
}

fn status<P: Platform>(p: &P, port: u32) -> Result<EvtchnStatus, crate::Failure> {
    let mut s = EvtchnStatus { dom: DOMID_SELF, _pad: [0; 2], port, status: 0, vcpu: 0, u0: 0, u1: 0 };
    let r = Hv(p).event_op(EVTCHNOP_STATUS, &mut s);
    if r != 0 {
        fail!("status of port {port}: {}", name(r));
    }
    Ok(s)
}

pub fn run<P: Platform>(p: &P, fifo: bool) -> Outcome {
    let hv = Hv(p);
    if fifo {
        events::setup_fifo(p)?;
    } else {
        events::setup_two_level(p)?;
    }
    p.init_interrupts();
    p.enable_interrupts();
    say!(p, "events: {} ABI, upcalls on", if fifo { "FIFO" } else { "2-level" });

    let ipi = bind_ipi(p)?;
    expect_eq!(send(p, ipi), 0, "send to the IPI port");
    wait_hits(p, ipi, 1);
    say!(p, "bind_ipi: port {ipi} delivered");

    let mut v = EvtchnBindVirq { virq: VIRQ_TIMER, vcpu: p.cpu(), port: 0 };
    expect_eq!(hv.event_op(EVTCHNOP_BIND_VIRQ, &mut v), 0, "bind_virq(VIRQ_TIMER)");
    expect_eq!(hv.event_op(EVTCHNOP_BIND_VIRQ, &mut v.clone()), err(Errno::EEXIST), "bind_virq twice");
    // A timeout long past fires at once.
    expect_eq!(hv.raw(keel_abi::hypercall::SET_TIMER_OP, [1, 0, 0, 0, 0]), 0, "set_timer_op");
    wait_hits(p, v.port, 1);
    say!(p, "bind_virq: VIRQ_TIMER on port {} delivered", v.port);

    let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 };
    expect_eq!(hv.event_op(EVTCHNOP_ALLOC_UNBOUND, &mut a), 0, "alloc_unbound");
    let mut b = EvtchnBindInterdomain { remote_dom: DOMID_SELF, _pad: [0; 2], remote_port: a.port, local_port: 0 };
    expect_eq!(hv.event_op(EVTCHNOP_BIND_INTERDOMAIN, &mut b), 0, "bind_interdomain");
    let (u, l) = (a.port, b.local_port);
    wait_hits(p, l, 1); // binding marks the new port pending
    expect_eq!(send(p, l), 0, "send on the bound port");
    wait_hits(p, u, 1);
    expect_eq!(send(p, u), 0, "send on the allocated port");
    wait_hits(p, l, 2);
    let s = status(p, u)?;
    expect_eq!((s.status, s.u1), (EVTCHNSTAT_INTERDOMAIN, l), "status of the allocated port");
    say!(p, "interdomain loop-back: ports {u} <-> {l}, both directions delivered");

    events::mask(ipi);
    expect_eq!(send(p, ipi), 0, "send to a masked port");
    spin(p, 2_000_000);
    expect_eq!(hits(ipi), 1, "events taken on a masked port");
    events::unmask(p, ipi)?;
    wait_hits(p, ipi, 2);
    say!(p, "mask: held back; unmask: delivered");

    // Many ports pending at once, each delivered exactly once.
    let mut burst = [0u32; 40];
    for slot in burst.iter_mut() {
        *slot = bind_ipi(p)?;
    }
    p.disable_interrupts();
    for &port in &burst {
        expect_eq!(send(p, port), 0, "send in the burst");
    }
    p.enable_interrupts();
    for &port in &burst {
        wait_hits(p, port, 1);
    }
    spin(p, 1_000_000);
    ensure!(burst.iter().all(|&port| hits(port) == 1), "a burst port was delivered more than once");
    say!(p, "burst: {} ports, each delivered once", burst.len());

    expect_eq!(hv.event_op(EVTCHNOP_CLOSE, &mut EvtchnPort { port: ipi }), 0, "close");
    expect_eq!(send(p, ipi), err(Errno::EINVAL), "send to a closed port");
    expect_eq!(hv.event_op(EVTCHNOP_CLOSE, &mut EvtchnPort { port: l }), 0, "close the bound port");
    expect_eq!(status(p, u)?.status, EVTCHNSTAT_UNBOUND, "the peer of a closed port");
    say!(p, "close: ok");

    ipi_burst(p)
}

/// More IPIs pending at once than the interrupt controller's list registers hold: each
/// arrives, exactly once.
pub fn ipi_burst<P: Platform>(p: &P) -> Outcome {
    let cpu = p.cpu();
    let before: [u32; NR_IPIS as usize] = core::array::from_fn(|n| ipis(cpu, n as u32));
    p.disable_interrupts();
    for n in 0..NR_IPIS {
        p.send_ipi(cpu, n);
    }
    p.enable_interrupts();
    p.disable_interrupts();
    while (0..NR_IPIS).any(|n| ipis(cpu, n) == before[n as usize]) {
        p.wait_for_interrupt();
        p.enable_interrupts();
        p.disable_interrupts();
    }
    p.enable_interrupts();
    spin(p, 1_000_000);
    for n in 0..NR_IPIS {
        expect_eq!(ipis(cpu, n) - before[n as usize], 1, "IPI deliveries");
    }
    say!(p, "IPI burst: {NR_IPIS} IPIs to self at once, each delivered once");
    Ok(())
}

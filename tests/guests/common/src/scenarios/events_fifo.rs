//! `keel.test=events-fifo`: the same under the FIFO ABI, plus its own rules: the event
//! word's PENDING and LINKED bits, the ready bit and head of the port's priority queue,
//! priorities.

use super::events_common::{loopback, unmask, upcalls, ROUNDS};
use crate::events::Events;
use crate::{ensure, expect_eq, say, Outcome, Platform};
use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use keel_abi::event::*;

fn ready_and_head<P: Platform>(ev: &Events<'_, P>, q: usize) -> (u32, u32) {
    let control = ev.control();
    // SAFETY: the control block is this CPU's, registered with init_control; Keel and the
    // guest use its words atomically.
    let (ready, head) = unsafe { (&*(control as *const AtomicU32), &*((control + 8 + 4 * q) as *const AtomicU32)) };
    (ready.load(SeqCst), head.load(SeqCst))
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let ev = Events::setup(p, true)?;
    p.enable_interrupts();
    let second = p.tick_hz();
    let ipi = ev.bind_ipi()?;
    expect_eq!(ipi, 1, "the first port");

    // With interrupts masked, the event is visible in the guest's words.
    p.disable_interrupts();
    ev.send(ipi)?;
    let word = ev.word(ipi).load(SeqCst);
    let linked = 1 << EVTCHN_FIFO_PENDING | 1 << EVTCHN_FIFO_LINKED;
    ensure!(word & linked == linked, "event word {word:#x}: not PENDING and LINKED");
    let (ready, head) = ready_and_head(&ev, EVTCHN_FIFO_PRIORITY_DEFAULT as usize);
    expect_eq!((ready, head), (1 << EVTCHN_FIFO_PRIORITY_DEFAULT, ipi), "ready bits and head of queue 7");
    ensure!(ev.upcall_flag().load(SeqCst) != 0, "no upcall marked");
    p.enable_interrupts();
    ev.wait(ipi);
    say!(p, "events-fifo: port {ipi}: word {word:#x}, ready {ready:#x}, head[7] {head}");

    let before = upcalls(p);
    for _ in 0..ROUNDS {
        ev.send(ipi)?;
        ev.wait(ipi);
    }
    let taken = upcalls(p) - before;
    ensure!(taken >= ROUNDS, "{ROUNDS} IPI events but {taken} upcalls");
    say!(p, "events-fifo: {ROUNDS} IPI events on port {ipi}, {taken} upcalls");

    let mut s = EvtchnSetPriority { port: ipi, priority: 2 };
    expect_eq!(ev.hv.event_op(EVTCHNOP_SET_PRIORITY, &mut s), 0, "set_priority");
    p.disable_interrupts();
    ev.send(ipi)?;
    let (ready, head) = ready_and_head(&ev, 2);
    expect_eq!((ready & 1 << 2, head), (1 << 2, ipi), "ready bit and head of queue 2");
    p.enable_interrupts();
    ev.wait(ipi);
    say!(p, "events-fifo: priority 2: ready {ready:#x}, head[2] {head}");

    let (a, b) = loopback(&ev)?;
    say!(p, "events-fifo: loop-back ports {a} <-> {b}: both directions delivered");

    ev.set_masked(ipi, true);
    ev.send(ipi)?;
    ensure!(ev.stays_quiet(ipi, second / 100), "a masked port was delivered");
    let word = ev.word(ipi).load(SeqCst);
    ensure!(word & 1 << EVTCHN_FIFO_PENDING != 0 && word & 1 << EVTCHN_FIFO_LINKED == 0, "masked word {word:#x}");
    ev.set_masked(ipi, false);
    expect_eq!(unmask(&ev, ipi), 0, "EVTCHNOP_unmask");
    ev.wait(ipi);
    say!(p, "events-fifo: masked send held pending (word {word:#x}), unmask linked it");
    super::events_common::close(&ev, a, b)?;
    say!(p, "events-fifo: closed {b}, {a} is unbound again");
    Ok(())
}

//! `keel.test=events-2l`: event channels under the 2-level ABI on one CPU: an IPI port
//! delivered through the upcall interrupt, a loop-back interdomain pair, masking and
//! `EVTCHNOP_unmask`, close.

use super::events_common::{loopback, unmask, upcalls, ROUNDS};
use crate::events::Events;
use crate::hcall::err;
use crate::{ensure, expect_eq, say, Outcome, Platform};
use keel_abi::event::*;
use keel_abi::Errno;

pub fn run<P: Platform>(p: &P) -> Outcome {
    let ev = Events::setup(p, false)?;
    p.enable_interrupts();
    let second = p.tick_hz();
    let ipi = ev.bind_ipi()?;
    expect_eq!(ipi, 1, "the first port");
    let before = upcalls(p);
    for _ in 0..ROUNDS {
        ev.send(ipi)?;
        ev.wait(ipi);
    }
    let taken = upcalls(p) - before;
    ensure!(taken >= ROUNDS, "{ROUNDS} IPI events but {taken} upcalls");
    say!(p, "events-2l: {ROUNDS} IPI events on port {ipi}, {taken} upcalls");

    let (a, b) = loopback(&ev)?;
    say!(p, "events-2l: loop-back ports {a} <-> {b}: both directions delivered");

    // A masked port keeps its event pending until EVTCHNOP_unmask.
    ev.set_masked(ipi, true);
    ev.send(ipi)?;
    ensure!(ev.stays_quiet(ipi, second / 100), "a masked port was delivered");
    ensure!(ev.is_pending(ipi), "a masked port's event is not pending");
    expect_eq!(unmask(&ev, ipi), 0, "EVTCHNOP_unmask");
    ev.wait(ipi);
    let mut s = EvtchnSetPriority { port: ipi, priority: 3 };
    expect_eq!(ev.hv.event_op(EVTCHNOP_SET_PRIORITY, &mut s), err(Errno::ENOSYS), "set_priority under 2-level");
    say!(p, "events-2l: masked send held pending, unmask delivered it; set_priority: ENOSYS");
    super::events_common::close(&ev, a, b)?;
    say!(p, "events-2l: closed {b}, {a} is unbound again");
    Ok(())
}

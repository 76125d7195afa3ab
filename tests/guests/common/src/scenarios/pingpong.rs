//! `keel.test=pingpong`: two domains bounce an event over a static event channel
//! (`xen,evtchn-v1`); `keel.role=ping` sends first, `keel.role=pong` answers;
//! `keel.port=` is the domain's own end, `keel.rounds=` the number of round trips and
//! `keel.abi=fifo` selects the FIFO ABI. Both count every event exactly.

use crate::cmdline;
use crate::events::Events;
use crate::{fail, say, Outcome, Platform};

pub fn run<P: Platform>(p: &P) -> Outcome {
    let c = p.cmdline();
    let (Some(port), Some(rounds)) = (cmdline::get_u64(c, "keel.port"), cmdline::get_u64(c, "keel.rounds")) else {
        fail!("pingpong needs keel.port= and keel.rounds=");
    };
    let port = port as u32;
    let fifo = cmdline::get(c, "keel.abi") == Some("fifo");
    let ev = Events::setup(p, fifo)?;
    p.enable_interrupts();
    let (mut sent, mut received) = (0u64, 0u64);
    let start = p.ticks();
    match cmdline::get(c, "keel.role") {
        Some("ping") => {
            while received < rounds {
                ev.send(port)?;
                sent += 1;
                ev.wait(port);
                received += 1;
            }
        }
        Some("pong") => {
            while received < rounds {
                ev.wait(port);
                received += 1;
                ev.send(port)?;
                sent += 1;
            }
        }
        other => fail!("keel.role={other:?}: expected ping or pong"),
    }
    let ticks = p.ticks() - start;
    let abi = if fifo { "fifo" } else { "2-level" };
    say!(p, "pingpong: {rounds} round trips on port {port} ({abi}): sent {sent}, received {received}");
    say!(p, "pingpong: {} ticks per round trip", ticks / rounds.max(1));
    Ok(())
}

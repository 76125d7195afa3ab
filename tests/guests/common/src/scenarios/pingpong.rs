//! `keel.test=pingpong keel.role=ping|pong keel.port=N [keel.rounds=N] [keel.abi=fifo]`:
//! two domains joined by a static event channel (`xen,evtchn-v1`; each side names its
//! own port) pass an event back and forth; both count every event exactly.

use crate::cmdline::{get, get_u64};
use crate::events::{self, hits, send, wait_hits};
use crate::{expect_eq, fail, say, Outcome, Platform};

pub fn run<P: Platform>(p: &P) -> Outcome {
    let line = p.cmdline();
    let ping = match get(line, "keel.role") {
        Some("ping") => true,
        Some("pong") => false,
        other => fail!("keel.role must be ping or pong, not {other:?}"),
    };
    let Some(port) = get_u64(line, "keel.port").map(|p| p as u32) else { fail!("no keel.port=") };
    let rounds = get_u64(line, "keel.rounds").unwrap_or(10_000) as u32;
    if get(line, "keel.abi") == Some("fifo") {
        events::setup_fifo(p)?;
    } else {
        events::setup_two_level(p)?;
    }
    p.init_interrupts();
    p.enable_interrupts();
    let start = p.ticks();
    for i in 1..=rounds {
        if ping {
            expect_eq!(send(p, port), 0, "send");
            wait_hits(p, port, i);
        } else {
            wait_hits(p, port, i);
            expect_eq!(send(p, port), 0, "send");
        }
    }
    let ticks = p.ticks() - start;
    // Nothing more may arrive: every event was answered exactly once.
    crate::scenarios::events::spin(p, 5_000_000);
    expect_eq!(hits(port), rounds, "events received");
    let per = ticks / rounds.max(1) as u64;
    say!(
        p,
        "pingpong {}: port {port}, sent {rounds}, received {}, {per} ticks per round trip ({} ns)",
        if ping { "ping" } else { "pong" },
        hits(port),
        (per as u128 * 1_000_000_000 / p.tick_hz().max(1) as u128) as u64
    );
    Ok(())
}

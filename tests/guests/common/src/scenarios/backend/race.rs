//! A front end that grants and revokes one page in a tight loop — by a plain store, not
//! Linux's compare-and-swap — while the back end maps and copies it: every map and copy
//! either succeeds with the page's own bytes or is refused with `general_error`, every
//! successful map unmaps, and Keel goes on.

use super::*;
use crate::events::hits;
use crate::grants::{copy, map, unmap, Side, Table};
use crate::{ensure, say};
use keel_abi::grant::*;

/// The entry the race is run on.
pub const RACE_REF: u32 = 12;
/// Maps and copies the back end tries against each front end.
const ROUNDS: u32 = 200;

/// The front end's part: grants and wipes `RACE_REF` (a page of pattern `seed ^ RACE`)
/// until the port has been signalled `until` times.
pub fn front<P: Platform>(p: &P, table: &Table, port: u32, back: DomId, seed: u32, until: u32) -> Outcome {
    let race = page()?;
    fill(race, pattern(seed ^ RACE));
    let mut flips = 0u64;
    while hits(port) < until {
        table.grant(RACE_REF, back, gfn(p, race), false);
        for _ in 0..(flips % 64) {
            core::hint::spin_loop();
        }
        table.wipe(RACE_REF);
        flips += 1;
        if flips.is_multiple_of(64) {
            // Leave the CPU to the back end now and then (3 domains share 2 CPUs).
            Hv(p).yield_cpu();
        }
    }
    ensure!(differs(race, pattern(seed ^ RACE)).is_none(), "the page granted and revoked in the race changed");
    say!(p, "backend: front granted and wiped ref {RACE_REF} while d{back} raced it; the page is intact");
    Ok(())
}

/// The back end's part against front end `f`.
pub fn back<P: Platform>(p: &P, f: &back::Front, local: &Page) -> Outcome {
    let window = p.hole().0 + 0x20_0000;
    let (mut mapped, mut copied, mut refused) = (0u32, 0u32, 0u32);
    let want = pattern(f.seed ^ RACE);
    for i in 0..ROUNDS {
        if i % 2 == 0 {
            let (status, handle) = map(p, f.id, RACE_REF, window, true);
            match status {
                GNTST_OKAY => {
                    let first = p.probe_read(window);
                    let got = match first {
                        crate::Probe::Value(v) => v.to_le_bytes(),
                        crate::Probe::Fault(e) => fail!("a mapping Keel reported made reads fault ({e:#x})"),
                    };
                    ensure!(got.iter().enumerate().all(|(j, &b)| b == want(j)), "a race mapping showed other bytes");
                    let st = unmap(p, window, handle);
                    ensure!(st == GNTST_OKAY, "unmapping a race mapping: status {st}");
                    mapped += 1;
                }
                GNTST_GENERAL_ERROR => refused += 1,
                other => fail!("map during the race: status {other}"),
            }
        } else {
            fill(local, |_| 0);
            match copy(p, Side::Grant { domid: f.id, gref: RACE_REF }, Side::Frame(gfn(p, local)), 4096) {
                GNTST_OKAY => {
                    ensure!(differs(local, &want).is_none(), "a race copy brought other bytes");
                    copied += 1;
                }
                GNTST_GENERAL_ERROR => refused += 1,
                other => fail!("copy during the race: status {other}"),
            }
        }
    }
    ensure!(mapped + copied + refused == ROUNDS, "race rounds do not add up");
    say!(
        p,
        "backend: raced d{}'s ref {RACE_REF} as it was granted and wiped: {ROUNDS} maps and copies, each the page's bytes or refused ({mapped} mapped, {copied} copied, {refused} refused)",
        f.id
    );
    Ok(())
}

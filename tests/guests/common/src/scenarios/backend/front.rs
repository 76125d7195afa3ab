//! The front ends of `backend`: grant, wait for the back end, check what it left, then
//! end while it maps a page, or outlive it.

use super::*;
use crate::events::{send, wait_hits};
use crate::grants;
use crate::{ensure, expect_eq, say};
use keel_abi::grant::{GTF_READING, GTF_WRITING};

/// How the front end's part of the teardown goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It ends while the back end maps its teardown page.
    GranterDies,
    /// The back end ends while mapping its teardown page; it waits for Keel to unpin it.
    MapperDies,
}

pub fn run<P: Platform>(p: &P, port: u32, back: DomId, seed: u32, end: End) -> Outcome {
    let table = grants::setup(p, p.hole().0)?;
    let data = page()?;
    let teardown = page()?;
    fill(data, pattern(seed));
    fill(teardown, pattern(seed ^ TEARDOWN));
    let mut copies = [data; COPY_PAGES];
    for (i, c) in copies.iter_mut().enumerate() {
        *c = page()?;
        table.grant(COPY_REF + i as u32, back, gfn(p, c), false);
    }
    table.grant(DATA_REF, back, gfn(p, data), false);
    table.grant(OTHERS_REF, NOBODY, gfn(p, data), false);
    table.grant(TEARDOWN_REF, back, gfn(p, teardown), false);
    say!(p, "backend: front grants d{back} ref {DATA_REF}, refs {COPY_REF}-31 and ref {TEARDOWN_REF}; ref {OTHERS_REF} to d{NOBODY}");
    expect_eq!(send(p, port), 0, "send");

    wait_hits(p, port, 1);
    if let Some(i) = differs(data, pattern(seed ^ WRITTEN)) {
        fail!("byte {i} of ref {DATA_REF} is not what d{back} wrote through its mapping");
    }
    for (i, c) in copies.iter().enumerate() {
        if let Some(b) = differs(c, pattern(seed.wrapping_add(COPIED).wrapping_add(i as u32))) {
            fail!("byte {b} of copy page {i} is not what d{back} copied in");
        }
    }
    let refs = (COPY_REF..COPY_REF + COPY_PAGES as u32).chain([DATA_REF, OTHERS_REF]);
    for gref in refs {
        ensure!(table.flags(gref) & (GTF_READING | GTF_WRITING) == 0, "ref {gref} still marked in use");
        ensure!(table.end(gref), "ending access through ref {gref} failed");
    }
    say!(
        p,
        "backend: front: d{back} wrote ref {DATA_REF} through its mapping and {COPY_PAGES} pages by copy; refs ended"
    );
    expect_eq!(send(p, port), 0, "send");

    super::race::front(p, &table, port, back, seed, 2)?;
    expect_eq!(send(p, port), 0, "send");
    wait_hits(p, port, 3);
    let busy = table.flags(TEARDOWN_REF) & (GTF_READING | GTF_WRITING);
    ensure!(busy == GTF_READING | GTF_WRITING, "ref {TEARDOWN_REF} mapped by d{back}, but its flags say {busy:#x}");
    ensure!(!table.end(TEARDOWN_REF), "access through ref {TEARDOWN_REF} ended while d{back} maps it");
    match end {
        End::GranterDies => {
            say!(p, "backend: front ends while d{back} maps ref {TEARDOWN_REF}");
            Ok(())
        }
        End::MapperDies => {
            // The back end ends once it hears that its mapping was seen.
            expect_eq!(send(p, port), 0, "send");
            let unpinned = within(p, TEARDOWN_SECS, || table.flags(TEARDOWN_REF) & (GTF_READING | GTF_WRITING) == 0);
            ensure!(
                unpinned,
                "d{back} ended {TEARDOWN_SECS} s ago (guest time) and ref {TEARDOWN_REF} is still marked in use"
            );
            ensure!(table.end(TEARDOWN_REF), "ending access through ref {TEARDOWN_REF} failed after d{back} ended");
            if let Some(i) = differs(teardown, pattern(seed ^ TEARDOWN ^ WRITTEN)) {
                fail!("byte {i} of ref {TEARDOWN_REF} is not what d{back} wrote before it ended");
            }
            say!(p, "backend: front: d{back} ended mapping ref {TEARDOWN_REF}: Keel unpinned it, access ended, its writes kept");
            Ok(())
        }
    }
}

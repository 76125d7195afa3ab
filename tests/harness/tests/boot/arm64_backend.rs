//! What a back end in a driver domain needs from Keel (issue 13), with the test guest's
//! `backend` scenario: front ends' grants mapped into ballooned pages, refusals, batched
//! grant copies (a throughput figure on the guest's clock), and teardown when the granter
//! or the mapper ends under a mapping. Both arm64 configurations of the matrix.

use super::arm64_guests::{on, spec, CONFIGS};
use super::boot;
use std::time::Duration;

/// What the scenario prints with front ends d1 (`granter-dies`) and d2 (`mapper-dies`)
/// and the back end d3, on every architecture.
pub const BACKEND_LINES: [&str; 16] = [
    "(d1) backend: front grants d3 ref 8, refs 16-31 and ref 11; ref 9 to d32751",
    "(d2) backend: front grants d3 ref 8, refs 16-31 and ref 11; ref 9 to d32751",
    "(d3) backend: ref 8 of d1 and of d2 mapped at once into 2 ballooned pages: each its own granter's bytes",
    "(d3) backend: wrote both through the mappings, unmapped, repopulated (zeroed, writable)",
    "(d3) backend: d1's refs not granted to it refused: another domain's and never granted (general_error), beyond the table (bad_gntref)",
    "(d3) backend: GNTTABOP_copy with d1: 1 MiB in and 1 MiB out in batches of 16 pages, byte for byte; ",
    "(d3) backend: GNTTABOP_copy with d2: 1 MiB in and 1 MiB out in batches of 16 pages, byte for byte; ",
    "(d1) backend: front: d3 wrote ref 8 through its mapping and 16 pages by copy; refs ended",
    "(d3) backend: raced d1's ref 12 as it was granted and wiped: 200 maps and copies, each the page's bytes or refused (",
    "(d3) backend: raced d2's ref 12 as it was granted and wiped: 200 maps and copies, each the page's bytes or refused (",
    "(d1) backend: front granted and wiped ref 12 while d3 raced it; the page is intact",
    "(d2) backend: front granted and wiped ref 12 while d3 raced it; the page is intact",
    "(d1) backend: front ends while d3 maps ref 11",
    "(d3) backend: d1 ended under its mapped ref 11: its page stayed mapped and unchanged, unmap said okay, the gfn repopulated",
    "(d3) backend: ends holding its mapping of d2's ref 11",
    "(d2) backend: front: d3 ended mapping ref 11: Keel unpinned it, access ended, its writes kept",
];

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_backend_grants_balloon_copy_teardown() {
    for c in &CONFIGS {
        let a = spec(
            "front-a",
            "bootargs=keel.test=backend keel.role=front keel.port=10 keel.seed=53 keel.end=granter-dies;evtchn=10>back:20",
        );
        let b = spec(
            "front-b",
            "bootargs=keel.test=backend keel.role=front keel.port=11 keel.seed=157 keel.end=mapper-dies;evtchn=11>back:21",
        );
        let back = spec(
            "back",
            "bootargs=keel.test=backend keel.role=back keel.port=20 keel.port2=21 keel.seed=53 keel.seed2=157",
        );
        let t = on(c, "arm64 backend", &["--timeout", "200", "--domain", &a, "--domain", &b, "--domain", &back])
            .domains(&["front-a", "front-b", "back"])
            .lines(&BACKEND_LINES)
            .timeout(Duration::from_secs(240));
        boot(t);
    }
}

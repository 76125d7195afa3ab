//! Keel's xenstore domain on arm64 (`docs/xenstore.md`): a domain with the xenstore
//! capability runs `keel-xenstored`, introduces the two domains Keel gave a store page
//! (`xen,enhanced`), and serves them: a xenbus client reads its `domid`, writes, reads
//! and lists its `data`, sees a watch fire, loses a conflicting transaction (`EAGAIN`)
//! and is refused outside its subtree (`EACCES`); beside it a second client floods the
//! store until a quota refuses it (`ENOSPC`: its `data` node reaches the 2048-byte node
//! size with 431 children's names) and is still answered. Both are released when they
//! power off: the ring unmapped, or already revoked by Keel if the domain was destroyed
//! first (which of the two depends on timing; the service must survive both).

use super::arm64_guests::{on, spec, CONFIGS};
use super::boot;
use std::time::Duration;

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_xenstore_domain_serves_xenbus_clients() {
    for c in &CONFIGS {
        xenstore_on(c);
    }
}

/// What the xenstore domain (d1), the client (d2) and the flooding domain (d3) print, on
/// every architecture.
pub(super) const XENSTORE_LINES: [&str; 16] = [
    "(d1) xenstored: d1 serving; 3 domain(s) listed",
    "(d1) xenstored: d2 introduced (ring mapped",
    "(d1) xenstored: d3 introduced (ring mapped",
    "(d2) xenbus: connected; domid 2",
    "(d2) xenbus: write, read, directory: ok",
    "(d2) xenbus: watch fired 2 times",
    "(d2) xenbus: conflicting transaction: EAGAIN",
    "(d2) xenbus: writes outside its subtree: EACCES",
    "(d2) PASS xenbus",
    "(d3) xenbus: connected; domid 3",
    "(d3) xenbus: flood: ENOSPC after 431 nodes",
    "(d3) xenbus: flood: still answered",
    "(d3) PASS xenbus",
    "(d1) xenstored: d2 released (ring ",
    "(d1) xenstored: d3 released (ring ",
    "(d1) xenstored: no other domain left; powering off",
];

fn xenstore_on(c: &(&str, &[&str], u32)) {
    let xenstore = spec("xenstore", "caps=4;bootargs=keel.program=xenstored xenstored.exit=last");
    let client = spec("client", "enhanced;bootargs=keel.test=xenbus keel.role=client");
    let flood = spec("flood", "enhanced;bootargs=keel.test=xenbus keel.role=flood");
    let t =
        on(c, "arm64 xenstore", &["--timeout", "200", "--domain", &xenstore, "--domain", &client, "--domain", &flood])
            .domains(&["xenstore", "client", "flood"])
            .timeout(Duration::from_secs(240))
            .lines(&[
                "domain 2 (client): xenstore page at gfn 0x39001, port ",
                "domain 3 (flood): xenstore page at gfn 0x39001, port ",
            ])
            .lines(&XENSTORE_LINES);
    boot(t);
}

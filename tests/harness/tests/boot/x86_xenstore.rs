//! Keel's xenstore domain on x86 (`docs/xenstore.md`), as on arm64
//! (`arm64_xenstore.rs`, the same checks): `keel-xenstored` on the x86 test-guest
//! runtime (`keel.program=xenstored`) introduces the two domains Keel gave a store page
//! at gfn `0xfeffc` and serves them: a xenbus client (read, write, directory, watch, a
//! conflicting transaction, `EACCES` outside its subtree) and a domain flooding the
//! store until its quota refuses it, still answered afterwards.

use super::arm64_xenstore::XENSTORE_LINES;
use super::boot;
use super::x86_guests::{x86_boot, x86_iso, X86Machine};
use std::time::Duration;

fn x86_xenstore(machine: X86Machine) {
    let t = x86_boot(machine, &x86_iso("xenstore"))
        .domains(&["xenstore", "client", "flood"])
        .timeout(Duration::from_secs(300))
        .lines(&[
            "domain 2 (client): xenstore page at gfn 0xfeffc, port ",
            "domain 3 (flood): xenstore page at gfn 0xfeffc, port ",
        ])
        .lines(&XENSTORE_LINES);
    boot(t);
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_xenstore_domain_serves_xenbus_clients_qemu_bios() {
    x86_xenstore(X86Machine::QemuBios);
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_xenstore_domain_serves_xenbus_clients_bochs_vmx() {
    x86_xenstore(X86Machine::BochsVmx);
}

//! A hostile network front end against stock `xen-netback` (issue 13, "Bad input";
//! `docs/devices.md`): Debian's arm64 kernel as dom0 is the driver domain (netback,
//! bridge `xenbr0`, `keelctl devd`) of a well-behaved Linux domU `guest` and of Keel's test
//! guest `hostile` (`keel.role=hostile-netfront`), which negotiates three vifs through
//! xenstore as netfront does and sends garbage: refs never granted, beyond its table and
//! granted to another domain, a packet of 0 bytes and of 20 slots, rx requests with bad
//! refs, a grant revoked mid-request, then what netback takes as fatal (a request crossing
//! its page, 26 slots, a producer 1000 ahead) on one vif each; then it answers nothing.
//! Netback halts those vifs alone, the page granted to another domain stays unchanged,
//! Keel logs the refused maps (debug) and the guest afterwards pings and moves 4 MiB over
//! TCP with a matching md5 (`tests/guests/linux/nethostile-session`, `netvictim-session`,
//! `tests/guests/common/src/scenarios/xenbus_netfront.rs`).

use super::arm64_linux::{beside_hostile_frontend, INITRAMFS};
use super::boot;

/// What dom0 (d0), the guest (d2), the hostile front end (d3) and Keel must print.
const LINES: [&str; 52] = [
    "(d0) [linux] nethostile: bridge: inet 10.0.0.1/24",
    "(d0) [linux] nethostile: guest is d2, hostile is d3",
    "(d0) [linux] nethostile: network-attach guest: exit 0",
    "(d2) [linux] netvictim: ping 10.0.0.1 before the attack: 3 packets received",
    "(d0) [linux] nethostile: guest: up",
    "(d0) [linux] nethostile: network-attach hostile vif 0: exit 0",
    "(d0) [linux] nethostile: network-attach hostile vif 1: exit 0",
    "(d0) [linux] nethostile: network-attach hostile vif 2: exit 0",
    "(d3) hostile-netfront: vif from d0 (/local/domain/0/backend/vif/3/0)",
    "(d3) hostile-netfront: vif 0: back end Connected",
    "(d3) hostile-netfront: a good ARP request: 1 answers, status 0",
    "(d3) hostile-netfront: the ARP reply from 10.0.0.1 arrived through the rx ring",
    "(d3) hostile-netfront: a ref never granted: 1 answers, status -1",
    "(d3) hostile-netfront: a ref beyond the table: 1 answers, status -1",
    "(d3) hostile-netfront: a ref granted to d1: 1 answers, status -1",
    "(d3) hostile-netfront: a packet of 0 bytes: 1 answers, status -1",
    "(d3) hostile-netfront: a packet of 20 slots: 20 answers, status -1",
    "(d3) hostile-netfront: an rx request with a ref never granted: status -",
    "(d3) hostile-netfront: an rx request with a ref beyond the table: status -",
    "(d3) hostile-netfront: an rx request with a ref granted to another domain: status -",
    "(d3) hostile-netfront: the page granted to d1 is unchanged",
    "(d3) hostile-netfront: a good ARP request again: 1 answers, status 0",
    "(d3) hostile-netfront: the vif still serves: ARP reply received",
    "(d3) hostile-netfront: a grant revoked mid-request: answered (status ",
    "(d3) hostile-netfront: a good ARP request after the revoke: 1 answers, status 0",
    "(d3) hostile-netfront: vif 0: a request crossing its page: 0 answers; a good packet after it: 0 answers (vif halted)",
    "(d3) hostile-netfront: vif 1: back end Connected",
    "(d3) hostile-netfront: vif 1: a packet of 26 slots: 0 answers; a good packet after it: 0 answers (vif halted)",
    "(d3) hostile-netfront: vif 2: back end Connected",
    "(d3) hostile-netfront: vif 2: a producer 1000 ahead: 0 answers; a good packet after it: 0 answers (vif halted)",
    "(d3) hostile-netfront: silent from now on",
    // Keel refused netback's maps of the bad refs (debug: a guest's mistake).
    "d0: map of d3's grant ref 60 refused (-1)",
    "d0: map of d3's grant ref 40 refused (-1)",
    "d0: map of d3's grant ref 2147483632 refused (-3)",
    // Netback halted the three hostile vifs, and only them.
    "(d0) [linux] nethostile: hostile front end: done",
    "(d0) [linux] nethostile: netback said 'Cross page boundary': 1 times",
    "(d0) [linux] nethostile: netback said 'Malicious frontend': 1 times",
    "(d0) [linux] nethostile: netback said 'Impossible number of requests': 1 times",
    "(d0) [linux] nethostile: netback said 'fatal error; disabling device': 3 times",
    "(d0) [linux] nethostile: vif3.0 carrier: 0",
    "(d0) [linux] nethostile: vif3.1 carrier: 0",
    "(d0) [linux] nethostile: vif3.2 carrier: 0",
    "(d0) [linux] nethostile: vif2.0 carrier: 1",
    // The well-behaved guest after the attack.
    "(d2) [linux] netvictim: ping 10.0.0.1 after the attack: 3 packets received",
    "(d0) [linux] nethostile: tcp: 4 MiB from the guest after the attack, md5 matches",
    "(d0) [linux] nethostile: ping 10.0.0.2 after the attack: 3 packets received",
    "(d0) [linux] nethostile: guest after the attack: done",
    // The silent front end's vifs go with -f; the guest shuts down.
    "(d0) [linux] nethostile: hostile vifs in xenstore: 0",
    "(d3) hostile-netfront: finished",
    "(d3) PASS xenbus",
    "(d0) [linux] nethostile: keelctl shutdown -w: exit 0",
    "domain 2 (guest): shut down (poweroff)",
];

/// VHE, GICv3, 2 CPUs: netback in Linux dom0 against Keel's hostile netfront, beside a
/// Linux domU's netfront.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_hostile_netfront_vhe_gicv3() {
    let name = "arm64 Linux netback against a hostile netfront (VHE GICv3)";
    boot(beside_hostile_frontend(name, INITRAMFS, "nethostile", "netvictim", "hostile-netfront").lines(&LINES));
}

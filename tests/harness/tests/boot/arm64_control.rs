//! Keel's control interface on arm64 (`docs/control-abi.md`), on both configurations of
//! the matrix: a dom0less control domain (`capabilities` = control) works on a spinning
//! sibling (list, query, pause/unpause, weight, affinity, console, garbage, destroy with
//! `VIRQ_DOM_EXC`), and a domain without the capability gets `-EPERM` for everything.

use super::arm64_guests::{on, spec, CONFIGS};
use super::boot;

/// What the `control` and `control-denied` scenarios and Keel print, on every
/// architecture: the control domain is d1, its victim d2, the denied domain d3.
pub const CONTROL_LINES: [&str; 13] = [
    "(d1) control: interface 1.4",
    "domains; victim is d2, 1 vCPU(s), ",
    "(d1) control: pause: CPU time stopped for 100 ms; unpause: it runs again",
    "(d1) control: weight 512, affinity CPU 0",
    "(d1) control: console: read ",
    "(d1) control: garbage arguments refused, Keel still answers",
    "(d1) control: destroy: VIRQ_DOM_EXC, d2 released",
    "(d1) PASS control",
    "(d3) control-denied: 18 sub-ops, each EPERM; VIRQ_DOM_EXC: EBUSY",
    "(d3) PASS control-denied",
    "domain 2 (victim): destroyed",
    "[test] pass domain-control: shut down (poweroff)",
    "[test] pass domain-denied: shut down (poweroff)",
];

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_control_domain_pauses_and_destroys_a_sibling() {
    for c in &CONFIGS {
        let control = spec("control", "caps=1;bootargs=keel.test=control keel.victim=victim");
        let victim = spec("victim", "bootargs=keel.test=spin");
        let denied = spec("denied", "bootargs=keel.test=control-denied");
        let mut t = on(
            c,
            "arm64 control",
            &["--bootargs", "keel.timeout=60", "--domain", &control, "--domain", &victim, "--domain", &denied],
        )
        .refusal("[test] fail domain-victim: destroyed", 1);
        t = t.lines(&CONTROL_LINES);
        t.required_lines.push(format!("[test] done pass={} fail=1 expected={}", c.2 + 2, c.2 + 3));
        boot(t);
    }
}

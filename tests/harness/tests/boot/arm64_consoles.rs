//! arm64 consoles: the Xen PV console ring Keel serves, the virtual PL011, and input
//! from the physical console routed to one domain at a time (three Ctrl-A switch).

use super::arm64_guests::{on, spec, CONFIGS};
use super::boot;

/// Console input for a run: written under `target/`, named after the test.
fn input_file(name: &str, bytes: &[u8]) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-input");
    std::fs::create_dir_all(&dir).expect("target/test-input");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("input file");
    path.to_string_lossy().into_owned()
}

/// A PV console domain and a vPL011 domain print and each receive one line of input:
/// the first line goes to the first domain, three Ctrl-A move the input to the other.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_pv_console_vpl011_and_input_routing() {
    for (i, c) in CONFIGS.iter().enumerate() {
        let input = input_file(&format!("consoles-{i}"), b"to-the-uart\n\x01\x01\x01to-the-ring\n");
        let uart = spec("uart", "vpl011;bootargs=keel.test=vpl011 keel.expect=to-the-uart");
        let pv = spec("pv", "bootargs=keel.test=pvconsole keel.expect=to-the-ring");
        let mut t = on(c, "arm64 consoles", &["--input", &input, "--domain", &uart, "--domain", &pv])
            .domain("uart")
            .domain("pv")
            .line("console input goes to domain 1 (uart); Ctrl-A three times switches")
            .line("console input goes to domain 2 (pv); Ctrl-A three times switches")
            .line("(d2) pv console: pfn 0x39000 port 1, served by domain 0x7ff2")
            .line("(d2) pv console: hello through the ring")
            .line("(d2) pv console line 49: 0123456789abcdef0123456789abcdef0123456789abcdef")
            .line("(d2) pv console input: to-the-ring (")
            .line("(d1) vpl011: hello through the emulated PL011")
            .line("(d1) vpl011 input: to-the-uart (");
        for n in 0..50 {
            t = t.line(&format!("(d2) pv console line {n:02}: "));
        }
        boot(t);
    }
}

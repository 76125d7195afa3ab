//! arm64 consoles: the Xen PV console ring Keel serves, the virtual PL011, and input
//! from the physical console routed to one domain at a time (three Ctrl-A switch).

use super::arm64_guests::{on, spec, CONFIGS};
use super::{boot, input_file};

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

/// `keel.console=raw`: the domain that has input writes to the terminal raw, the others
/// in prefixed, sanitised lines. Input goes to `first` (its line), then three Ctrl-A
/// give it to `focused`: what `focused` writes after its input line is raw (no prefix,
/// escape sequences intact, a prompt without newline printed before Keel's next line,
/// which starts on a fresh line). `other` never has input: its escapes show as `.`.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_raw_console_for_the_domain_with_input() {
    let c = &CONFIGS[0];
    let input = input_file("raw-console", b"to-the-first\n\x01\x01\x01to-the-ring\n");
    let first = spec("first", "bootargs=keel.test=pvconsole keel.expect=to-the-first");
    let focused = spec("focused", "bootargs=keel.test=pvconsole keel.expect=to-the-ring keel.prompt=1");
    let other = spec("other", "bootargs=keel.test=pvconsole keel.prompt=1");
    let args = [
        "--bootargs",
        "keel.console=raw",
        "--input",
        &input,
        "--domain",
        &first,
        "--domain",
        &focused,
        "--domain",
        &other,
    ];
    let t = on(c, "arm64 raw console", &args)
        .domain("first")
        .domain("focused")
        .domain("other")
        .line("console input goes to domain 1 (first); Ctrl-A three times switches")
        .line("console input goes to domain 2 (focused); Ctrl-A three times switches")
        .line("pv console input: to-the-first (")
        .line("\npv console input: to-the-ring (")
        // Two writes of `focused`: another domain's lines may come between them.
        .line("\n\x1b[7mreverse\x1b[0m video through the ring\n")
        .line("\x1b[1mkeel\x1b[0m$ \r\n[")
        .line("(d3) .[7mreverse.[0m video through the ring")
        .line("(d3) pv console line 49: 0123456789abcdef");
    boot(t);
}

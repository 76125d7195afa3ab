//! arm64 domains running the test guest (`tests/guests/aarch64`), on both configurations
//! of the matrix: VHE with GICv3 and 4 CPUs, nVHE with GICv2 and 2 CPUs (cortex-a57).
//! One domain comes from QEMU's `guest-loader` (Xen's dom0 path), several from a
//! dom0less device tree written by `scripts/mkconfig-aarch64`.

use super::{boot, AARCH64};
use keel_tests::BootTest;

/// The test guest image (`scripts/build aarch64`).
pub const GUEST: &str = "target/images/guests/keel-test-guest-aarch64.img";

/// The two machine configurations every guest scenario runs on, with their CPU counts.
pub const CONFIGS: [(&str, &[&str], u32); 2] = [
    ("VHE GICv3 smp4", &["--gic", "3", "--cpu", "max", "--smp", "4"], 4),
    ("nVHE GICv2 smp2", &["--gic", "2", "--cpu", "cortex-a57", "--smp", "2"], 2),
];

/// A test on configuration `config` with extra runner arguments.
pub fn on(config: &(&str, &[&str], u32), name: &str, extra: &[&str]) -> BootTest {
    let mut args: Vec<&str> = config.1.to_vec();
    args.push("--test");
    args.extend_from_slice(extra);
    BootTest::new(&format!("{name} ({})", config.0), AARCH64, &args).probe_on_cpus(config.2)
}

/// One domain (dom0, id 0) from QEMU's guest-loader running `bootargs`.
pub fn dom0(config: &(&str, &[&str], u32), name: &str, bootargs: &str) -> BootTest {
    let device = format!("guest-loader,addr=0x49000000,kernel={GUEST},bootargs={bootargs}");
    let leaked: &'static str = Box::leak(device.into_boxed_str());
    on(config, name, &["--bootargs", "dom0_mem=64M", "-device", leaked]).domain("dom0")
}

/// A dom0less domain spec for `scripts/mkconfig-aarch64`.
pub fn spec(name: &str, extra: &str) -> String {
    format!("name={name};kernel={GUEST};{extra}")
}

const HYPERCALL_LINES: [&str; 8] = [
    "xen_version: 4.19",
    "extraversion: .0-keel",
    "changeset: keel-abi 1.0",
    "console_io: ok",
    "unknown hypercall 0x3f: ENOSYS",
    "bad pointer (unmapped 0x7f00000000): EFAULT",
    "bad pointer (hole 0x3c000000): EFAULT",
    "PASS hypercalls",
];

/// The scenario's lines from domain `domid`; only dom0 (the initial domain) is told
/// `XENFEAT_dom0` (bit 11).
fn expect_hypercall_lines(mut test: BootTest, domid: u32) -> BootTest {
    let features = if domid == 0 { "features: 0x00010805" } else { "features: 0x00010005" };
    test = test.line(&format!("(d{domid}) {features}"));
    for l in HYPERCALL_LINES {
        test = test.line(&format!("(d{domid}) {l}"));
    }
    test.line(&format!("(d{domid}) aliased pointer 0x40000"))
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_hypercalls_dom0() {
    for c in &CONFIGS {
        let vcpus = format!("domain 0 (dom0): {} vCPU(s), 64 MiB", c.2);
        let t = dom0(c, "arm64 hypercalls dom0", "keel.test=hypercalls").line(&vcpus);
        boot(expect_hypercall_lines(t, 0));
    }
}

/// Two dom0less domains with different sizes run the scenario side by side; each sees
/// the RAM and CPUs its node asked for.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_hypercalls_two_dom0less_domains() {
    for c in &CONFIGS {
        let a = spec("alpha", "mem=32M;cpus=2;bootargs=keel.test=hypercalls");
        let b = spec("beta", "mem=48M;cpus=1;bootargs=keel.test=hypercalls");
        let t = on(c, "arm64 hypercalls dom0less", &["--domain", &a, "--domain", &b])
            .domain("alpha")
            .domain("beta")
            .line("(d1) hypercalls on aarch64: 2 CPU(s), RAM [0x40000000, 0x42000000)")
            .line("(d2) hypercalls on aarch64: 1 CPU(s), RAM [0x40000000, 0x43000000)");
        boot(expect_hypercall_lines(expect_hypercall_lines(t, 1), 2));
    }
}

/// A gzip-compressed kernel (`vmlinuz`, as distributions ship it) is inflated into the
/// domain's RAM and boots; the same kernel with one byte of its data flipped is refused,
/// naming the domain's module, and the rest of the boot goes on.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_gzip_kernel_boots_and_a_damaged_one_is_refused() {
    let gz = std::env::temp_dir().join(format!("keel-guest-{}.img.gz", std::process::id()));
    let out = std::process::Command::new("gzip").args(["-c", "-9"]).arg(keel_tests::repo_root().join(GUEST)).output();
    let bytes = out.expect("gzip").stdout;
    std::fs::write(&gz, &bytes).unwrap();
    let c = &CONFIGS[1];
    let device = format!("guest-loader,addr=0x49000000,kernel={},bootargs=keel.test=hypercalls", gz.display());
    let t = on(c, "arm64 gzip kernel", &["--bootargs", "dom0_mem=64M", "-device", &device]).domain("dom0");
    boot(expect_hypercall_lines(t, 0));

    let mut damaged = bytes;
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x55;
    std::fs::write(&gz, &damaged).unwrap();
    let mut t = on(c, "arm64 damaged gzip kernel", &["--bootargs", "dom0_mem=64M", "-device", &device]).refusal(
        "[test] fail domain-dom0: not built: bad image: /chosen/module@0x49000000: gzip-compressed kernel: ",
        1,
    );
    t.required_lines.push("[test] done pass=2 fail=1 expected=3".into());
    boot(t);
    let _ = std::fs::remove_file(gz);
}

/// Port 1 is the PV console's (`docs/console.md`); the scenario's ports follow.
const EVENT_LINES: [&str; 8] = [
    "bind_ipi: port 2 delivered",
    "bind_virq: VIRQ_TIMER on port 3 delivered",
    "interdomain loop-back: ports 4 <-> 5, both directions delivered",
    "mask: held back; unmask: delivered",
    "burst: 40 ports, each delivered once",
    "close: ok",
    "IPI burst: 8 IPIs to self at once, each delivered once",
    "PASS events-",
];

/// One domain's own event channels through the virtual GIC's PPI 31, both ABIs, and a
/// burst of SGIs larger than the list registers.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_events_2l_and_fifo() {
    for c in &CONFIGS {
        for (abi, title) in [("2l", "2-level"), ("fifo", "FIFO")] {
            let mut t = dom0(c, &format!("arm64 events-{abi}"), &format!("keel.test=events-{abi}"))
                .line(&format!("(d0) events: {title} ABI, upcalls on"));
            for l in EVENT_LINES {
                t = t.line(&format!("(d0) {l}"));
            }
            boot(t);
        }
    }
}

/// Two domains joined by a static event channel (`xen,evtchn-v1`, ports 10 and 11)
/// exchange 10 000 events each way; both count exactly.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_interdomain_pingpong_10000() {
    for (c, abi) in CONFIGS.iter().zip(["2l", "fifo"]) {
        let ping = spec(
            "ping",
            &format!("bootargs=keel.test=pingpong keel.role=ping keel.port=10 keel.abi={abi};evtchn=10>pong:11"),
        );
        let pong = spec("pong", &format!("bootargs=keel.test=pingpong keel.role=pong keel.port=11 keel.abi={abi}"));
        let t = on(c, &format!("arm64 pingpong {abi}"), &["--timeout", "120", "--domain", &ping, "--domain", &pong])
            .domain("ping")
            .domain("pong")
            .line("static event channel: ping port 10 <-> pong port 11")
            .line("(d1) pingpong ping: port 10, sent 10000, received 10000")
            .line("(d2) pingpong pong: port 11, sent 10000, received 10000")
            .timeout(std::time::Duration::from_secs(150));
        boot(t);
    }
}

/// The guest's virtual timer at 100 Hz for one second of guest time, each tick awaited
/// in WFI (the halt ends at the timer's deadline; the interrupt is forwarded through a
/// hardware-linked list register).
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_virtual_timer_100hz() {
    for c in &CONFIGS {
        let t = on(
            c,
            "arm64 timer",
            &[
                "--bootargs",
                "dom0_mem=64M dom0_max_vcpus=1",
                "-device",
                &format!("guest-loader,addr=0x49000000,kernel={GUEST},bootargs=keel.test=timer"),
            ],
        )
        .domain("dom0")
        .line("(d0) timer: the guest clock runs ")
        .line(" ticks at 100 Hz in ")
        .line("(expected 100 +- 2), none early")
        .line("(d0) PASS timer");
        boot(t);
    }
}

/// SGIs between four vCPUs: 200 rounds of pings and answers, counted exactly.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_ipis_between_vcpus() {
    for c in &CONFIGS {
        let t = on(
            c,
            "arm64 ipi",
            &[
                "--bootargs",
                "dom0_mem=64M dom0_max_vcpus=4",
                "-device",
                &format!("guest-loader,addr=0x49000000,kernel={GUEST},bootargs=keel.test=ipi"),
            ],
        )
        .domain("dom0")
        .line("(d0) ipi: 200 rounds with 4 vCPUs: 600 pings and 600 answers, each counted once");
        boot(t);
    }
}

/// PSCI: four vCPUs started on two physical CPUs (pinned there on the 4-CPU machine),
/// AFFINITY_INFO before and after, FP/SIMD registers kept while they share the CPUs,
/// CPU_OFF and a restart.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_smp_psci_four_vcpus_on_two_cpus() {
    for c in &CONFIGS {
        let d = spec("quad", "mem=64M;cpus=4;affinity=0-1;bootargs=keel.test=smp");
        let t = on(c, "arm64 smp", &["--domain", &d])
            .domain("quad")
            .line("(d1) smp: 4 vCPUs; state before start: off off off, after: on on on")
            .line("(d1) fp: 4 vCPUs kept q0-q31 through 60 ms of sharing CPUs")
            .line("(d1) cpu_off: all secondaries off; vCPU 1 restarted and off again");
        boot(t);
    }
}

/// PSCI for guests: VERSION over `hvc #0` and a trapped `smc #0`, FEATURES,
/// MIGRATE_INFO_TYPE, AFFINITY_INFO and CPU_ON errors, an unknown `hvc` immediate made
/// undefined, WFE, and SYSTEM_OFF ending the domain as a poweroff.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_psci_for_guests() {
    for c in &CONFIGS {
        let t = dom0(c, "arm64 psci", "keel.test=psci")
            .line("(d0) psci: version 1.1 over hvc and smc; FEATURES, MIGRATE_INFO_TYPE, AFFINITY_INFO, CPU_ON errors as specified")
            .line("(d0) hvc #1: undefined-instruction exception (ESR 0x2000000)")
            .line("(d0) wfe: 1000 yields")
            .line("(d0) psci: SYSTEM_OFF")
            .line("domain 0 (dom0): shut down (poweroff)");
        boot(t);
    }
}

/// SYSTEM_RESET ends the domain as a reboot, which is not a pass.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_psci_system_reset_is_a_reboot() {
    let device = format!("guest-loader,addr=0x49000000,kernel={GUEST},bootargs=keel.test=psci keel.end=reset");
    let mut t = on(&CONFIGS[0], "arm64 psci reset", &["--bootargs", "dom0_mem=64M", "-device", &device])
        .refusal("[test] fail domain-dom0: shut down (reboot)", 1);
    t.required_lines.push("(d0) psci: SYSTEM_RESET".into());
    t.required_lines.push("[test] done pass=4 fail=1 expected=5".into());
    boot(t);
}

/// Grants between two domains: a read-write grant mapped, read and written through, a
/// grant copy, and a read-only grant (write mapping and copy refused, a write through the
/// read-only mapping faults in the guest); every byte checked on both sides.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_grants_between_two_domains() {
    for c in &CONFIGS {
        let g = spec("granter", "bootargs=keel.test=grants keel.role=granter keel.port=20;evtchn=20>mapper:21");
        let m = spec("mapper", "bootargs=keel.test=grants keel.role=mapper keel.port=21");
        let t = on(c, "arm64 grants", &["--domain", &g, "--domain", &m])
            .domain("granter")
            .domain("mapper")
            .line("(d1) grants: granter offers ref 8 (read-write) and ref 9 (read-only) to d2")
            .line("(d2) grants: mapped ref 8 of d1: 4096 bytes as granted; wrote 4096 bytes back; unmapped")
            .line("(d2) grants: copied ref 8 (4096 bytes) byte for byte")
            .line("(d2) grants: ref 9 (read-only): write mapping and copy into it refused (general_error)")
            .line("(d2) grants: read-only mapping of ref 9 reads as granted; a write through it faulted (syndrome 0x96000050)")
            .line("(d1) grants: d2 wrote all 4096 bytes of ref 8 through its mapping; ref 9 unchanged")
            .line("(d1) grants: access through both refs ended");
        boot(t);
    }
}

/// Reads and writes outside the guest's RAM (past its end, holes, the host's devices)
/// abort in the guest, which goes on; instructions Keel does not serve are undefined.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_isolation_aborts_and_undefined_instructions() {
    for c in &CONFIGS {
        let t = dom0(c, "arm64 isolation", "keel.test=isolation")
            .line(
                "(d0) isolation: 16 reads and writes outside RAM [0x40000000, 0x44000000), each aborted; still running",
            )
            .line("(d0) isolation: 6 instructions Keel does not serve, each an undefined-instruction exception");
        boot(t);
    }
}

/// A guest that wrecks its own exception vectors is crashed; the other domain completes
/// its scenario.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_wild_domain_crashes_and_the_other_completes() {
    for c in &CONFIGS {
        let wild = spec("wild", "bootargs=keel.test=wild");
        let worker = spec("worker", "bootargs=keel.test=hypercalls");
        let mut t = on(c, "arm64 wild + worker", &["--domain", &wild, "--domain", &worker])
            .refusal("[test] fail domain-wild: crashed", 1);
        for l in [
            "wild: wrecking the exception vectors",
            "an exception in its exception vectors (VBAR 0x3c800000, PC 0x3c800200): it cannot go on",
            "[test] pass domain-worker: shut down (poweroff)",
            "PASS hypercalls",
        ] {
            t.required_lines.push(l.into());
        }
        t.required_lines.push(format!("[test] done pass={} fail=1 expected={}", c.2 + 1, c.2 + 2));
        boot(t);
    }
}

/// A guest spinning with interrupts masked does not hold up the other domain, and
/// `keel.timeout` stops it.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_spinning_domain_is_stopped_at_the_timeout() {
    let c = &CONFIGS[1];
    let spinner = spec("spinner", "bootargs=keel.test=spin");
    let worker = spec("worker", "bootargs=keel.test=timer");
    let mut t =
        on(c, "arm64 spinner + worker", &["--bootargs", "keel.timeout=8", "--domain", &spinner, "--domain", &worker])
            .refusal("[test] fail domain-spinner: crashed", 1);
    for l in [
        "spin: spinning with interrupts masked, forever",
        "PASS timer",
        "(spinner): still running at keel.timeout; crashing it",
        "[test] pass domain-worker: shut down (poweroff)",
        "[test] done pass=3 fail=1 expected=4",
    ] {
        t.required_lines.push(l.into());
    }
    boot(t);
}

/// 5000 hypercalls with random arguments from one domain while two others play
/// ping-pong: Keel keeps answering, and everyone finishes. The fuzzer holds the control
/// capability, so Keel's control interface is fuzzed too.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_fuzzed_hypercalls_leave_keel_and_the_others_running() {
    for c in &CONFIGS {
        let fuzz = spec("fuzzer", "caps=1;bootargs=keel.test=fuzz keel.count=5000");
        let ping =
            spec("ping", "bootargs=keel.test=pingpong keel.role=ping keel.port=10 keel.rounds=2000;evtchn=10>pong:11");
        let pong = spec("pong", "bootargs=keel.test=pingpong keel.role=pong keel.port=11 keel.rounds=2000");
        let t = on(c, "arm64 fuzz + pingpong", &["--domain", &fuzz, "--domain", &ping, "--domain", &pong])
            .domain("fuzzer")
            .domain("ping")
            .domain("pong")
            .line("hypercalls with random arguments (")
            .line(" control calls (")
            .line("Keel still answers")
            .line("pingpong ping: port 10, sent 2000, received 2000")
            .line("pingpong pong: port 11, sent 2000, received 2000");
        boot(t);
    }
}

/// Lazy vCPU state must not leak: two domains pinned to one physical CPU (as in
/// `dts/switching-one-cpu.dts`) fill every EL1 register they may write, their virtual
/// timer, FPCR/FPSR and q0-q31 with different patterns, and check them all after each
/// of 3000 yields, at least half of which went to the other domain.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_switching_keeps_each_domains_registers() {
    for c in &CONFIGS {
        let red = spec("red", "affinity=0;bootargs=keel.test=switching keel.seed=1 keel.rounds=3000");
        let blue = spec("blue", "affinity=0;bootargs=keel.test=switching keel.seed=2 keel.rounds=3000");
        let mut t = on(c, "arm64 switching", &["--domain", &red, "--domain", &blue]).domain("red").domain("blue");
        for d in [1, 2] {
            t = t.line(&format!(
                "(d{d}) switching: 23 system registers and q0-q31 kept through 3000 yields, half or more to the other domain"
            ));
        }
        boot(t);
    }
}

/// The attacks of Xen's security advisories on event channels, grants, `memory_op` and
/// `console_io` (`keel.test=xsa`, `docs/security.md`) from a 2-vCPU domain, while two
/// others play ping-pong: every attack gets the documented error, and everyone finishes.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_xsa_attacks_are_refused_beside_a_pingpong() {
    for c in &CONFIGS {
        let xsa = spec("xsa", "cpus=2;bootargs=keel.test=xsa");
        let ping =
            spec("ping", "bootargs=keel.test=pingpong keel.role=ping keel.port=10 keel.rounds=2000;evtchn=10>pong:11");
        let pong = spec("pong", "bootargs=keel.test=pingpong keel.role=pong keel.port=11 keel.rounds=2000");
        let t = on(c, "arm64 xsa + pingpong", &["--domain", &xsa, "--domain", &ping, "--domain", &pong])
            .domains(&["xsa", "ping", "pong"])
            .lines(&XSA_LINES)
            .line("xsa grants: v2 and status frames refused, version 1 kept; 69632 maps")
            .line("xsa events: 1000 rounds of alloc/bind/close")
            .line("pingpong ping: port 10, sent 2000, received 2000")
            .line("pingpong pong: port 11, sent 2000, received 2000");
        boot(t);
    }
}

/// What the `xsa` scenario prints on every architecture.
pub const XSA_LINES: [&str; 8] = [
    "xsa console_io: counts above 64 KiB and negative ones EINVAL, unmapped/wrapping/hole buffers EFAULT",
    "xsa memory_op: other domains EPERM/ESRCH (",
    "xsa grants: v2 and status frames refused, version 1 kept; ",
    " maps of one grant in batches of 4096, all unmapped; double map/unmap refused",
    "xsa events: bad init_control/expand_array refused, one of two racing init_controls won, 128 array pages then ENOSPC",
    " rounds of alloc/bind/close against ",
    "a reset under them; FIFO works afterwards",
    "xsa: every attack refused; Keel still answers",
];

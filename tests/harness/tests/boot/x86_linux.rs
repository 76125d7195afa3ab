//! Debian's stock amd64 Linux kernel (`scripts/fetch-linux-amd64`: the package's bzImage
//! `vmlinuz` exactly as shipped, which Keel decompresses itself, and a busybox initramfs
//! whose init is `tests/guests/linux/init`) as an x86 PVH domain. Each configuration is a
//! GRUB ISO from `tests/guests/x86_64/linux-configs/` (`scripts/build-x86-guests
//! tests/guests/x86_64/linux-configs`). The init reports what the guest sees as
//! `[linux] key: value` lines; each test requires them and the domain's end.

use super::{boot, BOCHS, QEMU_X86_FAIL, QEMU_X86_PASS, X86_64};
use keel_tests::BootTest;
use std::time::Duration;

/// The ISO of configuration `name`.
pub fn linux_iso(name: &str) -> String {
    keel_tests::repo_root().join(format!("target/images/test/x86-{name}.iso")).display().to_string()
}

/// A test of Linux configuration `name` under QEMU TCG (AMD SVM) through GRUB BIOS, 2 CPUs
/// and 2 GiB, as most x86 Linux tests run: the CPU probe on both CPUs, a retry if QEMU
/// resets before Keel starts.
pub fn qemu_svm_bios(what: &str, name: &str) -> BootTest {
    let iso = linux_iso(name);
    BootTest::new(what, X86_64, &["--smp", "2", "--iso", &iso, "-m", "2G"]).probe_on_cpus(2).retry_on_emulator_reset()
}

/// The same machine as `qemu_svm_bios` booted through OVMF and UEFI GRUB (the ISO holds
/// both loaders): Keel takes its memory map, modules and ACPI tables from the UEFI
/// handoff instead of the BIOS one.
pub fn qemu_svm_uefi(what: &str, name: &str) -> BootTest {
    let iso = linux_iso(name);
    BootTest::new(what, X86_64, &["--uefi", "--smp", "2", "--iso", &iso, "-m", "2G"])
        .fact("boot-firmware", "uefi")
        .probe_on_cpus(2)
        .retry_on_emulator_reset()
}

/// The guest's own clock (its printk timestamp, seconds) at its first line containing
/// `text`.
fn guest_seconds_at(output: &str, text: &str) -> Option<f64> {
    let line = output.lines().find(|l| l.contains(text))?;
    let stamp = line.split_once(") [")?.1.split_once(']')?.0;
    stamp.trim().parse().ok()
}

/// QEMU TCG (AMD SVM, no NRIPS) through GRUB BIOS, 2 CPUs and 2 GiB (Keel decompresses
/// the kernel into the domain's RAM; its heap holds only the XZ dictionary): one 2-vCPU
/// Linux domain with its console on hvc0 (the Xen PV
/// console) reaches its userspace, sees Xen (PVH, FIFO events, clocksource `xen`,
/// `/sys/hypervisor/type`) and powers off; Keel logs the domain's end. The TSC's
/// frequency comes from Keel, not from a PIT calibration loop: by the guest's own clock,
/// it knows it within half a second of boot.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_hvc0_qemu_svm_bios() {
    let iso = linux_iso("linux");
    let t = BootTest::new("x86 Linux hvc0 (QEMU SVM BIOS)", X86_64, &["--smp", "2", "--iso", &iso, "-m", "2G"])
        .exit_status(QEMU_X86_PASS)
        .fact("virtualization", "svm")
        .fact("boot-firmware", "bios")
        .probe_on_cpus(2)
        .retry_on_emulator_reset()
        .timeout(Duration::from_secs(400))
        .domain("linux")
        .lines(&[
            "kernel /chosen/linux/kernel: bzImage, Xz payload",
            "(d1) [    0.000000] Hypervisor detected: Xen HVM",
            "] Booting kernel on Xen PVH",
            "] xen:events: Using FIFO-based ABI",
            "] clocksource: Switched to clocksource xen",
            "(d1) [linux] userspace: up",
            "(d1) [linux] hypervisor-type: xen",
            "(d1) [linux] xen-detected: yes",
            "(d1) [linux] evtchn-abi: fifo",
            "(d1) [linux] nproc: 2",
            "(d1) [linux] console: hvc0",
            "(d1) [linux] clocksource: xen",
            "(d1) [linux] action: poweroff",
            "domain 1 (linux): shut down (poweroff)",
        ]);
    let out = boot(t);
    let known = guest_seconds_at(&out.output, "] tsc: Detected ").expect("the guest logs its TSC frequency");
    assert!(known < 0.5, "the guest took {known} s of its own time to learn the TSC frequency (calibration loops)");
}

/// QEMU TCG SVM through GRUB BIOS, 2 CPUs: a 4-vCPU Linux domain (secondaries started by
/// INIT/SIPI through the virtual local APIC) sees 4 CPUs and finishes a CPU-bound job on
/// each of them.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_smp4_on_2_cpus_qemu_svm_bios() {
    let iso = linux_iso("linux-smp4");
    let t = BootTest::new(
        "x86 Linux 4 vCPUs on 2 CPUs (QEMU SVM BIOS)",
        X86_64,
        &["--smp", "2", "--iso", &iso, "-m", "2G"],
    )
    .exit_status(QEMU_X86_PASS)
    .probe_on_cpus(2)
    .retry_on_emulator_reset()
    .timeout(Duration::from_secs(500))
    .domain("linux")
    .lines(&[
        "] smp: Brought up 1 node, 4 CPUs",
        "(d1) [linux] userspace: up",
        "(d1) [linux] xen-detected: yes",
        "(d1) [linux] nproc: 4",
        "(d1) [linux] console: hvc0",
        "(d1) [linux] load: 4 of 4 jobs finished",
        "domain 1 (linux): shut down (poweroff)",
    ]);
    boot(t);
}

/// The same domain as `x86_linux_hvc0_qemu_svm_bios` through OVMF and UEFI GRUB.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_hvc0_qemu_svm_uefi() {
    let t = qemu_svm_uefi("x86 Linux hvc0 (QEMU SVM UEFI)", "linux")
        .exit_status(QEMU_X86_PASS)
        .timeout(Duration::from_secs(500))
        .domain("linux")
        .lines(&[
            "] Booting kernel on Xen PVH",
            "(d1) [linux] userspace: up",
            "(d1) [linux] hypervisor-type: xen",
            "(d1) [linux] xen-detected: yes",
            "(d1) [linux] evtchn-abi: fifo",
            "(d1) [linux] console: hvc0",
            "(d1) [linux] clocksource: xen",
            "domain 1 (linux): shut down (poweroff)",
        ]);
    boot(t);
}

/// Xen's own GRUB entry, no configuration tree (`linux-xen-grub.grub`): `multiboot2
/// keel.elf dom0_mem=384M dom0_max_vcpus=3`, `module2 vmlinuz console=hvc0 ...`,
/// `module2 initrd.img`. Keel builds the initial domain from the two modules as Xen
/// builds dom0: domain 0, 384 MiB and 3 vCPUs on the machine's 2 CPUs, the kernel's
/// command line from its module line. Told it is the initial domain (`SIF_INITDOMAIN` in
/// its start info), Linux adds `tty0` before `hvc0` as its preferred consoles, as Xen's
/// dom0 does, and writes `hvc0` through `CONSOLEIO_write`.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_dom0_from_xen_grub_entry_qemu_svm_bios() {
    let iso = linux_iso("linux-xen-grub");
    let t = BootTest::new(
        "x86 Linux dom0 from Xen's GRUB entry (QEMU SVM BIOS)",
        X86_64,
        &["--smp", "2", "--iso", &iso, "-m", "2G"],
    )
    .exit_status(QEMU_X86_PASS)
    .probe_on_cpus(2)
    .retry_on_emulator_reset()
    .timeout(Duration::from_secs(500))
    .domain("dom0")
    .lines(&[
        "no configuration tree: the initial domain from 2 boot module(s), as Xen's dom0",
        "domain 0 (dom0): 3 vCPU(s), 384 MiB",
        "] Kernel command line: console=hvc0 keel.linux=check",
        "(d0) [linux] userspace: up",
        "(d0) [linux] xen-detected: yes",
        "(d0) [linux] nproc: 3",
        "(d0) [linux] console: tty0 hvc0",
        "domain 0 (dom0): shut down (poweroff)",
    ]);
    boot(t);
}

/// Bad Linux domains beside a good one (`linux-bad.dts`): a bzImage cut in half, one
/// whose XZ payload is damaged, one asking for 64 GiB, a 32-bit kernel without Xen PVH
/// support (a bzImage without XLF_KERNEL_64 whose payload is an i386 ELF with no
/// PHYS32_ENTRY note), a good kernel whose configuration names an initrd the boot loader
/// did not pass, bookworm-backports' Zstandard bzImage (a 128 MiB window) and a good
/// kernel in 32 MiB of RAM, fewer than its ELF image needs to be decompressed into, are
/// refused, each by name and with what is wrong; the good domain boots to its userspace
/// and powers off.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_bad_kernels_are_refused_by_name() {
    let iso = linux_iso("linux-bad");
    let t = BootTest::new("x86 Linux bad kernels refused (QEMU SVM BIOS)", X86_64, &["--smp", "2", "--iso", &iso, "-m", "2G"])
        .probe_on_cpus(2)
        .retry_on_emulator_reset()
        .timeout(Duration::from_secs(500))
        .refusal(
            "[test] fail domain-truncated: not built: bad image: kernel /chosen/truncated/kernel (bzImage): the payload at ",
            QEMU_X86_FAIL,
        )
        .lines(&[
            "-byte file: truncated",
            "[test] fail domain-damaged: not built: bad image: kernel /chosen/damaged/kernel (bzImage): the XZ payload is damaged or truncated",
            "[test] fail domain-/chosen/huge: not built: /chosen/huge: memory 67108864 KiB exceeds the ",
            "[test] fail domain-i386: not built: bad image: kernel /chosen/i386/kernel has no XEN_ELFNOTE_PHYS32_ENTRY note (type 18, owner \"Xen\"): not a PVH kernel (a 32-bit ELF: an i386 kernel built without Xen PVH support)",
            "[test] fail domain-/chosen/noinitrd: not built: /chosen/noinitrd/ramdisk: module-index = <9>, but the boot loader passed 9 modules (0 to 8)",
            "[test] fail domain-zstd: not built: bad image: kernel /chosen/zstd/kernel (bzImage): the Zstandard frame asks for a 128 MiB window, more than the 32 MiB Keel's decoder keeps",
            "[test] fail domain-small: not built: does not fit: kernel /chosen/small/kernel (bzImage): it decompresses to ",
            "(d1) [linux] userspace: up",
            "[test] pass domain-linux: shut down (poweroff)",
            "[test] done pass=3 fail=7 expected=10",
        ]);
    boot(t);
}

/// Two Linux domains at once (`linux-panic.dts`, QEMU SVM BIOS, 2 CPUs). "crasher"
/// panics (`echo c > /proc/sysrq-trigger`) and reports it to Xen's interface
/// (SCHEDOP_shutdown, reason crash): Keel ends that domain alone and reclaims it. "worker"
/// waits 15 s of its own time, then finishes a CPU-bound job on both its vCPUs after the
/// crash, and powers off.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_panic_ends_only_that_domain() {
    let iso = linux_iso("linux-panic");
    let t = BootTest::new(
        "x86 two Linux domains, one panics (QEMU SVM BIOS)",
        X86_64,
        &["--smp", "2", "--iso", &iso, "-m", "2G"],
    )
    .probe_on_cpus(2)
    .retry_on_emulator_reset()
    .timeout(Duration::from_secs(500))
    .refusal("[test] fail domain-crasher: crashed (reported by the guest)", QEMU_X86_FAIL)
    .lines(&[
        "(d1) [linux] userspace: up",
        "(d1) [linux] action: panic",
        "] Kernel panic - not syncing: sysrq triggered crash",
        "(d2) [linux] userspace: up",
        "(d2) [linux] xen-detected: yes",
        "(d2) [linux] nproc: 2",
        "(d2) [linux] waited: 15 s",
        "(d2) [linux] load: 2 of 2 jobs finished",
        "domain 2 (worker): shut down (poweroff)",
        "[test] pass domain-worker: shut down (poweroff)",
        "[test] done pass=3 fail=1 expected=4",
    ]);
    let out = boot(t).output;
    let crash = line_at(&out, "domain 1 (crasher): crashed (reported by the guest)");
    let after = line_at(&out, "(d2) [linux] load: 2 of 2 jobs finished");
    assert!(crash < after, "the worker must finish its job after the crash (lines {crash} and {after})");
}

/// `reboot` in a Linux domain (`linux-reboot.dts`, QEMU SVM BIOS): Linux asks for it
/// with SCHEDOP_shutdown (reason reboot), and Keel, as on arm64, builds the domain again
/// from its description (Xen's toolstack does this for `on_reboot = "restart"`); Linux
/// boots a second time. With `keel.restarts=1`, the second reboot ends it.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_reboot_restarts_the_domain() {
    let iso = linux_iso("linux-reboot");
    let t = BootTest::new(
        "x86 Linux reboot restarts it (QEMU SVM BIOS)",
        X86_64,
        &["--smp", "2", "--iso", &iso, "-m", "2G"],
    )
    .probe_on_cpus(2)
    .retry_on_emulator_reset()
    .timeout(Duration::from_secs(500))
    .refusal("[test] fail domain-linux: shut down (reboot)", QEMU_X86_FAIL)
    .lines(&[
        "(d1) [linux] action: reboot",
        "] reboot: Restarting system",
        "domain 1 (linux): shut down (reboot)",
        "domain 1 (linux): restarted as domain 1 (restart 1 of 1)",
        "domain 1 (linux): rebooted after 1 restart(s) (keel.restarts); not again",
        "[test] done pass=2 fail=1 expected=3",
    ]);
    let out = boot(t).output;
    for line in ["(d1) [linux] userspace: up", "(d1) [linux] action: reboot"] {
        assert_eq!(out.matches(line).count(), 2, "'{line}' once per boot of the domain");
    }
}

/// A Linux domain and a test-guest domain joined by a static event channel from the
/// configuration (`linux-evtchn.dts`, `xen,evtchn-v1`: Linux port 10, test guest port 11),
/// QEMU SVM BIOS. Linux is bookworm-backports' cloud kernel (6.12, given as its ELF image:
/// its bzImage's 128 MiB Zstandard window is more than Keel's decoder keeps), whose
/// `/dev/xen/evtchn` binds a static port: `evtchn-ping` in its initramfs binds its end and
/// sends 1000 events, waiting for each answer; the test guest answers each one; both
/// count exactly, and the test guest sees no event more.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_static_event_channel_with_a_test_guest() {
    let t = qemu_svm_bios("x86 Linux and a test guest over a static event channel (QEMU SVM BIOS)", "linux-evtchn")
        .exit_status(QEMU_X86_PASS)
        .timeout(Duration::from_secs(500))
        .domain("linux")
        .domain("pong")
        .lines(&[
            "static event channel: linux port 10 <-> pong port 11",
            "] Booting kernel on Xen PVH",
            "(d1) [linux] kernel: 6.12.",
            "(d1) [linux] xen-detected: yes",
            "(d1) [linux] evtchn-abi: fifo",
            "(d1) evtchn: bound static port 10",
            "(d1) evtchn: port 10, sent 1000, received 1000,",
            "(d2) pingpong pong: port 11, sent 1000, received 1000,",
            "(d1) [linux] evtchn: ok",
            "domain 1 (linux): shut down (poweroff)",
        ]);
    boot(t);
}

/// Bochs `corei7_skylake_x` (VT-x with EPT and VPID), 1 CPU, 2 GiB, from Xen's own GRUB
/// entry: Keel decompresses the bzImage and Linux boots as dom0 on one vCPU past its first
/// Xen timer events (issue 15: on Bochs they once never came after `installing Xen timer
/// for CPU 0`): the boot goes on to `smpboot: CPU0`, which waits for the first timer event,
/// within 0.5 s of the guest's own clock, and its clock runs on for at least 5 s more,
/// through the initcalls (`kprobes: ...`). Linux reaches its userspace under Bochs only
/// after many minutes (`scripts/bochs-linux-progress`), so `keel.timeout` (100 s of the
/// domain's time, Bochs's instruction clock) ends the run.
#[test]
#[ignore = "boots Bochs with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn x86_linux_timer_bochs_vmx() {
    let iso = linux_iso("linux-bochs-timer");
    let t = BootTest::new(
        "x86 Linux past its first Xen timer events (Bochs VT-x)",
        BOCHS,
        &["--cpu", "corei7_skylake_x", "--smp", "1", "--megs", "2048", "--iso", &iso],
    )
    .fact("virtualization", "vmx")
    .fact("ept", "yes")
    .probe_on_cpus(1)
    .timeout(Duration::from_secs(1200))
    .refusal("[test] fail domain-dom0: crashed", 1)
    .lines(&[
        "kernel multiboot2 module 0 (kernel): bzImage, Xz payload",
        "(d0) [    0.000000] Hypervisor detected: Xen HVM",
        "] Booting kernel on Xen PVH",
        "] xen:events: Using FIFO-based ABI",
        "] installing Xen timer for CPU 0",
        "] smpboot: CPU0: ",
        "] kprobes: kprobe jump-optimization is enabled",
        "domain 0 (dom0): still running at keel.timeout; crashing it",
    ]);
    let out = boot(t).output;
    let installed = guest_seconds_at(&out, "] installing Xen timer for CPU 0").expect("the timer's installation");
    let next = guest_seconds_at(&out, "] smpboot: CPU0: ").expect("the line after the first timer event");
    assert!(
        next - installed < 0.5,
        "{:.3} s of the guest's time from installing the Xen timer to the line after its first event",
        next - installed
    );
    assert!(line_at(&out, "] installing Xen timer for CPU 0") < line_at(&out, "] smpboot: CPU0: "));
    let last =
        out.lines().filter(|l| l.contains("(d0) [")).filter_map(|l| guest_seconds_at(l, "(d0) [")).fold(0.0, f64::max);
    assert!(
        last - installed >= 5.0,
        "Linux's clock stopped {:.3} s after its Xen timer was installed",
        last - installed
    );
}

/// The index of the first line of `output` containing `text`.
fn line_at(output: &str, text: &str) -> usize {
    output.lines().position(|l| l.contains(text)).unwrap_or_else(|| panic!("no line contains '{text}'"))
}

#[test]
fn guest_timestamps_are_read() {
    let out = "[ INFO 0] (d1) [    0.015579] tsc: Detected 2608.348 MHz processor\n";
    assert_eq!(guest_seconds_at(out, "tsc: Detected"), Some(0.015579));
    assert_eq!(guest_seconds_at(out, "nothing"), None);
}

//! Debian's stock arm64 Linux kernel (`scripts/fetch-linux-arm64`: the package's
//! `vmlinuz` exactly as shipped, and a busybox initramfs whose init is
//! `tests/guests/linux/init`) as a Keel domain. The init reports what the guest sees as
//! `[linux] key: value` lines; each test requires them and the domain's end.

use super::arm64_guests::spec;
use super::{boot, AARCH64};
use keel_tests::BootTest;
use std::time::Duration;

pub const KERNEL: &str = "target/linux-arm64/vmlinuz";
pub const INITRAMFS: &str = "target/linux-arm64/initramfs.gz";
/// The initramfs of a control domain that creates Linux domains (`keelctl create`): the
/// one above, with Linux's kernel and it as files, `/boot/vmlinuz.gz` and
/// `/boot/initramfs.gz` (`scripts/fetch-linux-arm64`).
pub const INITRAMFS_WITH_KERNEL: &str = "target/linux-arm64/initramfs-with-kernel.img";
/// bookworm-backports' cloud kernel (Linux 6.12): its `/dev/xen/evtchn` binds static
/// event channels (`IOCTL_EVTCHN_BIND_STATIC`, Linux 6.6 and later; bookworm's 6.1 has none).
pub const KERNEL_6_12: &str = "target/linux-arm64/backports/vmlinuz";

/// A Linux domain spec for `scripts/mkconfig-aarch64`.
pub fn linux(name: &str, cpus: u32, bootargs: &str, extra: &str) -> String {
    format!("name={name};kernel={KERNEL};ramdisk={INITRAMFS};mem=256M;cpus={cpus};bootargs={bootargs};{extra}")
}

/// VHE + GICv3 (`-cpu max`) and nVHE + GICv2 (`cortex-a57`), each with 2 physical CPUs.
pub const VHE_GICV3: [&str; 4] = ["--gic", "3", "--cpu", "max"];
pub const NVHE_GICV2: [&str; 4] = ["--gic", "2", "--cpu", "cortex-a57"];

/// A test named `name` on `machine` (2 CPUs, `mem`) with more runner arguments `extra`
/// (the runner's options first, then QEMU's own).
pub fn on_with(name: &str, machine: [&str; 4], mem: &str, extra: &[&str]) -> BootTest {
    let mut args: Vec<&str> = machine.to_vec();
    args.extend(["--smp", "2", "--mem", mem, "--timeout", "200", "--test"]);
    args.extend_from_slice(extra);
    BootTest::new(name, AARCH64, &args).probe_on_cpus(2)
}

/// A test named `name` on `machine` (2 CPUs, 1 GiB) running the Linux `domains`.
fn on(name: &str, machine: [&str; 4], domains: &[&str]) -> BootTest {
    let extra: Vec<&str> = domains.iter().flat_map(|d| ["--domain", *d]).collect();
    on_with(name, machine, "1G", &extra)
}

/// What every Linux domain `domid` must report: userspace reached, Xen detected through
/// the `/hypervisor` node, `/sys/hypervisor/type`, FIFO event channels.
pub fn xen_guest(mut t: BootTest, domid: u32) -> BootTest {
    for l in [
        "[linux] userspace: up",
        "[linux] hypervisor-type: xen",
        "[linux] xen-detected: yes",
        "[linux] evtchn-abi: fifo",
    ] {
        t = t.line(&format!("(d{domid}) {l}"));
    }
    t.line(&format!("(d{domid}) [    0.000000] Xen 4.19 support found")).timeout(Duration::from_secs(240))
}

/// Linux back ends in dom0 or a driver domain against Keel's hostile front end: VHE and
/// GICv3 with 2 CPUs and 2 GiB, a debug log, 600 s. Four domains: dom0 (Linux's session
/// `dom0_session` from `ramdisk`, told the guest's and the hostile domain's names), the
/// xenstore domain, a Linux domU `guest` (`guest_session`) and Keel's test guest
/// `hostile` (`keel.test=xenbus` as `hostile_role`). Each must pass, and dom0 and the
/// guest report as Xen guests.
pub fn beside_hostile_frontend(
    name: &str,
    ramdisk: &str,
    dom0_session: &str,
    guest_session: &str,
    hostile_role: &str,
) -> BootTest {
    let dom0 = format!(
        "kernel={KERNEL};ramdisk={ramdisk};bootargs=console=hvc0 keel.linux={dom0_session} keel.victim=guest keel.peer=hostile"
    );
    let xenstore = spec("xenstore", "caps=4;bootargs=keel.program=xenstored xenstored.exit=last");
    let guest = format!(
        "name=guest;kernel={KERNEL};ramdisk={INITRAMFS};mem=256M;cpus=1;enhanced;bootargs=console=hvc0 keel.linux={guest_session}"
    );
    let hostile = spec("hostile", &format!("enhanced;bootargs=keel.test=xenbus keel.role={hostile_role}"));
    let extra = [
        "--dom0",
        &dom0,
        "--domain",
        &xenstore,
        "--domain",
        &guest,
        "--domain",
        &hostile,
        "--bootargs",
        "keel.loglevel=debug",
        "--timeout",
        "600",
    ];
    let t = on_with(name, VHE_GICV3, "2G", &extra).domains(&["dom0", "xenstore", "guest", "hostile"]);
    xen_guest(xen_guest(t, 0), 2).timeout(Duration::from_secs(620))
}

/// VHE + GICv3, 2 physical CPUs: a 4-vCPU Linux domain with its console on hvc0 (the
/// Xen PV console) runs a CPU-bound job on all four vCPUs, then powers off.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_hvc0_smp4_on_2_cpus_vhe_gicv3() {
    let d = linux("linux", 4, "console=hvc0 keel.linux=load", "");
    // `-cpu max` has FEAT_S2FWB: guest RAM is forced write-back; cortex-a57 (below) has not.
    let t = on("arm64 Linux hvc0 4 vCPUs on 2 CPUs (VHE GICv3)", VHE_GICV3, &[&d])
        .fact("stage2-fwb", "yes")
        .domain("linux")
        .lines(&[
            "(d1) [linux] nproc: 4",
            "(d1) [linux] console: hvc0",
            "(d1) [linux] irqchip: GICv3",
            "(d1) [linux] load: 4 of 4 jobs finished",
            "(d1) [    0.000000] Kernel command line: console=hvc0 keel.linux=load",
            "domain 1 (linux): shut down (poweroff)",
        ]);
    boot(xen_guest(t, 1));
}

/// nVHE + GICv2 (cortex-a57), 2 physical CPUs: a 2-vCPU Linux domain with its console on
/// the virtual PL011 (ttyAMA0).
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_vpl011_nvhe_gicv2() {
    let d = linux("linux", 2, "console=ttyAMA0 keel.linux=check", "vpl011");
    let t = on("arm64 Linux ttyAMA0 (nVHE GICv2)", NVHE_GICV2, &[&d])
        .fact("el2", "nvhe")
        .fact("stage2-fwb", "no")
        .domain("linux")
        .lines(&[
            "(d1) [linux] nproc: 2",
            "(d1) [linux] console: hvc0 ttyAMA0",
            "(d1) [linux] irqchip: GICv2",
            "(d1) [    0.000000] arch_timer: cp15 timer(s) running at 62.50MHz (virt).",
            "domain 1 (linux): shut down (poweroff)",
        ]);
    boot(xen_guest(t, 1));
}

/// Two Linux domains at once on VHE + GICv3 with 2 physical CPUs. "crasher" arms the Xen
/// watchdog (Debian's `xen_wdt` module, 3 s) and panics (`echo c >
/// /proc/sysrq-trigger`); nothing pets the watchdog any more, so Keel ends that domain.
/// "worker" meanwhile finishes a CPU-bound job on both its vCPUs and powers off.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_panic_ends_only_that_domain() {
    let crasher = linux("crasher", 2, "console=hvc0 keel.linux=panic", "");
    let worker = linux("worker", 2, "console=hvc0 keel.linux=load", "");
    let t = on("arm64 two Linux domains, one panics (VHE GICv3)", VHE_GICV3, &[&crasher, &worker])
        .refusal("[test] fail domain-crasher: crashed (watchdog expired)", 1)
        .lines(&[
            "(d1) [linux] watchdog: armed",
            "(d1) [linux] action: panic",
            "---[ end Kernel panic - not syncing: sysrq triggered crash ]---",
            "domain 1 (crasher): crashed: watchdog 1 not petted for 3 s; shutting it down",
            "domain 1 (crasher): crashed (watchdog expired)",
            "(d2) [linux] load: 2 of 2 jobs finished",
            "domain 2 (worker): shut down (poweroff)",
            "[test] pass domain-worker: shut down (poweroff)",
            "[test] done pass=3 fail=1 expected=4",
        ]);
    boot(xen_guest(xen_guest(t, 1), 2));
}

/// A Linux domain and a test-guest domain joined by a static event channel from the
/// configuration (`xen,evtchn-v1`: Linux port 10, test guest port 11), on nVHE + GICv2.
/// Linux (bookworm-backports' 6.12) binds its end from userspace (`evtchn-ping`, through
/// `/dev/xen/evtchn`) and sends 1000 events; the test guest answers each one; both count
/// exactly, and the test guest sees no event more.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_static_event_channel_with_a_test_guest() {
    let d = linux("linux", 2, "console=hvc0 keel.linux=evtchn keel.port=10 keel.rounds=1000", "evtchn=10>pong:11")
        .replace(KERNEL, KERNEL_6_12);
    let pong =
        super::arm64_guests::spec("pong", "bootargs=keel.test=pingpong keel.role=pong keel.port=11 keel.rounds=1000");
    let t = on("arm64 Linux and a test guest over a static event channel (nVHE GICv2)", NVHE_GICV2, &[&d, &pong])
        .domain("linux")
        .domain("pong")
        .lines(&[
            "static event channel: linux port 10 <-> pong port 11",
            "(d1) [linux] kernel: 6.12.",
            "(d1) evtchn: bound static port 10",
            "(d1) evtchn: port 10, sent 1000, received 1000,",
            "(d2) pingpong pong: port 11, sent 1000, received 1000,",
            "(d1) [linux] evtchn: ok",
            "domain 1 (linux): shut down (poweroff)",
        ]);
    boot(xen_guest(t, 1));
}

/// Xen's own command line (VHE + GICv3, 2 GiB): the kernel and the initramfs come from
/// QEMU's `guest-loader` at Xen's usual addresses, with no domain configuration and no
/// `dom0_mem`. Keel builds the initial domain from them (512 MiB, one vCPU per CPU) as
/// Xen builds dom0, and Linux runs its checks on hvc0.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_dom0_from_guest_loader() {
    let kernel = format!("guest-loader,addr=0x42000000,kernel={KERNEL},bootargs=console=hvc0 keel.linux=check");
    let initrd = format!("guest-loader,addr=0x47000000,initrd={INITRAMFS}");
    let extra = ["-device", &kernel, "-device", &initrd];
    let t = on_with("arm64 Linux dom0 from guest-loader (VHE GICv3)", VHE_GICV3, "2G", &extra).domain("dom0").lines(&[
        "(d0) [linux] nproc: 2",
        "(d0) [linux] console: hvc0",
        "domain 0 (dom0): shut down (poweroff)",
    ]);
    boot(xen_guest(t, 0));
}

/// `reboot` in the guest (PSCI SYSTEM_RESET) restarts the domain: Keel builds it again
/// from its description and Linux boots a second time. With `keel.restarts=1`, the
/// second reboot ends it.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_reboot_restarts_the_domain() {
    let d = linux("linux", 2, "console=hvc0 keel.linux=reboot", "");
    let extra = ["--bootargs", "keel.restarts=1", "--domain", &d];
    let t = on_with("arm64 Linux reboot restarts it (nVHE GICv2)", NVHE_GICV2, "1G", &extra)
        .refusal("[test] fail domain-linux: shut down (reboot)", 1)
        .lines(&[
            "(d1) [linux] action: reboot",
            "domain 1 (linux): shut down (reboot)",
            "domain 1 (linux): restarted as domain 1 (restart 1 of 1)",
            "domain 1 (linux): rebooted after 1 restart(s) (keel.restarts); not again",
            "[test] done pass=2 fail=1 expected=3",
        ]);
    boot(xen_guest(t, 1));
}

/// Through U-Boot, as on a board: QEMU runs `u-boot.bin`, whose `boot.scr`
/// (`scripts/boot/uboot-linux.txt`, built by `scripts/build-uboot-linux`) loads Keel, the
/// kernel and the initramfs from a virtio disk, writes the dom0less nodes the way Xen's
/// ImageBuilder does, and boots Keel with `booti`.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_through_uboot() {
    let extra = ["--uboot-media", "target/images/test/linux"];
    let t = on_with("arm64 Linux through U-Boot (VHE GICv3)", VHE_GICV3, "1G", &extra).domain("domU1").lines(&[
        "boot.scr: loading Keel, Linux and its initramfs from virtio 0:1",
        "(d1) [linux] nproc: 2",
        "domain 1 (domU1): shut down (poweroff)",
    ]);
    boot(xen_guest(t, 1));
}

/// Bad configurations beside a good Linux domain: a ramdisk module over the domain's own
/// kernel module (listed first, so its kernel lies at mkconfig's base, 0x49000000), a
/// ramdisk named where nothing was loaded (past the end of RAM), a kernel module that is
/// not an arm64 Image (the gzip initramfs), more memory than the machine has, more vCPUs
/// than a domain may have. Keel refuses each by name and says why; the Linux domain boots
/// and powers off.
#[test]
#[ignore = "boots QEMU with Debian's kernel: run through scripts/test or scripts/test-linux"]
fn arm64_linux_bad_configs_are_refused_by_name() {
    let overlap = format!("name=overlap;kernel={KERNEL};ramdisk-reg=0x49000000:0x1000;mem=64M");
    let no_initrd = format!("name=noinitrd;kernel={KERNEL};ramdisk-reg=0x100000000:0x100000;mem=64M");
    let not_image = format!("name=notimage;kernel={INITRAMFS};mem=64M;cpus=1");
    let huge = linux("huge", 1, "console=hvc0", "").replace("mem=256M", "mem=4096M");
    let many = linux("manycpus", 200, "console=hvc0", "");
    let good = linux("linux", 2, "console=hvc0 keel.linux=check", "");
    let domains = [&overlap, &no_initrd, &not_image, &huge, &many, &good];
    let t = on("arm64 Linux beside bad configurations (VHE GICv3)", VHE_GICV3, &domains.map(String::as_str))
        .refusal("[test] fail domain-notimage: not built: bad image: /chosen/notimage/module@", 1)
        .lines(&[
            "[test] fail domain-/chosen/overlap: not built: /chosen/overlap/ramdisk@49000000: [0x49000000, 0x49001000) overlaps /chosen/overlap/module@49000000",
            "[test] fail domain-noinitrd: not built: missing module: /chosen/noinitrd/ramdisk@100000000: [0x100000000, 0x100100000) is not in RAM Keel can read",
            "gzip-compressed kernel: no arm64 Image magic",
            "[test] fail domain-/chosen/huge: not built: /chosen/huge: memory 4194304 KiB exceeds the ",
            "[test] fail domain-/chosen/manycpus: not built: /chosen/manycpus: cpus = 200; a domain has 1 to 128 vCPUs",
            "[test] pass domain-linux: shut down (poweroff)",
            "[test] done pass=3 fail=5 expected=8",
        ]);
    boot(xen_guest(t, 1));
}

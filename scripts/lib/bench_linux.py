#!/usr/bin/env python3
"""Figures for Debian's arm64 Linux on Keel (a benchmark, not a test: no bounds).

1. Deterministic: under `-icount shift=0,sleep=off` (one instruction per ns of virtual
   time), the emulated time from reset to the guest's power-off, one CPU, booted the Xen
   way (QEMU's guest-loader) on Keel, against the same kernel and initramfs booted
   natively at EL1. Keel's figure is its own counter once the domain has ended ("all
   domains have ended at ..."). The native one is the virtual counter that the init reads
   (`cntvct`) just before it powers off: with no hypervisor it counts from reset. Linux's
   own clock (its power-down timestamp) starts only at its timer's set-up, over 0.1 s
   after its entry, so it is printed beside them but not compared. Xen 4.17, when its
   package downloads, is measured the same way: its uptime when dom0 has halted
   (`console_timestamps=boot`).
2. Wall time from QEMU's start to the guest's "[linux] userspace: up", median of N
   interleaved runs (TCG, 2 CPUs), natively, on Keel, and on Xen 4.17 when Debian's
   xen-hypervisor-4.17-arm64 package can be downloaded.
"""
import os, re, subprocess, sys

from bench_run import print_medians, run_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
L = os.path.join(ROOT, "target/linux-arm64")
KERNEL, INITRD = os.path.join(L, "vmlinuz"), os.path.join(L, "initramfs.gz")
KEEL = os.path.join(ROOT, "target/images/keel-aarch64.img")
MARKER = "[linux] userspace: up"


def machine(virt, smp, icount):
    args = ["qemu-system-aarch64", "-M", f"virt,virtualization={virt},gic-version=3", "-cpu", "max",
            "-smp", str(smp), "-m", "2G", "-display", "none", "-monitor", "none", "-serial", "stdio"]
    return args + (["-icount", "shift=0,sleep=off"] if icount else [])


def native(smp, icount, mode):
    return machine("off", smp, icount) + ["-kernel", KERNEL, "-initrd", INITRD,
                                          "-append", f"console=ttyAMA0 keel.linux={mode}"]


def loaders(console, mode):
    return ["-device", f"guest-loader,addr=0x42000000,kernel={KERNEL},bootargs=console={console} keel.linux={mode}",
            "-device", f"guest-loader,addr=0x47000000,initrd={INITRD}"]


def keel(smp, icount, mode):
    return machine("on", smp, icount) + ["-kernel", KEEL] + loaders("hvc0", mode)


def xen(image, smp, mode, icount=False):
    return machine("on", smp, icount) + ["-kernel", image, "-append",
                                         "dom0_mem=512M console=dtuart console_timestamps=boot"] + \
        loaders("hvc0", mode)


def icount_figures(xen_image):
    _, n = run_until(native(1, True, "check"), r"reboot: Power down", 600, stop_at_match=False)
    _, k = run_until(keel(1, True, "check"), r"all domains have ended", 600, stop_at_match=False)
    m_n = re.search(r"\[linux\] cntvct: (\d+\.\d+) s", n)
    m_k = re.search(r"all domains have ended at (\d+\.\d+) s", k)
    clock_n = re.search(r"\[\s*(\d+\.\d+)\] reboot: Power down", n)
    clock_k = re.search(r"\(d0\) \[\s*(\d+\.\d+)\] reboot: Power down", k)
    if not (m_n and m_k):
        sys.exit("bench-linux-arm64: error: a run did not reach its power-off under -icount")
    tn, tk = float(m_n.group(1)), float(m_k.group(1))
    clock = lambda m: f"; Linux's own clock: {float(m.group(1)):.3f} s" if m else ""
    print("1. Emulated time, reset to power-off (-icount shift=0,sleep=off, 1 CPU)")
    print(f"   native Linux at EL1:          {tn:.3f} s" + clock(clock_n))
    print(f"   Linux on Keel (guest-loader): {tk:.3f} s   ({tk / tn:.3f}x native)" + clock(clock_k))
    if xen_image:
        _, x = run_until(xen(xen_image, 1, "check", icount=True), r"Dom0 halted", 600, stop_at_match=False)
        m_x = re.search(r"\(XEN\) \[\s*(\d+\.\d+)\] Hardware Dom0 halted", x)
        clock_x = re.search(r"\[\s*(\d+\.\d+)\] reboot: Power down", x)
        if m_x:
            tx = float(m_x.group(1))
            print(f"   Linux on Xen 4.17:            {tx:.3f} s   ({tx / tn:.3f}x native)" + clock(clock_x))
        else:
            print("   Linux on Xen 4.17: did not reach its halt under -icount")


def fetch_xen():
    """Debian's Xen 4.17 image, or None (the package is optional)."""
    out = os.path.join(L, "xen-4.17-arm64")
    if os.path.exists(out):
        return out
    debs = os.path.join(L, "debs")
    r = subprocess.run(["apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root",
                        "xen-hypervisor-4.17-arm64:arm64"], cwd=debs, capture_output=True)
    names = [f for f in os.listdir(debs) if f.startswith("xen-hypervisor-4.17-arm64_")]
    if r.returncode != 0 or not names:
        return None
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", os.path.join(debs, names[0])], capture_output=True).stdout
    x = subprocess.run(["tar", "-x", "-O", "--wildcards", "./boot/xen-4.17*-arm64"], input=tar, capture_output=True)
    if x.returncode != 0 or not x.stdout:
        return None
    with open(out, "wb") as f:
        f.write(x.stdout)
    return out


def wall_figures(runs, xen_image):
    configs = [("native", lambda: native(2, False, "check")), ("Keel", lambda: keel(2, False, "check"))]
    if xen_image:
        configs.append(("Xen 4.17", lambda: xen(xen_image, 2, "check")))
    times = {name: [] for name, _ in configs}
    for _ in range(runs):
        for name, cmd in configs:
            t, _ = run_until(cmd(), re.escape(MARKER), 300)
            if t is not None:
                times[name].append(t)
    print(f"2. Wall time, QEMU start to '{MARKER}' (TCG, 2 CPUs; median of {runs} interleaved runs)")
    print_medians([name for name, _ in configs], times)
    if not xen_image:
        print("   Xen 4.17: xen-hypervisor-4.17-arm64:arm64 could not be downloaded; left out")


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    xen_image = fetch_xen()
    icount_figures(xen_image)
    wall_figures(runs, xen_image)

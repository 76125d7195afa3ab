#!/usr/bin/env python3
"""Figures for Debian's amd64 Linux on Keel (a benchmark, not a test: no bounds).

The same kernel (the package's bzImage) and initramfs (scripts/fetch-linux-amd64) boot
on QEMU TCG (q35, -cpu max: AMD SVM with nested paging) three ways:
  - native: QEMU's own `-kernel` (Linux's boot protocol through SeaBIOS), console ttyS0;
  - Keel: GRUB BIOS with Xen's own menu entry (`multiboot2 keel.elf dom0_mem=...
    dom0_max_vcpus=...`, `module2 vmlinuz`, `module2 initrd.img`): Keel builds the initial
    domain from the modules as Xen builds dom0, a PVH domain with its console on hvc0;
  - Xen 4.17 (Debian's xen-hypervisor-4.17-amd64, when it downloads): the same entry with
    Xen in Keel's place and `dom0=pvh` (a PVH dom0, experimental in 4.17).

1. Deterministic: under `-icount shift=0,sleep=off` (one instruction per ns of virtual
   time; the TSC counts those ns from reset), 1 CPU, the emulated time from reset to the
   guest's power-off. Native: the TSC the init reads through the msr module just before
   it powers off ("[linux] tsc: N"). Keel: its own clock once the domain has ended ("all
   domains have ended at ..."). Xen: its uptime when dom0 has halted
   (`console_timestamps=boot`). Linux's own clock at its power-down (which starts at its
   clocksource's set-up, after the decompression and early boot) is printed beside them.
   QEMU's CPU has no x2APIC here: under -icount QEMU stops with "Bad icount read" when a
   hypervisor reads the x2APIC timer MSRs.
2. Wall time from QEMU's start to the guest's "[linux] userspace: up", median of N
   interleaved runs (TCG, 2 CPUs, 2 vCPUs), natively, on Keel and on Xen 4.17 (when its
   dom0 reached the halt in 1.; `--wall-only` skips 1. and Xen).
"""
import os, re, shutil, subprocess, sys, tempfile

from bench_run import print_medians, run_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
L = os.path.join(ROOT, "target/linux-amd64")
KERNEL, INITRD = os.path.join(L, "vmlinuz"), os.path.join(L, "initramfs.gz")
KEEL = os.path.join(ROOT, "target/images/keel-x86_64.elf")
OUT = os.path.join(ROOT, "target/images/bench")
MARKER = "[linux] userspace: up"
MEM = "512M"


def machine(smp, icount, iommu=False):
    cpu = "max,-x2apic" if icount else "max"
    args = ["qemu-system-x86_64", "-accel", "tcg", "-M", "q35", "-cpu", cpu, "-smp", str(smp), "-m", "2G",
            "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none"]
    # Xen 4.17 refuses a PVH dom0 without an IOMMU ("Presently, iommu must be enabled
    # for PVH hardware domain"): QEMU's VT-d, without interrupt remapping.
    args += ["-device", "intel-iommu,intremap=off"] if iommu else []
    return args + (["-icount", "shift=0,sleep=off"] if icount else [])


def native(smp, icount):
    return machine(smp, icount) + ["-kernel", KERNEL, "-initrd", INITRD,
                                   "-append", f"console=ttyS0 mem={MEM} keel.linux=check"]


def iso(hypervisor, name, options, vcpus):
    """A GRUB ISO with Xen's dom0 menu entry for `hypervisor` (Keel's ELF or Xen's image)."""
    path = os.path.join(OUT, f"{name}-smp{vcpus}.iso")
    work = tempfile.mkdtemp()
    os.makedirs(os.path.join(work, "boot/grub"))
    target = "xen.gz" if hypervisor.endswith(".gz") else "keel.elf"
    shutil.copy(hypervisor, os.path.join(work, "boot", target))
    shutil.copy(KERNEL, os.path.join(work, "boot/vmlinuz"))
    shutil.copy(INITRD, os.path.join(work, "boot/initrd.img"))
    with open(os.path.join(work, "boot/grub/grub.cfg"), "w") as f:
        f.write("set timeout=0\nset timeout_style=hidden\nmenuentry \"bench\" {\n"
                f"    multiboot2 /boot/{target} {options} dom0_mem={MEM} dom0_max_vcpus={vcpus}\n"
                "    module2 /boot/vmlinuz console=hvc0 keel.linux=check\n"
                "    module2 /boot/initrd.img\n    boot\n}\n")
    r = subprocess.run(["grub-mkrescue", "-o", path, work], capture_output=True)
    shutil.rmtree(work)
    if r.returncode != 0:
        sys.exit(f"bench-linux-amd64: error: grub-mkrescue failed for {path}")
    return path


def keep(name, output):
    """Keeps a run's console output under target/images/bench/ for a look afterwards."""
    with open(os.path.join(OUT, f"{name}.log"), "w") as f:
        f.write(output)
    return output


def fetch_xen():
    """Debian's Xen 4.17 image (gzip, multiboot2), or None (the package is optional)."""
    out = os.path.join(L, "xen-4.17-amd64.gz")
    if os.path.exists(out):
        return out
    debs = os.path.join(L, "debs")
    os.makedirs(debs, exist_ok=True)
    r = subprocess.run(["apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root",
                        "xen-hypervisor-4.17-amd64:amd64"], cwd=debs, capture_output=True)
    names = [f for f in os.listdir(debs) if f.startswith("xen-hypervisor-4.17-amd64_")]
    if r.returncode != 0 or not names:
        return None
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", os.path.join(debs, names[0])], capture_output=True).stdout
    x = subprocess.run(["tar", "-x", "-O", "--wildcards", "./boot/xen-4.17-amd64.gz"], input=tar, capture_output=True)
    if x.returncode != 0 or not x.stdout:
        return None
    with open(out, "wb") as f:
        f.write(x.stdout)
    return out


XEN_OPTIONS = "dom0=pvh console=com1 com1=115200,8n1 console_timestamps=boot noreboot"


def clock(output, domain):
    """Linux's own clock at its power-down, as text to print beside a figure."""
    m = re.search(rf"{re.escape(domain)}\[\s*(\d+\.\d+)\] reboot: (Power down|System halted)", output)
    return f"; Linux's own clock: {float(m.group(1)):.3f} s" if m else ""


def icount_figures(xen_image):
    """Prints the -icount figures; returns whether Xen brought its dom0 to the halt."""
    _, n = run_until(native(1, True), r"reboot: Power down", 900)
    _, k = run_until(machine(1, True) + ["-cdrom", iso(KEEL, "linux-keel", "", 1)], r"all domains have ended", 900)
    keep("icount-native", n)
    keep("icount-keel", k)
    m_n = re.search(r"\[linux\] tsc: (\d+)", n)
    m_k = re.search(r"all domains have ended at (\d+\.\d+) s", k)
    print("1. Emulated time, reset to power-off (-icount shift=0,sleep=off, 1 CPU, 1 vCPU)")
    if not (m_n and m_k):
        print(f"   a run did not reach its power-off: native {'ok' if m_n else 'no TSC line'},"
              f" Keel {'ok' if m_k else 'no end line'}")
        return False
    tn, tk = int(m_n.group(1)) / 1e9, float(m_k.group(1))
    print(f"   native Linux (QEMU -kernel):      {tn:.3f} s" + clock(n, ""))
    print(f"   Linux on Keel (Xen's GRUB entry): {tk:.3f} s   ({tk / tn:.3f}x native)" + clock(k, "(d0) "))
    if not xen_image:
        return False
    _, x = run_until(machine(1, True, iommu=True) + ["-cdrom", iso(xen_image, "linux-xen", XEN_OPTIONS, 1)],
                     r"Dom0 halted|Manual reset required|rebooting machine", 900)
    keep("icount-xen", x)
    m_x = re.search(r"\(XEN\) \[\s*(\d+\.\d+)\] Hardware Dom0 halted", x)
    if m_x:
        tx = float(m_x.group(1))
        print(f"   Linux on Xen 4.17 (dom0=pvh):     {tx:.3f} s   ({tx / tn:.3f}x native)" + clock(x, ""))
        return True
    else:
        print("   Linux on Xen 4.17 (dom0=pvh): did not reach its halt under -icount; Xen's last lines:")
        for line in [l for l in x.splitlines() if "(XEN)" in l][-8:]:
            print(f"     {line}")
        return False


def wall_figures(runs, xen_image):
    configs = [("native", native(2, False)),
               ("Keel", machine(2, False) + ["-cdrom", iso(KEEL, "linux-keel", "", 2)])]
    if xen_image:
        configs.append(("Xen 4.17", machine(2, False, iommu=True) + ["-cdrom", iso(xen_image, "linux-xen", XEN_OPTIONS, 2)]))
    times = {name: [] for name, _ in configs}
    for _ in range(runs):
        for name, cmd in configs:
            t, out = run_until(cmd, re.escape(MARKER), 600)
            keep(f"wall-{name.split()[0].lower()}", out)
            print(f"   ({name}: {'%.2f s' % t if t is not None else 'no userspace marker'})", flush=True)
            if t is not None:
                times[name].append(t)
    print(f"2. Wall time, QEMU start to '{MARKER}' (TCG, 2 CPUs, 2 vCPUs; median of {runs} interleaved runs)")
    print_medians([name for name, _ in configs], times)
    if not xen_image:
        print("   Xen 4.17: not measured (its package did not download, or its dom0 did not boot under -icount)")


if __name__ == "__main__":
    counts = [int(a) for a in sys.argv[1:] if a.isdigit()]
    runs = counts[0] if counts else 5
    os.makedirs(OUT, exist_ok=True)
    xen_image = fetch_xen()
    # Xen takes part in the wall-time runs only once its dom0 reached the halt under
    # -icount (a dom0 that never reaches userspace would cost each run its time limit).
    xen_boots = False
    if "--wall-only" not in sys.argv:
        xen_boots = icount_figures(xen_image)
    wall_figures(runs, xen_image if xen_boots else None)

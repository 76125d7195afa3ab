//! Passthrough on arm64 (issue 13, `docs/devices.md`): QEMU's virtio-net transport's MMIO
//! page (`dts/passthrough-virtio-mmio.dts`, Xen's dom0less binding, no interrupts)
//! given to a direct-mapped domain, which reads the transport's registers; an ordinary
//! domain reading the same address takes the stage-2 abort; a third domain asking for
//! the same page is refused by name. Then QEMU's virtio entropy device with its
//! interrupt (`dts/passthrough-virtio.dts`): the direct-mapped domain drives it and
//! receives each completion interrupt through Keel; domains asking for Keel's own UART
//! interrupt, or for the interrupt the first one holds, are refused by name while it
//! runs.

use super::arm64_guests::{on, spec, CONFIGS};
use super::boot;

const PARTIAL: &str = "dts/passthrough-virtio-mmio.dtb";
/// QEMU gives the first `-device` the last transport.
const NET: &[&str] = &["-netdev", "user,id=net0", "-device", "virtio-net-device,netdev=net0"];
const READ: &str = "bootargs=keel.test=mmio keel.mmio=0xa003e00";

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_passthrough_mmio_to_a_direct_mapped_domain_vhe_gicv3() {
    let c = &CONFIGS[0];
    let driver = spec("driver", &format!("mem=64M;direct-map=0x50000000:0x4000000;passthrough={PARTIAL};{READ}"));
    let other = spec("other", &format!("mem=32M;{READ}"));
    let mut args = vec!["--domain", &driver, "--domain", &other];
    args.extend_from_slice(NET);
    let t = on(c, "arm64 passthrough mmio", &args)
        .domain("driver")
        .domain("other")
        .line("d1: 1 passthrough device(s) from /chosen/driver/module@")
        // "virt" (0x74726976), QEMU's legacy transport (version 1), a network card (device 1).
        .line("(d1) mmio 0xa003e00: magic 0x74726976 version 1 device 1")
        .line("(d2) mmio 0xa003e00: aborted (ESR 0x")
        .line("(d1) PASS mmio")
        .line("(d2) PASS mmio");
    boot(t);

    let thief = spec("thief", &format!("mem=32M;direct-map=0x58000000:0x2000000;passthrough={PARTIAL};{READ}"));
    let mut args = vec!["--domain", &driver, "--domain", &thief];
    args.extend_from_slice(NET);
    let t = on(c, "arm64 passthrough refused", &args).domain("driver").line("(d1) PASS mmio").refusal(
        "device passthrough refused: /passthrough/virtio@a003e00: xen,reg [0xa003000, 0xa004000) is owned by \
             domain driver (/passthrough/virtio@a003e00)",
        1,
    );
    boot(t);
}

/// QEMU's first virtio `-device` sits on the last transport (0x0a003e00, SPI 47).
const VIRTIO: &str = "dts/passthrough-virtio.dtb";
const RNG: &[&str] = &["-device", "virtio-rng-device"];

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_passthrough_virtio_rng_interrupts_vhe_gicv3() {
    virtio_rng_interrupts(&CONFIGS[0]);
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_passthrough_virtio_rng_interrupts_nvhe_gicv2() {
    virtio_rng_interrupts(&CONFIGS[1]);
}

fn virtio_rng_interrupts(c: &(&str, &[&str], u32)) {
    let driver = spec(
        "driver",
        &format!(
            "mem=64M;direct-map=0x50000000:0x4000000;passthrough={VIRTIO};\
             bootargs=keel.test=virtio-rng keel.mmio=0xa003e00 keel.irq=79"
        ),
    );
    let uart = spec(
        "uart",
        &format!("mem=32M;direct-map=0x58000000:0x2000000;passthrough=dts/passthrough-keel-uart.dtb;{READ}"),
    );
    let thief = spec("thief", &format!("mem=32M;direct-map=0x5c000000:0x2000000;passthrough={VIRTIO};{READ}"));
    let mut args = vec!["--domain", &driver, "--domain", &uart, "--domain", &thief];
    args.extend_from_slice(RNG);
    let t = on(c, "arm64 passthrough virtio-rng", &args)
        .domain("driver")
        .line("d1: 2 passthrough device(s) from /chosen/driver/module@")
        .line("SPIs [79, 78]")
        .line("d1: host interrupts [79, 78] forwarded to it")
        // Each request waited for its interrupt before the used ring was read.
        .line("(d1) virtio-rng 0xa003e00: 4 requests completed, 4 interrupts (INTID 79), 128 bytes")
        .line("(d1) PASS virtio-rng")
        .line("d1: host interrupts [78, 79] taken back")
        .line("/chosen/uart: domain uart not built")
        .line("/passthrough/pl011@9000000: interrupt 33 (SPI 1) is used by Keel: its console UART")
        .refusal(
            "/passthrough/virtio@a003e00: interrupt 79 (SPI 47) is owned by domain driver (/passthrough/virtio@a003e00)",
            1,
        );
    boot(t);
}

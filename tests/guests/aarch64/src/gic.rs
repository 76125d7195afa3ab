//! The guest's side of the GIC Keel emulates: GICv3 (distributor, redistributors and
//! the system-register CPU interface) or GICv2 (distributor and memory-mapped CPU
//! interface), as the device tree says.

use crate::board::BOARD;
use crate::platform::Arm;
use core::sync::atomic::Ordering::Relaxed;

/// The virtual timer's PPI.
pub const TIMER_IRQ: u32 = 27;
/// Priority of everything this guest enables.
const PRIORITY: u32 = 0xa0;

/// Reads a GIC register with a plain `ldr` (no writeback): Keel emulates only accesses
/// with a valid syndrome, as the architecture gives for these.
pub fn read32(addr: u64) -> u32 {
    let v: u32;
    // SAFETY: a GIC register, mapped as device memory by `mmu`.
    unsafe { core::arch::asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack)) };
    v
}

pub fn write32(addr: u64, v: u32) {
    // SAFETY: as for `read32`.
    unsafe { core::arch::asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack)) };
}

macro_rules! sysreg_rw {
    ($read:ident, $write:ident, $reg:literal) => {
        #[allow(dead_code)]
        fn $read() -> u64 {
            let v: u64;
            // SAFETY: a GIC CPU-interface register; reading IAR acknowledges, which the
            // caller intends.
            unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nostack)) };
            v
        }
        #[allow(dead_code)]
        fn $write(v: u64) {
            // SAFETY: a GIC CPU-interface register of this CPU.
            unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v, options(nostack)) };
        }
    };
}

sysreg_rw!(icc_sre, set_icc_sre, "S3_0_C12_C12_5");
sysreg_rw!(icc_pmr, set_icc_pmr, "S3_0_C4_C6_0");
sysreg_rw!(icc_iar1, set_icc_iar1, "S3_0_C12_C12_0");
sysreg_rw!(icc_eoir1, set_icc_eoir1, "S3_0_C12_C12_1");
sysreg_rw!(icc_bpr1, set_icc_bpr1, "S3_0_C12_C12_3");
sysreg_rw!(icc_igrpen1, set_icc_igrpen1, "S3_0_C12_C12_7");
sysreg_rw!(icc_sgi1r, set_icc_sgi1r, "S3_0_C12_C11_5");

fn v3() -> bool {
    BOARD.gic_version.load(Relaxed) == 3
}

/// GICv3: this CPU's redistributor (RD frame), found by its affinity.
fn redistributor(cpu: u32) -> Option<u64> {
    let base = BOARD.gicr_or_gicc.load(Relaxed);
    let want = crate::psci::mpidr_of(cpu);
    for i in 0..crate::MAX_CPUS as u64 * 2 {
        let rd = base + i * 0x2_0000;
        let typer = read32(rd + 0x8) as u64 | (read32(rd + 0xc) as u64) << 32;
        if typer >> 32 == want {
            return Some(rd);
        }
        if typer & (1 << 4) != 0 {
            break;
        }
    }
    None
}

/// Enables the distributor (boot CPU) and this CPU's interface, with SGIs, the
/// virtual timer and the event PPI unmasked in the controller.
pub fn init_cpu(cpu: u32) -> Result<(), &'static str> {
    let gicd = BOARD.gicd.load(Relaxed);
    let event = BOARD.event_irq.load(Relaxed);
    let enable = 0xffff | 1 << TIMER_IRQ | 1 << event;
    if v3() {
        if cpu == 0 {
            write32(gicd, 1 << 4 | 1 << 1 | 1); // ARE, EnableGrp1, EnableGrp0
        }
        let rd = redistributor(cpu).ok_or("no GICv3 redistributor matches this CPU")?;
        let waker = read32(rd + 0x14);
        write32(rd + 0x14, waker & !(1 << 1));
        while read32(rd + 0x14) & (1 << 2) != 0 {
            core::hint::spin_loop();
        }
        let sgi = rd + 0x1_0000;
        write32(sgi + 0x80, u32::MAX); // group 1
        for i in 0..8 {
            write32(sgi + 0x400 + 4 * i, PRIORITY * 0x0101_0101);
        }
        write32(sgi + 0x100, enable);
        set_icc_sre(icc_sre() | 1);
        set_icc_pmr(0xff);
        set_icc_bpr1(0);
        set_icc_igrpen1(1);
    } else {
        if cpu == 0 {
            write32(gicd, 1);
        }
        for i in 0..8 {
            write32(gicd + 0x400 + 4 * i, PRIORITY * 0x0101_0101);
        }
        write32(gicd + 0x100, enable);
        let gicc = BOARD.gicr_or_gicc.load(Relaxed);
        write32(gicc + 0x4, 0xff); // PMR
        write32(gicc, 1); // CTLR: enable
    }
    Ok(())
}

/// Enables SPI `intid` (group 1 on GICv3), delivered to vCPU 0 (the reset routing).
pub fn enable_spi(intid: u32) {
    let gicd = BOARD.gicd.load(Relaxed);
    let (word, bit) = (4 * (intid as u64 / 32), 1 << (intid % 32));
    if v3() {
        write32(gicd + 0x80 + word, read32(gicd + 0x80 + word) | bit);
    }
    let prio = gicd + 0x400 + (intid as u64 & !3);
    let shift = (intid % 4) * 8;
    write32(prio, (read32(prio) & !(0xff << shift)) | PRIORITY << shift);
    write32(gicd + 0x100 + word, bit);
}

/// Sends SGI `sgi` to vCPU `cpu`.
pub fn send_sgi(cpu: u32, sgi: u32) {
    if v3() {
        let aff1 = (cpu / 16) as u64;
        set_icc_sgi1r(aff1 << 16 | (sgi as u64) << 24 | 1 << (cpu % 16));
    } else {
        write32(BOARD.gicd.load(Relaxed) + 0xf00, (1 << (16 + cpu)) | sgi);
    }
}

fn acknowledge() -> u32 {
    if v3() {
        icc_iar1() as u32 & 0xff_ffff
    } else {
        read32(BOARD.gicr_or_gicc.load(Relaxed) + 0xc)
    }
}

fn end_of_interrupt(iar: u32) {
    if v3() {
        set_icc_eoir1(iar as u64);
    } else {
        write32(BOARD.gicr_or_gicc.load(Relaxed) + 0x10, iar);
    }
}

/// The IRQ vector: takes every pending interrupt and hands it to the scenarios.
pub fn handle_irq(p: &Arm) {
    loop {
        let iar = acknowledge();
        let intid = iar & 0x3ff;
        if intid >= 1020 {
            return;
        }
        if intid == BOARD.event_irq.load(Relaxed) {
            keel_test_guest::irq::upcall(p);
        } else if intid == TIMER_IRQ {
            crate::regs::set_virtual_timer(0, 0);
            keel_test_guest::irq::timer(p);
        } else if intid < 16 {
            keel_test_guest::irq::ipi(p, intid);
        } else if intid == crate::uart::SPI {
            crate::uart::on_interrupt();
        } else if crate::virtio_rng::owns(intid) {
            crate::virtio_rng::on_interrupt();
        }
        end_of_interrupt(iar);
    }
}

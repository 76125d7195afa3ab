//! GICv3: distributor (GICD), one redistributor per CPU (GICR) and the CPU interface
//! through the ICC system registers.

use super::shared::{current_index, ALL_PRIORITIES, PRIORITY_MASK, WAKEUP_SGI};
use crate::dt::{GicInfo, MAX_CPUS};
use crate::regs::*;
use crate::cpu;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ICC_SRE_EL2, ICH_HCR_EL2, ICH_VTR_EL2, ID_AA64PFR0_EL1};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use keel_kernel::arch::CpuId;
use keel_kernel::mm::Region;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    GICD_CTLR [
        /// Register write pending.
        RWP OFFSET(31) NUMBITS(1) [],
        /// Affinity routing (ARE, or ARE_NS in the non-secure view).
        ARE OFFSET(4) NUMBITS(1) [],
        /// Group 1 (non-secure view: group 1 NS in bit 0, 1A in bit 1).
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        EnableGrp0 OFFSET(0) NUMBITS(1) []
    ],
    GICR_WAKER [
        ChildrenAsleep OFFSET(2) NUMBITS(1) [],
        ProcessorSleep OFFSET(1) NUMBITS(1) []
    ]
}

register_structs! {
    Distributor {
        (0x0000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x0004 => typer: ReadOnly<u32>),
        (0x0008 => _reserved0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => _reserved1),
        (0x0380 => icactiver: [ReadWrite<u32>; 32]),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x07fc => _reserved2),
        (0x6100 => irouter: [ReadWrite<u64>; 988]),
        (0x7fe0 => @END),
    },
    RdFrame {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => iidr: ReadOnly<u32>),
        (0x0008 => typer: ReadOnly<u64>),
        (0x0010 => statusr: ReadWrite<u32>),
        (0x0014 => waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0018 => @END),
    },
    SgiFrame {
        (0x0000 => _reserved0),
        (0x0080 => igroupr0: ReadWrite<u32>),
        (0x0084 => _reserved1),
        (0x0100 => isenabler0: ReadWrite<u32>),
        (0x0104 => _reserved2),
        (0x0180 => icenabler0: ReadWrite<u32>),
        (0x0184 => _reserved3),
        (0x0300 => isactiver0: ReadWrite<u32>),
        (0x0304 => _reserved4),
        (0x0380 => icactiver0: ReadWrite<u32>),
        (0x0384 => _reserved5),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 8]),
        (0x0420 => @END),
    }
}

/// GICR_TYPER: this is the last frame of its region.
const TYPER_LAST: u64 = 1 << 4;
/// GICR_TYPER: the frame has the GICv4 virtual-LPI pages (four 64 KiB frames, not two).
const TYPER_VLPIS: u64 = 1 << 1;
const SGI_FRAME_OFFSET: usize = 0x1_0000;

pub struct GicV3 {
    dist: usize,
    redist: [Region; 4],
    redist_count: usize,
}

/// Each CPU's redistributor frame (0: not found yet).
static RD_BASE: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

impl GicV3 {
    pub fn new(info: &GicInfo) -> Self {
        GicV3 { dist: info.dist.start as usize, redist: info.redist, redist_count: info.redist_count }
    }

    fn gicd(&self) -> &Distributor {
        // SAFETY: the distributor frame from the device tree, mapped as Device memory.
        unsafe { &*(self.dist as *const Distributor) }
    }

    fn wait_rwp(&self) {
        while self.gicd().ctlr.is_set(GICD_CTLR::RWP) {
            core::hint::spin_loop();
        }
    }

    pub fn lines(&self) -> usize {
        (((self.gicd().typer.get() & 0x1f) as usize + 1) * 32).min(1020)
    }

    /// Distributor set-up (boot CPU): every SPI group 1, disabled, default priority.
    pub fn init(&self) -> Result<(), &'static str> {
        if (ID_AA64PFR0_EL1.get() >> 24) & 0xf == 0 {
            return Err("the device tree says GICv3 but this CPU has no GIC system-register interface");
        }
        let d = self.gicd();
        d.ctlr.set(0);
        self.wait_rwp();
        for i in 1..self.lines() / 32 {
            d.igroupr[i].set(u32::MAX);
            d.icenabler[i].set(u32::MAX);
        }
        for i in 8..self.lines() / 4 {
            d.ipriorityr[i].set(ALL_PRIORITIES);
        }
        d.ctlr.write(GICD_CTLR::ARE::SET + GICD_CTLR::EnableGrp1::SET + GICD_CTLR::EnableGrp0::SET);
        self.wait_rwp();
        Ok(())
    }

    fn find_redistributor(&self) -> Option<usize> {
        let m = cpu::mpidr_affinity();
        let affinity = ((m >> 32) & 0xff) << 24 | (m & 0xff_ffff);
        for r in &self.redist[..self.redist_count] {
            let mut frame = r.start as usize;
            while (frame as u64) < r.end {
                // SAFETY: a frame inside a mapped redistributor region.
                let typer = unsafe { &*(frame as *const RdFrame) }.typer.get();
                if typer >> 32 == affinity {
                    return Some(frame);
                }
                if typer & TYPER_LAST != 0 {
                    break;
                }
                frame += if typer & TYPER_VLPIS != 0 { 0x4_0000 } else { 0x2_0000 };
            }
        }
        None
    }

    fn rd(&self) -> usize {
        let slot = &RD_BASE[current_index()];
        let base = slot.load(Relaxed);
        if base != 0 {
            return base;
        }
        let base = self.find_redistributor().expect("no GICv3 redistributor matches this CPU's affinity");
        slot.store(base, Relaxed);
        base
    }

    fn sgi_frame(&self) -> &SgiFrame {
        // SAFETY: the SGI/PPI frame follows this CPU's RD frame in the mapped region.
        unsafe { &*((self.rd() + SGI_FRAME_OFFSET) as *const SgiFrame) }
    }

    /// This CPU's redistributor and CPU interface.
    pub fn init_cpu(&self) {
        // SAFETY: this CPU's RD frame, mapped as Device memory.
        let rd = unsafe { &*(self.rd() as *const RdFrame) };
        rd.waker.modify(GICR_WAKER::ProcessorSleep::CLEAR);
        while rd.waker.is_set(GICR_WAKER::ChildrenAsleep) {
            core::hint::spin_loop();
        }
        let sgi = self.sgi_frame();
        sgi.igroupr0.set(u32::MAX);
        sgi.icenabler0.set(u32::MAX);
        for p in &sgi.ipriorityr {
            p.set(ALL_PRIORITIES);
        }
        sgi.isenabler0.set(1 << WAKEUP_SGI);

        ICC_SRE_EL2
            .write(ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::DFB::SET + ICC_SRE_EL2::DIB::SET + ICC_SRE_EL2::ENABLE::SET);
        barrier::isb(barrier::SY);
        // The virtual CPU interface stays off until guests get a virtual GIC.
        ICH_HCR_EL2.set(0);
        IccPmrEl1.set(PRIORITY_MASK);
        IccBpr1El1.set(0);
        // EOI only drops the priority; deactivation is separate (`ICC_DIR_EL1`), so that
        // a guest's EOI can deactivate a hardware-linked interrupt (its virtual timer).
        IccCtlrEl1.modify(ICC_CTLR_EL1::EOImode::SET);
        IccIgrpen1El1.set(1);
        barrier::isb(barrier::SY);
    }

    pub fn enable(&self, irq: u32, on: bool) {
        let bit = 1 << (irq % 32);
        if irq < 32 {
            let sgi = self.sgi_frame();
            if on {
                sgi.isenabler0.set(bit)
            } else {
                sgi.icenabler0.set(bit)
            }
        } else if (irq as usize) < self.lines() {
            let d = self.gicd();
            if on {
                d.irouter[irq as usize - 32].set(cpu::mpidr_affinity());
                d.isenabler[irq as usize / 32].set(bit);
            } else {
                d.icenabler[irq as usize / 32].set(bit);
                self.wait_rwp();
            }
        }
    }

    pub fn acknowledge(&self) -> Option<u32> {
        let intid = (IccIar1El1.get() & 0xff_ffff) as u32;
        barrier::dsb(barrier::SY);
        (!(1020..=1023).contains(&intid)).then_some(intid)
    }

    /// The highest-priority pending group-1 interrupt, without acknowledging it.
    pub fn highest_pending(&self) -> Option<u32> {
        let intid = (IccHppir1El1.get() & 0xff_ffff) as u32;
        (!(1020..=1023).contains(&intid)).then_some(intid)
    }

    /// Drops the running priority of `irq` (it stays active).
    pub fn priority_drop(&self, irq: u32) {
        IccEoir1El1.set(irq as u64);
        barrier::isb(barrier::SY);
    }

    /// Deactivates `irq`.
    pub fn deactivate(&self, irq: u32) {
        IccDirEl1.set(irq as u64);
        barrier::isb(barrier::SY);
    }

    pub fn end_of_interrupt(&self, irq: u32) {
        self.priority_drop(irq);
        self.deactivate(irq);
    }

    /// Clears SPI `irq`'s active state in the distributor (from any CPU).
    pub fn clear_active(&self, irq: u32) {
        if (32..self.lines() as u32).contains(&irq) {
            self.gicd().icactiver[irq as usize / 32].set(1 << (irq % 32));
            self.wait_rwp();
        }
    }

    /// Sets or clears the active state of this CPU's PPI `irq`.
    pub fn set_private_active(&self, irq: u32, active: bool) {
        let sgi = self.sgi_frame();
        if active {
            sgi.isactiver0.set(1 << irq);
        } else {
            sgi.icactiver0.set(1 << irq);
        }
    }

    pub fn send_sgi(&self, target: CpuId, sgi: u32) {
        let Some(m) = cpu::mpidr_of(target) else { return };
        let aff0 = m & 0xff;
        // Make earlier memory writes visible to the target before it wakes.
        barrier::dsb(barrier::ISHST);
        IccSgi1rEl1.write(
            ICC_SGI1R_EL1::Aff3.val((m >> 32) & 0xff)
                + ICC_SGI1R_EL1::RS.val(aff0 >> 4)
                + ICC_SGI1R_EL1::Aff2.val((m >> 16) & 0xff)
                + ICC_SGI1R_EL1::INTID.val(sgi as u64)
                + ICC_SGI1R_EL1::Aff1.val((m >> 8) & 0xff)
                + ICC_SGI1R_EL1::TargetList.val(1 << (aff0 & 0xf)),
        );
        barrier::isb(barrier::SY);
    }

    /// Number of list registers (ICH_VTR_EL2.ListRegs + 1).
    pub fn list_registers(&self) -> u32 {
        ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as u32 + 1
    }
}

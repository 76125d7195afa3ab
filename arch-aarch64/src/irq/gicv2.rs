//! GICv2: distributor (GICD) and memory-mapped CPU interface (GICC); the virtual
//! interface control block (GICH) is only read for its list-register count.

use super::shared::{current_index, ALL_PRIORITIES, PRIORITY_MASK, WAKEUP_SGI};
use crate::dt::{GicInfo, MAX_CPUS};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use keel_kernel::arch::CpuId;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    Distributor {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => typer: ReadOnly<u32>),
        (0x008 => _reserved0),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x300 => isactiver: [ReadWrite<u32>; 32]),
        (0x380 => icactiver: [ReadWrite<u32>; 32]),
        (0x400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x7fc => _reserved2),
        (0x800 => itargetsr: [ReadWrite<u32>; 255]),
        (0xbfc => _reserved3),
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => @END),
    },
    CpuInterface {
        (0x00 => ctlr: ReadWrite<u32>),
        (0x04 => pmr: ReadWrite<u32>),
        (0x08 => bpr: ReadWrite<u32>),
        (0x0c => iar: ReadOnly<u32>),
        (0x10 => eoir: WriteOnly<u32>),
        (0x14 => _reserved0),
        (0x18 => hppir: ReadOnly<u32>),
        (0x1c => _reserved1),
        (0x1000 => dir: WriteOnly<u32>),
        (0x1004 => @END),
    },
    HypInterface {
        (0x00 => hcr: ReadWrite<u32>),
        (0x04 => vtr: ReadOnly<u32>),
        (0x08 => @END),
    }
}

/// GICD_CTLR / GICC_CTLR: enable groups 0 and 1 (bit 0 alone in the non-secure view).
const ENABLE_GROUPS: u32 = 0b11;
/// GICC_CTLR.EOImodeNS: EOI drops the priority, GICC_DIR deactivates (so a guest's EOI
/// can deactivate a hardware-linked interrupt: its virtual timer).
const EOI_MODE_NS: u32 = 1 << 9;

pub struct GicV2 {
    dist: usize,
    cpu_if: usize,
    hyp_if: Option<usize>,
}

/// Each CPU's interface bit for GICD_ITARGETSR and GICD_SGIR.
static TARGET_MASK: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// The last GICC_IAR value per CPU: its source-CPU bits must go back to GICC_EOIR.
static LAST_IAR: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(1023) }; MAX_CPUS];

impl GicV2 {
    pub fn new(info: &GicInfo) -> Self {
        GicV2 {
            dist: info.dist.start as usize,
            cpu_if: info.cpu_if.map_or(0, |r| r.start as usize),
            hyp_if: info.hyp_if.map(|r| r.start as usize),
        }
    }

    fn gicd(&self) -> &Distributor {
        // SAFETY: the distributor frame from the device tree, mapped as Device memory.
        unsafe { &*(self.dist as *const Distributor) }
    }

    fn gicc(&self) -> &CpuInterface {
        // SAFETY: the CPU-interface frame from the device tree, mapped as Device memory.
        unsafe { &*(self.cpu_if as *const CpuInterface) }
    }

    pub fn lines(&self) -> usize {
        (((self.gicd().typer.get() & 0x1f) as usize + 1) * 32).min(1020)
    }

    /// Distributor set-up (boot CPU): every SPI disabled, default priority.
    pub fn init(&self) -> Result<(), &'static str> {
        let d = self.gicd();
        d.ctlr.set(0);
        for i in 1..self.lines() / 32 {
            d.icenabler[i].set(u32::MAX);
        }
        for i in 8..self.lines() / 4 {
            d.ipriorityr[i].set(ALL_PRIORITIES);
        }
        d.ctlr.set(ENABLE_GROUPS);
        Ok(())
    }

    /// This CPU's banked SGI/PPI state and its CPU interface.
    pub fn init_cpu(&self) {
        let d = self.gicd();
        let me = current_index();
        // GICD_ITARGETSR0..7 are banked and read as this CPU's own interface bit.
        TARGET_MASK[me].store(d.itargetsr[0].get() & 0xff, Relaxed);
        d.icenabler[0].set(u32::MAX);
        for i in 0..8 {
            d.ipriorityr[i].set(ALL_PRIORITIES);
        }
        d.isenabler[0].set(1 << WAKEUP_SGI);
        let c = self.gicc();
        c.pmr.set(PRIORITY_MASK as u32);
        c.bpr.set(0);
        c.ctlr.set(ENABLE_GROUPS | EOI_MODE_NS);
        if let Some(base) = self.hyp_if {
            // SAFETY: the GICH frame from the device tree, mapped as Device memory. The
            // virtual interface stays off until guests get a virtual GIC.
            unsafe { &*(base as *const HypInterface) }.hcr.set(0);
        }
    }

    pub fn enable(&self, irq: u32, on: bool) {
        if irq as usize >= self.lines() {
            return;
        }
        let d = self.gicd();
        let (word, bit) = (irq as usize / 32, 1 << (irq % 32));
        if on {
            if irq >= 32 {
                // Route the SPI to this CPU: one byte per interrupt.
                let mask = TARGET_MASK[current_index()].load(Relaxed);
                let reg = &d.itargetsr[irq as usize / 4];
                let shift = (irq % 4) * 8;
                reg.set((reg.get() & !(0xff << shift)) | (mask << shift));
            }
            d.isenabler[word].set(bit);
        } else {
            d.icenabler[word].set(bit);
        }
    }

    pub fn acknowledge(&self) -> Option<u32> {
        let iar = self.gicc().iar.get();
        let intid = iar & 0x3ff;
        if (1020..=1023).contains(&intid) {
            return None;
        }
        LAST_IAR[current_index()].store(iar, Relaxed);
        Some(intid)
    }

    /// The highest-priority pending interrupt, without acknowledging it.
    pub fn highest_pending(&self) -> Option<u32> {
        let intid = self.gicc().hppir.get() & 0x3ff;
        (!(1020..=1023).contains(&intid)).then_some(intid)
    }

    /// The virtual interface control frame (GICH) of the calling CPU, if described.
    pub fn gich(&self) -> Option<usize> {
        self.hyp_if
    }

    /// The IAR value to hand back for `irq` (SGIs carry their source CPU).
    fn iar_of(&self, irq: u32) -> u32 {
        let last = LAST_IAR[current_index()].load(Relaxed);
        if last & 0x3ff == irq {
            last
        } else {
            irq
        }
    }

    /// Drops the running priority of `irq` (it stays active).
    pub fn priority_drop(&self, irq: u32) {
        self.gicc().eoir.set(self.iar_of(irq));
    }

    /// Deactivates `irq`.
    pub fn deactivate(&self, irq: u32) {
        self.gicc().dir.set(self.iar_of(irq));
    }

    pub fn end_of_interrupt(&self, irq: u32) {
        self.priority_drop(irq);
        self.deactivate(irq);
    }

    /// Clears SPI `irq`'s active state in the distributor (from any CPU).
    pub fn clear_active(&self, irq: u32) {
        if (32..self.lines() as u32).contains(&irq) {
            self.gicd().icactiver[irq as usize / 32].set(1 << (irq % 32));
        }
    }

    /// Sets or clears the active state of this CPU's PPI `irq` (banked).
    pub fn set_private_active(&self, irq: u32, active: bool) {
        let d = self.gicd();
        if active {
            d.isactiver[0].set(1 << irq);
        } else {
            d.icactiver[0].set(1 << irq);
        }
    }

    pub fn send_sgi(&self, target: CpuId, sgi: u32) {
        let Some(mask) = TARGET_MASK.get(target.0 as usize).map(|m| m.load(Relaxed)) else { return };
        if mask == 0 {
            return;
        }
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        self.gicd().sgir.set((mask << 16) | sgi);
    }

    /// Number of list registers (GICH_VTR.ListRegs + 1), if GICH is in the device tree.
    pub fn list_registers(&self) -> Option<u32> {
        let base = self.hyp_if?;
        // SAFETY: the GICH frame from the device tree, mapped as Device memory.
        let h = unsafe { &*(base as *const HypInterface) };
        Some((h.vtr.get() & 0x3f) + 1)
    }
}

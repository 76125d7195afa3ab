//! The local APIC's xAPIC MMIO page (SDM vol. 3, 11.4.1): the registers of the x2APIC
//! MSRs at offset `(index - 0x800) * 16`, 32 bits each, except where xAPIC mode has its
//! own format: the ID (bits 31:24), the writable logical destination and destination
//! format registers, and the ICR as two halves (writing the low half sends the IPI to the
//! 8-bit destination of the high half). SELF_IPI is x2APIC-only. Reads of reserved
//! offsets give 0; writes to read-only or reserved registers, and accesses that are not
//! 32-bit at a register's start, are dropped (the xAPIC gives no #GP for them).

use super::{reg, Effects, Irr, Vlapic, BASE_ENABLE};

const ID: u32 = 0x20;
const LDR: u32 = 0xd0;
const DFR: u32 = 0xe0;
const ICR_LOW: u32 = 0x300;
const ICR_HIGH: u32 = 0x310;
const SELF_IPI: u32 = 0x3f0;
/// The ICR's delivery-status bit, always idle.
const ICR_BUSY: u32 = 1 << 12;
/// The physical broadcast destination in xAPIC and in x2APIC format.
const BROADCAST_XAPIC: u64 = 0xff;
const BROADCAST_X2APIC: u64 = 0xffff_ffff;
/// ICR bit 11: logical destination mode.
const ICR_LOGICAL: u64 = 1 << 11;

/// xAPIC mode's own registers.
#[derive(Clone, Copy, Debug)]
pub(super) struct XapicRegs {
    ldr: u32,
    dfr: u32,
    icr_low: u32,
    icr_high: u32,
}

impl XapicRegs {
    pub(super) const fn new() -> Self {
        XapicRegs { ldr: 0, dfr: 0xffff_ffff, icr_low: 0, icr_high: 0 }
    }
}

/// The x2APIC MSR of the register at page offset `reg` (16-byte aligned).
fn msr_index(reg: u32) -> u32 {
    reg::FIRST + reg / 16
}

impl Vlapic {
    /// The guest-physical page of the xAPIC registers, while the APIC is enabled in
    /// xAPIC mode.
    pub fn xapic_page(&self) -> Option<u64> {
        (self.base & BASE_ENABLE != 0 && !self.x2apic()).then_some(self.base & 0x000f_ffff_ffff_f000)
    }

    /// The 32-bit register at 16-byte-aligned `reg`.
    fn mmio_register(&self, irr: &Irr, reg: u32, now: u64) -> u32 {
        match reg {
            ID => self.id << 24,
            LDR => self.xapic.ldr,
            DFR => self.xapic.dfr,
            ICR_LOW => self.xapic.icr_low & !ICR_BUSY,
            ICR_HIGH => self.xapic.icr_high,
            SELF_IPI => 0,
            r => self.register(irr, msr_index(r), now).and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
        }
    }

    /// Reads `size` bytes at `offset` in the page.
    pub fn mmio_read(&self, irr: &Irr, offset: u32, size: u8, now: u64) -> u64 {
        let within = offset & 0xf;
        if within >= 4 {
            return 0;
        }
        let v = u64::from(self.mmio_register(irr, offset & 0xff0, now)) >> (8 * within);
        match size {
            1 => v & 0xff,
            2 => v & 0xffff,
            _ => v,
        }
    }

    /// Writes `size` bytes of `value` at `offset` in the page; what the write asks of the
    /// caller, with the register's MSR number, if it was not dropped.
    pub fn mmio_write(&mut self, irr: &Irr, offset: u32, size: u8, value: u64, now: u64) -> Option<(u32, Effects)> {
        if offset & 0xf != 0 || size < 4 {
            return None;
        }
        let reg = offset & 0xff0;
        let v32 = u32::try_from(value & 0xffff_ffff).unwrap_or(0);
        match reg {
            LDR => self.xapic.ldr = v32 & 0xff00_0000,
            DFR => self.xapic.dfr = v32 | 0x0fff_ffff,
            ICR_HIGH => self.xapic.icr_high = v32 & 0xff00_0000,
            ICR_LOW => {
                self.xapic.icr_low = v32;
                let mut dest = u64::from(self.xapic.icr_high >> 24);
                if dest == BROADCAST_XAPIC && u64::from(v32) & ICR_LOGICAL == 0 {
                    dest = BROADCAST_X2APIC;
                }
                let icr = dest << 32 | u64::from(v32);
                return self.write_register(irr, reg::ICR, icr, now).map(|fx| (reg::ICR, fx));
            }
            ID | SELF_IPI => {}
            r => {
                let index = msr_index(r);
                // The EOI register takes any value in xAPIC mode.
                let v = if index == reg::EOI { 0 } else { u64::from(v32) };
                return self.write_register(irr, index, v, now).map(|fx| (index, fx));
            }
        }
        None
    }
}

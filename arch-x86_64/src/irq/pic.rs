//! The legacy 8259A pair: remapped away from the exception vectors and fully masked, so a
//! stray or spurious PIC interrupt can never look like a CPU exception.

use crate::regs::outb;

const MASTER_CMD: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_CMD: u16 = 0xa0;
const SLAVE_DATA: u16 = 0xa1;
const ICW1_INIT_ICW4: u8 = 0x11;
const ICW4_8086: u8 = 0x01;

/// Remaps the PICs to vectors `base..base + 16` and masks every input.
pub fn remap_and_mask(base: u8) {
    // SAFETY: the documented 8259A initialisation sequence; it only changes the PICs.
    unsafe {
        outb(MASTER_CMD, ICW1_INIT_ICW4);
        outb(SLAVE_CMD, ICW1_INIT_ICW4);
        outb(MASTER_DATA, base);
        outb(SLAVE_DATA, base + 8);
        outb(MASTER_DATA, 1 << 2); // slave on IRQ2
        outb(SLAVE_DATA, 2); // cascade identity
        outb(MASTER_DATA, ICW4_8086);
        outb(SLAVE_DATA, ICW4_8086);
        outb(MASTER_DATA, 0xff);
        outb(SLAVE_DATA, 0xff);
    }
}

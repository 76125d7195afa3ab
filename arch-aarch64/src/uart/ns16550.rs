//! 16550-compatible UARTs (`ns16550a`, `snps,dw-apb-uart`, ...): transmit a byte at a time
//! while THRE says there is room (the THRE interrupt asked for while the console's output
//! waits), interrupt-driven receive.
//! Registers are `1 << reg_shift` bytes apart and accessed `reg_io_width` bytes wide, as
//! the device tree says.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::ReadWrite;

const THR: usize = 0;
const RBR: usize = 0;
const IER: usize = 1;
const LSR: usize = 5;
/// Interrupt enable: received data available.
const IER_ERBFI: u32 = 1 << 0;
/// Interrupt enable: transmit holding register empty.
const IER_ETBEI: u32 = 1 << 1;
/// Line status: data ready.
const LSR_DR: u32 = 1 << 0;
/// Line status: transmit holding register empty.
const LSR_THRE: u32 = 1 << 5;
/// Line status: transmitter empty (holding and shift register).
const LSR_TEMT: u32 = 1 << 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ns16550 {
    pub base: usize,
    pub reg_shift: u32,
    /// 1 or 4 bytes.
    pub io_width: u32,
}

impl Ns16550 {
    fn read(&self, reg: usize) -> u32 {
        let addr = self.base + (reg << self.reg_shift);
        // SAFETY: `addr` is a register of this UART (device tree `reg`, mapped as Device
        // memory or the MMU is off), naturally aligned for `io_width`.
        unsafe {
            if self.io_width == 4 {
                (*(addr as *const ReadWrite<u32>)).get()
            } else {
                (*(addr as *const ReadWrite<u8>)).get() as u32
            }
        }
    }

    fn write(&self, reg: usize, value: u32) {
        let addr = self.base + (reg << self.reg_shift);
        // SAFETY: as in `read`.
        unsafe {
            if self.io_width == 4 {
                (*(addr as *const ReadWrite<u32>)).set(value)
            } else {
                (*(addr as *const ReadWrite<u8>)).set(value as u8)
            }
        }
    }

    pub fn put(&self, byte: u8) {
        while self.read(LSR) & LSR_THRE == 0 {
            core::hint::spin_loop();
        }
        self.write(THR, byte as u32);
    }

    /// Writes the first of `bytes` if the transmit holding register is empty; returns
    /// how many bytes it wrote (0 or 1: the FIFO's presence is not known).
    pub fn send_ready(&self, bytes: &[u8]) -> usize {
        match bytes.first() {
            Some(&b) if self.read(LSR) & LSR_THRE != 0 => {
                self.write(THR, u32::from(b));
                1
            }
            _ => 0,
        }
    }

    /// Asks for the transmit-empty interrupt, or stops asking; receive stays as it is.
    pub fn transmit_interrupt(&self, on: bool) {
        let ier = self.read(IER);
        self.write(IER, if on { ier | IER_ETBEI } else { ier & !IER_ETBEI });
    }

    /// Waits until every byte has left the UART.
    pub fn flush(&self) {
        while self.read(LSR) & LSR_TEMT == 0 {
            core::hint::spin_loop();
        }
    }

    /// A received byte, if one is waiting.
    pub fn get(&self) -> Option<u8> {
        (self.read(LSR) & LSR_DR != 0).then(|| self.read(RBR) as u8)
    }

    /// Raises the UART's interrupt while received data waits.
    pub fn enable_rx_interrupt(&self) {
        self.write(IER, (self.read(IER) & IER_ETBEI) | IER_ERBFI);
    }
}

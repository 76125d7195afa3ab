//! ARM PrimeCell PL011 UART (`arm,pl011`): transmit while the FIFO has room (the transmit
//! interrupt asked for while the console's output waits), interrupt-driven receive.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// Still transmitting (FIFO not empty or shifting out).
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt mask set/clear.
    INT [
        /// Receive timeout: data waits below the FIFO trigger level.
        RT OFFSET(6) NUMBITS(1) [],
        /// Transmit: the FIFO is at or below its trigger level (room for bytes).
        TX OFFSET(5) NUMBITS(1) [],
        /// Receive: the FIFO reached its trigger level.
        RX OFFSET(4) NUMBITS(1) []
    ]
}

register_structs! {
    Registers {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x30 => cr: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x38 => imsc: ReadWrite<u32, INT::Register>),
        (0x3c => _reserved3),
        (0x44 => icr: ReadWrite<u32, INT::Register>),
        (0x48 => @END),
    }
}

/// A PL011 at a mapped (or, with the MMU off, physical) address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pl011 {
    pub base: usize,
}

impl Pl011 {
    fn regs(&self) -> &Registers {
        // SAFETY: `base` came from the device tree's `reg` for this UART and is mapped as
        // Device memory (or the MMU is off); the block is only ever accessed through these
        // volatile register accessors.
        unsafe { &*(self.base as *const Registers) }
    }

    /// Makes sure the transmitter is on; baud rate and framing stay as the firmware set them.
    pub fn enable(&self) {
        let cr = self.regs().cr.extract();
        if !cr.is_set(CR::UARTEN) || !cr.is_set(CR::TXE) {
            self.regs().cr.set(cr.get() | (CR::UARTEN::SET + CR::TXE::SET).value);
        }
    }

    pub fn put(&self, byte: u8) {
        while self.regs().fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs().dr.set(byte as u32);
    }

    /// Writes the leading bytes of `bytes` while the transmit FIFO has room; returns how
    /// many.
    pub fn send_ready(&self, bytes: &[u8]) -> usize {
        let mut n = 0;
        while n < bytes.len() && !self.regs().fr.is_set(FR::TXFF) {
            self.regs().dr.set(u32::from(bytes[n]));
            n += 1;
        }
        n
    }

    /// Asks for the transmit interrupt, or stops asking (and clears it). The receive
    /// interrupts stay as they are.
    pub fn transmit_interrupt(&self, on: bool) {
        let imsc = self.regs().imsc.extract();
        if on {
            self.regs().imsc.set(imsc.get() | INT::TX::SET.value);
        } else {
            self.regs().imsc.set(imsc.get() & !INT::TX::SET.value);
            self.regs().icr.write(INT::TX::SET);
        }
    }

    /// Waits until every byte has left the UART.
    pub fn flush(&self) {
        while self.regs().fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }

    /// A received byte, if one is waiting.
    pub fn get(&self) -> Option<u8> {
        (!self.regs().fr.is_set(FR::RXFE)).then(|| self.regs().dr.get() as u8)
    }

    /// Turns the receiver on and raises the UART's interrupt while received data waits.
    /// Pending receive status is kept: bytes that came earlier still interrupt (the
    /// caller also drains the FIFO once).
    pub fn enable_rx_interrupt(&self) {
        let cr = self.regs().cr.get();
        self.regs().cr.set(cr | CR::RXE::SET.value);
        let tx = self.regs().imsc.get() & INT::TX::SET.value;
        self.regs().imsc.set(tx | (INT::RX::SET + INT::RT::SET).value);
    }
}

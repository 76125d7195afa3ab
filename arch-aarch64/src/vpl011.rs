//! The virtual PL011 (`vpl011`): a domain's console UART at Xen's `GUEST_PL011_BASE`,
//! emulated on trapped accesses, its interrupt an SPI of the virtual GIC.
//!
//! - Transmit: every byte written to `UARTDR` goes to the domain's console (the caller
//!   hands it to the core, which prints it line by line, tagged with the domain). The
//!   transmit FIFO is always empty, so `UARTFR.TXFE` is set and `TXFF` never; a write
//!   raises the transmit interrupt (as QEMU's model does) until `UARTICR` clears it.
//! - Receive: console input routed to the domain queues here (up to [`RX_MAX`] bytes,
//!   more is dropped); the receive interrupt is raised while anything waits.
//! - The interrupt line is `(RIS & IMSC) != 0`, level-sensitive.
//!
//! Baud rate, line control, FIFO levels and DMA are stored and read back, and mean
//! nothing. Pure: tested on the host.

use alloc::collections::VecDeque;

/// Bytes of input kept for the guest.
pub const RX_MAX: usize = 4096;
/// The depth `UARTFR.RXFF` reports as full.
const RX_FIFO_DEPTH: usize = 16;

const FR_TXFE: u32 = 1 << 7;
const FR_RXFF: u32 = 1 << 6;
const FR_RXFE: u32 = 1 << 4;
/// Interrupt bits (RIS, MIS, IMSC, ICR).
pub const INT_RX: u32 = 1 << 4;
pub const INT_TX: u32 = 1 << 5;
const INT_ALL: u32 = 0x7ff;
/// `UARTPeriphID0..3` then `UARTPCellID0..3` (0xfe0..0xffc), as QEMU's PL011 gives them.
const ID: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
/// `UARTCR` at reset: transmit and receive enabled, UART disabled.
const CR_RESET: u32 = 0x300;
/// `UARTIFLS` at reset: both FIFOs at half.
const IFLS_RESET: u32 = 0x12;

/// What an access did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// What a read returns.
    pub value: u32,
    /// A byte the guest transmitted.
    pub output: Option<u8>,
}

/// One virtual PL011.
#[derive(Clone, Debug)]
pub struct Vpl011 {
    rx: VecDeque<u8>,
    /// Raw interrupt status of the transmit side (receive follows the queue).
    tx_raw: bool,
    imsc: u32,
    cr: u32,
    lcr_h: u32,
    ibrd: u32,
    fbrd: u32,
    ifls: u32,
    dmacr: u32,
    ilpr: u32,
}

impl Default for Vpl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Vpl011 {
    pub fn new() -> Self {
        Vpl011 {
            rx: VecDeque::new(),
            tx_raw: false,
            imsc: 0,
            cr: CR_RESET,
            lcr_h: 0,
            ibrd: 0,
            fbrd: 0,
            ifls: IFLS_RESET,
            dmacr: 0,
            ilpr: 0,
        }
    }

    /// `UARTRIS`.
    pub fn raw_status(&self) -> u32 {
        (if self.rx.is_empty() { 0 } else { INT_RX }) | if self.tx_raw { INT_TX } else { 0 }
    }

    /// The level of the interrupt line.
    pub fn line(&self) -> bool {
        self.raw_status() & self.imsc != 0
    }

    fn flags(&self) -> u32 {
        let rx = if self.rx.is_empty() {
            FR_RXFE
        } else if self.rx.len() >= RX_FIFO_DEPTH {
            FR_RXFF
        } else {
            0
        };
        FR_TXFE | rx
    }

    /// Queues input; returns how many bytes were taken.
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(RX_MAX - self.rx.len());
        self.rx.extend(&bytes[..n]);
        n
    }

    /// A 32-bit (or narrower) read (`value` None) or write at `offset`. Misaligned
    /// accesses read as zero and are ignored.
    pub fn access(&mut self, offset: u64, value: Option<u32>) -> Access {
        if !offset.is_multiple_of(4) {
            return Access::default();
        }
        let read = |value: u32| Access { value, output: None };
        match (offset, value) {
            (0x000, None) => read(self.rx.pop_front().map_or(0, u32::from)),
            (0x000, Some(v)) => {
                self.tx_raw = true;
                Access { value: 0, output: Some(v as u8) }
            }
            (0x004, _) => read(0),
            (0x018, None) => read(self.flags()),
            (0x020, None) => read(self.ilpr),
            (0x020, Some(v)) => store(&mut self.ilpr, v & 0xff),
            (0x024, None) => read(self.ibrd),
            (0x024, Some(v)) => store(&mut self.ibrd, v & 0xffff),
            (0x028, None) => read(self.fbrd),
            (0x028, Some(v)) => store(&mut self.fbrd, v & 0x3f),
            (0x02c, None) => read(self.lcr_h),
            (0x02c, Some(v)) => store(&mut self.lcr_h, v & 0xff),
            (0x030, None) => read(self.cr),
            (0x030, Some(v)) => store(&mut self.cr, v & 0xff87),
            (0x034, None) => read(self.ifls),
            (0x034, Some(v)) => store(&mut self.ifls, v & 0x3f),
            (0x038, None) => read(self.imsc),
            (0x038, Some(v)) => store(&mut self.imsc, v & INT_ALL),
            (0x03c, None) => read(self.raw_status()),
            (0x040, None) => read(self.raw_status() & self.imsc),
            (0x044, Some(v)) => {
                if v & INT_TX != 0 {
                    self.tx_raw = false;
                }
                Access::default()
            }
            (0x048, None) => read(self.dmacr),
            (0x048, Some(v)) => store(&mut self.dmacr, v & 7),
            (0xfe0..=0xffc, None) => read(ID[((offset - 0xfe0) / 4) as usize]),
            _ => Access::default(),
        }
    }
}

fn store(reg: &mut u32, v: u32) -> Access {
    *reg = v;
    Access::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmits_and_raises_tx_until_cleared() {
        let mut u = Vpl011::new();
        assert_eq!(u.access(0x018, None).value, FR_TXFE | FR_RXFE);
        assert_eq!(u.access(0x000, Some(0x141)).output, Some(b'A'));
        assert_eq!(u.access(0x03c, None).value, INT_TX);
        assert!(!u.line(), "masked");
        u.access(0x038, Some(INT_TX | INT_RX));
        assert!(u.line());
        assert_eq!(u.access(0x040, None).value, INT_TX);
        u.access(0x044, Some(INT_TX));
        assert!(!u.line());
    }

    #[test]
    fn receives_in_order_with_the_interrupt_held_while_data_waits() {
        let mut u = Vpl011::new();
        u.access(0x038, Some(INT_RX));
        assert_eq!(u.receive(b"hi"), 2);
        assert!(u.line());
        assert_eq!(u.access(0x018, None).value & FR_RXFE, 0);
        u.access(0x044, Some(INT_RX));
        assert!(u.line(), "level: clearing does not drop queued data");
        assert_eq!(u.access(0x000, None).value, b'h' as u32);
        assert_eq!(u.access(0x000, None).value, b'i' as u32);
        assert!(!u.line());
        assert_eq!(u.access(0x000, None).value, 0, "empty reads as zero");
        assert_eq!(u.receive(&[0; RX_MAX + 5]), RX_MAX);
        assert_eq!(u.access(0x018, None).value & FR_RXFF, FR_RXFF);
    }

    #[test]
    fn identifies_as_a_pl011_and_keeps_its_settings() {
        let mut u = Vpl011::new();
        let id: alloc::vec::Vec<u32> = (0..8).map(|i| u.access(0xfe0 + 4 * i, None).value).collect();
        assert_eq!(id, ID);
        u.access(0x024, Some(13));
        u.access(0x02c, Some(0x70));
        assert_eq!((u.access(0x024, None).value, u.access(0x02c, None).value), (13, 0x70));
        assert_eq!(u.access(0x031, Some(1)), Access::default());
        assert_eq!(u.access(0x030, None).value, CR_RESET);
    }
}

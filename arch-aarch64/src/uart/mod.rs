//! The UARTs Keel can use as its console.

mod ns16550;
mod pl011;

pub use ns16550::Ns16550;
pub use pl011::Pl011;

/// A console UART found in the device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uart {
    Pl011(Pl011),
    Ns16550(Ns16550),
}

impl Uart {
    pub fn base(&self) -> usize {
        match self {
            Uart::Pl011(u) => u.base,
            Uart::Ns16550(u) => u.base,
        }
    }

    /// Bytes of register space to map.
    pub fn span(&self) -> usize {
        match self {
            Uart::Pl011(_) => 0x1000,
            Uart::Ns16550(u) => 8 << u.reg_shift,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Uart::Pl011(_) => "pl011",
            Uart::Ns16550(_) => "ns16550",
        }
    }

    pub fn enable(&self) {
        if let Uart::Pl011(u) = self {
            u.enable();
        }
    }

    /// Writes `s`, turning `\n` into `\r\n`.
    pub fn write_str(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
    }

    fn put(&self, b: u8) {
        match self {
            Uart::Pl011(u) => u.put(b),
            Uart::Ns16550(u) => u.put(b),
        }
    }

    /// Writes the leading bytes of `bytes` while the transmitter has room, without
    /// waiting; returns how many.
    pub fn send_ready(&self, bytes: &[u8]) -> usize {
        match self {
            Uart::Pl011(u) => u.send_ready(bytes),
            Uart::Ns16550(u) => u.send_ready(bytes),
        }
    }

    /// Asks for the transmit interrupt (room in the transmitter), or stops asking.
    pub fn transmit_interrupt(&self, on: bool) {
        match self {
            Uart::Pl011(u) => u.transmit_interrupt(on),
            Uart::Ns16550(u) => u.transmit_interrupt(on),
        }
    }

    /// A received byte, if one is waiting.
    pub fn get(&self) -> Option<u8> {
        match self {
            Uart::Pl011(u) => u.get(),
            Uart::Ns16550(u) => u.get(),
        }
    }

    /// Makes the UART interrupt while received data waits.
    pub fn enable_rx_interrupt(&self) {
        match self {
            Uart::Pl011(u) => u.enable_rx_interrupt(),
            Uart::Ns16550(u) => u.enable_rx_interrupt(),
        }
    }

    pub fn flush(&self) {
        match self {
            Uart::Pl011(u) => u.flush(),
            Uart::Ns16550(u) => u.flush(),
        }
    }
}

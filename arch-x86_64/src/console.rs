//! The 16550 UART on COM1 (I/O port 0x3f8, 115200 8N1): Keel's console sink, the early
//! path used before the portable console exists, and console input (the receive
//! interrupt, routed by `console_input`).

use crate::regs::{inb, outb};
use core::fmt;
use keel_kernel::console::ConsoleSink;

/// COM1's base I/O port.
pub const COM1: u16 = 0x3f8;
/// The console fact printed in the banner.
pub const DESCRIPTION: &str = "com1@0x3f8";

const THR: u16 = 0; // transmit holding register (DLAB=0)
const RBR: u16 = 0; // receive buffer register (DLAB=0, read)
const DLL: u16 = 0; // divisor latch low (DLAB=1)
const IER: u16 = 1; // interrupt enable (DLAB=0)
const DLM: u16 = 1; // divisor latch high (DLAB=1)
const FCR: u16 = 2; // FIFO control
const LCR: u16 = 3; // line control
const MCR: u16 = 4; // modem control
const LSR: u16 = 5; // line status

const LCR_DLAB: u8 = 0x80;
const LCR_8N1: u8 = 0x03;
/// FIFOs on, the transmit FIFO cleared, receive trigger at 14 bytes. The receive FIFO is
/// not cleared: what was typed while the loader ran stays input (a 16550 still drops the
/// byte in its holding register if this write turns the FIFOs on).
const FCR_ENABLE_CLEAR_TX_14: u8 = 0xc5;
const MCR_DTR_RTS: u8 = 0x03;
/// OUT2 gates the UART's interrupt line onto the ISA bus on PCs.
const MCR_OUT2: u8 = 0x08;
const IER_RX_AVAILABLE: u8 = 0x01;
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THRE: u8 = 1 << 5;
const LSR_TEMT: u8 = 1 << 6;
/// 115200 baud from the 1.8432 MHz clock.
const DIVISOR_115200: u16 = 1;
/// Polls of LSR before giving up on a UART that never becomes ready (absent device).
const MAX_POLLS: u32 = 1_000_000;

/// Programs COM1 for 115200 8N1 with FIFOs and no interrupts.
pub fn init() {
    // SAFETY: these are the 16550's documented configuration registers on COM1.
    unsafe {
        outb(COM1 + IER, 0);
        outb(COM1 + LCR, LCR_DLAB);
        outb(COM1 + DLL, DIVISOR_115200 as u8);
        outb(COM1 + DLM, (DIVISOR_115200 >> 8) as u8);
        outb(COM1 + LCR, LCR_8N1);
        outb(COM1 + FCR, FCR_ENABLE_CLEAR_TX_14);
        outb(COM1 + MCR, MCR_DTR_RTS);
    }
}

fn wait_for(bit: u8) {
    for _ in 0..MAX_POLLS {
        if inb(COM1 + LSR) & bit != 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

fn put(byte: u8) {
    wait_for(LSR_THRE);
    // SAFETY: writing the transmit holding register sends one byte.
    unsafe { outb(COM1 + THR, byte) };
}

/// Writes `s`, turning `\n` into `\r\n`.
pub fn write_str(s: &str) {
    for b in s.bytes() {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

/// Writes `bytes` as they are.
pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        put(b);
    }
}

/// Turns on COM1's receive interrupt (the routing to a CPU is the caller's:
/// `console_input`).
pub fn enable_rx_interrupt() {
    // SAFETY: IER and MCR are COM1's interrupt-enable and modem-control registers; the
    // receive interrupt only signals, the reads in `read` clear it.
    unsafe {
        outb(COM1 + MCR, MCR_DTR_RTS | MCR_OUT2);
        outb(COM1 + IER, IER_RX_AVAILABLE);
    }
}

/// Moves what COM1 received into `buf` without waiting; returns how many bytes.
pub fn read(buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() && inb(COM1 + LSR) & LSR_DATA_READY != 0 {
        buf[n] = inb(COM1 + RBR);
        n += 1;
    }
    n
}

/// Waits until every queued byte has left the transmitter (LSR.TEMT). Emulators that
/// pace the UART (Bochs) drop whatever is still queued when the machine powers off.
pub fn drain() {
    wait_for(LSR_TEMT);
}

/// The console sink handed to `keel_kernel::console`.
pub struct Com1;

impl ConsoleSink for Com1 {
    fn write_str(&self, s: &str) {
        write_str(s);
    }

    fn write_bytes(&self, bytes: &[u8]) {
        write_bytes(bytes);
    }
}

pub static SINK: Com1 = Com1;

struct Early;

impl fmt::Write for Early {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_str(s);
        Ok(())
    }
}

/// Prints a line straight to the UART: only for the boot path before the portable console
/// is installed, when nothing else can report what went wrong.
pub fn early_line(args: fmt::Arguments<'_>) {
    let _ = fmt::Write::write_fmt(&mut Early, format_args!("{args}\n"));
}

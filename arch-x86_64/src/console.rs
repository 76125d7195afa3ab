//! The 16550 UART on COM1 (I/O port 0x3f8, 115200 8N1): the transmitter the portable
//! console drains its ring into (up to a FIFO's worth of bytes whenever THRE says the
//! FIFO is empty, and the THRE interrupt while output waits), the early path used before
//! the portable console exists, and console input (the receive interrupt; both
//! interrupts share COM1's line, routed by `console_input`).

use crate::regs::{inb, outb};
use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};
use keel_kernel::console::ConsoleUart;

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
const IIR: u16 = 2; // interrupt identification (read)

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
/// Interrupt while the transmit holding register (the FIFO, with FIFOs on) is empty.
const IER_THR_EMPTY: u8 = 0x02;
/// IIR bits 7:6 both set: the FIFOs are on (a 16550A; a 16450 has none).
const IIR_FIFOS_ON: u8 = 0xc0;
/// Bytes the transmit FIFO holds when THRE says it is empty.
const TX_FIFO_BYTES: u8 = 16;
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THRE: u8 = 1 << 5;
const LSR_TEMT: u8 = 1 << 6;
/// 115200 baud from the 1.8432 MHz clock.
const DIVISOR_115200: u16 = 1;
/// Polls of LSR before giving up on a UART that never becomes ready (absent device).
const MAX_POLLS: u32 = 1_000_000;

/// Bytes the transmitter takes at once when THRE is set: the FIFO's size, or 1.
static TX_ROOM: AtomicU8 = AtomicU8::new(1);
/// The interrupts asked for in IER.
static IER_BITS: AtomicU8 = AtomicU8::new(0);

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
    let fifos = inb(COM1 + IIR) & IIR_FIFOS_ON == IIR_FIFOS_ON;
    TX_ROOM.store(if fifos { TX_FIFO_BYTES } else { 1 }, Relaxed);
}

fn set_ier(bits: u8) {
    IER_BITS.store(bits, Relaxed);
    // SAFETY: IER enables COM1's interrupts; they only signal (the receive interrupt is
    // cleared by reading the data, the transmit one by writing THR or clearing its bit).
    unsafe { outb(COM1 + IER, bits) };
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

/// Turns on COM1's receive interrupt (the routing to a CPU is the caller's:
/// `console_input`).
pub fn enable_rx_interrupt() {
    // SAFETY: MCR is COM1's modem-control register; OUT2 only connects its interrupt.
    unsafe { outb(COM1 + MCR, MCR_DTR_RTS | MCR_OUT2) };
    set_ier(IER_BITS.load(Relaxed) | IER_RX_AVAILABLE);
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

/// Sends what the portable console holds, then waits until every byte has left the
/// transmitter (LSR.TEMT). Emulators that pace the UART (Bochs) drop whatever is still
/// queued when the machine powers off.
pub fn drain() {
    keel_kernel::console::flush();
    wait_for(LSR_TEMT);
}

/// COM1's transmitter as `keel_kernel::console` drains into it.
pub struct Com1;

impl ConsoleUart for Com1 {
    fn send_ready(&self, bytes: &[u8]) -> usize {
        if inb(COM1 + LSR) & LSR_THRE == 0 {
            return 0;
        }
        let n = bytes.len().min(usize::from(TX_ROOM.load(Relaxed)));
        for &b in &bytes[..n] {
            // SAFETY: writing the transmit holding register queues one byte; THRE said
            // the FIFO (or the holding register) had room for `n`.
            unsafe { outb(COM1 + THR, b) };
        }
        n
    }

    /// Called by the portable console with its lock held, after receive interrupts were
    /// turned on (`enable_rx_interrupt`), so the two never race on IER.
    fn transmit_interrupt(&self, on: bool) {
        let bits = IER_BITS.load(Relaxed);
        set_ier(if on { bits | IER_THR_EMPTY } else { bits & !IER_THR_EMPTY });
    }
}

pub static UART: Com1 = Com1;

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

//! The console: the UART from `/chosen/stdout-path`, as the transmitter the kernel's
//! console drains its ring into and as the early and emergency output path.
//!
//! The UART is kept in plain atomics (loads and stores only, no read-modify-write) so it
//! can be installed and used while the MMU is off, when exclusive accesses are not
//! reliable. Before a UART is known, output falls back to semihosting (`SYS_WRITE0`),
//! which is skipped harmlessly where no debugger or emulator answers.

use crate::semihosting;
use crate::uart::{Ns16550, Pl011, Uart};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::Relaxed};
use keel_kernel::console::ConsoleUart;

const NONE: u32 = 0;
const PL011: u32 = 1;
const NS16550: u32 = 2;

static KIND: AtomicU32 = AtomicU32::new(NONE);
static BASE: AtomicUsize = AtomicUsize::new(0);
static SHIFT: AtomicU32 = AtomicU32::new(0);
static WIDTH: AtomicU32 = AtomicU32::new(1);
/// The UART's interrupt (GIC INTID), 0 if unknown.
static IRQ: AtomicU32 = AtomicU32::new(0);
/// Whether the kernel's console (line locking, log formats) is installed.
static KERNEL_CONSOLE: AtomicBool = AtomicBool::new(false);

/// Makes `uart` the console. Called on the boot CPU before any other CPU runs.
pub fn install(uart: Uart) {
    uart.enable();
    match uart {
        Uart::Pl011(u) => {
            BASE.store(u.base, Relaxed);
            KIND.store(PL011, Relaxed);
        }
        Uart::Ns16550(u) => {
            BASE.store(u.base, Relaxed);
            SHIFT.store(u.reg_shift, Relaxed);
            WIDTH.store(u.io_width, Relaxed);
            KIND.store(NS16550, Relaxed);
        }
    }
}

/// Records the UART's interrupt, from the device tree.
pub fn set_irq(intid: Option<u32>) {
    IRQ.store(intid.unwrap_or(0), Relaxed);
}

/// Turns on the UART's receive interrupt; returns its INTID, if the UART has one.
pub fn start_input() -> Option<u32> {
    let irq = IRQ.load(Relaxed);
    let u = uart().filter(|_| irq != 0)?;
    u.enable_rx_interrupt();
    Some(irq)
}

/// Moves received bytes into `buf`; returns how many.
pub fn read(buf: &mut [u8]) -> usize {
    let Some(u) = uart() else { return 0 };
    let mut n = 0;
    while n < buf.len() {
        match u.get() {
            Some(b) => buf[n] = b,
            None => break,
        }
        n += 1;
    }
    n
}

/// The console UART, once installed.
pub fn uart() -> Option<Uart> {
    let base = BASE.load(Relaxed);
    match KIND.load(Relaxed) {
        PL011 => Some(Uart::Pl011(Pl011 { base })),
        NS16550 => Some(Uart::Ns16550(Ns16550 { base, reg_shift: SHIFT.load(Relaxed), io_width: WIDTH.load(Relaxed) })),
        _ => None,
    }
}

/// The kernel's view of the console UART's transmitter.
pub struct Transmitter;

impl ConsoleUart for Transmitter {
    /// Without a UART, output goes to semihosting at once (boot failures before the
    /// device tree named one).
    fn send_ready(&self, bytes: &[u8]) -> usize {
        match uart() {
            Some(u) => u.send_ready(bytes),
            None => {
                semihosting::write_bytes(bytes);
                bytes.len()
            }
        }
    }

    /// Called by the kernel's console with its lock held, after `start_input` turned the
    /// receive interrupt on, so the two never race on the UART's mask.
    fn transmit_interrupt(&self, on: bool) {
        if let Some(u) = uart() {
            u.transmit_interrupt(on);
        }
    }
}

static TRANSMITTER: Transmitter = Transmitter;

/// Installs the kernel's console and logger on top of the UART (MMU on: the kernel's
/// console uses locks).
pub fn init_kernel_console(cpu: fn() -> u32) {
    keel_kernel::console::init(&TRANSMITTER, cpu, log::LevelFilter::Info);
    KERNEL_CONSOLE.store(true, Relaxed);
}

/// Writes `s` to the UART, or to semihosting if there is no UART yet.
pub fn write_raw(s: &str) {
    match uart() {
        Some(u) => u.write_str(s),
        None => semihosting::write(s),
    }
}

/// Sends what the kernel's console holds, then waits until the UART has sent everything.
pub fn flush() {
    if KERNEL_CONSOLE.load(Relaxed) {
        keel_kernel::console::flush();
    }
    if let Some(u) = uart() {
        u.flush();
    }
}

/// Prints one line on whatever console exists, even if another CPU holds the console
/// lock or the kernel's console is not up yet (boot failures, exception reports).
pub fn emergency(args: fmt::Arguments<'_>) {
    if KERNEL_CONSOLE.load(Relaxed) {
        keel_kernel::console::emergency(args);
    } else {
        let _ = writeln!(Raw, "{args}");
    }
}

struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_raw(s);
        Ok(())
    }
}

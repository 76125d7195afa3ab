//! The console: Keel's `log` backend and its line formats.
//!
//! Every record is one line on the physical console:
//! - `[fact] <key>: <value>` — a boot fact (target `fact`), see the README;
//! - `[test] <verdict>` — a self-test verdict (target `test`);
//! - `[<LEVEL> <cpu>] <message>` — everything else, e.g. `[ INFO 0] starting CPUs`.
//!
//! Lines from different CPUs never interleave. Besides these lines, the domain that has
//! console input may write its output raw ([`raw`]): bytes as the guest wrote them, no
//! prefix, no line buffering. A log line that comes while that stream is in the middle
//! of a line starts on a fresh line, so Keel's lines always begin at the left margin.
//!
//! Output is asynchronous: a line is copied into one ring for the whole system
//! ([`ring`]) under its lock, and the ring is drained into the UART as far as the UART
//! takes bytes without waiting — by the writer, by the UART's transmit interrupt
//! ([`pump`], from the CPU that takes the console's interrupt) and by idle CPUs. A CPU
//! that logs does not wait for the wire unless the ring is full. When it is, debug and
//! trace lines are dropped whole and counted (a later `console: N bytes of debug output
//! dropped` line says so); every other line, and a guest's console output, waits for
//! room instead. Test verdicts, panics ([`emergency`]) and power-off ([`flush`]) send
//! everything before they return.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use spin::{Mutex, MutexGuard, Once};

pub mod ring;

pub use ring::{ConsoleUart, Kind, OutputRing};

/// Whether the raw stream last left the terminal in the middle of a line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Column {
    mid_line: bool,
}

impl Column {
    pub const fn new() -> Self {
        Column { mid_line: false }
    }

    /// `bytes` went out raw.
    pub fn wrote_raw(&mut self, bytes: &[u8]) {
        if let Some(&last) = bytes.last() {
            self.mid_line = last != b'\n';
        }
    }

    /// A line of Keel's is about to go out: whether it must first end the raw line.
    /// Afterwards the terminal is at the start of a line.
    pub fn line_break_needed(&mut self) -> bool {
        core::mem::take(&mut self.mid_line)
    }
}

/// Bytes of output the console holds for the UART: 1.4 s of a 115200-baud line.
pub const RING_BYTES: usize = 16 * 1024;

struct Console {
    uart: &'static dyn ConsoleUart,
    cpu: fn() -> u32,
}

/// The output waiting for the UART, where the raw stream left off, and whether the
/// UART's transmit interrupt is asked for. Held only while bytes are copied in or out.
struct Output {
    ring: OutputRing<RING_BYTES>,
    column: Column,
    interrupt_on: bool,
}

static CONSOLE: Once<Console> = Once::new();
static OUTPUT: Mutex<Output> =
    Mutex::new(Output { ring: OutputRing::new(), column: Column::new(), interrupt_on: false });
/// Someone found [`OUTPUT`] locked while it wanted to drain it: its holder drains again.
static DRAIN_WANTED: AtomicBool = AtomicBool::new(false);
/// The UART's interrupt reaches a CPU that calls [`pump`] on it.
static INTERRUPT_ROUTED: AtomicBool = AtomicBool::new(false);
static LOGGER: Logger = Logger;

/// Target of boot-fact records.
pub const FACT: &str = "fact";
/// Target of self-test verdict records.
pub const TEST: &str = "test";

/// Tries to lock the console for this long before a panic or power-off writes without it
/// (another CPU may have died holding it).
const EMERGENCY_LOCK_TRIES: u32 = 1_000_000;

/// Installs the console and the logger. Later calls are ignored.
pub fn init(uart: &'static dyn ConsoleUart, cpu: fn() -> u32, level: log::LevelFilter) {
    CONSOLE.call_once(|| Console { uart, cpu });
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Logs a boot fact: `[fact] key: value`.
pub fn fact(key: &str, value: impl fmt::Display) {
    log::info!(target: FACT, "{key}: {value}");
}

/// Writes a domain's output as it is: the domain that has console input.
pub fn raw(bytes: &[u8]) {
    let Some(c) = CONSOLE.get() else { return };
    {
        let mut out = OUTPUT.lock();
        let out = &mut *out;
        let mut w = out.ring.writer(c.uart, Kind::Blocking);
        w.write_bytes(bytes);
        w.finish();
        out.column.wrote_raw(bytes);
    }
    pump();
}

/// The UART's transmit interrupt now reaches a CPU that calls [`pump`] when it comes:
/// from now on the console asks for it while output waits.
pub fn transmit_interrupt_routed() {
    INTERRUPT_ROUTED.store(true, Ordering::SeqCst);
    pump();
}

/// Whether output waits for the UART with no transmit interrupt to drain it: an idle
/// CPU should [`pump`] rather than sleep.
pub fn needs_polling() -> bool {
    !INTERRUPT_ROUTED.load(Ordering::SeqCst) && !OUTPUT.try_lock().is_some_and(|o| o.ring.is_empty())
}

/// Sends what the UART takes without waiting, and asks for its transmit interrupt while
/// output remains (stops asking once the ring is empty). Never waits for the lock: if
/// another CPU holds it, that CPU drains again before it leaves.
pub fn pump() {
    let Some(c) = CONSOLE.get() else { return };
    loop {
        DRAIN_WANTED.store(true, Ordering::SeqCst);
        let Some(mut out) = OUTPUT.try_lock() else { return };
        DRAIN_WANTED.store(false, Ordering::SeqCst);
        out.ring.send_ready(c.uart);
        let want = INTERRUPT_ROUTED.load(Ordering::SeqCst) && !out.ring.is_empty();
        if want != out.interrupt_on {
            c.uart.transmit_interrupt(want);
            out.interrupt_on = want;
        }
        drop(out);
        if !DRAIN_WANTED.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Sends everything the console holds, waiting for the UART (power-off). Does not wait
/// for the UART to finish the last bytes: that is the backend's.
pub fn flush() {
    let Some(c) = CONSOLE.get() else { return };
    if let Some(mut out) = lock_for_emergency() {
        out.ring.flush(c.uart);
    }
}

fn lock_for_emergency() -> Option<MutexGuard<'static, Output>> {
    for _ in 0..EMERGENCY_LOCK_TRIES {
        if let Some(g) = OUTPUT.try_lock() {
            return Some(g);
        }
        core::hint::spin_loop();
    }
    None
}

/// Writes a line even if another CPU died holding the console (panic path): what the
/// console holds first, then the line, both waiting for the UART.
pub fn emergency(args: fmt::Arguments<'_>) {
    let Some(c) = CONSOLE.get() else { return };
    let mut guard = lock_for_emergency();
    let line_break = match guard.as_mut() {
        Some(out) => {
            out.ring.flush(c.uart);
            out.column.line_break_needed()
        }
        // Whoever holds the console is stuck: write past it.
        None => true,
    };
    // A one-byte ring: every byte is sent before the next is written.
    let mut now = OutputRing::<1>::new();
    let mut w = now.writer(c.uart, Kind::Blocking);
    if line_break {
        let _ = w.write_str("\n");
    }
    let _ = writeln!(w, "{args}");
    w.finish();
    now.flush(c.uart);
    drop(guard);
}

/// How a record may wait for room in the ring.
fn kind_of(record: &log::Record<'_>) -> Kind {
    match (record.target(), record.level()) {
        (FACT | TEST, _) => Kind::Blocking,
        (_, log::Level::Debug | log::Level::Trace) => Kind::Droppable,
        _ => Kind::Blocking,
    }
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Some(c) = CONSOLE.get() else { return };
        let kind = kind_of(record);
        let cpu = (c.cpu)();
        {
            let mut out = OUTPUT.lock();
            let out = &mut *out;
            let dropped = out.ring.take_dropped();
            if dropped > 0 {
                let mut w = out.ring.writer(c.uart, kind);
                let _ = writeln!(w, "[{:>5} {cpu}] console: {dropped} bytes of debug output dropped", log::Level::Warn);
                if !w.finish() {
                    // Still no room: the count stays (without the marker's own bytes)
                    // and is reported later.
                    out.ring.take_dropped();
                    out.ring.count_dropped(dropped);
                }
            }
            let mut w = out.ring.writer(c.uart, kind);
            // A line break ending the raw stream's line is owed only if the line goes out.
            let line_break = out.column.line_break_needed();
            if line_break {
                let _ = w.write_str("\n");
            }
            let _ = match record.target() {
                FACT => writeln!(w, "[fact] {}", record.args()),
                TEST => writeln!(w, "[test] {}", record.args()),
                _ => writeln!(w, "[{:>5} {cpu}] {}", record.level(), record.args()),
            };
            if !w.finish() && line_break {
                out.column = Column { mid_line: true };
            }
            if record.target() == TEST {
                // The harness reads verdicts off the wire: they never wait in the ring.
                out.ring.flush(c.uart);
            }
        }
        pump();
    }

    fn flush(&self) {
        flush();
    }
}

#[cfg(test)]
mod tests {
    use super::Column;

    #[test]
    fn keel_lines_start_on_a_fresh_line_after_a_partial_raw_line() {
        let mut c = Column::new();
        assert!(!c.line_break_needed(), "nothing written yet");
        c.wrote_raw(b"\x1b[1mroot\x1b[0m# ");
        assert!(c.line_break_needed(), "a prompt without a newline");
        assert!(!c.line_break_needed(), "the break was written");
        c.wrote_raw(b"ls\r\nbin etc\r\n");
        assert!(!c.line_break_needed(), "the raw line ended");
        c.wrote_raw(b"a");
        c.wrote_raw(b"");
        assert!(c.line_break_needed(), "an empty write changes nothing");
    }
}

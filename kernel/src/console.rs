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

use core::fmt::{self, Write};
use spin::{Mutex, Once};

/// Where console output goes (a UART driver).
pub trait ConsoleSink: Sync {
    /// Writes a line of text; a `\n` ends the line on the terminal (a serial sink sends
    /// `\r\n`).
    fn write_str(&self, s: &str);
    /// Writes `bytes` exactly as they are, with no translation.
    fn write_bytes(&self, bytes: &[u8]);
}

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

struct Console {
    sink: &'static dyn ConsoleSink,
    cpu: fn() -> u32,
}

static CONSOLE: Once<Console> = Once::new();
/// Held while one line (or one raw write) goes out; where the raw stream left off.
static LINE: Mutex<Column> = Mutex::new(Column::new());
static LOGGER: Logger = Logger;

/// Target of boot-fact records.
pub const FACT: &str = "fact";
/// Target of self-test verdict records.
pub const TEST: &str = "test";

/// Installs the console and the logger. Later calls are ignored.
pub fn init(sink: &'static dyn ConsoleSink, cpu: fn() -> u32, level: log::LevelFilter) {
    CONSOLE.call_once(|| Console { sink, cpu });
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
    let mut column = LINE.lock();
    c.sink.write_bytes(bytes);
    column.wrote_raw(bytes);
}

/// Writes a line even if another CPU died holding the console (panic path).
pub fn emergency(args: fmt::Arguments<'_>) {
    let Some(c) = CONSOLE.get() else { return };
    let mut guard = None;
    for _ in 0..1_000_000 {
        if let Some(g) = LINE.try_lock() {
            guard = Some(g);
            break;
        }
        core::hint::spin_loop();
    }
    if guard.as_mut().is_none_or(|column| column.line_break_needed()) {
        c.sink.write_str("\n");
    }
    let _ = writeln!(SinkWriter(c.sink), "{args}");
    drop(guard);
}

struct SinkWriter(&'static dyn ConsoleSink);

impl Write for SinkWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s);
        Ok(())
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
        let mut column = LINE.lock();
        if column.line_break_needed() {
            c.sink.write_str("\n");
        }
        let mut w = SinkWriter(c.sink);
        let _ = match record.target() {
            FACT => writeln!(w, "[fact] {}", record.args()),
            TEST => writeln!(w, "[test] {}", record.args()),
            _ => writeln!(w, "[{:>5} {}] {}", record.level(), (c.cpu)(), record.args()),
        };
    }

    fn flush(&self) {}
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

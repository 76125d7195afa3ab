//! The console: Keel's `log` backend and its line formats.
//!
//! Every record is one line on the physical console:
//! - `[fact] <key>: <value>` — a boot fact (target `fact`), see the README;
//! - `[test] <verdict>` — a self-test verdict (target `test`);
//! - `[<LEVEL> <cpu>] <message>` — everything else, e.g. `[ INFO 0] starting CPUs`.
//!
//! Lines from different CPUs never interleave.

use core::fmt::{self, Write};
use spin::{Mutex, Once};

/// Where console output goes (a UART driver).
pub trait ConsoleSink: Sync {
    fn write_str(&self, s: &str);
}

struct Console {
    sink: &'static dyn ConsoleSink,
    cpu: fn() -> u32,
}

static CONSOLE: Once<Console> = Once::new();
static LINE: Mutex<()> = Mutex::new(());
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
        let _line = LINE.lock();
        let mut w = SinkWriter(c.sink);
        let _ = match record.target() {
            FACT => writeln!(w, "[fact] {}", record.args()),
            TEST => writeln!(w, "[test] {}", record.args()),
            _ => writeln!(w, "[{:>5} {}] {}", record.level(), (c.cpu)(), record.args()),
        };
    }

    fn flush(&self) {}
}

//! `log` records of the service and of `keel-xenstore`, printed through `console_io`
//! (one line each, tagged by Keel with the domain).

use core::fmt::Write;
use keel_test_guest::console::Text;
use keel_test_guest::hcall::Hv;
use keel_test_guest::Platform;

struct ConsoleLog<P: Platform + 'static>(&'static P);

impl<P: Platform> log::Log for ConsoleLog<P> {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let mut t: Text<256> = Text::new();
        let _ = writeln!(t, "xenstored: {}: {}", r.level(), r.args());
        let _ = Hv(self.0).console_write(t.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the console logger (once; later calls change nothing).
pub fn init<P: Platform>(p: &'static P) {
    let logger: &'static ConsoleLog<P> = alloc::boxed::Box::leak(alloc::boxed::Box::new(ConsoleLog(p)));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

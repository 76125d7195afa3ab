//! Domains' console output on its way to the physical console. Every path a guest
//! writes through (`console_io`, the PV console ring, an emulated UART) ends here: the
//! domain's [`ConsoleBuffers`](crate::domain::ConsoleBuffers) decide the form (prefixed
//! lines, or raw bytes while the domain has console input) and the hooks print it.

use crate::arch::Arch;
use crate::domain::{ConsoleOutput, Domain};
use crate::Hypervisor;
use alloc::string::String;
use alloc::vec::Vec;

/// A piece of output taken out of the domain's lock.
enum Owned {
    Line(String),
    Raw(Vec<u8>),
}

impl From<ConsoleOutput<'_>> for Owned {
    fn from(o: ConsoleOutput<'_>) -> Self {
        match o {
            ConsoleOutput::Line(l) => Owned::Line(String::from(l)),
            ConsoleOutput::Raw(b) => Owned::Raw(b.to_vec()),
        }
    }
}

impl<A: Arch> Hypervisor<'_, A> {
    /// `d` wrote `bytes` to its console.
    pub(crate) fn console_output(&self, d: &Domain<A>, bytes: &[u8]) {
        let mut out: Vec<Owned> = Vec::new();
        d.console.lock().output(bytes, |o| out.push(o.into()));
        self.print_output(d, out);
    }

    /// Passes `d`'s output through raw (it has console input) or not. Going raw, the
    /// partial line it wrote before is printed at once.
    pub fn set_console_raw(&self, d: &Domain<A>, raw: bool) {
        let mut out: Vec<Owned> = Vec::new();
        d.console.lock().set_raw(raw, |o| out.push(o.into()));
        self.print_output(d, out);
    }

    /// Hands the pieces to the hooks, with no lock held.
    fn print_output(&self, d: &Domain<A>, out: Vec<Owned>) {
        for piece in out {
            match piece {
                Owned::Line(l) => self.hooks.console_line(d.id(), &l),
                Owned::Raw(b) => self.hooks.console_raw(d.id(), &b),
            }
        }
    }
}

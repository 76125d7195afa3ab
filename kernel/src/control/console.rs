//! A domain's console through the control interface: its recent output, and input for it.

use crate::arch::Arch;
use crate::domain::Domain;
use crate::hypervisor::Hypervisor;
use alloc::vec::Vec;

impl<A: Arch> Hypervisor<'_, A> {
    /// Up to `max` bytes of `d`'s console output from byte `from` on (counted since it
    /// started), and the offset of the first byte returned (later than `from` if those
    /// bytes are no longer kept).
    pub fn control_console_read(&self, d: &Domain<A>, from: u64, max: usize) -> (u64, Vec<u8>) {
        d.console.lock().read_output(from, max)
    }

    /// Gives `d` console input, as if it came from the physical console while `d` had it.
    pub fn control_console_write(&self, d: &Domain<A>, bytes: &[u8]) {
        self.console_input(d, bytes);
    }
}

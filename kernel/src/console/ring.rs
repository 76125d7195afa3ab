//! The console's output ring: bytes on their way to the UART, oldest first.
//!
//! A line is written into the ring whole by one [`LineWriter`], so lines never
//! interleave, and the ring is drained strictly from its oldest byte, so bytes leave in
//! the order they were written. A writer is one of two kinds:
//! - **blocking** (Keel's errors and warnings, its info lines, a guest's console bytes):
//!   when the ring is full it sends the oldest bytes itself, waiting for the UART, as a
//!   synchronous console would; nothing is lost;
//! - **droppable** (debug and trace lines): the line is staged after the committed bytes
//!   and committed only if all of it fits (after sending what the UART takes without
//!   waiting); otherwise it is dropped whole and its bytes counted, for a later
//!   "N bytes dropped" line ([`OutputRing::take_dropped`]).

use core::fmt;

/// The transmit side of a UART, as the console drains its ring into it.
pub trait ConsoleUart: Sync {
    /// Hands the transmitter as many leading bytes of `bytes` as it takes without
    /// waiting; returns how many it took (0 when it has no room).
    fn send_ready(&self, bytes: &[u8]) -> usize;

    /// Asks for the UART's transmit interrupt while `on` (raised whenever the transmitter
    /// has room), or stops asking for it.
    fn transmit_interrupt(&self, on: bool);
}

/// Polls of a UART that takes nothing before a blocking send gives up on one byte (a
/// UART that never becomes ready must not hang Keel).
const MAX_IDLE_POLLS: u32 = 1_000_000;

/// A bounded ring of `N` bytes with drop accounting.
pub struct OutputRing<const N: usize> {
    buf: [u8; N],
    /// Index of the oldest byte.
    start: usize,
    /// Committed bytes, from `start`.
    len: usize,
    /// Bytes staged after the committed ones by a droppable line not yet complete.
    staged: usize,
    /// Bytes of droppable lines dropped and not yet reported.
    dropped: u64,
}

impl<const N: usize> Default for OutputRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> OutputRing<N> {
    pub const fn new() -> Self {
        OutputRing { buf: [0; N], start: 0, len: 0, staged: 0, dropped: 0 }
    }

    /// Committed bytes waiting for the UART.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes dropped since the last [`take_dropped`](Self::take_dropped).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Takes the count of dropped bytes, to report it.
    pub fn take_dropped(&mut self) -> u64 {
        core::mem::take(&mut self.dropped)
    }

    /// Adds `bytes` to the count of dropped bytes.
    pub fn count_dropped(&mut self, bytes: u64) {
        self.dropped = self.dropped.saturating_add(bytes);
    }

    fn used(&self) -> usize {
        self.len + self.staged
    }

    fn slot(&self, offset: usize) -> usize {
        (self.start + offset) % N
    }

    /// Appends `b` after the staged bytes; `false` if the ring is full.
    fn stage(&mut self, b: u8) -> bool {
        if self.used() == N {
            return false;
        }
        let at = self.slot(self.used());
        self.buf[at] = b;
        self.staged += 1;
        true
    }

    fn commit(&mut self) {
        self.len += core::mem::take(&mut self.staged);
    }

    fn discard_staged(&mut self) {
        self.staged = 0;
    }

    /// The oldest committed bytes that are contiguous in the buffer.
    fn front(&self) -> &[u8] {
        let end = (self.start + self.len).min(N);
        &self.buf[self.start..end]
    }

    fn consume(&mut self, n: usize) {
        self.start = self.slot(n);
        self.len -= n;
    }

    /// Sends the oldest committed bytes as far as `uart` takes them without waiting;
    /// returns how many it sent.
    pub fn send_ready(&mut self, uart: &dyn ConsoleUart) -> usize {
        let mut sent = 0;
        while !self.is_empty() {
            let front = self.front();
            let n = uart.send_ready(front).min(front.len());
            if n == 0 {
                break;
            }
            self.consume(n);
            sent += n;
        }
        sent
    }

    /// Sends at least one committed byte (if there is one), waiting for `uart` as long
    /// as it takes (bounded for a UART that never takes anything).
    fn send_waiting(&mut self, uart: &dyn ConsoleUart) {
        for _ in 0..MAX_IDLE_POLLS {
            if self.is_empty() || self.send_ready(uart) > 0 {
                return;
            }
            core::hint::spin_loop();
        }
        // The UART never took a byte: give the oldest one up rather than hang.
        if !self.is_empty() {
            self.consume(1);
        }
    }

    /// Sends every committed byte, waiting for `uart` (panics, verdicts, power-off).
    pub fn flush(&mut self, uart: &dyn ConsoleUart) {
        while !self.is_empty() {
            self.send_waiting(uart);
        }
    }

    /// A writer for one line (or one raw write) into this ring.
    pub fn writer<'r>(&'r mut self, uart: &'r dyn ConsoleUart, kind: Kind) -> LineWriter<'r, N> {
        self.discard_staged();
        LineWriter { ring: self, uart, kind, wanted: 0, overflowed: false }
    }
}

/// What a writer does when the ring is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Send the oldest bytes, waiting for the UART: nothing is lost.
    Blocking,
    /// Drop the whole line and count its bytes.
    Droppable,
}

/// Writes one line into an [`OutputRing`]; [`finish`](Self::finish) ends it.
pub struct LineWriter<'r, const N: usize> {
    ring: &'r mut OutputRing<N>,
    uart: &'r dyn ConsoleUart,
    kind: Kind,
    /// Bytes this line wanted to write.
    wanted: u64,
    /// A droppable line that did not fit.
    overflowed: bool,
}

impl<const N: usize> LineWriter<'_, N> {
    /// Writes `bytes` as they are.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    fn push(&mut self, b: u8) {
        self.wanted = self.wanted.saturating_add(1);
        match self.kind {
            Kind::Blocking => {
                while !self.ring.stage(b) {
                    self.ring.send_waiting(self.uart);
                }
                // Committed at once: a line longer than the ring must be sent in part
                // before its end is written.
                self.ring.commit();
            }
            Kind::Droppable => {
                if self.overflowed {
                    return;
                }
                if !self.ring.stage(b) {
                    // Only committed bytes may leave; the staged ones may yet be dropped.
                    self.ring.send_ready(self.uart);
                    if !self.ring.stage(b) {
                        self.overflowed = true;
                    }
                }
            }
        }
    }

    /// Ends the line: commits it, or drops all of it if it did not fit. Returns whether
    /// it was committed.
    pub fn finish(self) -> bool {
        if self.overflowed {
            self.ring.discard_staged();
            self.ring.count_dropped(self.wanted);
            false
        } else {
            self.ring.commit();
            true
        }
    }
}

/// Text written through a [`LineWriter`] goes out for a terminal: `\n` as `\r\n`.
impl<const N: usize> fmt::Write for LineWriter<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.push(b'\r');
            }
            self.push(b);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;

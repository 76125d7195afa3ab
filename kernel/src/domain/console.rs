//! Per-domain console buffers: the partial output line, recent output for the control
//! interface, and pending input.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The longest output line kept before it is flushed anyway.
pub const LINE_MAX: usize = 256;
/// Input bytes kept for `CONSOLEIO_read`; older bytes are dropped first.
pub const INPUT_MAX: usize = 1024;

/// Output bytes kept for the control interface; older bytes are dropped first.
pub const HISTORY_MAX: usize = keel_abi::control::CTL_CONSOLE_HISTORY as usize;

/// A domain's console state.
#[derive(Default)]
pub struct ConsoleBuffers {
    line: Vec<u8>,
    input: VecDeque<u8>,
    /// The last [`HISTORY_MAX`] output bytes, raw.
    history: VecDeque<u8>,
    /// Output bytes since the domain started.
    written: u64,
}

impl ConsoleBuffers {
    pub const fn new() -> Self {
        ConsoleBuffers { line: Vec::new(), input: VecDeque::new(), history: VecDeque::new(), written: 0 }
    }

    /// Adds output bytes; calls `emit` for each complete (or overlong) line.
    pub fn output(&mut self, bytes: &[u8], mut emit: impl FnMut(&str)) {
        self.written = self.written.wrapping_add(bytes.len() as u64);
        let keep = &bytes[bytes.len().saturating_sub(HISTORY_MAX)..];
        let excess = (self.history.len() + keep.len()).saturating_sub(HISTORY_MAX);
        self.history.drain(..excess);
        self.history.extend(keep);
        for &b in bytes {
            match b {
                b'\n' => self.flush(&mut emit),
                b'\r' => {}
                _ => {
                    self.line.push(b);
                    if self.line.len() >= LINE_MAX {
                        self.flush(&mut emit);
                    }
                }
            }
        }
    }

    fn flush(&mut self, emit: &mut impl FnMut(&str)) {
        // Show control and non-ASCII bytes as '.', so a guest cannot drive the terminal.
        for b in &mut self.line {
            if !(0x20..0x7f).contains(b) && *b != b'\t' {
                *b = b'.';
            }
        }
        emit(core::str::from_utf8(&self.line).unwrap_or(""));
        self.line.clear();
    }

    /// Up to `max` bytes of output from byte `from` on (counted since the domain
    /// started), and the offset of the first byte returned: later than `from` if those
    /// bytes were dropped, the end of the output if `from` lies beyond it.
    pub fn read_output(&self, from: u64, max: usize) -> (u64, Vec<u8>) {
        let oldest = self.written.wrapping_sub(self.history.len() as u64);
        let start = from.clamp(oldest, self.written);
        let skip = usize::try_from(start - oldest).unwrap_or(usize::MAX);
        (start, self.history.iter().skip(skip).take(max).copied().collect())
    }

    /// Queues input for the guest.
    pub fn push_input(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.input.len() == INPUT_MAX {
                self.input.pop_front();
            }
            self.input.push_back(b);
        }
    }

    /// Up to `max` bytes of input, without consuming them.
    pub fn peek_input(&self, max: usize) -> Vec<u8> {
        self.input.iter().take(max).copied().collect()
    }

    /// Consumes `n` bytes of input.
    pub fn consume_input(&mut self, n: usize) {
        self.input.drain(..n.min(self.input.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec;

    #[test]
    fn splits_lines_and_sanitises() {
        let mut c = ConsoleBuffers::new();
        let mut lines: Vec<String> = vec![];
        c.output(b"hello\r\nwor", |l| lines.push(l.to_string()));
        c.output(b"ld\x1b[2J\n", |l| lines.push(l.to_string()));
        assert_eq!(lines, ["hello", "world.[2J"]);
        c.push_input(b"abc");
        assert_eq!(c.peek_input(2), b"ab");
        c.consume_input(2);
        assert_eq!(c.peek_input(9), b"c");
    }

    #[test]
    fn keeps_recent_output_raw() {
        let mut c = ConsoleBuffers::new();
        c.output(b"ab\x1b\n", |_| {});
        assert_eq!(c.read_output(0, 99), (0, b"ab\x1b\n".to_vec()));
        assert_eq!(c.read_output(2, 1), (2, b"\x1b".to_vec()));
        assert_eq!(c.read_output(50, 9), (4, vec![]), "beyond the end: nothing, at the end");
        let big = vec![b'x'; HISTORY_MAX];
        c.output(&big, |_| {});
        c.output(b"yz", |_| {});
        let (start, bytes) = c.read_output(0, usize::MAX);
        assert_eq!(start, 6, "the oldest bytes were dropped");
        assert_eq!(bytes.len(), HISTORY_MAX);
        assert_eq!(&bytes[HISTORY_MAX - 2..], b"yz");
        c.output(&vec![b'q'; HISTORY_MAX * 2 + 1], |_| {});
        assert_eq!(c.read_output(0, 1).0, (HISTORY_MAX as u64) * 2 + 7, "only the last bytes of one long write");
    }
}

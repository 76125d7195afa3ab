//! Per-domain console buffers: the partial output line and pending input.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The longest output line kept before it is flushed anyway.
pub const LINE_MAX: usize = 256;
/// Input bytes kept for `CONSOLEIO_read`; older bytes are dropped first.
pub const INPUT_MAX: usize = 1024;

/// A domain's console state.
#[derive(Default)]
pub struct ConsoleBuffers {
    line: Vec<u8>,
    input: VecDeque<u8>,
}

impl ConsoleBuffers {
    pub const fn new() -> Self {
        ConsoleBuffers { line: Vec::new(), input: VecDeque::new() }
    }

    /// Adds output bytes; calls `emit` for each complete (or overlong) line.
    pub fn output(&mut self, bytes: &[u8], mut emit: impl FnMut(&str)) {
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
}

//! Per-domain console buffers: the partial output line, recent output for the control
//! interface, and pending input.
//!
//! A domain's output reaches the physical console in one of two forms:
//! - prefixed (the default): complete lines, control and non-ASCII bytes shown as `.`,
//!   so a guest cannot drive the terminal;
//! - raw (while the domain has console input, see [`ConsoleBuffers::set_raw`]): every
//!   byte as the guest wrote it, at once, so a shell's prompt, line editing and escape
//!   sequences work.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The longest output line kept before it is flushed anyway.
pub const LINE_MAX: usize = 256;
/// Input bytes kept for `CONSOLEIO_read`; older bytes are dropped first.
pub const INPUT_MAX: usize = 1024;

/// Output bytes kept for the control interface; older bytes are dropped first.
pub const HISTORY_MAX: usize = keel_abi::control::CTL_CONSOLE_HISTORY as usize;

/// A piece of a domain's output, in the form it reaches the physical console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// One complete (or overlong) line, sanitised, without its newline.
    Line(&'a str),
    /// Bytes as the guest wrote them.
    Raw(&'a [u8]),
}

/// A domain's console state.
#[derive(Default)]
pub struct ConsoleBuffers {
    line: Vec<u8>,
    /// Output passes through raw (the domain has console input).
    raw: bool,
    input: VecDeque<u8>,
    /// The last [`HISTORY_MAX`] output bytes, raw.
    history: VecDeque<u8>,
    /// Output bytes since the domain started.
    written: u64,
}

impl ConsoleBuffers {
    pub const fn new() -> Self {
        ConsoleBuffers { line: Vec::new(), raw: false, input: VecDeque::new(), history: VecDeque::new(), written: 0 }
    }

    /// Whether output passes through raw.
    pub fn is_raw(&self) -> bool {
        self.raw
    }

    /// Switches between raw and prefixed output. Going raw, the partial line not yet
    /// printed goes out raw at once (a prompt the guest wrote before it got input).
    pub fn set_raw(&mut self, raw: bool, mut emit: impl FnMut(Output<'_>)) {
        if raw && !self.raw && !self.line.is_empty() {
            emit(Output::Raw(&self.line));
            self.line.clear();
        }
        self.raw = raw;
    }

    /// Adds output bytes; calls `emit` for each complete (or overlong) line, or once
    /// with all of them in raw mode.
    pub fn output(&mut self, bytes: &[u8], mut emit: impl FnMut(Output<'_>)) {
        self.written = self.written.wrapping_add(bytes.len() as u64);
        let keep = &bytes[bytes.len().saturating_sub(HISTORY_MAX)..];
        let excess = (self.history.len() + keep.len()).saturating_sub(HISTORY_MAX);
        self.history.drain(..excess);
        self.history.extend(keep);
        if self.raw {
            if !bytes.is_empty() {
                emit(Output::Raw(bytes));
            }
            return;
        }
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

    fn flush(&mut self, emit: &mut impl FnMut(Output<'_>)) {
        sanitise(&mut self.line);
        emit(Output::Line(core::str::from_utf8(&self.line).unwrap_or("")));
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

/// Shows control and non-ASCII bytes as `.` (tabs stay), so that a line is printable
/// ASCII that cannot drive the terminal.
pub fn sanitise(line: &mut [u8]) {
    for b in line {
        if !(0x20..0x7f).contains(b) && *b != b'\t' {
            *b = b'.';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    /// What `emit` saw: lines as `L:text`, raw bytes as `R:text`.
    fn record(out: &mut Vec<String>) -> impl FnMut(Output<'_>) + '_ {
        |o| match o {
            Output::Line(l) => out.push(format!("L:{l}")),
            Output::Raw(b) => out.push(format!("R:{}", String::from_utf8_lossy(b))),
        }
    }

    #[test]
    fn splits_lines_and_sanitises() {
        let mut c = ConsoleBuffers::new();
        let mut lines: Vec<String> = vec![];
        c.output(b"hello\r\nwor", record(&mut lines));
        c.output(b"ld\x1b[2J\n", record(&mut lines));
        assert_eq!(lines, ["L:hello", "L:world.[2J"]);
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

#[cfg(test)]
mod raw_tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use proptest::prelude::*;

    fn record(out: &mut Vec<String>) -> impl FnMut(Output<'_>) + '_ {
        |o| match o {
            Output::Line(l) => out.push(alloc::format!("L:{l}")),
            Output::Raw(b) => out.push(alloc::format!("R:{}", String::from_utf8_lossy(b))),
        }
    }

    #[test]
    fn the_focused_domain_goes_raw_with_its_partial_line_and_back() {
        let mut c = ConsoleBuffers::new();
        let mut out: Vec<String> = vec![];
        c.output(b"boot\n\x1b[1m# ", record(&mut out));
        assert_eq!(out, ["L:boot"], "a prompt waits for its newline while prefixed");
        c.set_raw(true, record(&mut out));
        assert!(c.is_raw());
        assert_eq!(out, ["L:boot", "R:\x1b[1m# "], "going raw prints the pending prompt as it is");
        out.clear();
        c.output(b"l", record(&mut out));
        c.output(b"s\r\n\x1b[0mbin\r\n# ", record(&mut out));
        assert_eq!(out, ["R:l", "R:s\r\n\x1b[0mbin\r\n# "], "every byte at once, escapes and CR intact");
        out.clear();
        c.set_raw(true, record(&mut out));
        c.set_raw(false, record(&mut out));
        assert!(out.is_empty(), "switching twice emits nothing: raw mode kept no partial line");
        c.output(b"\x07done\n", record(&mut out));
        assert_eq!(out, ["L:.done"], "prefixed again: sanitised lines");
        assert_eq!(c.read_output(0, usize::MAX).1.len(), 32, "the history keeps every byte in both modes");
    }

    #[test]
    fn the_sanitiser_leaves_only_printable_ascii_and_tabs() {
        let mut line = *b"a\tb\x1b[31mc\x7f\x80\xff\x00\x9b";
        sanitise(&mut line);
        assert_eq!(&line, b"a\tb.[31mc.....");
    }

    proptest! {
        #[test]
        fn sanitised_lines_cannot_drive_a_terminal(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut c = ConsoleBuffers::new();
            let mut lines: Vec<String> = vec![];
            c.output(&bytes, |o| if let Output::Line(l) = o { lines.push(String::from(l)) });
            let expected = bytes.iter().filter(|&&b| b == b'\n').count();
            prop_assert!(lines.len() >= expected);
            for l in &lines {
                prop_assert!(l.len() <= LINE_MAX);
                prop_assert!(l.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)), "{:?}", l);
            }
        }
    }
}

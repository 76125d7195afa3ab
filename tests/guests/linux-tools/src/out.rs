//! Whole lines on standard output, each in one `write` so that they do not interleave
//! with other writers on the console.

use crate::sys;
use core::fmt::{Arguments, Write};

struct Line {
    buf: [u8; 200],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Prints `args` and a newline (cut to 199 bytes).
pub fn line(args: Arguments<'_>) {
    let mut l = Line { buf: [0; 200], len: 0 };
    let _ = l.write_fmt(args);
    l.len = l.len.min(l.buf.len() - 1);
    l.buf[l.len] = b'\n';
    let _ = sys::write(1, &l.buf[..=l.len]);
}

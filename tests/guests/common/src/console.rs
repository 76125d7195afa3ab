//! Output through `console_io`: one hypercall per line. Keel prints each line tagged
//! with the domain (`(d1) ...`), which is what the boot tests look for.

use crate::hcall::Hv;
use crate::Platform;
use core::fmt::{self, Write};

/// A fixed-size text buffer (no allocator in test guests).
pub struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    pub const fn new() -> Self {
        Text { buf: [0; N], len: 0 }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("<non-UTF-8>")
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for Text<N> {
    /// Keeps what fits; the rest is cut off (at a character boundary).
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut utf8 = [0u8; 4];
            let bytes = c.encode_utf8(&mut utf8).as_bytes();
            if self.len + bytes.len() > N {
                break;
            }
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Display for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prints one line (a newline is added).
pub fn say<P: Platform>(p: &P, args: fmt::Arguments<'_>) {
    let mut line = Text::<256>::new();
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    let _ = Hv(p).console_write(line.as_bytes());
}

/// `say!(platform, "format", args...)`: one console line.
#[macro_export]
macro_rules! say {
    ($p:expr, $($arg:tt)*) => {
        $crate::console::say($p, format_args!($($arg)*))
    };
}

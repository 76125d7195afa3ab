//! Port I/O of a guest: nothing is emulated but Xen's debug port. Reads of any other
//! port return all ones and writes are dropped, as Xen's null handler does for ports
//! nothing claims, except the PIT's channel 2 counter (port 0x42), which reads 0: a
//! counter that does not count, so Linux's quick PIT calibration of the TSC gives up at
//! its first read instead of after 100 000 exits (seconds under emulation; the TSC's
//! frequency comes from CPUID leaf 0x40000003 and pvclock anyway). Bytes written to
//! port 0xe9 appear on Keel's console as the domain's lines (`(d<id>) <text>`), as Xen
//! prints them.

use alloc::string::String;

/// Xen's (and Bochs') debug-console port.
pub const DEBUG_PORT: u16 = 0xe9;
/// Longer lines are split.
const LINE: usize = 256;

/// The PIT's channel 2 counter.
pub const PIT_CHANNEL2: u16 = 0x42;

/// The value a read of `size` bytes (1, 2 or 4) from `port` returns.
pub fn read(port: u16, size: u8) -> u32 {
    if port == PIT_CHANNEL2 {
        0
    } else {
        unclaimed_read(size)
    }
}

/// The value an unclaimed port returns for an access of `size` bytes (1, 2 or 4).
pub fn unclaimed_read(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}

/// A domain's debug-port line being assembled.
pub struct DebugConsole {
    line: [u8; LINE],
    len: usize,
}

impl DebugConsole {
    pub const fn new() -> Self {
        DebugConsole { line: [0; LINE], len: 0 }
    }

    /// Adds `byte`; returns the line it completes (control and non-ASCII bytes as `.`).
    pub fn push(&mut self, byte: u8) -> Option<String> {
        match byte {
            b'\n' => return Some(self.take()),
            b'\r' => return None,
            _ => {}
        }
        self.line[self.len] = if (0x20..0x7f).contains(&byte) { byte } else { b'.' };
        self.len += 1;
        (self.len == LINE).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.line[..self.len]).into_owned();
        self.len = 0;
        s
    }
}

impl Default for DebugConsole {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_assembled() {
        let mut c = DebugConsole::new();
        let mut out = alloc::vec::Vec::new();
        for &b in b"hi\r\n\x01x\n" {
            out.extend(c.push(b));
        }
        assert_eq!(out, ["hi", ".x"]);
        for _ in 0..LINE - 1 {
            assert_eq!(c.push(b'a'), None);
        }
        assert_eq!(c.push(b'b').map(|l| l.len()), Some(LINE));
        assert_eq!(unclaimed_read(1), 0xff);
        assert_eq!(unclaimed_read(2), 0xffff);
        assert_eq!(unclaimed_read(4), 0xffff_ffff);
        assert_eq!(read(0x61, 1), 0xff);
        assert_eq!(read(PIT_CHANNEL2, 1), 0);
    }
}

//! Arm semihosting (`hlt #0xf000`): the test-exit device (`SYS_EXIT` with a status, QEMU
//! `-semihosting`) and a last-resort console (`SYS_WRITE0`) before any UART is known.
//!
//! Where no debugger or emulator answers, `hlt` is an undefined instruction; the
//! exception vectors skip it (`exceptions::GUARDED`), so every call here simply returns.

/// `SYS_WRITE0`: write a NUL-terminated string.
const SYS_WRITE0: u64 = 0x04;
/// `SYS_EXIT`: report an exit to the host.
const SYS_EXIT: u64 = 0x18;
/// `ADP_Stopped_ApplicationExit`: the reason code of a normal exit with a status.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

/// The semihosting trap instruction, `hlt #0xf000`.
pub const HLT_SEMIHOSTING: u32 = 0xd45e_0000;

fn call(op: u64, param: *const u8) -> u64 {
    let mut x0 = op;
    // SAFETY: the semihosting ABI reads the parameter block at `param` (valid for the
    // call) and returns in x0; if semihosting is off the instruction is skipped by the
    // exception vectors, which may clobber caller-saved registers (declared by the ABI).
    unsafe {
        core::arch::asm!("hlt #0xf000", inout("x0") x0, in("x1") param, clobber_abi("C"), options(nostack));
    }
    x0
}

/// Writes `s` to the semihosting console.
pub fn write(s: &str) {
    let mut out = Writer::new();
    for &b in s.as_bytes() {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
}

/// Writes `bytes` as they are (NUL bytes, which `SYS_WRITE0` cannot carry, are skipped).
pub fn write_bytes(bytes: &[u8]) {
    let mut out = Writer::new();
    for &b in bytes.iter().filter(|&&b| b != 0) {
        out.push(b);
    }
}

/// Collects bytes into NUL-terminated chunks for `SYS_WRITE0`; the rest goes out on drop.
struct Writer {
    buf: [u8; 128],
    len: usize,
}

impl Writer {
    fn new() -> Self {
        Writer { buf: [0; 128], len: 0 }
    }

    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
        if self.len == self.buf.len() - 1 {
            self.send();
        }
    }

    fn send(&mut self) {
        if self.len > 0 {
            self.buf[self.len] = 0;
            call(SYS_WRITE0, self.buf.as_ptr());
            self.len = 0;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.send();
    }
}

/// Ends the emulation with exit status `status`; returns if semihosting is not available.
pub fn exit(status: u32) {
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as u64];
    call(SYS_EXIT, block.as_ptr().cast());
}

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
    let mut buf = [0u8; 128];
    let mut len = 0;
    for &b in s.as_bytes() {
        let mut push = |b: u8| {
            buf[len] = b;
            len += 1;
            if len == buf.len() - 1 {
                buf[len] = 0;
                call(SYS_WRITE0, buf.as_ptr());
                len = 0;
            }
        };
        if b == b'\n' {
            push(b'\r');
        }
        push(b);
    }
    if len > 0 {
        buf[len] = 0;
        call(SYS_WRITE0, buf.as_ptr());
    }
}

/// Ends the emulation with exit status `status`; returns if semihosting is not available.
pub fn exit(status: u32) {
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as u64];
    call(SYS_EXIT, block.as_ptr().cast());
}

//! The low 64 bits of the guest's XMM registers, for MOVD/MOVQ between an XMM register
//! and memory Keel emulates. They are live in the processor while the vCPU is loaded:
//! Keel is built without SSE and switches them only when a vCPU is loaded on or put off
//! a CPU (`vcpu/context.rs`), and an exit is handled while its vCPU is loaded.

use core::arch::asm;

/// The XMM registers 64-bit code names (32-bit code names the first 8).
pub const XMM_REGISTERS: usize = 16;

/// `$each!("xmmN")` for register `$n` (15 for anything above).
macro_rules! for_xmm {
    ($n:expr, $each:ident) => {
        match $n {
            0 => $each!("xmm0"),
            1 => $each!("xmm1"),
            2 => $each!("xmm2"),
            3 => $each!("xmm3"),
            4 => $each!("xmm4"),
            5 => $each!("xmm5"),
            6 => $each!("xmm6"),
            7 => $each!("xmm7"),
            8 => $each!("xmm8"),
            9 => $each!("xmm9"),
            10 => $each!("xmm10"),
            11 => $each!("xmm11"),
            12 => $each!("xmm12"),
            13 => $each!("xmm13"),
            14 => $each!("xmm14"),
            _ => $each!("xmm15"),
        }
    };
}

/// The low 64 bits of XMM register `n` (below [`XMM_REGISTERS`]).
pub fn read(n: usize) -> u64 {
    let v: u64;
    macro_rules! movq_from {
        ($reg:literal) => {
            // SAFETY: MOVQ from an XMM register into a general-purpose one: no memory,
            // no flags; Keel's own code never uses the XMM registers.
            unsafe { asm!(concat!("movq {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) }
        };
    }
    for_xmm!(n, movq_from);
    v
}

/// Sets XMM register `n` (below [`XMM_REGISTERS`]) to `value`, zero-extended to 128
/// bits, as MOVD/MOVQ loads do.
pub fn write(n: usize, value: u64) {
    macro_rules! movq_to {
        ($reg:literal) => {
            // SAFETY: MOVQ into the guest's XMM register: no memory, no flags; Keel's own
            // code never uses the XMM registers.
            unsafe { asm!(concat!("movq ", $reg, ", {}"), in(reg) value, options(nomem, nostack, preserves_flags)) }
        };
    }
    for_xmm!(n, movq_to);
}

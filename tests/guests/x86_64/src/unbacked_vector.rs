//! `keel.test=unbacked`, MOVD and MOVQ between XMM registers and unbacked memory: loads
//! give all ones in the low 32 or 64 bits and clear the rest of the register, stores are
//! dropped.

use crate::cpu::read_cr4;
use crate::traps::write_cr4;
use core::arch::asm;
use keel_test_guest::{ensure, expect_eq, Failure};

/// CR4.OSFXSR: SSE instructions may run.
const CR4_OSFXSR: u64 = 1 << 9;

fn read(a: u64) -> u64 {
    let v: u64;
    // SAFETY: a read Keel emulates.
    unsafe { asm!("mov {}, [{}]", out(reg) v, in(reg) a, options(nostack, readonly)) };
    v
}

/// Returns how many were checked.
pub fn run(a: u64) -> Result<u32, Failure> {
    let cr4 = read_cr4();
    if cr4 & CR4_OSFXSR == 0 {
        ensure!(write_cr4(cr4 | CR4_OSFXSR).is_ok(), "setting CR4.OSFXSR");
    }
    let (q_low, q_high, d_low, d_high, x9): (u64, u64, u64, u64, u64);
    // SAFETY: SSE moves between XMM registers, general-purpose ones and the unbacked
    // address, which Keel emulates (CR4.OSFXSR is set); the test guest itself is built
    // without SSE, so no XMM register holds anything of its own.
    unsafe {
        asm!(
            // Both halves of xmm0 and xmm1 filled first (SSE2 only: every model has it).
            "mov {t}, 0x1122334455667788", "movq xmm0, {t}", "punpcklqdq xmm0, xmm0",
            "movq xmm0, qword ptr [{a}]", "movq {ql}, xmm0", "movhlps xmm2, xmm0", "movq {qh}, xmm2",
            "movq xmm1, {t}", "punpcklqdq xmm1, xmm1",
            "movd xmm1, dword ptr [{a}]", "movq {dl}, xmm1", "movhlps xmm2, xmm1", "movq {dh}, xmm2",
            "movq xmm9, {t}", "movq qword ptr [{a}], xmm9", "movd dword ptr [{a} + 8], xmm9",
            "movq {x9}, xmm9",
            a = in(reg) a, t = out(reg) _, ql = out(reg) q_low, qh = out(reg) q_high,
            dl = out(reg) d_low, dh = out(reg) d_high, x9 = out(reg) x9, options(nostack),
        );
    }
    ensure!((q_low, q_high) == (u64::MAX, 0), "movq xmm0, [all ones]: {q_low:#x} {q_high:#x}");
    ensure!((d_low, d_high) == (0xffff_ffff, 0), "movd xmm1, [all ones]: {d_low:#x} {d_high:#x}");
    expect_eq!(x9, 0x1122_3344_5566_7788, "xmm9 after storing it");
    expect_eq!(read(a), u64::MAX, "a load after MOVQ/MOVD stores (the stores must be dropped)");
    expect_eq!(read(a + 8), u64::MAX, "a load after a MOVD store");
    Ok(4)
}

//! `cntvct`: prints the virtual counter as seconds, `cntvct: S.UUUUUU s`. Booted
//! natively at EL1 the counter runs from reset (no hypervisor offsets it), so this is
//! the emulated time since reset, for `scripts/bench-linux-arm64`. Linux lets EL0 read
//! `CNTVCT_EL0` and `CNTFRQ_EL0` (its vDSO does).
#![no_std]
#![no_main]

#[path = "../out.rs"]
mod out;
#[path = "../start.rs"]
mod start;
#[path = "../sys.rs"]
#[allow(dead_code)]
mod sys;

fn main(_: &[&[u8]; 3]) -> i32 {
    let (count, freq): (u64, u64);
    // SAFETY: reading the counter and its frequency has no side effects.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) count, options(nomem, nostack));
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack));
    }
    let freq = freq.max(1);
    let us = (count / freq) * 1_000_000 + (count % freq) * 1_000_000 / freq;
    out::line(format_args!("cntvct: {}.{:06} s", us / 1_000_000, us % 1_000_000));
    0
}

//! `cntvct`: prints the virtual counter as seconds, `cntvct: S.UUUUUU s`. Booted
//! natively at EL1 the counter runs from reset (no hypervisor offsets it), so this is
//! the emulated time since reset, for `scripts/bench-linux-arm64`. Linux lets EL0 read
//! `CNTVCT_EL0` and `CNTFRQ_EL0` (its vDSO does). arm64 only.
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
    let Some((count, freq)) = sys::arch::counter() else {
        out::line(format_args!("cntvct: error: no virtual counter on this architecture"));
        return 1;
    };
    let freq = freq.max(1);
    let us = (count / freq) * 1_000_000 + (count % freq) * 1_000_000 / freq;
    out::line(format_args!("cntvct: {}.{:06} s", us / 1_000_000, us % 1_000_000));
    0
}

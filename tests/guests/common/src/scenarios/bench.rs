//! `keel.test=bench [keel.count=N]`: the null hypercall's round trip (`xen_version`)
//! in the guest's own counter ticks, the minimum and the mean over N calls. Meant for
//! figures (`scripts/bench-aarch64`, deterministic under QEMU's `-icount`), not a test
//! with bounds.

use crate::hcall::Hv;
use crate::{cmdline, expect_eq, say, Outcome, Platform};
use keel_abi::version::XENVER_VERSION;

pub fn run<P: Platform>(p: &P) -> Outcome {
    let n = cmdline::get_u64(p.cmdline(), "keel.count").unwrap_or(10_000).max(1);
    let hv = Hv(p);
    let mut min = u64::MAX;
    let start = p.ticks();
    for _ in 0..n {
        let t0 = p.ticks();
        expect_eq!(hv.xen_version(XENVER_VERSION, 0), 0x0004_0013, "xen_version");
        min = min.min(p.ticks() - t0);
    }
    let total = p.ticks() - start;
    let ns = |t: u64| (t as u128 * 1_000_000_000 / p.tick_hz().max(1) as u128) as u64;
    say!(
        p,
        "bench: null hypercall (xen_version) round trip: min {min} ticks, mean {} ticks over {n} calls \
         ({} Hz counter: mean {} ns)",
        total / n,
        p.tick_hz(),
        ns(total / n)
    );
    Ok(())
}

//! `keel.test=bench [keel.count=N] [keel.mmio=1] [keel.figure=null|sysreg|mmio|evtchn]`:
//! exit round trips in the guest's own
//! counter ticks, the minimum and the mean over N of each: the null hypercall
//! (`xen_version`), a trapped system-register read ([`Platform::bench_sysreg_read`]), with
//! `keel.mmio=1` an emulated device register read ([`Platform::bench_mmio_read`]: arm64's
//! vPL011 flag register), and `EVTCHNOP_send` on a masked loopback port (an IPI port of
//! this vCPU, 2-level ABI, its pending bit cleared after each send so that every send
//! takes the whole path). `keel.figure` measures only that one. Meant for figures (`scripts/bench-aarch64`, deterministic
//! under QEMU's `-icount`), not a test with bounds.

use crate::events;
use crate::hcall::{name, Hv};
use crate::{cmdline, expect_eq, fail, say, Outcome, Platform};
use keel_abi::event::{EvtchnBindIpi, EVTCHNOP_BIND_IPI};
use keel_abi::version::XENVER_VERSION;

/// Runs `f` `n` times; (min, mean) ticks per call.
fn measure<P: Platform>(p: &P, n: u64, mut f: impl FnMut() -> Outcome) -> Result<(u64, u64), crate::Failure> {
    let mut min = u64::MAX;
    let start = p.ticks();
    for _ in 0..n {
        let t0 = p.ticks();
        f()?;
        min = min.min(p.ticks() - t0);
    }
    Ok((min, (p.ticks() - start) / n))
}

fn report<P: Platform>(p: &P, what: &str, n: u64, (min, mean): (u64, u64)) {
    let ns = (mean as u128 * 1_000_000_000 / p.tick_hz().max(1) as u128) as u64;
    say!(
        p,
        "bench: {what} round trip: min {min} ticks, mean {mean} ticks over {n} calls ({} Hz counter: mean {ns} ns)",
        p.tick_hz()
    );
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let line = p.cmdline();
    let n = cmdline::get_u64(line, "keel.count").unwrap_or(10_000).max(1);
    let hv = Hv(p);
    let figure = cmdline::get(line, "keel.figure");
    let want = |f: &str| figure.is_none_or(|g| g == f);
    if want("null") {
        let m = measure(p, n, || {
            // Xen 4.x (Keel says 4.19; the same guest runs on Xen 4.17 for scripts/bench-aarch64).
            expect_eq!(hv.xen_version(XENVER_VERSION, 0) >> 16, 4, "xen_version's major");
            Ok(())
        })?;
        report(p, "null hypercall (xen_version)", n, m);
    }
    if want("sysreg") && p.bench_sysreg_read().is_some() {
        let m = measure(p, n, || {
            p.bench_sysreg_read();
            Ok(())
        })?;
        report(p, "trapped system register read", n, m);
    }
    if want("mmio") && cmdline::get_u64(line, "keel.mmio") == Some(1) && p.bench_mmio_read().is_some() {
        let m = measure(p, n, || {
            p.bench_mmio_read();
            Ok(())
        })?;
        report(p, p.bench_mmio_name(), n, m);
    }
    if !want("evtchn") {
        return Ok(());
    }
    events::setup_two_level(p)?;
    let mut b = EvtchnBindIpi { vcpu: p.cpu(), port: 0 };
    let r = hv.event_op(EVTCHNOP_BIND_IPI, &mut b);
    if r != 0 {
        fail!("bind_ipi: {}", name(r));
    }
    events::mask(b.port);
    let m = measure(p, n, || {
        expect_eq!(events::send(p, b.port), 0, "EVTCHNOP_send");
        events::clear_pending(b.port);
        Ok(())
    })?;
    report(p, "event send to a masked port", n, m);
    Ok(())
}

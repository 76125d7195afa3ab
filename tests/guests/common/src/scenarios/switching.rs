//! `keel.test=switching [keel.seed=S] [keel.rounds=N]`: a vCPU's own state is never
//! another's. Two domains run this with different seeds, pinned to one physical CPU:
//! each fills every system register it owns and may write without changing how it runs
//! ([`Platform::owned_regs_fill`]: arm64's EL1 registers, virtual timer, FPCR/FPSR) and
//! the FP/SIMD registers with a pattern of its seed, then yields N times; after every
//! yield it checks all of them. Each round also passes a pointer to a hypercall (the
//! runstate, which says whether the other domain ran meanwhile), so Keel walks the
//! guest's page tables with its registers live. Fails unless at least half the yields
//! went to the other domain.

use crate::hcall::Hv;
use crate::MAX_OWNED_REGS;
use crate::{cmdline, ensure, expect_eq, say, Outcome, Platform};
use keel_abi::hypercall::VCPU_OP;
use keel_abi::vcpu::{VcpuRunstateInfo, VCPUOP_GET_RUNSTATE_INFO};
use keel_abi::wire::Wire;

/// The runstate's entry time: it changes whenever the vCPU was switched back in.
fn entry_time<P: Platform>(p: &P) -> Result<u64, i64> {
    #[repr(align(8))]
    struct Buf([u8; VcpuRunstateInfo::SIZE]);
    let mut buf = Buf([0; VcpuRunstateInfo::SIZE]);
    let r = Hv(p).raw(VCPU_OP, [VCPUOP_GET_RUNSTATE_INFO, 0, buf.0.as_mut_ptr() as u64, 0, 0]);
    if r != 0 {
        return Err(r);
    }
    Ok(VcpuRunstateInfo::from_bytes(&buf.0).map_or(0, |i| i.state_entry_time))
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let line = p.cmdline();
    let seed = cmdline::get_u64(line, "keel.seed").unwrap_or(1);
    let rounds = cmdline::get_u64(line, "keel.rounds").unwrap_or(2000).max(1);
    p.disable_interrupts();
    let mut want = [0u64; MAX_OWNED_REGS];
    let n = p.owned_regs_fill(seed);
    ensure!(n > 0 || P::ARCH != "aarch64", "switching: no registers to check");
    // What the CPU kept of the pattern (reserved bits read as the architecture says).
    p.owned_regs_read(&mut want[..n]);
    let fp_seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    p.fp_fill(fp_seed);
    let mut got = [0u64; MAX_OWNED_REGS];
    let mut last = entry_time(p).map_err(|r| crate::check::Failure::new(format_args!("runstate: {r}")))?;
    let mut switched = 0u64;
    for round in 0..rounds {
        expect_eq!(Hv(p).yield_cpu(), 0, "SCHEDOP_yield");
        let now = match entry_time(p) {
            Ok(t) => t,
            Err(r) => crate::fail!("runstate in round {round}: {r}"),
        };
        if now != last {
            switched += 1;
        }
        last = now;
        p.owned_regs_read(&mut got[..n]);
        for i in 0..n {
            if got[i] != want[i] {
                crate::fail!(
                    "switching: round {round}: {} is {:#x}, this domain wrote {:#x}",
                    p.owned_reg_name(i),
                    got[i],
                    want[i]
                );
            }
        }
        if let Err(r) = p.fp_check(fp_seed) {
            crate::fail!("switching: round {round}: FP/SIMD register {r} lost");
        }
    }
    ensure!(
        switched * 2 >= rounds,
        "switching: only {switched} of {rounds} yields went to another vCPU (pinned to one CPU?)"
    );
    let fp = if P::ARCH == "aarch64" { "q0-q31" } else { "xmm0-xmm15" };
    say!(p, "switching: {n} system registers and {fp} kept through {rounds} yields, half or more to the other domain");
    Ok(())
}

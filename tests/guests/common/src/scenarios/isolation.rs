//! `keel.test=isolation`: a guest reaching outside its memory takes an abort (arm64) or
//! reads all ones with its writes dropped (x86, as on Xen) and goes on; instructions Keel does not serve become undefined-instruction exceptions.
//! `keel.test=wild`: the same, then the guest wrecks its own exception handling, which
//! Keel must end by crashing the domain. `keel.test=spin`: spins forever with interrupts
//! masked, which Keel must stop (`keel.timeout`).

use crate::{ensure, say, Outcome, Platform, Probe};

pub fn isolation<P: Platform>(p: &P) -> Outcome {
    let (ram_start, ram_end) = p.ram();
    let (hole, _) = p.hole();
    let mut addresses = [0u64; 16];
    let fixed = [ram_end, ram_end + 0x10_0000, ram_end + 0x1000_0000, hole + 0x20_0000];
    let host = p.host_addresses();
    let n = fixed.len() + host.len().min(addresses.len() - fixed.len());
    addresses[..fixed.len()].copy_from_slice(&fixed);
    addresses[fixed.len()..n].copy_from_slice(&host[..n - fixed.len()]);
    if p.unbacked_reads_all_ones() {
        for &a in &addresses[..n] {
            match (p.probe_read(a), p.probe_write(a, 0xdead_beef), p.probe_read(a)) {
                (Probe::Value(u64::MAX), Probe::Value(_), Probe::Value(u64::MAX)) => {}
                (r, w, again) => {
                    crate::fail!("outside RAM at {a:#x}: read {r:?}, write {w:?}, read again {again:?}")
                }
            }
        }
        say!(
            p,
            "isolation: {n} reads outside RAM [{ram_start:#x}, {ram_end:#x}) all ones, {n} writes dropped; still running"
        );
    } else {
        let mut aborts = 0;
        for &a in &addresses[..n] {
            match (p.probe_read(a), p.probe_write(a, 0xdead_beef)) {
                (Probe::Fault(_), Probe::Fault(_)) => aborts += 2,
                (r, w) => crate::fail!("access outside RAM at {a:#x} completed: read {r:?}, write {w:?}"),
            }
        }
        say!(
            p,
            "isolation: {} reads and writes outside RAM [{ram_start:#x}, {ram_end:#x}), each aborted; still running",
            aborts
        );
    }
    let (tried, refused) = p.refused_instructions();
    ensure!(tried == refused, "{} of {tried} instructions Keel does not serve were not refused", tried - refused);
    say!(p, "isolation: {tried} instructions Keel does not serve, each an undefined-instruction exception");
    Ok(())
}

pub fn wild<P: Platform>(p: &P) -> Outcome {
    isolation(p)?;
    say!(p, "wild: wrecking the exception vectors");
    p.wreck()
}

/// `keel.pause=0`: a tight loop without the spin-wait hint (`pause`), which no
/// processor's spin detection can see; `keel.open=1`: with interrupts open (none is sent).
pub fn spin<P: Platform>(p: &P) -> Outcome {
    let pause = crate::cmdline::get_u64(p.cmdline(), "keel.pause") != Some(0);
    let open = crate::cmdline::get_u64(p.cmdline(), "keel.open") == Some(1);
    say!(
        p,
        "spin: spinning with interrupts {}, forever{}",
        if open { "open" } else { "masked" },
        if pause { "" } else { " (no pause)" }
    );
    super::preempt::set_interrupts(p);
    loop {
        if pause {
            core::hint::spin_loop();
        } else {
            core::hint::black_box(());
        }
    }
}

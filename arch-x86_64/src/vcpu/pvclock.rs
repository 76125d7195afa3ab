//! The vCPU's pvclock (`vcpu_info.time`, XENFEAT_hvm_safe_pvclock): system time as Keel
//! counts it (nanoseconds from the TSC, `Timer::now_ns`) at a TSC value, and the scale
//! from the TSC frequency. Guests read the host TSC unchanged (no offset, no scaling),
//! so one snapshot stays right for as long as the TSC runs; Keel writes a new one
//!
//! - when the vCPU is loaded on a CPU,
//! - after a hypercall that may have moved its `vcpu_info` or mapped shared_info
//!   (`vcpu_op`, `memory_op`, `hvm_op`),
//! - and every [`REFRESH_NS`], so that the scale's rounding (below 1 ppm, always
//!   behind) never adds up to more than a few hundred nanoseconds.
//!
//! The flags stay 0 (no `PVCLOCK_TSC_STABLE_BIT`): vCPUs refresh at different times, so
//! their clocks may differ by that rounding, and Linux then keeps its own clock monotonic.

use crate::domain::X86Domain;
use crate::regs::rdtsc;
use crate::timer::tsc_hz;
use keel_abi::hypercall::{HVM_OP, MEMORY_OP, VCPU_OP};
use keel_abi::layout::VcpuTimeInfo;

/// The longest time between two snapshots.
pub const REFRESH_NS: u64 = 100_000_000;

/// When the vCPU's pvclock was last written.
#[derive(Clone, Copy, Debug)]
pub struct Pvclock {
    /// TSC at the last write and the TSC ticks until the next is due; `None`: write
    /// before the next entry.
    written: Option<(u64, u64)>,
}

impl Pvclock {
    pub const fn new() -> Self {
        Pvclock { written: None }
    }

    /// Asks for a new snapshot before the next entry.
    pub fn invalidate(&mut self) {
        self.written = None;
    }

    /// After hypercall `number`: whether it may have moved the `vcpu_info`.
    pub fn after_hypercall(&mut self, number: u64) {
        if matches!(number, VCPU_OP | MEMORY_OP | HVM_OP) {
            self.invalidate();
        }
    }

    /// Before an entry: writes the snapshot if it is due.
    #[inline(always)]
    pub fn refresh(&mut self, domain: &X86Domain, vcpu_id: u32) {
        let tsc = rdtsc();
        if let Some((at, period)) = self.written {
            if tsc.wrapping_sub(at) <= period {
                return;
            }
        }
        self.write(domain, vcpu_id, tsc);
    }

    /// Writes the snapshot at TSC `tsc`.
    #[inline(never)]
    fn write(&mut self, domain: &X86Domain, vcpu_id: u32, tsc: u64) {
        let hz = tsc_hz().max(1);
        // Even when the vCPU has no vcpu_info yet: the next hypercall that may give it
        // one asks again.
        self.written = Some((tsc, hz / (1_000_000_000 / REFRESH_NS)));
        if let Some(services) = domain.services() {
            services.write_vcpu_time(vcpu_id, &VcpuTimeInfo::at(tsc, ns(tsc, hz), hz, 0));
        }
    }
}

impl Default for Pvclock {
    fn default() -> Self {
        Self::new()
    }
}

/// Nanoseconds at TSC value `tsc`, exactly as `Timer::now_ns` computes them.
pub fn ns(tsc: u64, hz: u64) -> u64 {
    (tsc / hz) * 1_000_000_000 + (tsc % hz) * 1_000_000_000 / hz
}

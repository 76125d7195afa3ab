//! Scheduling parameters at a control domain's request: weight, cap, hard affinity.

use crate::arch::Arch;
use crate::domain::Domain;
use crate::hypervisor::Hypervisor;
use crate::sched::{CpuMask, VcpuParams};
use keel_abi::control::CTL_ALL_VCPUS;
use keel_abi::Errno;

impl<A: Arch> Hypervisor<'_, A> {
    /// The scheduling parameters of `d`'s vCPU 0; `-ESRCH` if the scheduler does not
    /// know the domain.
    pub fn control_sched(&self, d: &Domain<A>) -> Result<VcpuParams, Errno> {
        self.hooks.sched_params(d.id(), 0).ok_or(Errno::ESRCH)
    }

    /// Sets the weight (1..=65535) and cap (0..=100) of every vCPU of `d`.
    pub fn control_set_sched(&self, d: &Domain<A>, weight: u16, cap: u8) -> Result<(), Errno> {
        if weight == 0 || cap > 100 {
            return Err(Errno::EINVAL);
        }
        self.hooks.set_weight_cap(d.id(), weight, cap)
    }

    /// Sets the hard affinity of `vcpu` (or every vCPU: `CTL_ALL_VCPUS`) of `d` to the
    /// CPUs in `cpumap`: `-EINVAL` for a vCPU the domain does not have or a map with no
    /// CPU that runs vCPUs. For a domain being built, records the affinity its vCPUs
    /// get at `CTL_START` (which refuses a map with no CPU that runs vCPUs).
    pub fn control_set_affinity(&self, d: &Domain<A>, vcpu: u32, cpumap: [u64; 4]) -> Result<(), Errno> {
        let mask = cpumask(cpumap);
        if mask.is_empty() {
            return Err(Errno::EINVAL);
        }
        if let Some(build) = self.builds.find(d.id()) {
            return build.lock().set_affinity(vcpu, cpumap);
        }
        if vcpu == CTL_ALL_VCPUS {
            return (0..d.nr_vcpus()).try_for_each(|v| self.hooks.set_affinity(d.id(), v, mask));
        }
        if vcpu >= d.nr_vcpus() {
            return Err(Errno::EINVAL);
        }
        self.hooks.set_affinity(d.id(), vcpu, mask)
    }
}

/// The CPUs whose bits are set in `cpumap` (bit n of word n / 64 = CPU n).
pub fn cpumask(cpumap: [u64; 4]) -> CpuMask {
    let mut mask = CpuMask::EMPTY;
    for (cpu, bit) in (0u32..).zip((0..256usize).map(|n| cpumap[n / 64] & (1 << (n % 64)) != 0)) {
        if bit {
            mask.insert(crate::arch::CpuId(cpu));
        }
    }
    mask
}

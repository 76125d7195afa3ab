//! PSCI over `hvc #0` (the `/psci` node's method).

use crate::regs::smccc;

pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON: u32 = 0xc400_0003;
pub const AFFINITY_INFO: u32 = 0xc400_0004;

/// `CPU_ON(target MPIDR, entry, context id)`.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> i64 {
    smccc(CPU_ON, mpidr, entry, context)
}

/// `AFFINITY_INFO(target MPIDR, level 0)`.
pub fn affinity_info(mpidr: u64) -> i64 {
    smccc(AFFINITY_INFO, mpidr, 0, 0)
}

pub fn cpu_off() -> i64 {
    smccc(CPU_OFF, 0, 0, 0)
}

/// The MPIDR affinity of vCPU `cpu` as Keel numbers them (Aff0 = id % 16, Aff1 = id / 16).
pub fn mpidr_of(cpu: u32) -> u64 {
    ((cpu as u64 / 16) << 8) | (cpu as u64 % 16)
}

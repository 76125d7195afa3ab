//! PSCI 1.1 as guests see it (over `hvc #0`, or a trapped `smc #0`): decoding the
//! function and its arguments, and the answers that need nothing but the call itself.
//! The vCPU code carries out the rest (starting, stopping, powering off).

/// PSCI return codes.
pub mod code {
    pub const SUCCESS: i64 = 0;
    pub const NOT_SUPPORTED: i64 = -1;
    pub const INVALID_PARAMETERS: i64 = -2;
    pub const ALREADY_ON: i64 = -4;
    pub const ON_PENDING: i64 = -5;
    pub const INTERNAL_FAILURE: i64 = -6;
    pub const INVALID_ADDRESS: i64 = -9;
}

/// `PSCI_VERSION`: 1.1.
pub const VERSION_1_1: u64 = 0x1_0001;
/// `MIGRATE_INFO_TYPE`: no Trusted OS, so migration is not needed.
pub const NO_TRUSTED_OS: u64 = 2;

const PSCI_VERSION: u32 = 0x8400_0000;
const CPU_SUSPEND: u32 = 0x01;
const CPU_OFF: u32 = 0x8400_0002;
const CPU_ON: u32 = 0x03;
const AFFINITY_INFO: u32 = 0x04;
const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
const SYSTEM_OFF: u32 = 0x8400_0008;
const SYSTEM_RESET: u32 = 0x8400_0009;
const PSCI_FEATURES: u32 = 0x8400_000a;
/// SMC32 and SMC64 function ids of a call number.
const SMC32: u32 = 0x8400_0000;
const SMC64: u32 = 0xc400_0000;

/// A decoded call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Version,
    /// Standby: a halt until an interrupt.
    CpuSuspend,
    CpuOff,
    CpuOn {
        target: u64,
        entry: u64,
        context: u64,
    },
    AffinityInfo {
        target: u64,
        level: u64,
    },
    MigrateInfoType,
    SystemOff,
    SystemReset,
    Features(u32),
    /// Anything else, including the SMCCC 1.1 queries (Keel speaks SMCCC 1.0, so
    /// `PSCI_FEATURES(SMCCC_VERSION)` is `NOT_SUPPORTED`).
    Unknown(u32),
}

/// Decodes `x0` (function id) and `x1..x3`. SMC32 calls use the low 32 bits of their
/// arguments.
pub fn decode(x: [u64; 4]) -> Call {
    let fid = x[0] as u32;
    let (smc64, number) = match fid & 0xffff_ff00 {
        SMC64 => (true, fid & 0xff),
        SMC32 => (false, fid & 0xff),
        _ => (false, u32::MAX),
    };
    let arg = |i: usize| if smc64 { x[i] } else { x[i] & 0xffff_ffff };
    match fid {
        PSCI_VERSION => return Call::Version,
        CPU_OFF => return Call::CpuOff,
        MIGRATE_INFO_TYPE => return Call::MigrateInfoType,
        SYSTEM_OFF => return Call::SystemOff,
        SYSTEM_RESET => return Call::SystemReset,
        PSCI_FEATURES => return Call::Features(x[1] as u32),
        _ => {}
    }
    match number {
        CPU_SUSPEND => Call::CpuSuspend,
        CPU_ON => Call::CpuOn { target: arg(1), entry: arg(2), context: arg(3) },
        AFFINITY_INFO => Call::AffinityInfo { target: arg(1), level: arg(2) },
        _ => Call::Unknown(fid),
    }
}

/// `PSCI_FEATURES(fid)`: 0 for every function Keel implements, else `NOT_SUPPORTED`.
pub fn features(fid: u32) -> i64 {
    match decode([fid as u64, 0, 0, 0]) {
        Call::Unknown(_) => code::NOT_SUPPORTED,
        _ => code::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_calling_conventions() {
        assert_eq!(decode([0x8400_0000, 0, 0, 0]), Call::Version);
        assert_eq!(
            decode([0xc400_0003, 0x101, 0x4000_1000, 7]),
            Call::CpuOn { target: 0x101, entry: 0x4000_1000, context: 7 }
        );
        // SMC32: only the low halves count.
        assert_eq!(
            decode([0x8400_0003, 0xffff_ffff_0000_0001, 0x1_4000_0000, 0]),
            Call::CpuOn { target: 1, entry: 0x4000_0000, context: 0 }
        );
        assert_eq!(decode([0xc400_0004, 2, 0, 0]), Call::AffinityInfo { target: 2, level: 0 });
        assert_eq!(decode([0x8400_0008, 0, 0, 0]), Call::SystemOff);
        assert_eq!(decode([0x8400_0009, 0, 0, 0]), Call::SystemReset);
        assert_eq!(decode([0x8400_0002, 0, 0, 0]), Call::CpuOff);
        assert_eq!(decode([0xc400_0001, 0, 0, 0]), Call::CpuSuspend);
        assert_eq!(decode([0x8400_0011, 0, 0, 0]), Call::Unknown(0x8400_0011));
        assert_eq!(decode([0x1234_8400_0000, 0, 0, 0]), Call::Version, "the function id is w0");
    }

    #[test]
    fn features() {
        assert_eq!(super::features(0xc400_0003), code::SUCCESS);
        assert_eq!(super::features(0x8400_000a), code::SUCCESS);
        assert_eq!(super::features(0x8400_0012), code::NOT_SUPPORTED);
        assert_eq!(super::features(0x8000_0000), code::NOT_SUPPORTED);
    }
}

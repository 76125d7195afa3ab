//! `vcpu_time_info`: identical on both architectures.

/// `vcpu_time_info.flags`: the TSC is stable across vCPUs.
pub const PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `vcpu_time_info.flags`: the vCPU was stopped.
pub const PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

wire_struct! {
    /// `vcpu_time_info`. `version` is odd while an update is in progress. Time now is
    /// `system_time + (((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul) >> 32`.
    pub struct VcpuTimeInfo: 32 {
        pub version: u32 = 0,
        pub pad0: u32 = 4,
        pub tsc_timestamp: u64 = 8,
        /// Nanoseconds of system time at `tsc_timestamp`.
        pub system_time: u64 = 16,
        pub tsc_to_system_mul: u32 = 24,
        pub tsc_shift: i8 = 28,
        pub flags: u8 = 29,
        pub pad1: [u8; 2] = 30,
    }
}

impl VcpuTimeInfo {
    /// Xen's time scale for a counter of `hz` ticks per second (`set_time_scale`):
    /// `(tsc_to_system_mul, tsc_shift)` such that `ns = ((ticks << shift) * mul) >> 32`.
    pub fn scale(hz: u64) -> (u32, i8) {
        const NS_PER_SEC: u64 = 1_000_000_000;
        let mut tps = hz.max(1);
        let mut shift: i8 = 0;
        while tps > 2 * NS_PER_SEC {
            tps >>= 1;
            shift -= 1;
        }
        while tps <= NS_PER_SEC {
            tps <<= 1;
            shift += 1;
        }
        // NS_PER_SEC < tps <= 2 * NS_PER_SEC: the quotient is below 2^32.
        (u32::try_from((NS_PER_SEC << 32) / tps).unwrap_or(u32::MAX), shift)
    }

    /// The pvclock of a counter of `hz` ticks per second that read `tsc` at system time
    /// `system_ns`; version 0 (the writer manages it).
    pub fn at(tsc: u64, system_ns: u64, hz: u64, flags: u8) -> VcpuTimeInfo {
        let (mul, shift) = Self::scale(hz);
        VcpuTimeInfo {
            tsc_timestamp: tsc,
            system_time: system_ns,
            tsc_to_system_mul: mul,
            tsc_shift: shift,
            flags,
            ..Default::default()
        }
    }

    /// System time (ns) at counter value `tsc`, as a guest computes it.
    pub fn system_time_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp);
        let delta = if self.tsc_shift < 0 {
            delta >> (-self.tsc_shift as u32).min(63)
        } else {
            delta << (self.tsc_shift as u32).min(63)
        };
        // A u64 times a u32 is below 2^96; shifted right by 32 it fits a u64.
        let ns = (u128::from(delta) * u128::from(self.tsc_to_system_mul)) >> 32;
        self.system_time.wrapping_add(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::VcpuTimeInfo;

    #[test]
    fn scale_matches_xen_for_common_frequencies() {
        // 1 GHz: shift 1, mul 2^31 (exactly 1 ns per tick).
        assert_eq!(VcpuTimeInfo::scale(1_000_000_000), (1 << 31, 1));
        // 2.5 GHz: shift -1 (1.25 GHz), mul = 1e9 * 2^32 / 1.25e9.
        assert_eq!(VcpuTimeInfo::scale(2_500_000_000), (3_435_973_836, -1));
        // 24 MHz (arm64 counters): shifted up 6 times to 1.536 GHz.
        assert_eq!(VcpuTimeInfo::scale(24_000_000).1, 6);
    }

    #[test]
    fn time_advances_at_the_counter_rate() {
        for hz in [1_000_000u64, 24_000_000, 1_000_000_000, 2_100_000_000, 3_999_999_999, 10_000_000_000] {
            let t = VcpuTimeInfo::at(1_000_000, 5_000, hz, 0);
            assert_eq!(t.system_time_at(1_000_000), 5_000);
            // One second of ticks later: 1e9 ns, within 1 ppm (the scale's rounding).
            let ns = t.system_time_at(1_000_000 + hz) - 5_000;
            assert!(ns.abs_diff(1_000_000_000) <= 1_000, "{hz} Hz: {ns} ns per second");
            // Never ahead of the exact value.
            assert!(ns <= 1_000_000_000, "{hz} Hz: {ns}");
        }
    }
}

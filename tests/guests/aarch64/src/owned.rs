//! The EL1 state this guest owns and may change without changing how it runs, for the
//! `switching` scenario: registers it does not use (thread pointers, fault and exception
//! records outside an exception, the unused TTBR1 and its size, MAIR attributes 2-7,
//! cache selection, EL0 timer and cache-maintenance controls), the virtual timer (armed
//! far in the future, masked) and FPCR/FPSR. Registers Keel traps and emulates (ACTLR,
//! debug, PMU) are not switched state and are left out; so are those the guest runs by
//! (SCTLR's MMU and cache bits, VBAR, CPACR, TTBR0).

macro_rules! owned {
    ($($name:literal => $reg:literal),* $(,)?) => {
        /// Register names, in fill order.
        pub const NAMES: &[&str] = &[$($name),*];

        /// Writes `values[i]` to register `i`.
        fn write_all(values: &[u64]) {
            let mut i = 0;
            $(
                // SAFETY: each value keeps the bits this guest runs by (see `fill`); the
                // registers have no effect on memory the compiler knows of.
                unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) values[i], options(nostack)) };
                i += 1;
            )*
            let _ = i;
            // SAFETY: a barrier.
            unsafe { core::arch::asm!("isb", options(nostack)) };
        }

        /// Reads register `i` into `out[i]`.
        pub fn read_all(out: &mut [u64]) {
            let mut i = 0;
            $(
                if i < out.len() {
                    let v: u64;
                    // SAFETY: reading these registers has no side effect.
                    unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
                    out[i] = v;
                }
                i += 1;
            )*
            let _ = i;
        }
    };
}

// By encoding where the assembler wants a feature (FPCR, FPSR).
owned! {
    "TPIDR_EL0" => "tpidr_el0",
    "TPIDRRO_EL0" => "tpidrro_el0",
    "TPIDR_EL1" => "tpidr_el1",
    "CONTEXTIDR_EL1" => "contextidr_el1",
    "FAR_EL1" => "far_el1",
    "ESR_EL1" => "esr_el1",
    "ELR_EL1" => "elr_el1",
    "SPSR_EL1" => "spsr_el1",
    "SP_EL0" => "sp_el0",
    "PAR_EL1" => "par_el1",
    "AFSR0_EL1" => "afsr0_el1",
    "AFSR1_EL1" => "afsr1_el1",
    "AMAIR_EL1" => "amair_el1",
    "MAIR_EL1" => "mair_el1",
    "TCR_EL1" => "tcr_el1",
    "TTBR1_EL1" => "ttbr1_el1",
    "SCTLR_EL1" => "sctlr_el1",
    "CSSELR_EL1" => "csselr_el1",
    "CNTKCTL_EL1" => "cntkctl_el1",
    "CNTV_CVAL_EL0" => "cntv_cval_el0",
    "CNTV_CTL_EL0" => "cntv_ctl_el0",
    "FPCR" => "S3_3_C4_C4_0",
    "FPSR" => "S3_3_C4_C4_1",
}

/// Valid MAIR attribute encodings (Device-nGnRnE, -nGnRE, -GRE, Normal non-cacheable,
/// write-through, write-back).
const ATTRS: [u64; 6] = [0x00, 0x04, 0x0c, 0x44, 0xbb, 0xff];

/// A 64-bit pattern of `seed` for register `i`.
fn pattern(seed: u64, i: u64) -> u64 {
    let mut x = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) ^ 0x5851_f42d_4c95_7f2d;
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 29)
}

/// Fills the registers with patterns of `seed`; returns how many.
pub fn fill(seed: u64) -> usize {
    let mut v = [0u64; NAMES.len()];
    read_all(&mut v);
    let p = |i: usize| pattern(seed, i as u64);
    for (i, name) in NAMES.iter().enumerate() {
        let cur = v[i];
        v[i] = match *name {
            // ESR: EC, IL and ISS; SPSR: NZCV, DAIF, EL1h (an ERET target).
            "ESR_EL1" => p(i) & 0xffff_ffff,
            "SPSR_EL1" => (p(i) & 0xf000_03c0) | 0b0101,
            // PAR: a failed translation's record (F = 1, FST), or a success's address.
            "PAR_EL1" => p(i) & 0x0000_ffff_ffff_f000,
            // Attributes 0 and 1 are the guest's own.
            "MAIR_EL1" => {
                let mut m = cur & 0xffff;
                for b in 2..8 {
                    m |= ATTRS[((p(i) >> (8 * b)) % ATTRS.len() as u64) as usize] << (8 * b);
                }
                m
            }
            // T1SZ (unused: EPD1 is set).
            "TCR_EL1" => (cur & !(0x3f << 16)) | ((16 + p(i) % 24) << 16),
            "TTBR1_EL1" => p(i) & 0xffff_ffff_ffff_f000,
            // EL0 access to cache maintenance (UCI, UCT) and DC ZVA (DZE), WFI/WFE at EL0.
            "SCTLR_EL1" => {
                (cur & !(1 << 26 | 1 << 15 | 1 << 14 | 1 << 16 | 1 << 18))
                    | (p(i) & (1 << 26 | 1 << 15 | 1 << 14 | 1 << 16 | 1 << 18))
            }
            // Level 1 data or instruction cache.
            "CSSELR_EL1" => p(i) & 1,
            // EL0 counter and timer access.
            "CNTKCTL_EL1" => p(i) & 0x303,
            // Far in the future, masked: armed but silent, enabled or not by the seed.
            "CNTV_CVAL_EL0" => (1 << 62) | p(i) >> 4,
            "CNTV_CTL_EL0" => 0b10 | (p(i) & 1),
            // Rounding mode, flush-to-zero, default NaN, alternative half precision.
            "FPCR" => p(i) & (0xf << 22),
            // Cumulative exception flags and saturation.
            "FPSR" => p(i) & (0x9f | 1 << 27),
            _ => p(i),
        };
    }
    write_all(&v);
    NAMES.len()
}

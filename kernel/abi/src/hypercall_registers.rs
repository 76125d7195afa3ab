//! Which registers carry a hypercall, per architecture (Xen's conventions): the one
//! definition Keel's backends read a call from and its test guests make one with.
//!
//! Keel indexes its saved guest registers with [`HypercallRegisters`]; the guests'
//! [`aarch64_hypercall!`](crate::aarch64_hypercall) and
//! [`x86_64_hypercall!`](crate::x86_64_hypercall) name the same registers in `asm!` (which
//! takes register names only as literals) and fail to compile if they disagree with the
//! map.

/// A hypercall convention: indices into the architecture's general-purpose registers
/// (arm64: `x<n>`; x86: encoding order, RAX 0, RCX 1, RDX 2, RBX 3, RSP 4, RBP 5, RSI 6,
/// RDI 7, R8 to R15 8 to 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HypercallRegisters {
    /// The register holding the hypercall number.
    pub number: usize,
    /// The registers holding arguments 1 to 5.
    pub args: [usize; 5],
    /// The register the result is returned in.
    pub result: usize,
}

impl HypercallRegisters {
    /// The number and the five arguments in `regs`, each through `width` (the identity,
    /// or a 32-bit caller's low halves); panics if the map names a register beyond `regs`.
    ///
    /// Written out element by element and always inlined, so that with one of the
    /// constant maps below the indices are constants and their bounds checks fold away:
    /// `args.map(|r| regs[r])` made an `array::try_map` call and a 40-byte `memcpy` on
    /// every hypercall (about 95 instructions of arm64's 292-instruction null hypercall).
    #[inline(always)]
    pub fn gather<const N: usize>(&self, regs: &[u64; N], width: impl Fn(u64) -> u64) -> (u64, [u64; 5]) {
        let a = &self.args;
        let w = |i: usize| width(regs[i]);
        (w(self.number), [w(a[0]), w(a[1]), w(a[2]), w(a[3]), w(a[4])])
    }
}

/// arm64 (`hvc #0xEA1`): number in x16, arguments in x0 to x4, result in x0.
pub const AARCH64: HypercallRegisters = HypercallRegisters { number: 16, args: [0, 1, 2, 3, 4], result: 0 };

/// x86 in 64-bit mode (`vmcall`/`vmmcall`): number in RAX, arguments in RDI, RSI, RDX,
/// R10, R8, result in RAX.
pub const X86_64: HypercallRegisters = HypercallRegisters { number: 0, args: [7, 6, 2, 10, 8], result: 0 };

/// x86 in 32-bit mode: number in EAX, arguments in EBX, ECX, EDX, ESI, EDI, result in EAX
/// (the low halves of the registers).
pub const X86_32: HypercallRegisters = HypercallRegisters { number: 0, args: [3, 1, 2, 6, 7], result: 0 };

/// A hypercall from an arm64 guest: `hvc #0xEA1` with `$number` and the five arguments of
/// `$args: [u64; 5]` in the registers of [`AARCH64`]; evaluates to the result. Expands to
/// `asm!`: use it inside `unsafe`. The argument registers and x16 are clobbered.
#[macro_export]
macro_rules! aarch64_hypercall {
    ($number:expr, $args:expr) => {{
        const _: () = assert!(
            matches!(
                $crate::hypercall_registers::AARCH64,
                $crate::hypercall_registers::HypercallRegisters { number: 16, args: [0, 1, 2, 3, 4], result: 0 }
            ),
            "the registers named below are not the map's"
        );
        let a: [u64; 5] = $args;
        let result: u64;
        core::arch::asm!(
            "hvc #{imm}",
            imm = const $crate::hypercall::AARCH64_HVC_IMM,
            inout("x0") a[0] => result,
            inout("x1") a[1] => _,
            inout("x2") a[2] => _,
            inout("x3") a[3] => _,
            inout("x4") a[4] => _,
            inout("x16") $number => _,
            options(nostack)
        );
        result
    }};
}

/// A hypercall from an x86 guest in 64-bit mode: `$instruction` (`"vmcall"` or
/// `"vmmcall"`) with `$number` and the five arguments of `$args: [u64; 5]` in the
/// registers of [`X86_64`]; evaluates to the result. Expands to `asm!`: use it inside
/// `unsafe`. The argument registers are clobbered.
#[macro_export]
macro_rules! x86_64_hypercall {
    ($instruction:literal, $number:expr, $args:expr) => {{
        const _: () = assert!(
            matches!(
                $crate::hypercall_registers::X86_64,
                $crate::hypercall_registers::HypercallRegisters { number: 0, args: [7, 6, 2, 10, 8], result: 0 }
            ),
            "the registers named below are not the map's"
        );
        let a: [u64; 5] = $args;
        let result: u64;
        core::arch::asm!(
            $instruction,
            inout("rax") $number => result,
            inout("rdi") a[0] => _,
            inout("rsi") a[1] => _,
            inout("rdx") a[2] => _,
            inout("r10") a[3] => _,
            inout("r8") a[4] => _,
            options(nostack)
        );
        result
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every convention names distinct registers for its arguments, its number among
    /// them only where the architecture reuses it (never), and x86's 32-bit map uses
    /// registers that exist in 32-bit mode (below R8).
    #[test]
    fn the_maps_are_well_formed() {
        for map in [AARCH64, X86_64, X86_32] {
            for (i, a) in map.args.iter().enumerate() {
                assert!(!map.args[i + 1..].contains(a), "{map:?}: argument register {a} twice");
                assert_ne!(*a, map.number, "{map:?}: an argument in the number's register");
            }
        }
        assert!(X86_32.args.iter().chain([&X86_32.number]).all(|&r| r < 8 && r != 4));
        assert!(X86_64.args.iter().chain([&X86_64.number]).all(|&r| r < 16 && r != 4), "RSP carries nothing");
        assert!(AARCH64.args.iter().chain([&AARCH64.number]).all(|&r| r < 31));
    }

    /// `gather` reads exactly the map's registers, in order, through the width.
    #[test]
    fn gather_reads_the_maps_registers() {
        let regs: [u64; 31] = core::array::from_fn(|i| 0x1_0000_0000 * (i as u64 + 1) + 100 + i as u64);
        for map in [AARCH64, X86_64, X86_32] {
            let (number, args) = map.gather(&regs, |v| v);
            assert_eq!(number, regs[map.number]);
            assert_eq!(args, map.args.map(|r| regs[r]));
            let (low, low_args) = map.gather(&regs, |v| v & 0xffff_ffff);
            assert_eq!(low, 100 + map.number as u64);
            assert_eq!(low_args, map.args.map(|r| 100 + r as u64));
        }
    }
}

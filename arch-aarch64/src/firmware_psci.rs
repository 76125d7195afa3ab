//! PSCI (Power State Coordination Interface) calls to the firmware: starting CPUs and
//! powering off. The conduit (`smc` or `hvc`) comes from the device tree's `/psci` node.
//! From EL2 only `smc` can reach firmware; an `hvc` would trap to Keel itself, and the
//! exception vectors turn it into `NOT_SUPPORTED`.

use aarch64_cpu::registers::ID_AA64PFR0_EL1;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use tock_registers::interfaces::Readable;

/// `PSCI_VERSION`.
const VERSION: u32 = 0x8400_0000;
/// `CPU_ON`, SMC64 calling convention.
const CPU_ON_64: u32 = 0xc400_0003;
/// `SYSTEM_OFF`.
const SYSTEM_OFF: u32 = 0x8400_0008;

/// `smc #0` and `hvc #0`, the instructions the vectors skip if nothing answers them.
pub const SMC_0: u32 = 0xd400_0003;
pub const HVC_0: u32 = 0xd400_0002;

/// How PSCI calls reach the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Smc,
    Hvc,
}

impl Conduit {
    pub fn name(self) -> &'static str {
        match self {
            Conduit::Smc => "smc",
            Conduit::Hvc => "hvc",
        }
    }
}

static CONDUIT: AtomicU32 = AtomicU32::new(0);

/// Records the conduit (plain store: usable with the MMU off).
pub fn set_conduit(c: Option<Conduit>) {
    CONDUIT.store(
        match c {
            None => 0,
            Some(Conduit::Smc) => 1,
            Some(Conduit::Hvc) => 2,
        },
        Relaxed,
    );
}

pub fn conduit() -> Option<Conduit> {
    match CONDUIT.load(Relaxed) {
        1 => Some(Conduit::Smc),
        2 => Some(Conduit::Hvc),
        _ => None,
    }
}

/// A PSCI error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsciError(pub i64);

impl core::fmt::Display for PsciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self.0 {
            -1 => "NOT_SUPPORTED",
            -2 => "INVALID_PARAMETERS",
            -3 => "DENIED",
            -4 => "ALREADY_ON",
            -5 => "ON_PENDING",
            -6 => "INTERNAL_FAILURE",
            -7 => "NOT_PRESENT",
            -8 => "DISABLED",
            -9 => "INVALID_ADDRESS",
            _ => "unknown error",
        };
        write!(f, "{name} ({})", self.0)
    }
}

fn call(fid: u32, a1: u64, a2: u64, a3: u64) -> Result<i64, PsciError> {
    let Some(conduit) = conduit() else { return Err(PsciError(-1)) };
    let mut x0 = fid as u64;
    // SAFETY: an SMCCC call to the firmware; it touches no memory of ours and preserves
    // the callee-saved registers. If nothing answers, the vectors skip the instruction
    // and return -1 in x0.
    unsafe {
        match conduit {
            Conduit::Smc => core::arch::asm!("smc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _,
                inout("x3") a3 => _, clobber_abi("C"), options(nostack)),
            Conduit::Hvc => core::arch::asm!("hvc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _,
                inout("x3") a3 => _, clobber_abi("C"), options(nostack)),
        }
    }
    let r = x0 as i64;
    if r < 0 {
        Err(PsciError(r))
    } else {
        Ok(r)
    }
}

/// The firmware's PSCI version as (major, minor).
pub fn version() -> Option<(u16, u16)> {
    call(VERSION, 0, 0, 0).ok().map(|v| ((v >> 16) as u16, v as u16))
}

/// Starts the CPU `mpidr` at `entry` (physical) with `context` in x0.
pub fn cpu_on(mpidr: u64, entry: usize, context: usize) -> Result<(), PsciError> {
    call(CPU_ON_64, mpidr, entry as u64, context as u64).map(|_| ())
}

/// Powers the system off; returns only if the firmware refused or is absent. Without a
/// conduit from the device tree it tries `smc` only where no EL3 exists: there the call is
/// either undefined (and skipped) or answered by an emulator's built-in PSCI, whereas
/// unknown EL3 firmware might not return at all.
pub fn system_off() -> PsciError {
    let el3 = (ID_AA64PFR0_EL1.get() >> 12) & 0xf != 0;
    if conduit().is_none() && !el3 {
        set_conduit(Some(Conduit::Smc));
    }
    match call(SYSTEM_OFF, 0, 0, 0) {
        Ok(_) => PsciError(-6),
        Err(e) => e,
    }
}

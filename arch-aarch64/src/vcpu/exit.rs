//! Decoding why a guest stopped: the vector slot and ESR_EL2 become a portable
//! [`VmExit`], an exception to inject into the guest, or a guest crash.

use keel_abi::hypercall::AARCH64_HVC_IMM;
use keel_kernel::arch::VmExit;

/// Vector slots of exceptions from a lower EL (see `asm/vectors.S`).
const SLOT_SYNC_A64: u64 = 8;
const SLOT_SYNC_A32: u64 = 12;

const EC_WFX: u64 = 0x01;
const EC_SYSREG: u64 = 0x18;
const EC_HVC32: u64 = 0x12;
const EC_SMC32: u64 = 0x13;
const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;
const EC_IABT_LOW: u64 = 0x20;
const EC_DABT_LOW: u64 = 0x24;

/// What to do after an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Report `exit` to the core, after moving the guest's PC on by `advance` bytes.
    Exit { exit: VmExit, advance: u64 },
    /// Give the guest an undefined-instruction exception for the instruction at
    /// PC − `back` (HVC returns after the instruction, a trapped SMC at it).
    Undefined { back: u64 },
    /// A load or store to unmapped guest-physical memory that a device may emulate.
    Mmio(Mmio),
    /// An `MSR`/`MRS` the hypervisor traps (GICv3 SGI generation, ...).
    Sysreg(Sysreg),
    /// An SMCCC call (`hvc #0`, or `smc #0` trapped): PSCI. Move the PC on by `advance`
    /// (a trapped SMC returns to itself, an HVC after itself).
    Psci { advance: u64 },
    /// A data access or instruction fetch stage 2 refused that no device emulates (a
    /// hole, a read-only mapping, the guest's page tables outside its memory): the guest
    /// takes an external abort at virtual address `far`.
    Abort { instruction: bool, write: bool, far: u64 },
}

/// A trapped data access with a valid instruction syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmio {
    pub gpa: u64,
    pub write: bool,
    /// Bytes: 1, 2, 4 or 8.
    pub size: u64,
    /// The general register (31 = the zero register).
    pub reg: u8,
    /// Sign-extend a load.
    pub sign_extend: bool,
    /// The register is 64-bit (else a load clears the upper half).
    pub sixty_four: bool,
}

/// A trapped system-register access: `op0, op1, CRn, CRm, op2` and the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sysreg {
    pub encoding: (u8, u8, u8, u8, u8),
    pub reg: u8,
    pub read: bool,
}

/// `ICC_SGI1R_EL1`, `ICC_ASGI1R_EL1`, `ICC_SGI0R_EL1`.
pub const ICC_SGI1R_EL1: (u8, u8, u8, u8, u8) = (3, 0, 12, 11, 5);
pub const ICC_ASGI1R_EL1: (u8, u8, u8, u8, u8) = (3, 0, 12, 11, 6);
pub const ICC_SGI0R_EL1: (u8, u8, u8, u8, u8) = (3, 0, 12, 11, 7);

fn sysreg(iss: u64) -> Sysreg {
    let f = |shift: u32, bits: u32| ((iss >> shift) & ((1 << bits) - 1)) as u8;
    Sysreg { encoding: (f(20, 2), f(14, 3), f(10, 4), f(1, 4), f(17, 3)), reg: f(5, 5), read: iss & 1 != 0 }
}

/// The registers an exit is decoded from.
#[derive(Clone, Copy, Debug)]
pub struct Syndrome {
    pub slot: u64,
    pub esr: u64,
    pub far: u64,
    pub hpfar: u64,
}

fn exit(exit: VmExit) -> Outcome {
    Outcome::Exit { exit, advance: 0 }
}

pub fn decode(s: Syndrome) -> Outcome {
    if s.slot != SLOT_SYNC_A64 && s.slot != SLOT_SYNC_A32 {
        return match s.slot % 4 {
            // IRQ, FIQ: a physical interrupt for the host, left pending.
            1 | 2 => exit(VmExit::Interrupt),
            // SError: the guest caused an asynchronous abort.
            _ => exit(VmExit::GuestCrash),
        };
    }
    let ec = (s.esr >> 26) & 0x3f;
    let insn_len = if s.esr & (1 << 25) != 0 { 4 } else { 2 };
    let iss = s.esr & 0x1ff_ffff;
    match ec {
        EC_HVC64 if iss & 0xffff == AARCH64_HVC_IMM as u64 => exit(VmExit::Hypercall),
        EC_HVC64 if iss & 0xffff == 0 => Outcome::Psci { advance: 0 },
        EC_SMC64 if iss & 0xffff == 0 => Outcome::Psci { advance: insn_len },
        // Other immediates, and AArch32 callers: not a call Keel knows.
        EC_HVC64 | EC_HVC32 => Outcome::Undefined { back: insn_len },
        EC_SMC64 | EC_SMC32 => Outcome::Undefined { back: 0 },
        EC_WFX => {
            // ISS.TI: 0 WFI, 1 WFE, 2 WFIT, 3 WFET.
            let exit = if iss & 1 == 0 { VmExit::Halt } else { VmExit::Yield };
            Outcome::Exit { exit, advance: insn_len }
        }
        EC_SYSREG => Outcome::Sysreg(sysreg(iss)),
        EC_DABT_LOW if is_mmio(iss) => Outcome::Mmio(Mmio {
            gpa: ((s.hpfar & 0x0000_0fff_ffff_fff0) << 8) | (s.far & 0xfff),
            write: iss & (1 << 6) != 0,
            size: 1 << ((iss >> 22) & 3),
            reg: ((iss >> 16) & 0x1f) as u8,
            sign_extend: iss & (1 << 21) != 0,
            sixty_four: iss & (1 << 15) != 0,
        }),
        EC_DABT_LOW | EC_IABT_LOW => {
            Outcome::Abort { instruction: ec == EC_IABT_LOW, write: ec == EC_DABT_LOW && iss & (1 << 6) != 0, far: s.far }
        }
        // Anything else a guest can cause (SVE with its traps on, debug registers, an
        // illegal exception return, ...): not something Keel handles.
        _ => Outcome::Undefined { back: 0 },
    }
}

/// A stage-2 translation fault (nothing mapped) with a valid instruction syndrome (ISV)
/// on a data access that is not a stage-1 table walk: what device emulation can handle.
fn is_mmio(iss: u64) -> bool {
    const ISV: u64 = 1 << 24;
    const S1PTW: u64 = 1 << 7;
    let translation_fault = (iss & 0x3c) == 0x04;
    iss & ISV != 0 && iss & S1PTW == 0 && translation_fault
}

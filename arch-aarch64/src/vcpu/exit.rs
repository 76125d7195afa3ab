//! Decoding why a guest stopped: the vector slot and ESR_EL2 become a portable
//! [`VmExit`], an exception to inject into the guest, or a guest crash.

use crate::layout::{PL011_BASE, PL011_SIZE};
use aarch64_cpu::registers::ESR_EL2;
use keel_abi::hypercall::AARCH64_HVC_IMM;
use keel_kernel::arch::VmExit;
use tock_registers::register_bitfields;
use tock_registers::registers::InMemoryRegister;
use tock_registers::interfaces::Readable;

use crate::syndrome::{ISS_CALL, SLOT_SYNC_A32, SLOT_SYNC_A64};

// The instruction-specific syndromes (ESR_EL2.ISS) Keel decodes, by exception class.
register_bitfields! {u64,
    /// WFI, WFE (EC 0x01).
    ISS_WFX [
        /// 0 WFI, 1 WFE, 2 WFIT, 3 WFET.
        TI OFFSET(0) NUMBITS(2) []
    ],
    /// MSR, MRS, system instructions (EC 0x18).
    ISS_SYSREG [
        OP0 OFFSET(20) NUMBITS(2) [],
        OP2 OFFSET(17) NUMBITS(3) [],
        OP1 OFFSET(14) NUMBITS(3) [],
        CRN OFFSET(10) NUMBITS(4) [],
        RT OFFSET(5) NUMBITS(5) [],
        CRM OFFSET(1) NUMBITS(4) [],
        /// 1: MRS (a read).
        DIRECTION OFFSET(0) NUMBITS(1) []
    ],
    /// Data and instruction aborts (EC 0x20, 0x24).
    ISS_ABORT [
        /// The syndrome below (SAS..AR) is valid.
        ISV OFFSET(24) NUMBITS(1) [],
        /// Access size: 1 << SAS bytes.
        SAS OFFSET(22) NUMBITS(2) [],
        /// Sign-extend the load.
        SSE OFFSET(21) NUMBITS(1) [],
        /// The transfer register.
        SRT OFFSET(16) NUMBITS(5) [],
        /// 64-bit register.
        SF OFFSET(15) NUMBITS(1) [],
        /// The fault was on a stage-1 table walk.
        S1PTW OFFSET(7) NUMBITS(1) [],
        /// A write.
        WNR OFFSET(6) NUMBITS(1) [],
        /// Fault status: type in [5:2] (0b0001: translation fault), level in [1:0].
        FSC_TYPE OFFSET(2) NUMBITS(4) [
            Translation = 0b0001,
            AccessFlag = 0b0010
        ]
    ]
}

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
    /// hole, a read-only mapping, the guest's page tables outside its memory): unless the
    /// P2M maps the page by now, the guest takes an external abort at virtual address
    /// `far`. `ipa`: the guest-physical address, where HPFAR_EL2 holds it (a translation
    /// or access flag fault, or a fault on a stage-1 table walk; a stage-2 permission
    /// fault leaves it UNKNOWN).
    Abort { instruction: bool, write: bool, far: u64, ipa: Option<u64> },
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

/// The access a trapped `MSR`/`MRS` with syndrome `iss` (ESR_EL2.ISS) makes.
pub fn sysreg(iss: u64) -> Sysreg {
    let iss = InMemoryRegister::<u64, ISS_SYSREG::Register>::new(iss);
    let f = |field| iss.read(field) as u8;
    Sysreg {
        encoding: (f(ISS_SYSREG::OP0), f(ISS_SYSREG::OP1), f(ISS_SYSREG::CRN), f(ISS_SYSREG::CRM), f(ISS_SYSREG::OP2)),
        reg: f(ISS_SYSREG::RT),
        read: iss.is_set(ISS_SYSREG::DIRECTION),
    }
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
    use ESR_EL2::EC::Value as Ec;
    let esr = InMemoryRegister::<u64, ESR_EL2::Register>::new(s.esr);
    let insn_len = if esr.is_set(ESR_EL2::IL) { 4 } else { 2 };
    let iss = esr.read(ESR_EL2::ISS);
    let imm16 = InMemoryRegister::<u64, ISS_CALL::Register>::new(iss).read(ISS_CALL::IMM16);
    match esr.read_as_enum(ESR_EL2::EC) {
        Some(Ec::HVC64) if imm16 == u64::from(AARCH64_HVC_IMM) => exit(VmExit::Hypercall),
        Some(Ec::HVC64) if imm16 == 0 => Outcome::Psci { advance: 0 },
        Some(Ec::SMC64) if imm16 == 0 => Outcome::Psci { advance: insn_len },
        // Other immediates, and AArch32 callers: not a call Keel knows.
        Some(Ec::HVC64 | Ec::HVC32) => Outcome::Undefined { back: insn_len },
        Some(Ec::SMC64 | Ec::SMC32) => Outcome::Undefined { back: 0 },
        Some(Ec::TrappedWFIorWFE) => {
            let wfi = InMemoryRegister::<u64, ISS_WFX::Register>::new(iss).read(ISS_WFX::TI) == 0;
            Outcome::Exit { exit: if wfi { VmExit::Halt } else { VmExit::Yield }, advance: insn_len }
        }
        Some(Ec::TrappedMsrMrs) => Outcome::Sysreg(sysreg(iss)),
        Some(ec @ (Ec::DataAbortLowerEL | Ec::InstrAbortLowerEL)) => {
            let data = ec == Ec::DataAbortLowerEL;
            match data.then(|| mmio(&s)).flatten() {
                Some(m) => Outcome::Mmio(m),
                None => {
                    let abort = InMemoryRegister::<u64, ISS_ABORT::Register>::new(iss);
                    let ipa_valid = abort.is_set(ISS_ABORT::S1PTW)
                        || abort.matches_any(&[ISS_ABORT::FSC_TYPE::Translation, ISS_ABORT::FSC_TYPE::AccessFlag]);
                    Outcome::Abort {
                        instruction: !data,
                        write: data && abort.is_set(ISS_ABORT::WNR),
                        far: s.far,
                        ipa: ipa_valid.then_some(fault_ipa(&s)),
                    }
                }
            }
        }
        // Anything else a guest can cause (SVE with its traps on, debug registers, an
        // illegal exception return, ...): not something Keel handles.
        _ => Outcome::Undefined { back: 0 },
    }
}

/// The device access a data abort from a lower EL (`s.esr`'s class) asks for, if it is
/// one a device may emulate ([`is_mmio`]).
#[inline]
pub fn mmio(s: &Syndrome) -> Option<Mmio> {
    // The abort's ISS fields lie in bits 24:0, where they are read from the whole syndrome.
    let abort = InMemoryRegister::<u64, ISS_ABORT::Register>::new(s.esr);
    is_mmio(&abort).then(|| Mmio {
        gpa: fault_ipa(s),
        write: abort.is_set(ISS_ABORT::WNR),
        size: 1 << abort.read(ISS_ABORT::SAS),
        reg: abort.read(ISS_ABORT::SRT) as u8,
        sign_extend: abort.is_set(ISS_ABORT::SSE),
        sixty_four: abort.is_set(ISS_ABORT::SF),
    })
}

/// The guest-physical address of a stage-2 fault: the page from HPFAR_EL2, the offset
/// from FAR_EL2.
#[inline]
pub fn fault_ipa(s: &Syndrome) -> u64 {
    ((s.hpfar & 0x0000_0fff_ffff_fff0) << 8) | (s.far & 0xfff)
}

/// A stage-2 translation fault (nothing mapped) with a valid instruction syndrome (ISV)
/// on a data access that is not a stage-1 table walk: what device emulation can handle.
fn is_mmio(abort: &InMemoryRegister<u64, ISS_ABORT::Register>) -> bool {
    abort.is_set(ISS_ABORT::ISV)
        && !abort.is_set(ISS_ABORT::S1PTW)
        && abort.matches_all(ISS_ABORT::FSC_TYPE::Translation)
}

/// Whether handling `outcome` needs the virtual GIC's model to agree with the list
/// registers (which are then saved first). The fast path's exits need none: a
/// hypercall, a trapped system register that is not a GIC one, an access to the virtual
/// PL011.
pub fn needs_interrupt_model(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Exit { exit: VmExit::Hypercall, .. } => false,
        Outcome::Sysreg(s) => matches!(s.encoding, ICC_SGI1R_EL1 | ICC_ASGI1R_EL1 | ICC_SGI0R_EL1),
        Outcome::Mmio(m) => !(PL011_BASE..PL011_BASE + PL011_SIZE).contains(&m.gpa),
        _ => true,
    }
}


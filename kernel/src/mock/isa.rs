//! The mock virtual CPU's instruction set.
//!
//! Sixteen 64-bit registers `r0..r15`. A hypercall takes its number in `r7` and
//! arguments in `r0..r4`, and returns its result in `r0`; the boot argument arrives in
//! `r0`. Memory operands are guest addresses (the mock CPU has no MMU: virtual is
//! guest-physical), translated through the domain's stage-2 tables.
//!
//! | opcode | instruction | bytes |
//! |---|---|---|
//! | 1 | `Set(rd, imm64)` | 10 |
//! | 2 | `Mov(rd, rs)` | 3 |
//! | 3 | `Hypercall` | 1 |
//! | 4 | `Halt` (WFI/HLT) | 1 |
//! | 5 | `Load { width, rd, base, off }`: `rd = zero-extended [base + off]` | 8 |
//! | 6 | `Store { width, rs, base, off }`: `[base + off] = low bytes of rs` | 8 |
//! | 7 | `Alu(op, rd, ra, rb)`: `rd = ra op rb` (wrapping) | 5 |
//! | 8 | `AddI(rd, ra, imm32)`: `rd = ra + sign-extended imm` | 7 |
//! | 9 | `Branch(cond, ra, rb, off)`: if `ra cond rb`, jump by `off` from the next instruction | 8 |
//! | 10 | `Jump(off)` | 5 |
//! | 11 | `Yield` (WFE/PAUSE) | 1 |
//! | 12 | `Time(rd)`: system time in ns | 2 |
//! | 13 | `Upcall(rd)`: 1 while the event upcall interrupt is asserted, else 0 | 2 |
//! | 14 | `Platform(call)`: see [`PlatformCall`] | 2 |
//!
//! Anything else (opcode 0, 15.., a bad width, operation or condition) is an undefined
//! instruction: the vCPU exits with `GuestCrash`.

use alloc::vec::Vec;

/// An arithmetic or logic operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add = 0,
    Sub = 1,
    And = 2,
    Or = 3,
    Xor = 4,
    /// Shift left by `rb & 63`.
    Shl = 5,
    /// Logical shift right by `rb & 63`.
    Shr = 6,
}

/// A branch condition comparing two registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq = 0,
    Ne = 1,
    /// Unsigned less than.
    Ltu = 2,
    /// Unsigned greater or equal.
    Geu = 3,
    /// Signed less than.
    Lt = 4,
    /// Signed greater or equal.
    Ge = 5,
}

/// Platform calls, the mock's PSCI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformCall {
    /// Start vCPU `r1` at `r2` with `r3` in its `r0`; the result (0 or a negative
    /// PSCI-style code) comes back in `r0`.
    CpuOn = 0,
    /// Turn this vCPU off.
    CpuOff = 1,
    /// Power the virtual machine off.
    SystemOff = 2,
    /// Reset the virtual machine.
    SystemReset = 3,
    /// Ring the doorbell (a virtual interrupt, like an SGI) of every vCPU in the mask
    /// `r1`, waking them (`VmExit::Kick`).
    Kick = 4,
    /// `r0` = 1 if this vCPU's doorbell rang since it last looked, or its device timer
    /// expired (and clear both), else 0.
    Doorbell = 5,
    /// Arm this vCPU's device timer for system time `r1` (0 stops it), as the x86 local
    /// APIC timer: exits with `DeviceTimer`; when it expires it counts as a doorbell.
    Timer = 6,
    /// Halt until system time `r1` (ns) at the latest, as a guest with its own timer
    /// armed does (`Vcpu::halt_deadline`).
    HaltUntil = 7,
    /// Write the low byte of `r1` to the emulated console UART (`VmExit::ConsoleOutput`).
    UartPut = 8,
}

/// One mock instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    Set(u8, u64),
    Mov(u8, u8),
    Hypercall,
    Halt,
    Load { width: u8, rd: u8, base: u8, off: i32 },
    Store { width: u8, rs: u8, base: u8, off: i32 },
    Alu(Op, u8, u8, u8),
    AddI(u8, u8, i32),
    Branch(Cond, u8, u8, i32),
    Jump(i32),
    Yield,
    Time(u8),
    Upcall(u8),
    Platform(PlatformCall),
}

const OPS: [Op; 7] = [Op::Add, Op::Sub, Op::And, Op::Or, Op::Xor, Op::Shl, Op::Shr];
const CONDS: [Cond; 6] = [Cond::Eq, Cond::Ne, Cond::Ltu, Cond::Geu, Cond::Lt, Cond::Ge];
const CALLS: [PlatformCall; 9] = [
    PlatformCall::CpuOn,
    PlatformCall::CpuOff,
    PlatformCall::SystemOff,
    PlatformCall::SystemReset,
    PlatformCall::Kick,
    PlatformCall::Doorbell,
    PlatformCall::Timer,
    PlatformCall::HaltUntil,
    PlatformCall::UartPut,
];

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn width(w: u8) -> Option<u8> {
    matches!(w, 1 | 2 | 4 | 8).then_some(w)
}

impl Op {
    pub fn apply(self, a: u64, b: u64) -> u64 {
        match self {
            Op::Add => a.wrapping_add(b),
            Op::Sub => a.wrapping_sub(b),
            Op::And => a & b,
            Op::Or => a | b,
            Op::Xor => a ^ b,
            Op::Shl => a << (b & 63),
            Op::Shr => a >> (b & 63),
        }
    }
}

impl Cond {
    pub fn holds(self, a: u64, b: u64) -> bool {
        match self {
            Cond::Eq => a == b,
            Cond::Ne => a != b,
            Cond::Ltu => a < b,
            Cond::Geu => a >= b,
            Cond::Lt => (a as i64) < (b as i64),
            Cond::Ge => (a as i64) >= (b as i64),
        }
    }
}

impl Insn {
    /// The encoded length of the instruction starting with `opcode` (1 for an undefined
    /// opcode).
    pub fn length(opcode: u8) -> usize {
        match opcode {
            1 => 10,
            2 => 3,
            5 | 6 | 9 => 8,
            7 | 10 => 5,
            8 => 7,
            12..=14 => 2,
            _ => 1,
        }
    }

    /// Decodes one instruction from exactly its bytes; `None` if it is undefined.
    pub fn decode(b: &[u8]) -> Option<Insn> {
        let byte = |i: usize| b.get(i).copied();
        Some(match *b.first()? {
            1 => Insn::Set(byte(1)?, u64::from_le_bytes(b.get(2..10)?.try_into().ok()?)),
            2 => Insn::Mov(byte(1)?, byte(2)?),
            3 => Insn::Hypercall,
            4 => Insn::Halt,
            5 => Insn::Load { width: width(byte(1)?)?, rd: byte(2)?, base: byte(3)?, off: i32_at(b, 4)? },
            6 => Insn::Store { width: width(byte(1)?)?, rs: byte(2)?, base: byte(3)?, off: i32_at(b, 4)? },
            7 => Insn::Alu(*OPS.get(byte(1)? as usize)?, byte(2)?, byte(3)?, byte(4)?),
            8 => Insn::AddI(byte(1)?, byte(2)?, i32_at(b, 3)?),
            9 => Insn::Branch(*CONDS.get(byte(1)? as usize)?, byte(2)?, byte(3)?, i32_at(b, 4)?),
            10 => Insn::Jump(i32_at(b, 1)?),
            11 => Insn::Yield,
            12 => Insn::Time(byte(1)?),
            13 => Insn::Upcall(byte(1)?),
            14 => Insn::Platform(*CALLS.get(byte(1)? as usize)?),
            _ => return None,
        })
    }

    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Insn::Set(r, v) => {
                out.extend([1, r]);
                out.extend(v.to_le_bytes());
            }
            Insn::Mov(d, s) => out.extend([2, d, s]),
            Insn::Hypercall => out.push(3),
            Insn::Halt => out.push(4),
            Insn::Load { width, rd, base, off } => {
                out.extend([5, width, rd, base]);
                out.extend(off.to_le_bytes());
            }
            Insn::Store { width, rs, base, off } => {
                out.extend([6, width, rs, base]);
                out.extend(off.to_le_bytes());
            }
            Insn::Alu(op, d, a, b) => out.extend([7, op as u8, d, a, b]),
            Insn::AddI(d, a, imm) => {
                out.extend([8, d, a]);
                out.extend(imm.to_le_bytes());
            }
            Insn::Branch(c, a, b, off) => {
                out.extend([9, c as u8, a, b]);
                out.extend(off.to_le_bytes());
            }
            Insn::Jump(off) => {
                out.push(10);
                out.extend(off.to_le_bytes());
            }
            Insn::Yield => out.push(11),
            Insn::Time(r) => out.extend([12, r]),
            Insn::Upcall(r) => out.extend([13, r]),
            Insn::Platform(c) => out.extend([14, c as u8]),
        }
    }

    /// The encoded length of this instruction.
    pub fn encoded_len(&self) -> usize {
        let mut v = Vec::new();
        self.encode(&mut v);
        v.len()
    }
}

/// Encodes a program without labels.
pub fn assemble(program: &[Insn]) -> Vec<u8> {
    let mut out = Vec::new();
    for insn in program {
        insn.encode(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction_round_trips_with_its_length() {
        let all = [
            Insn::Set(15, u64::MAX - 3),
            Insn::Mov(1, 2),
            Insn::Hypercall,
            Insn::Halt,
            Insn::Load { width: 4, rd: 3, base: 9, off: -8 },
            Insn::Store { width: 1, rs: 3, base: 9, off: 4096 },
            Insn::Alu(Op::Shr, 1, 2, 3),
            Insn::AddI(4, 4, -1),
            Insn::Branch(Cond::Ge, 1, 2, -40),
            Insn::Jump(12),
            Insn::Yield,
            Insn::Time(5),
            Insn::Upcall(6),
            Insn::Platform(PlatformCall::SystemReset),
        ];
        for insn in all {
            let mut b = Vec::new();
            insn.encode(&mut b);
            assert_eq!(b.len(), Insn::length(b[0]), "{insn:?}");
            assert_eq!(Insn::decode(&b), Some(insn));
        }
        assert_eq!(Insn::decode(&[0]), None);
        assert_eq!(Insn::decode(&[0xff]), None);
        assert_eq!(Insn::decode(&[5, 3, 0, 0, 0, 0, 0, 0]), None, "width 3");
        assert_eq!(Insn::decode(&[7, 9, 0, 0, 0]), None, "no operation 9");
    }
}

//! The mock virtual CPU's instruction set.

use alloc::vec::Vec;

/// One mock instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    /// `r[reg] = value` (opcode 1, reg, 8-byte value).
    Set(u8, u64),
    /// `r[dst] = r[src]` (opcode 2, dst, src).
    Mov(u8, u8),
    /// Hypercall (opcode 3).
    Hypercall,
    /// Halt (opcode 4).
    Halt,
}

impl Insn {
    /// The encoded length of the instruction starting with `opcode`.
    pub fn length(opcode: u8) -> usize {
        match opcode {
            1 => 10,
            2 => 3,
            _ => 1,
        }
    }

    pub fn decode(b: &[u8]) -> Option<Insn> {
        match *b.first()? {
            1 => Some(Insn::Set(b[1], u64::from_le_bytes(b[2..10].try_into().ok()?))),
            2 => Some(Insn::Mov(b[1], b[2])),
            3 => Some(Insn::Hypercall),
            4 => Some(Insn::Halt),
            _ => None,
        }
    }
}

/// Encodes a program.
pub fn assemble(program: &[Insn]) -> Vec<u8> {
    let mut out = Vec::new();
    for insn in program {
        match *insn {
            Insn::Set(r, v) => {
                out.extend([1, r]);
                out.extend(v.to_le_bytes());
            }
            Insn::Mov(d, s) => out.extend([2, d, s]),
            Insn::Hypercall => out.push(3),
            Insn::Halt => out.push(4),
        }
    }
    out
}

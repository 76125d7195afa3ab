//! The instruction at a faulting guest RIP, decoded with `iced-x86` into the memory
//! operation Keel can perform for it ([`Op`]), or the reason it cannot ([`Unsupported`]).

use super::alu::{Binary, BitTest, Condition, Unary};
use super::vector::XMM_REGISTERS;
use iced_x86::{ConditionCode, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// The longest x86 instruction.
pub const MAX_LEN: usize = 15;

/// Where a value written to memory (or a bit offset) comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A general-purpose register (index in encoding order), its low bytes.
    Register(usize),
    Immediate(u64),
}

/// The string instructions Keel performs (REP repeats them RCX times).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringOp {
    /// MOVS: from `seg:rSI` to `es:rDI`.
    Movs,
    /// STOS: the accumulator to `es:rDI`.
    Stos,
    /// LODS: `seg:rSI` into the accumulator.
    Lods,
    /// CMPS: the flags of `cmp seg:rSI, es:rDI`; with REP, repeated while equal (F3) or
    /// while not equal (`repne`, F2).
    Cmps { repne: bool },
    /// SCAS: the flags of `cmp accumulator, es:rDI`; repeated as CMPS.
    Scas { repne: bool },
}

/// What an instruction does with its memory operand of [`Decoded::size`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// MOV, MOVZX, MOVSX(D) into register `dest` of `dest_size` bytes.
    Load { dest: usize, dest_size: u8, sign: bool },
    /// MOV from a register or an immediate; MOVNTI (a non-temporal hint, the same store).
    Store(Source),
    /// MOVBE into register `dest`: the loaded bytes in reverse order.
    LoadSwapped(usize),
    /// MOVBE from register `source`: its low bytes stored in reverse order.
    StoreSwapped(usize),
    /// CMPXCHG with register `source`: the accumulator compared with memory; equal, the
    /// register is stored (ZF set); not equal, memory is loaded into the accumulator.
    CompareExchange(usize),
    /// XADD with register `source`: memory gets the sum, the register the old memory.
    ExchangeAdd(usize),
    /// `op mem, source` (the result goes to memory unless CMP or TEST).
    BinaryToMemory { op: Binary, source: Source },
    /// `op reg, mem` (the result goes to register `dest` unless CMP or TEST).
    BinaryToRegister { op: Binary, dest: usize },
    /// INC, DEC, NOT, NEG of the memory operand.
    Unary(Unary),
    /// XCHG of memory and a register.
    Exchange(usize),
    /// BT, BTS, BTR, BTC with a bit offset in a register (signed, may reach past the
    /// operand) or an immediate (taken modulo the operand's bits).
    BitTest { op: BitTest, offset: Source },
    /// A string instruction; `address_size` is the size of rSI/rDI/rCX it uses (2, 4,
    /// 8).
    String { op: StringOp, rep: bool, address_size: u8 },
    /// SETcc: 1 or 0 stored as the condition holds.
    Set(Condition),
    /// CMPXCHG8B (size 8) or CMPXCHG16B (size 16, 16-byte aligned).
    CompareExchangeDouble,
    /// MOVD/MOVQ into XMM register `n` (zero-extended to 128 bits).
    LoadVector(usize),
    /// MOVD/MOVQ from the low bytes of XMM register `n`.
    StoreVector(usize),
}

/// A decoded instruction: what it does, the size of its memory access, its length, and
/// the instruction itself (for the operands' addresses).
#[derive(Clone, Copy, Debug)]
pub struct Decoded {
    pub op: Op,
    pub size: u8,
    pub len: u8,
    /// The operand index of the memory operand (the destination's, for MOVS).
    pub memory_operand: u32,
    pub instruction: Instruction,
}

/// Why an instruction cannot be performed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// Not a complete, valid instruction.
    Invalid,
    /// Valid, but not one Keel performs on memory it emulates.
    Instruction(Mnemonic),
    /// A register Keel cannot name here (RSP lives in the VMCS/VMCB; AH..BH).
    Register(Register),
}

/// A general-purpose register as an index into `GuestRegisters::gpr` and its size.
pub fn gpr(r: Register) -> Result<(usize, u8), Unsupported> {
    let high_byte = matches!(r, Register::AH | Register::CH | Register::DH | Register::BH);
    let full = r.full_register();
    if !r.is_gpr() || high_byte || full == Register::RSP {
        return Err(Unsupported::Register(r));
    }
    let size = u8::try_from(r.size()).map_err(|_| Unsupported::Register(r))?;
    Ok((full.number(), size))
}

fn binary(m: Mnemonic) -> Option<Binary> {
    Some(match m {
        Mnemonic::Add => Binary::Add,
        Mnemonic::Or => Binary::Or,
        Mnemonic::Adc => Binary::Adc,
        Mnemonic::Sbb => Binary::Sbb,
        Mnemonic::And => Binary::And,
        Mnemonic::Sub => Binary::Sub,
        Mnemonic::Xor => Binary::Xor,
        Mnemonic::Cmp => Binary::Cmp,
        Mnemonic::Test => Binary::Test,
        _ => return None,
    })
}

fn unary(m: Mnemonic) -> Option<Unary> {
    Some(match m {
        Mnemonic::Inc => Unary::Inc,
        Mnemonic::Dec => Unary::Dec,
        Mnemonic::Not => Unary::Not,
        Mnemonic::Neg => Unary::Neg,
        _ => return None,
    })
}

fn bit_test(m: Mnemonic) -> Option<BitTest> {
    Some(match m {
        Mnemonic::Bt => BitTest::Bt,
        Mnemonic::Bts => BitTest::Bts,
        Mnemonic::Btr => BitTest::Btr,
        Mnemonic::Btc => BitTest::Btc,
        _ => return None,
    })
}

fn condition(c: ConditionCode) -> Option<Condition> {
    Some(match c {
        ConditionCode::o => Condition::O,
        ConditionCode::no => Condition::No,
        ConditionCode::b => Condition::B,
        ConditionCode::ae => Condition::Ae,
        ConditionCode::e => Condition::E,
        ConditionCode::ne => Condition::Ne,
        ConditionCode::be => Condition::Be,
        ConditionCode::a => Condition::A,
        ConditionCode::s => Condition::S,
        ConditionCode::ns => Condition::Ns,
        ConditionCode::p => Condition::P,
        ConditionCode::np => Condition::Np,
        ConditionCode::l => Condition::L,
        ConditionCode::ge => Condition::Ge,
        ConditionCode::le => Condition::Le,
        ConditionCode::g => Condition::G,
        _ => return None,
    })
}

fn string(m: Mnemonic, repne: bool) -> Option<StringOp> {
    Some(match m {
        Mnemonic::Movsb | Mnemonic::Movsw | Mnemonic::Movsd | Mnemonic::Movsq => StringOp::Movs,
        Mnemonic::Stosb | Mnemonic::Stosw | Mnemonic::Stosd | Mnemonic::Stosq => StringOp::Stos,
        Mnemonic::Lodsb | Mnemonic::Lodsw | Mnemonic::Lodsd | Mnemonic::Lodsq => StringOp::Lods,
        Mnemonic::Cmpsb | Mnemonic::Cmpsw | Mnemonic::Cmpsd | Mnemonic::Cmpsq => StringOp::Cmps { repne },
        Mnemonic::Scasb | Mnemonic::Scasw | Mnemonic::Scasd | Mnemonic::Scasq => StringOp::Scas { repne },
        _ => return None,
    })
}

/// The address size of a string operand.
fn string_address_size(kind: OpKind) -> Option<u8> {
    match kind {
        OpKind::MemorySegSI | OpKind::MemorySegDI | OpKind::MemoryESDI => Some(2),
        OpKind::MemorySegESI | OpKind::MemorySegEDI | OpKind::MemoryESEDI => Some(4),
        OpKind::MemorySegRSI | OpKind::MemorySegRDI | OpKind::MemoryESRDI => Some(8),
        _ => None,
    }
}

/// An XMM register as its number (MMX and wider vector registers are refused).
fn xmm(r: Register) -> Result<usize, Unsupported> {
    if !r.is_xmm() || r.number() >= XMM_REGISTERS {
        return Err(Unsupported::Register(r));
    }
    Ok(r.number())
}

fn source(i: &Instruction, operand: u32) -> Result<Source, Unsupported> {
    match i.op_kind(operand) {
        OpKind::Register => Ok(Source::Register(gpr(i.op_register(operand))?.0)),
        _ => i.try_immediate(operand).map(Source::Immediate).map_err(|_| Unsupported::Instruction(i.mnemonic())),
    }
}

/// Decodes the instruction at the start of `bytes` in `bitness`-bit code (16, 32, 64)
/// at `ip` (for RIP-relative operands).
pub fn decode(bytes: &[u8], bitness: u32, ip: u64) -> Result<Decoded, Unsupported> {
    let mut d = Decoder::try_with_ip(bitness, bytes, ip, DecoderOptions::NONE).map_err(|_| Unsupported::Invalid)?;
    let i = d.decode();
    if i.is_invalid() {
        return Err(Unsupported::Invalid);
    }
    let m = i.mnemonic();
    let refuse = Unsupported::Instruction(m);
    let len = u8::try_from(i.len()).map_err(|_| Unsupported::Invalid)?;
    let size = u8::try_from(i.memory_size().size()).map_err(|_| refuse)?;
    let double = size == 16 && m == Mnemonic::Cmpxchg16b;
    if !(matches!(size, 1 | 2 | 4 | 8) || double) || i.op_count() == 0 {
        return Err(refuse);
    }
    let kinds = (i.op0_kind(), if i.op_count() > 1 { i.op1_kind() } else { OpKind::Register });
    let (op, memory_operand) = match (m, kinds) {
        _ if i.is_string_instruction() => {
            let op = string(m, i.has_repne_prefix()).ok_or(refuse)?;
            let second = matches!(op, StringOp::Lods | StringOp::Scas { .. });
            let (kind, memory_operand) = if second { (kinds.1, 1) } else { (kinds.0, 0) };
            let address_size = string_address_size(kind).ok_or(refuse)?;
            // F2 before MOVS, STOS and LODS repeats them as F3 does.
            (Op::String { op, rep: i.has_rep_prefix() || i.has_repne_prefix(), address_size }, memory_operand)
        }
        (Mnemonic::Mov | Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Movsxd, (OpKind::Register, OpKind::Memory)) => {
            let (dest, dest_size) = gpr(i.op0_register())?;
            (Op::Load { dest, dest_size, sign: matches!(m, Mnemonic::Movsx | Mnemonic::Movsxd) }, 1)
        }
        (Mnemonic::Mov, (OpKind::Memory, _)) => (Op::Store(source(&i, 1)?), 0),
        (Mnemonic::Movnti, (OpKind::Memory, OpKind::Register)) => (Op::Store(source(&i, 1)?), 0),
        (Mnemonic::Cmpxchg8b | Mnemonic::Cmpxchg16b, (OpKind::Memory, _)) => (Op::CompareExchangeDouble, 0),
        (Mnemonic::Movd | Mnemonic::Movq, (OpKind::Register, OpKind::Memory)) => {
            (Op::LoadVector(xmm(i.op0_register())?), 1)
        }
        (Mnemonic::Movd | Mnemonic::Movq, (OpKind::Memory, OpKind::Register)) => {
            (Op::StoreVector(xmm(i.op1_register())?), 0)
        }
        (
            Mnemonic::Seto
            | Mnemonic::Setno
            | Mnemonic::Setb
            | Mnemonic::Setae
            | Mnemonic::Sete
            | Mnemonic::Setne
            | Mnemonic::Setbe
            | Mnemonic::Seta
            | Mnemonic::Sets
            | Mnemonic::Setns
            | Mnemonic::Setp
            | Mnemonic::Setnp
            | Mnemonic::Setl
            | Mnemonic::Setge
            | Mnemonic::Setle
            | Mnemonic::Setg,
            (OpKind::Memory, _),
        ) => (Op::Set(condition(i.condition_code()).ok_or(refuse)?), 0),
        (Mnemonic::Movbe, (OpKind::Register, OpKind::Memory)) => (Op::LoadSwapped(gpr(i.op0_register())?.0), 1),
        (Mnemonic::Movbe, (OpKind::Memory, OpKind::Register)) => (Op::StoreSwapped(gpr(i.op1_register())?.0), 0),
        (Mnemonic::Cmpxchg, (OpKind::Memory, OpKind::Register)) => (Op::CompareExchange(gpr(i.op1_register())?.0), 0),
        (Mnemonic::Xadd, (OpKind::Memory, OpKind::Register)) => (Op::ExchangeAdd(gpr(i.op1_register())?.0), 0),
        (Mnemonic::Xchg, (OpKind::Memory, OpKind::Register)) => (Op::Exchange(gpr(i.op1_register())?.0), 0),
        (Mnemonic::Xchg, (OpKind::Register, OpKind::Memory)) => (Op::Exchange(gpr(i.op0_register())?.0), 1),
        (_, (OpKind::Memory, _)) if binary(m).is_some() && i.op_count() == 2 => {
            (Op::BinaryToMemory { op: binary(m).ok_or(refuse)?, source: source(&i, 1)? }, 0)
        }
        (_, (OpKind::Register, OpKind::Memory)) if binary(m).is_some() => {
            let (dest, _) = gpr(i.op0_register())?;
            (Op::BinaryToRegister { op: binary(m).ok_or(refuse)?, dest }, 1)
        }
        (_, (OpKind::Memory, _)) if unary(m).is_some() && i.op_count() == 1 => (Op::Unary(unary(m).ok_or(refuse)?), 0),
        (_, (OpKind::Memory, _)) if bit_test(m).is_some() && i.op_count() == 2 => {
            (Op::BitTest { op: bit_test(m).ok_or(refuse)?, offset: source(&i, 1)? }, 0)
        }
        _ => return Err(refuse),
    };
    Ok(Decoded { op, size, len, memory_operand, instruction: i })
}

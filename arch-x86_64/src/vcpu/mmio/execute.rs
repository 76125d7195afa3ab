//! Performs a decoded instruction on guest memory ([`super::memory`]), the guest's
//! registers and its status flags, as the processor would have.

use super::super::common::Common;
use super::super::guest::gpr;
use super::super::guest_cpu::{GuestCpu, Segment, GP};
use super::alu::{self, mask, Binary};
use super::decode::{Decoded, Op, Source, StringOp};
use super::memory;
use super::vector;
use iced_x86::{Instruction, Register};

/// Iterations of a string instruction per exit; the rest re-executes.
const STRING_BATCH: u64 = 1024;
/// RFLAGS.DF: string instructions count down.
const DF: u64 = 1 << 10;

/// `value` written to a register of `size` bytes whose old content is `old`: 32-bit
/// writes clear the upper half, 8- and 16-bit writes keep the rest (as in 64-bit mode).
pub fn merge_register(old: u64, size: u8, value: u64) -> u64 {
    match size {
        8 => value,
        4 => value & 0xffff_ffff,
        s => (old & !mask(s)) | (value & mask(s)),
    }
}

/// A loaded `value` of `size` bytes extended to 64 bits.
pub fn extend(value: u64, size: u8, sign: bool) -> u64 {
    let v = value & mask(size);
    if !sign || size >= 8 {
        return v;
    }
    let shift = 64 - 8 * u32::from(size);
    (((v << shift) as i64) >> shift) as u64
}

/// The low `size` bytes of `value` in reverse order (MOVBE).
pub fn swap_bytes(value: u64, size: u8) -> u64 {
    let bits = 8 * u32::from(size.clamp(1, 8));
    value.swap_bytes() >> (64 - bits)
}

fn segment(r: Register) -> Option<Segment> {
    Some(match r {
        Register::ES => Segment::Es,
        Register::CS => Segment::Cs,
        Register::SS => Segment::Ss,
        Register::DS => Segment::Ds,
        Register::FS => Segment::Fs,
        Register::GS => Segment::Gs,
        _ => return None,
    })
}

/// The linear address of memory operand `operand` with the guest's registers now
/// (#GP if it names RSP, which Keel does not hold here).
fn linear(cpu: &mut dyn GuestCpu, i: &Instruction, operand: u32, long: bool) -> Result<u64, u8> {
    let regs = cpu.regs().gpr;
    let cpu: &dyn GuestCpu = cpu;
    let la = i
        .virtual_address(operand, 0, |r, _, _| {
            if let Some(seg) = segment(r) {
                let flat = long && !matches!(seg, Segment::Fs | Segment::Gs);
                return Some(if flat { 0 } else { cpu.segment_base(seg) });
            }
            let full = r.full_register();
            (r.is_gpr() && full != Register::RSP).then(|| regs[full.number()])
        })
        .ok_or(GP)?;
    Ok(if long { la } else { la & 0xffff_ffff })
}

fn set_register(cpu: &mut dyn GuestCpu, reg: usize, size: u8, value: u64) {
    let r = &mut cpu.regs().gpr[reg];
    *r = merge_register(*r, size, value);
}

fn value(cpu: &mut dyn GuestCpu, source: Source, size: u8) -> u64 {
    let v = match source {
        Source::Register(r) => cpu.regs().gpr[r],
        Source::Immediate(v) => v,
    };
    v & mask(size)
}

fn set_status(cpu: &mut dyn GuestCpu, flags: u64) {
    let old = cpu.rflags();
    cpu.set_rflags((old & !alu::STATUS) | (flags & alu::STATUS));
}

/// Performs `d`: `Ok(true)` when the instruction is complete (the caller moves RIP past
/// it), `Ok(false)` when a string instruction has iterations left (it re-executes), or
/// the vector of the exception the guest gets, before any of its effects.
pub fn perform(cpu: &mut dyn GuestCpu, common: &Common, d: &Decoded, long: bool) -> Result<bool, u8> {
    let size = d.size;
    if let Op::String { op, rep, address_size } = d.op {
        return string(cpu, common, d, op, rep, address_size, long);
    }
    let la = linear(cpu, &d.instruction, d.memory_operand, long)?;
    let rflags = cpu.rflags();
    match d.op {
        Op::Load { dest, dest_size, sign } => {
            let v = memory::read(cpu, la, size)?;
            set_register(cpu, dest, dest_size, extend(v, size, sign));
        }
        Op::Store(source) => {
            let v = value(cpu, source, size);
            memory::write(cpu, common, la, size, v)?;
        }
        Op::BinaryToMemory { op, source } => {
            let (a, b) = (memory::read(cpu, la, size)?, value(cpu, source, size));
            let (r, flags) = alu::binary(op, size, a, b, rflags);
            if op.writes() {
                memory::write(cpu, common, la, size, r)?;
            }
            set_status(cpu, flags);
        }
        Op::BinaryToRegister { op, dest } => {
            let (a, b) = (value(cpu, Source::Register(dest), size), memory::read(cpu, la, size)?);
            let (r, flags) = alu::binary(op, size, a, b, rflags);
            if op.writes() {
                set_register(cpu, dest, size, r);
            }
            set_status(cpu, flags);
        }
        Op::Unary(op) => {
            let (r, flags) = alu::unary(op, size, memory::read(cpu, la, size)?, rflags);
            memory::write(cpu, common, la, size, r)?;
            set_status(cpu, flags);
        }
        Op::LoadSwapped(dest) => {
            let v = memory::read(cpu, la, size)?;
            set_register(cpu, dest, size, swap_bytes(v, size));
        }
        Op::StoreSwapped(source) => {
            let v = swap_bytes(value(cpu, Source::Register(source), size), size);
            memory::write(cpu, common, la, size, v)?;
        }
        Op::CompareExchange(source) => {
            let (old, accumulator) = (memory::read(cpu, la, size)?, value(cpu, Source::Register(gpr::RAX), size));
            let new = value(cpu, Source::Register(source), size);
            let (outcome, flags) = alu::compare_exchange(size, old, accumulator, new, rflags);
            match outcome {
                alu::Exchanged::Stored(v) => memory::write(cpu, common, la, size, v)?,
                alu::Exchanged::Loaded(v) => set_register(cpu, gpr::RAX, size, v),
            }
            set_status(cpu, flags);
        }
        Op::ExchangeAdd(source) => {
            let (old, addend) = (memory::read(cpu, la, size)?, value(cpu, Source::Register(source), size));
            let (sum, flags) = alu::binary(Binary::Add, size, old, addend, rflags);
            memory::write(cpu, common, la, size, sum)?;
            set_register(cpu, source, size, old);
            set_status(cpu, flags);
        }
        Op::Exchange(reg) => {
            let (old, mine) = (memory::read(cpu, la, size)?, value(cpu, Source::Register(reg), size));
            memory::write(cpu, common, la, size, mine)?;
            set_register(cpu, reg, size, old);
        }
        Op::BitTest { op, offset } => {
            let bits = 8 * u64::from(size);
            let (la, bit) = match offset {
                Source::Immediate(v) => (la, v % bits),
                Source::Register(r) => {
                    // A signed bit offset of the operand's size: whole operands away, then a bit.
                    let off = extend(cpu.regs().gpr[r], size, true) as i64;
                    let words = off.div_euclid(bits as i64);
                    (la.wrapping_add(words.wrapping_mul(i64::from(size)) as u64), off.rem_euclid(bits as i64) as u64)
                }
            };
            let la = if long { la } else { la & 0xffff_ffff };
            let old = memory::read(cpu, la, size)?;
            let (new, flags) = alu::bit_test(op, old, u32::try_from(bit).unwrap_or(0), rflags);
            if new != old {
                memory::write(cpu, common, la, size, new)?;
            }
            set_status(cpu, flags);
        }
        Op::Set(condition) => memory::write(cpu, common, la, 1, u64::from(condition.holds(rflags)))?,
        Op::CompareExchangeDouble => compare_exchange_double(cpu, common, la, size, rflags, long)?,
        Op::LoadVector(n) => vector::write(n, memory::read(cpu, la, size)? & mask(size)),
        Op::StoreVector(n) => memory::write(cpu, common, la, size, vector::read(n) & mask(size))?,
        Op::String { .. } => unreachable!("string instructions return above"),
    }
    Ok(true)
}

/// CMPXCHG8B (`size` 8) and CMPXCHG16B (16, which needs a 16-byte aligned operand):
/// memory compared with RDX:RAX; equal, RCX:RBX is stored and ZF set; not equal, memory
/// is loaded into RDX:RAX (32-bit halves zero-extended) and ZF cleared.
fn compare_exchange_double(
    cpu: &mut dyn GuestCpu,
    common: &Common,
    la: u64,
    size: u8,
    rflags: u64,
    long: bool,
) -> Result<(), u8> {
    let half = size / 2;
    if size == 16 && !la.is_multiple_of(16) {
        return Err(GP);
    }
    let high_at = |la: u64| {
        let h = la.wrapping_add(u64::from(half));
        if long {
            h
        } else {
            h & 0xffff_ffff
        }
    };
    let memory = if size == 16 {
        (memory::read(cpu, la, 8)?, memory::read(cpu, high_at(la), 8)?)
    } else {
        let v = memory::read(cpu, la, 8)?;
        (v & mask(4), v >> 32)
    };
    let r = cpu.regs().gpr;
    let (outcome, flags) =
        alu::compare_exchange_double(half, memory, (r[gpr::RAX], r[gpr::RDX]), (r[gpr::RBX], r[gpr::RCX]), rflags);
    match outcome {
        alu::Exchanged2::Stored(low, high) if size == 16 => {
            memory::write(cpu, common, la, 8, low)?;
            memory::write(cpu, common, high_at(la), 8, high)?;
        }
        alu::Exchanged2::Stored(low, high) => memory::write(cpu, common, la, 8, high << 32 | low)?,
        alu::Exchanged2::Loaded(low, high) => {
            set_register(cpu, gpr::RAX, half, low);
            set_register(cpu, gpr::RDX, half, high);
        }
    }
    cpu.set_rflags(flags);
    Ok(())
}

/// MOVS, STOS, LODS, CMPS and SCAS, [`STRING_BATCH`] iterations per exit.
fn string(
    cpu: &mut dyn GuestCpu,
    common: &Common,
    d: &Decoded,
    op: StringOp,
    rep: bool,
    address_size: u8,
    long: bool,
) -> Result<bool, u8> {
    let size = d.size;
    let amask = mask(address_size);
    let count = if rep { cpu.regs().gpr[gpr::RCX] & amask } else { 1 };
    let batch = count.min(STRING_BATCH);
    let step = if cpu.rflags() & DF != 0 { u64::from(size).wrapping_neg() } else { u64::from(size) };
    let advance = |cpu: &mut dyn GuestCpu, reg: usize| {
        let r = &mut cpu.regs().gpr[reg];
        *r = (*r & !amask) | (r.wrapping_add(step) & amask);
    };
    let i = &d.instruction;
    for _ in 0..batch {
        match op {
            StringOp::Stos => {
                let (la, v) = (linear(cpu, i, 0, long)?, value(cpu, Source::Register(gpr::RAX), size));
                memory::write(cpu, common, la, size, v)?;
                advance(cpu, gpr::RDI);
            }
            StringOp::Lods => {
                let la = linear(cpu, i, 1, long)?;
                let v = memory::read(cpu, la, size)?;
                set_register(cpu, gpr::RAX, size, v);
                advance(cpu, gpr::RSI);
            }
            StringOp::Movs => {
                let (from, to) = (linear(cpu, i, 1, long)?, linear(cpu, i, 0, long)?);
                let v = memory::read(cpu, from, size)?;
                memory::write(cpu, common, to, size, v)?;
                advance(cpu, gpr::RSI);
                advance(cpu, gpr::RDI);
            }
            StringOp::Cmps { .. } => {
                let (from, to) = (linear(cpu, i, 0, long)?, linear(cpu, i, 1, long)?);
                let (a, b) = (memory::read(cpu, from, size)?, memory::read(cpu, to, size)?);
                let flags = alu::binary(Binary::Cmp, size, a, b, cpu.rflags()).1;
                set_status(cpu, flags);
                advance(cpu, gpr::RSI);
                advance(cpu, gpr::RDI);
            }
            StringOp::Scas { .. } => {
                let la = linear(cpu, i, 1, long)?;
                let (a, b) = (value(cpu, Source::Register(gpr::RAX), size), memory::read(cpu, la, size)?);
                let flags = alu::binary(Binary::Cmp, size, a, b, cpu.rflags()).1;
                set_status(cpu, flags);
                advance(cpu, gpr::RDI);
            }
        }
        if rep {
            let r = &mut cpu.regs().gpr[gpr::RCX];
            *r = (*r & !amask) | (r.wrapping_sub(1) & amask);
            // REPE/REPNE CMPS and SCAS also stop on the comparison.
            if let StringOp::Cmps { repne } | StringOp::Scas { repne } = op {
                if (cpu.rflags() & alu::ZF != 0) == repne {
                    return Ok(true);
                }
            }
        }
    }
    Ok(batch == count)
}

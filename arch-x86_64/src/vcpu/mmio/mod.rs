//! Guest-physical accesses Keel emulates although no RAM backs them: the xAPIC page of
//! the virtual local APIC (`0xfee00000`, while the APIC is in xAPIC mode). The EPT/NPT
//! exit gives the address but not the data, so the instruction at the guest's RIP is
//! fetched through its page tables and decoded ([`decode`], with `iced-x86`) into an
//! [`MmioOp`]: a load into a register or a store of a register or an immediate. MOV,
//! MOVZX and MOVSX(D) are understood, as Linux and the BSDs access the APIC page; any
//! other instruction (or RSP, or AH..BH as the register) gets #GP(0), as every unbacked
//! access does.

#[cfg(test)]
mod tests;

use super::emulate::{self, GuestCpu, Segment, GP};
use super::interrupts;
use super::walk::Access;
use super::Common;
use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind, Register};
use keel_kernel::arch::{MemoryAccess, VmExit};

/// The longest x86 instruction.
const MAX_LEN: usize = 15;

/// Where a store's data comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A general-purpose register (index in encoding order), its low `size` bytes.
    Register(usize),
    Immediate(u64),
}

/// One decoded memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioOp {
    /// Reads `size` bytes into register `dest` (of `dest_size` bytes), zero- or
    /// sign-extended.
    Load { size: u8, dest: usize, dest_size: u8, sign: bool },
    /// Writes `size` bytes.
    Store { size: u8, source: Source },
}

/// A decoded instruction: what it does and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub op: MmioOp,
    pub len: u8,
}

/// Why an instruction cannot be emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// Not a complete, valid instruction.
    Invalid,
    /// Valid, but not one of the moves Keel emulates.
    Instruction(Mnemonic),
    /// A register Keel cannot name here (RSP lives in the VMCS/VMCB; AH..BH).
    Register(Register),
}

/// A general-purpose register as an index into `GuestRegisters::gpr` and its size.
fn gpr(r: Register) -> Result<(usize, u8), Unsupported> {
    let high_byte = matches!(r, Register::AH | Register::CH | Register::DH | Register::BH);
    let full = r.full_register();
    if !r.is_gpr() || high_byte || full == Register::RSP {
        return Err(Unsupported::Register(r));
    }
    let size = u8::try_from(r.size()).map_err(|_| Unsupported::Register(r))?;
    Ok((full.number(), size))
}

/// Decodes the instruction at the start of `bytes` in `bitness`-bit code (16, 32, 64).
pub fn decode(bytes: &[u8], bitness: u32) -> Result<Decoded, Unsupported> {
    let mut d = Decoder::try_new(bitness, bytes, DecoderOptions::NONE).map_err(|_| Unsupported::Invalid)?;
    let i = d.decode();
    if i.is_invalid() || i.op_count() != 2 {
        return Err(if i.is_invalid() { Unsupported::Invalid } else { Unsupported::Instruction(i.mnemonic()) });
    }
    let len = u8::try_from(i.len()).map_err(|_| Unsupported::Invalid)?;
    let size = u8::try_from(i.memory_size().size()).map_err(|_| Unsupported::Instruction(i.mnemonic()))?;
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(Unsupported::Instruction(i.mnemonic()));
    }
    let op = match (i.mnemonic(), i.op0_kind(), i.op1_kind()) {
        (Mnemonic::Mov | Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Movsxd, OpKind::Register, OpKind::Memory) => {
            let (dest, dest_size) = gpr(i.op0_register())?;
            let sign = matches!(i.mnemonic(), Mnemonic::Movsx | Mnemonic::Movsxd);
            MmioOp::Load { size, dest, dest_size, sign }
        }
        (Mnemonic::Mov, OpKind::Memory, OpKind::Register) => {
            MmioOp::Store { size, source: Source::Register(gpr(i.op1_register())?.0) }
        }
        (Mnemonic::Mov, OpKind::Memory, _) => {
            let imm = i.try_immediate(1).map_err(|_| Unsupported::Instruction(i.mnemonic()))?;
            MmioOp::Store { size, source: Source::Immediate(imm) }
        }
        (m, ..) => return Err(Unsupported::Instruction(m)),
    };
    Ok(Decoded { op, len })
}

fn mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

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

/// Whether `gpa` is a page Keel emulates for this vCPU.
fn claims(common: &Common, gpa: u64) -> bool {
    common.vlapic.xapic_page() == Some(gpa & !0xfff)
}

/// Emulates the access at `gpa` the EPT/NPT refused, if Keel emulates that page: `Some`
/// with what the core must hear (`None` inside: resume the guest), `None` if the page is
/// not Keel's to emulate.
pub fn access(cpu: &mut dyn GuestCpu, common: &mut Common, gpa: u64, kind: MemoryAccess) -> Option<Option<VmExit>> {
    if kind == MemoryAccess::Execute || !claims(common, gpa) {
        return None;
    }
    let long = cpu.in_64bit_code();
    let mut linear = cpu.segment_base(Segment::Cs).wrapping_add(cpu.rip());
    if !long {
        linear &= 0xffff_ffff;
    }
    let mut bytes = [0u8; MAX_LEN];
    // As many bytes as are mapped (the instruction may end before an unmapped page).
    let n = (0..MAX_LEN)
        .take_while(|&k| emulate::read_virt(cpu, linear.wrapping_add(k as u64), Access::Fetch, &mut bytes[k..=k]))
        .count();
    let decoded = match decode(&bytes[..n], if long { 64 } else { 32 }) {
        Ok(d) => d,
        Err(why) => {
            log::debug!("MMIO at GPA {gpa:#x} by RIP {:#x}: {why:?}, #GP", cpu.rip());
            cpu.inject(GP, Some(0));
            return Some(None);
        }
    };
    let offset = u32::try_from(gpa & 0xfff).unwrap_or(0);
    match decoded.op {
        MmioOp::Load { size, dest, dest_size, sign } => {
            let raw = interrupts::xapic::read(common, offset, size);
            let r = cpu.regs();
            r.gpr[dest] = merge_register(r.gpr[dest], dest_size, extend(raw, size, sign));
        }
        MmioOp::Store { size, source } => {
            let value = match source {
                Source::Register(s) => cpu.regs().gpr[s],
                Source::Immediate(v) => v,
            } & mask(size);
            interrupts::xapic::write(cpu, common, offset, size, value);
        }
    }
    let next = cpu.rip().wrapping_add(u64::from(decoded.len));
    cpu.set_rip(if long { next } else { next & 0xffff_ffff });
    Some(None)
}

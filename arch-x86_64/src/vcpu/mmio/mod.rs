//! Guest-physical accesses the EPT/NPT refused, performed by Keel as Xen performs them
//! for a PVH domain. The exit gives the address but not the data, so the instruction at
//! the guest's RIP is fetched through its page tables and decoded ([`decode`], with
//! `iced-x86`) into an [`Op`], then performed ([`execute`]) on:
//!
//! - the xAPIC page of the virtual local APIC (`0xfee00000`, while the APIC is in xAPIC
//!   mode): loads (MOV, MOVZX, MOVSX/MOVSXD) and stores (MOV) only, as Linux and the
//!   BSDs access it;
//! - anything else ([`memory`]): guest-physical space with nothing behind it (holes,
//!   device ranges Keel does not emulate, frames the guest gave back) reads all ones and
//!   drops writes, byte by byte, so an access that straddles RAM and a hole reads and
//!   writes the RAM part. Loads, stores, `op mem, reg/imm` and `op reg, mem` for ADD, OR,
//!   ADC, SBB, AND, SUB, XOR, CMP and TEST, INC/DEC/NOT/NEG, XCHG, CMPXCHG,
//!   CMPXCHG8B/16B, XADD, BT/BTS/BTR/BTC, SETcc, MOVNTI, MOVBE, MOVD/MOVQ with an XMM
//!   register ([`vector`]) and MOVS/STOS/LODS/CMPS/SCAS with or without REP
//!   (REPE/REPNE) are performed with their flags.
//!
//! An instruction Keel does not perform (any other, one that names RSP or AH..BH, an
//! instruction fetch from the hole) gets #GP(0), Xen's answer when its emulator cannot
//! handle an access; bytes that do not decode to an instruction get #UD, as Xen's
//! `X86EMUL_UNRECOGNIZED`.

mod alu;
#[cfg(test)]
mod compare_tests;
mod decode;
mod execute;
mod memory;
#[cfg(test)]
mod tests;
mod vector;

use super::common::Common;
use super::guest_cpu::{read_virt, GuestCpu, Segment, GP, UD};
use super::interrupts;
use super::walk::Access;
use decode::{decode, Decoded, Op, Source, Unsupported, MAX_LEN};
use execute::{extend, merge_register};
use keel_kernel::arch::MemoryAccess;

/// Whether `gpa` is a page Keel emulates as a device for this vCPU.
pub fn is_device(common: &Common, gpa: u64) -> bool {
    lapic_page(common, gpa)
}

/// Whether `gpa` is the xAPIC page of this vCPU's local APIC (in xAPIC mode).
fn lapic_page(common: &Common, gpa: u64) -> bool {
    common.vlapic.xapic_page() == Some(gpa & !0xfff)
}

/// The instruction at the guest's RIP, decoded; or the exception it gets.
fn fetch(cpu: &dyn GuestCpu, long: bool) -> Result<Decoded, (Unsupported, u8)> {
    let mut linear = cpu.segment_base(Segment::Cs).wrapping_add(cpu.rip());
    if !long {
        linear &= 0xffff_ffff;
    }
    let mut bytes = [0u8; MAX_LEN];
    // As many bytes as are mapped (the instruction may end before an unmapped page).
    let n = (0..MAX_LEN)
        .take_while(|&k| read_virt(cpu, linear.wrapping_add(k as u64), Access::Fetch, &mut bytes[k..=k]))
        .count();
    decode(&bytes[..n], if long { 64 } else { 32 }, cpu.rip()).map_err(|why| {
        let vector = if why == Unsupported::Invalid && n == MAX_LEN { UD } else { GP };
        (why, vector)
    })
}

/// A load or store on the xAPIC page.
fn lapic(cpu: &mut dyn GuestCpu, common: &mut Common, gpa: u64, d: &Decoded) -> Result<(), u8> {
    let offset = u32::try_from(gpa & 0xfff).unwrap_or(0);
    match d.op {
        Op::Load { dest, dest_size, sign } => {
            let raw = interrupts::xapic::read(common, offset, d.size);
            let r = cpu.regs();
            r.gpr[dest] = merge_register(r.gpr[dest], dest_size, extend(raw, d.size, sign));
        }
        Op::Store(source) => {
            let value = match source {
                Source::Register(s) => cpu.regs().gpr[s],
                Source::Immediate(v) => v,
            } & alu::mask(d.size);
            interrupts::xapic::write(cpu, common, offset, d.size, value);
        }
        _ => return Err(GP),
    }
    Ok(())
}

/// Performs the access at `gpa` the EPT/NPT refused (not one made while the processor
/// delivered an event); the guest resumes after it, at it (string instructions with
/// iterations left) or at the exception it gets.
pub fn access(cpu: &mut dyn GuestCpu, common: &mut Common, gpa: u64, kind: MemoryAccess) {
    if kind == MemoryAccess::Execute {
        log::debug!("instruction fetch at GPA {gpa:#x} outside RAM: #GP (RIP {:#x})", cpu.rip());
        cpu.inject(GP, Some(0));
        return;
    }
    let long = cpu.in_64bit_code();
    let done = match fetch(cpu, long) {
        Err((why, vector)) => {
            log::debug!("access at GPA {gpa:#x} by RIP {:#x}: {why:?}", cpu.rip());
            Err(vector)
        }
        Ok(d) if lapic_page(common, gpa) => lapic(cpu, common, gpa, &d).map(|()| Some(d.len)),
        Ok(d) => execute::perform(cpu, common, &d, long).map(|complete| complete.then_some(d.len)),
    };
    match done {
        Ok(Some(len)) => cpu.set_rip(cpu.rip().wrapping_add(u64::from(len))),
        Ok(None) => {} // a string instruction with iterations left: it re-executes
        Err(vector) => {
            log::debug!("access at GPA {gpa:#x} by RIP {:#x}: exception {vector}", cpu.rip());
            cpu.inject(vector, (vector == GP).then_some(0));
        }
    }
}

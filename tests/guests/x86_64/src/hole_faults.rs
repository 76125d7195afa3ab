//! Tolerated faults in the hole ([`Platform::tolerate_hole_faults`]): once the xenstore
//! domain asks, an access to a foreign mapping in the hole that Keel revoked (its granter
//! ended) completes as a no-op instead of failing the guest. Keel gives such an access
//! #GP(0) at the instruction, which carries no address: the instruction is decoded
//! (iced-x86), its memory operand's address computed from the saved registers, and if
//! that lies in the hole the instruction is skipped (a load leaves its register as it
//! was) and counted.
//!
//! [`Platform::tolerate_hole_faults`]: keel_test_guest::Platform::tolerate_hole_faults

use crate::platform::X86;
use crate::traps::Frame;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use iced_x86::{Decoder, DecoderOptions, OpKind, Register};
use keel_test_guest::Platform;

/// #GP.
const VECTOR_GP: u64 = 13;
/// The longest x86 instruction.
const MAX_INSN: usize = 15;

static TOLERATE: AtomicBool = AtomicBool::new(false);
static FAULTS: AtomicU64 = AtomicU64::new(0);
static FAULT_AT: AtomicU64 = AtomicU64::new(0);

pub fn tolerate() {
    TOLERATE.store(true, Relaxed);
}

/// Faults skipped so far, and the address of the last one.
pub fn count() -> (u64, u64) {
    (FAULTS.load(Relaxed), FAULT_AT.load(Relaxed))
}

/// The value of `reg` in the saved registers (a 32-, 16- or 8-bit register as the low
/// bits of its 64-bit one); a segment register gives its base, 0 in 64-bit mode (FS and
/// GS, whose bases may not be, are not known).
fn register(f: &Frame, reg: Register) -> Option<u64> {
    if matches!(reg, Register::ES | Register::CS | Register::SS | Register::DS) {
        return Some(0);
    }
    let full = match reg.full_register() {
        Register::RAX => f.rax,
        Register::RBX => f.rbx,
        Register::RCX => f.rcx,
        Register::RDX => f.rdx,
        Register::RSI => f.rsi,
        Register::RDI => f.rdi,
        Register::RBP => f.rbp,
        Register::RSP => f.rsp,
        Register::R8 => f.r8,
        Register::R9 => f.r9,
        Register::R10 => f.r10,
        Register::R11 => f.r11,
        Register::R12 => f.r12,
        Register::R13 => f.r13,
        Register::R14 => f.r14,
        Register::R15 => f.r15,
        Register::RIP => f.rip,
        _ => return None,
    };
    let bits = reg.size() * 8;
    Some(if bits >= 64 { full } else { full & ((1u64 << bits) - 1) })
}

/// Whether the exception in `f` is a tolerated hole fault; if so, `f` resumes after the
/// instruction.
pub fn skip(f: &mut Frame) -> bool {
    if f.vector != VECTOR_GP || f.error != 0 || !TOLERATE.load(Relaxed) {
        return false;
    }
    // SAFETY: RIP points at the instruction that faulted, in the guest's own code at
    // 1 MiB; the 15 bytes from it lie in the image (read-only data and data follow the
    // code), all inside the identity-mapped low 4 GiB, and are only read.
    let bytes = unsafe { core::slice::from_raw_parts(f.rip as *const u8, MAX_INSN) };
    let insn = Decoder::with_ip(64, bytes, f.rip, DecoderOptions::NONE).decode();
    if insn.is_invalid() {
        return false;
    }
    let (start, end) = X86.hole();
    let at = (0..insn.op_count())
        .filter(|&op| insn.op_kind(op) == OpKind::Memory)
        .find_map(|op| insn.virtual_address(op, 0, |reg, _, _| register(f, reg)))
        .filter(|a| (start..end).contains(a));
    let Some(at) = at else { return false };
    FAULT_AT.store(at, Relaxed);
    FAULTS.fetch_add(1, Relaxed);
    f.rip = insn.next_ip();
    true
}

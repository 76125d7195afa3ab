//! The instructions that compare on unbacked memory: SETcc, CMPXCHG8B/16B, CMPS and SCAS
//! (with REP/REPE/REPNE); decoding, and the outcomes against the host processor.

use super::alu::{self, Condition, Exchanged2};
use super::decode::{decode, Op, StringOp, Unsupported};
use super::execute::merge_register;
use iced_x86::Mnemonic;
use proptest::prelude::*;

fn op(bytes: &[u8], bitness: u32) -> Op {
    decode(bytes, bitness, 0x1000).unwrap().op
}

#[test]
fn setcc_cmpxchg8b_16b_cmps_and_scas_decode() {
    // sete byte [rdi]; setg byte [rbx + 8]; setnp byte [eax] in 32-bit code
    assert_eq!(op(&[0x0f, 0x94, 0x07], 64), Op::Set(Condition::E));
    assert_eq!(op(&[0x0f, 0x9f, 0x43, 0x08], 64), Op::Set(Condition::G));
    assert_eq!(op(&[0x0f, 0x9b, 0x00], 32), Op::Set(Condition::Np));
    // setb al has no memory operand: refused (never an unbacked access)
    assert_eq!(decode(&[0x0f, 0x92, 0xc0], 64, 0).unwrap_err(), Unsupported::Instruction(Mnemonic::Setb));
    // lock cmpxchg8b [rdi]; lock cmpxchg16b [rdi]; cmpxchg8b [ebx] in 32-bit code
    let d = decode(&[0xf0, 0x0f, 0xc7, 0x0f], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::CompareExchangeDouble, 8));
    let d = decode(&[0xf0, 0x48, 0x0f, 0xc7, 0x0f], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::CompareExchangeDouble, 16));
    assert_eq!(op(&[0x0f, 0xc7, 0x0b], 32), Op::CompareExchangeDouble);
    // cmpsb; repe cmpsd; repne scasb; scasq; repne scasw with a 32-bit address size
    let s = |op, rep, address_size| Op::String { op, rep, address_size };
    assert_eq!(op(&[0xa6], 64), s(StringOp::Cmps { repne: false }, false, 8));
    assert_eq!(op(&[0xf3, 0xa7], 32), s(StringOp::Cmps { repne: false }, true, 4));
    assert_eq!(op(&[0xf2, 0xae], 64), s(StringOp::Scas { repne: true }, true, 8));
    assert_eq!(op(&[0x48, 0xaf], 64), s(StringOp::Scas { repne: false }, false, 8));
    assert_eq!(op(&[0x67, 0xf2, 0x66, 0xaf], 64), s(StringOp::Scas { repne: true }, true, 4));
    assert_eq!(decode(&[0xf2, 0xae], 64, 0).unwrap().memory_operand, 1);
    assert_eq!(decode(&[0xa6], 64, 0).unwrap().memory_operand, 0);
}

#[test]
fn all_ones_through_cmpxchg8b() {
    // EDX:EAX all ones: the pair matches unbacked memory and ECX:EBX is stored (dropped).
    let ones = (0xffff_ffff, 0xffff_ffff);
    let (r, f) = alu::compare_exchange_double(4, ones, (u64::MAX, 0xffff_ffff), (1, 2), 0x2);
    assert_eq!((r, f & alu::ZF), (Exchanged2::Stored(1, 2), alu::ZF));
    // Any other: memory is loaded, ZF cleared, the other flags kept.
    let (r, f) = alu::compare_exchange_double(4, ones, (0, 0), (1, 2), alu::CF | alu::ZF);
    assert_eq!((r, f), (Exchanged2::Loaded(0xffff_ffff, 0xffff_ffff), alu::CF));
}

const CONDITIONS: [Condition; 16] = [
    Condition::O,
    Condition::No,
    Condition::B,
    Condition::Ae,
    Condition::E,
    Condition::Ne,
    Condition::Be,
    Condition::A,
    Condition::S,
    Condition::Ns,
    Condition::P,
    Condition::Np,
    Condition::L,
    Condition::Ge,
    Condition::Le,
    Condition::G,
];

/// The host processor's SETcc for condition `c` with the status flags `flags`.
fn hardware_setcc(c: Condition, flags: u64) -> bool {
    let mut r: u64 = 0;
    let f = 0x2 | (flags & alu::STATUS);
    macro_rules! run {
        ($insn:literal) => {
            // SAFETY: POPFQ of status flags only, then a SETcc into a register; the
            // stack is balanced.
            unsafe { core::arch::asm!("push {f}", "popfq", $insn, f = in(reg) f, r = inout(reg) r) }
        };
    }
    match c {
        Condition::O => run!("seto {r:l}"),
        Condition::No => run!("setno {r:l}"),
        Condition::B => run!("setb {r:l}"),
        Condition::Ae => run!("setae {r:l}"),
        Condition::E => run!("sete {r:l}"),
        Condition::Ne => run!("setne {r:l}"),
        Condition::Be => run!("setbe {r:l}"),
        Condition::A => run!("seta {r:l}"),
        Condition::S => run!("sets {r:l}"),
        Condition::Ns => run!("setns {r:l}"),
        Condition::P => run!("setp {r:l}"),
        Condition::Np => run!("setnp {r:l}"),
        Condition::L => run!("setl {r:l}"),
        Condition::Ge => run!("setge {r:l}"),
        Condition::Le => run!("setle {r:l}"),
        Condition::G => run!("setg {r:l}"),
    }
    r & 0xff == 1
}

#[repr(C, align(16))]
struct Pair([u64; 2]);

/// The host's CMPXCHG8B (`wide` false) or CMPXCHG16B on `memory`: memory, RAX, RDX and
/// ZF after it.
fn hardware_cmpxchg_double(
    wide: bool,
    memory: [u64; 2],
    rax: u64,
    rdx: u64,
    rbx: u64,
    rcx: u64,
) -> ([u64; 2], u64, u64, bool) {
    let mut m = Pair(memory);
    let (mut a, mut d, mut flags) = (rax, rdx, 0x2u64);
    let p = m.0.as_mut_ptr();
    // SAFETY: `p` points at 16 bytes, 16-aligned, of our own; RBX (reserved by the
    // compiler) is exchanged with a scratch register around the instruction and
    // restored; POPFQ/PUSHFQ balance the stack.
    unsafe {
        if wide {
            core::arch::asm!(
                "xchg {b}, rbx", "push {f}", "popfq", "lock cmpxchg16b [{p}]", "pushfq", "pop {f}", "xchg {b}, rbx",
                b = inout(reg) rbx => _, p = in(reg) p, f = inout(reg) flags,
                inout("rax") a, inout("rdx") d, in("rcx") rcx,
            );
        } else {
            core::arch::asm!(
                "xchg {b}, rbx", "push {f}", "popfq", "lock cmpxchg8b [{p}]", "pushfq", "pop {f}", "xchg {b}, rbx",
                b = inout(reg) rbx => _, p = in(reg) p, f = inout(reg) flags,
                inout("rax") a, inout("rdx") d, in("rcx") rcx,
            );
        }
    }
    (m.0, a, d, flags & alu::ZF != 0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// Every condition of SETcc holds exactly when the host processor's says so.
    #[test]
    fn conditions_match_the_processor(flags in any::<u64>()) {
        for c in CONDITIONS {
            prop_assert_eq!(c.holds(flags), hardware_setcc(c, flags), "{:?} with flags {:#x}", c, flags & alu::STATUS);
        }
    }

    /// CMPXCHG8B/16B: memory, RDX:RAX and ZF as the host processor leaves them, on all
    /// ones (unbacked memory) and on other values.
    #[test]
    fn compare_exchange_double_matches_the_processor(
        wide in any::<bool>(),
        memory in prop_oneof![Just([u64::MAX; 2]), any::<[u64; 2]>()],
        same in any::<bool>(),
        (rax, rdx, rbx, rcx) in any::<(u64, u64, u64, u64)>(),
    ) {
        let memory = if wide { memory } else { [memory[0], 0] };
        let (half, parts) = if wide { (8u8, (memory[0], memory[1])) } else { (4, (memory[0] & 0xffff_ffff, memory[0] >> 32)) };
        let (rax, rdx) = if same { (parts.0 | (rax & !alu::mask(half)), parts.1 | (rdx & !alu::mask(half))) } else { (rax, rdx) };
        let want = hardware_cmpxchg_double(wide, memory, rax, rdx, rbx, rcx);
        let (outcome, flags) = alu::compare_exchange_double(half, parts, (rax, rdx), (rbx, rcx), 0x2);
        let got = match outcome {
            Exchanged2::Stored(lo, hi) if wide => ([lo, hi], rax, rdx),
            Exchanged2::Stored(lo, hi) => ([hi << 32 | lo, 0], rax, rdx),
            Exchanged2::Loaded(lo, hi) => (memory, merge_register(rax, half, lo), merge_register(rdx, half, hi)),
        };
        prop_assert_eq!((got.0, got.1, got.2, flags & alu::ZF != 0), want);
    }
}

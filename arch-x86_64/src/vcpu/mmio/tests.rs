use super::alu::Exchanged;
use super::alu::{self, Binary, BitTest, Unary};
use super::decode::{decode, Op, Source, StringOp, Unsupported, MAX_LEN};
use super::execute::{extend, merge_register, swap_bytes};
use iced_x86::{Mnemonic, Register};
use proptest::prelude::*;

fn op(bytes: &[u8], bitness: u32) -> Op {
    decode(bytes, bitness, 0x1000).unwrap().op
}

fn load(dest: usize, dest_size: u8, sign: bool) -> Op {
    Op::Load { dest, dest_size, sign }
}

#[test]
fn linux_apic_accesses_decode() {
    // native_apic_mem_read: mov eax, [rdi - 0xa03000]
    let d = decode(&[0x8b, 0x87, 0x00, 0xd0, 0x5f, 0xff, 0xe9], 64, 0).unwrap();
    assert_eq!((d.op, d.size, d.len), (load(0, 4, false), 4, 6));
    // native_apic_mem_write: mov [rdi - 0xa03000], esi
    let d = decode(&[0x89, 0xb7, 0x00, 0xd0, 0x5f, 0xff], 64, 0).unwrap();
    assert_eq!((d.op, d.size, d.len), (Op::Store(Source::Register(6)), 4, 6));
    // mov dword [rax], 0x12345678
    assert_eq!(op(&[0xc7, 0x00, 0x78, 0x56, 0x34, 0x12], 64), Op::Store(Source::Immediate(0x1234_5678)));
    // mov r9d, [rbx]; movzx ecx, byte [rbx]; movsx rdx, word [rbx]; mov r10, [rbx]
    assert_eq!(op(&[0x44, 0x8b, 0x0b], 64), load(9, 4, false));
    assert_eq!(op(&[0x0f, 0xb6, 0x0b], 64), load(1, 4, false));
    assert_eq!(op(&[0x48, 0x0f, 0xbf, 0x13], 64), load(2, 8, true));
    assert_eq!(op(&[0x4c, 0x8b, 0x13], 64), load(10, 8, false));
    // 32-bit code: mov eax, [0xfee00020]
    let d = decode(&[0xa1, 0x20, 0x00, 0xe0, 0xfe], 32, 0).unwrap();
    assert_eq!((d.op, d.len), (load(0, 4, false), 5));
}

#[test]
fn read_modify_write_and_string_instructions_decode() {
    // add [rdi], eax; or qword [rdi], -1 (imm8 sign-extended); cmp cl, [rsi]; test [rdi], edx
    let add = Op::BinaryToMemory { op: Binary::Add, source: Source::Register(0) };
    assert_eq!(op(&[0x01, 0x07], 64), add);
    let or = Op::BinaryToMemory { op: Binary::Or, source: Source::Immediate(u64::MAX) };
    assert_eq!(op(&[0x48, 0x83, 0x0f, 0xff], 64), or);
    assert_eq!(op(&[0x3a, 0x0e], 64), Op::BinaryToRegister { op: Binary::Cmp, dest: 1 });
    assert_eq!(op(&[0x85, 0x17], 64), Op::BinaryToMemory { op: Binary::Test, source: Source::Register(2) });
    // lock inc dword [rdi]; neg byte [rdi]; xchg [rdi], r8; bt [rdi], eax; bts dword [rdi], 5
    assert_eq!(op(&[0xf0, 0xff, 0x07], 64), Op::Unary(Unary::Inc));
    assert_eq!(op(&[0xf6, 0x1f], 64), Op::Unary(Unary::Neg));
    assert_eq!(op(&[0x4c, 0x87, 0x07], 64), Op::Exchange(8));
    assert_eq!(op(&[0x0f, 0xa3, 0x07], 64), Op::BitTest { op: BitTest::Bt, offset: Source::Register(0) });
    let bts = Op::BitTest { op: BitTest::Bts, offset: Source::Immediate(5) };
    assert_eq!(op(&[0x0f, 0xba, 0x2f, 0x05], 64), bts);
    // rep stosq; movsb; rep lodsd in 32-bit code; a 32-bit address size in 64-bit code
    assert_eq!(op(&[0xf3, 0x48, 0xab], 64), Op::String { op: StringOp::Stos, rep: true, address_size: 8 });
    assert_eq!(op(&[0xa4], 64), Op::String { op: StringOp::Movs, rep: false, address_size: 8 });
    assert_eq!(op(&[0xf3, 0xad], 32), Op::String { op: StringOp::Lods, rep: true, address_size: 4 });
    assert_eq!(op(&[0x67, 0xaa], 64), Op::String { op: StringOp::Stos, rep: false, address_size: 4 });
}

#[test]
fn exchanges_byte_swaps_and_non_temporal_stores_decode() {
    // lock cmpxchg [rdi], esi; cmpxchg byte [rdi], cl; lock xadd [rdi], r8; xadd word [rdi], dx
    let d = decode(&[0xf0, 0x0f, 0xb1, 0x37], 64, 0).unwrap();
    assert_eq!((d.op, d.size, d.len), (Op::CompareExchange(6), 4, 4));
    assert_eq!(decode(&[0x0f, 0xb0, 0x0f], 64, 0).unwrap().size, 1);
    assert_eq!(op(&[0x0f, 0xb0, 0x0f], 64), Op::CompareExchange(1));
    let d = decode(&[0xf0, 0x4c, 0x0f, 0xc1, 0x07], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::ExchangeAdd(8), 8));
    assert_eq!(decode(&[0x66, 0x0f, 0xc1, 0x17], 64, 0).unwrap().size, 2);
    // movbe eax, [rdi]; movbe [rdi], rcx; movnti [rdi], esi; movnti [rdi], r9
    assert_eq!(op(&[0x0f, 0x38, 0xf0, 0x07], 64), Op::LoadSwapped(0));
    let d = decode(&[0x48, 0x0f, 0x38, 0xf1, 0x0f], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::StoreSwapped(1), 8));
    assert_eq!(op(&[0x0f, 0xc3, 0x37], 64), Op::Store(Source::Register(6)));
    let d = decode(&[0x4c, 0x0f, 0xc3, 0x0f], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::Store(Source::Register(9)), 8));
    // 32-bit code: lock cmpxchg [ebx], ecx
    assert_eq!(op(&[0xf0, 0x0f, 0xb1, 0x0b], 32), Op::CompareExchange(1));
    assert_eq!(swap_bytes(0x1122_3344, 4), 0x4433_2211);
    assert_eq!(swap_bytes(0xffff_ffff_0000_1234, 2), 0x3412);
    assert_eq!(swap_bytes(0x0102_0304_0506_0708, 8), 0x0807_0605_0403_0201);
    // All ones through CMPXCHG: an accumulator of all ones stores, any other loads.
    let ones = alu::mask(4);
    assert_eq!(alu::compare_exchange(4, ones, ones, 7, 0).0, Exchanged::Stored(7));
    let (r, f) = alu::compare_exchange(4, ones, 5, 7, 0);
    assert_eq!((r, f & alu::ZF), (Exchanged::Loaded(ones), 0));
}

#[test]
fn movd_and_movq_with_xmm_registers_decode() {
    // movq xmm0, [rdi] (F3 0F 7E); movq [rdi], xmm9 (66 44 0F D6); movd xmm3, [rdi];
    // movd [rdi], xmm1; movq xmm15, [rdi] (66 REX.W 0F 6E); movd xmm2, [ebx] in 32-bit code
    let d = decode(&[0xf3, 0x0f, 0x7e, 0x07], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::LoadVector(0), 8));
    let d = decode(&[0x66, 0x44, 0x0f, 0xd6, 0x0f], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::StoreVector(9), 8));
    let d = decode(&[0x66, 0x0f, 0x6e, 0x1f], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::LoadVector(3), 4));
    let d = decode(&[0x66, 0x0f, 0x7e, 0x0f], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::StoreVector(1), 4));
    let d = decode(&[0x66, 0x4c, 0x0f, 0x6e, 0x3f], 64, 0).unwrap();
    assert_eq!((d.op, d.size), (Op::LoadVector(15), 8));
    assert_eq!(op(&[0x66, 0x0f, 0x6e, 0x13], 32), Op::LoadVector(2));
    // vmovd xmm0, [rdi] (VEX; no AVX is offered) stays refused
    assert!(decode(&[0xc5, 0xf9, 0x6e, 0x07], 64, 0).is_err());
}

#[test]
fn other_instructions_and_registers_are_refused() {
    let refused = |b: &[u8]| decode(b, 64, 0).unwrap_err();
    // movdqu xmm0, [rdi] (16 bytes); movd mm0, [rdi] (MMX); cmpxchg with a register
    // destination
    assert_eq!(refused(&[0xf3, 0x0f, 0x6f, 0x07]), Unsupported::Instruction(Mnemonic::Movdqu));
    assert_eq!(refused(&[0x0f, 0x6e, 0x07]), Unsupported::Register(Register::MM0));
    assert_eq!(refused(&[0x0f, 0xb1, 0xc8]), Unsupported::Instruction(Mnemonic::Cmpxchg));
    // push qword [rdi]; pop qword [rdi] (RSP-based)
    assert_eq!(refused(&[0xff, 0x37]), Unsupported::Instruction(Mnemonic::Push));
    assert_eq!(refused(&[0x48, 0x8b, 0x27]), Unsupported::Register(Register::RSP));
    assert_eq!(refused(&[0x8a, 0x27]), Unsupported::Register(Register::AH));
    assert_eq!(refused(&[0x89, 0xc0]), Unsupported::Instruction(Mnemonic::Mov));
    assert_eq!(refused(&[0x8b]), Unsupported::Invalid);
    assert_eq!(refused(&[]), Unsupported::Invalid);
}

#[test]
fn register_writes_follow_the_operand_size() {
    let old = 0x1122_3344_5566_7788;
    assert_eq!(merge_register(old, 8, 0xaa), 0xaa);
    assert_eq!(merge_register(old, 4, 0xffff_ffff_0000_00aa), 0xaa);
    assert_eq!(merge_register(old, 2, 0xaabb), 0x1122_3344_5566_aabb);
    assert_eq!(merge_register(old, 1, 0x1ff), 0x1122_3344_5566_77ff);
    assert_eq!(extend(0x80, 1, true), u64::MAX - 0x7f);
    assert_eq!(extend(0x80, 1, false), 0x80);
    assert_eq!(extend(0x8000_0000, 4, true), 0xffff_ffff_8000_0000);
}

#[test]
fn all_ones_through_the_arithmetic() {
    // What a guest sees when its operand is unbacked memory (all ones).
    let (r, f) = alu::binary(Binary::Add, 4, 0xffff_ffff, 1, 0);
    assert_eq!((r, f & (alu::CF | alu::ZF | alu::OF)), (0, alu::CF | alu::ZF));
    let (_, f) = alu::binary(Binary::Cmp, 8, u64::MAX, u64::MAX, 0);
    assert_eq!(f & (alu::CF | alu::ZF), alu::ZF);
    assert_eq!(alu::bit_test(BitTest::Bt, u64::MAX, 40, 0), (u64::MAX, alu::CF));
    assert_eq!(alu::bit_test(BitTest::Btr, 0xff, 3, alu::ZF), (0xf7, alu::CF | alu::ZF));
    assert_eq!(alu::unary(Unary::Inc, 1, 0xff, alu::CF).1 & (alu::CF | alu::ZF), alu::CF | alu::ZF);
    assert_eq!(alu::unary(Unary::Neg, 2, 0, alu::CF).1 & alu::CF, 0);
    assert_eq!(alu::unary(Unary::Not, 2, 0x00ff, 0x202), (0xff00, 0x202));
}

/// The host processor's answer for `op a, b` on `size` bytes with CF = `carry`: the
/// result and the status flags.
fn hardware(op: Binary, size: u8, a: u64, b: u64, carry: bool) -> (u64, u64) {
    let mut r = a;
    let mut flags = 0x2 | u64::from(carry);
    macro_rules! run {
        ($($insn:tt)+) => {
            // SAFETY: register-only arithmetic between a POPFQ and a PUSHFQ that
            // balance the stack; RFLAGS loaded holds only CF and the reserved bit 1.
            unsafe {
                core::arch::asm!(
                    "push {f}", "popfq", $($insn)+, "pushfq", "pop {f}",
                    r = inout(reg) r, b = in(reg) b, f = inout(reg) flags,
                )
            }
        };
    }
    macro_rules! sized {
        ($m:literal) => {
            match size {
                1 => run!(concat!($m, " {r:l}, {b:l}")),
                2 => run!(concat!($m, " {r:x}, {b:x}")),
                4 => run!(concat!($m, " {r:e}, {b:e}")),
                _ => run!(concat!($m, " {r}, {b}")),
            }
        };
    }
    match op {
        Binary::Add => sized!("add"),
        Binary::Or => sized!("or"),
        Binary::Adc => sized!("adc"),
        Binary::Sbb => sized!("sbb"),
        Binary::And => sized!("and"),
        Binary::Sub => sized!("sub"),
        Binary::Xor => sized!("xor"),
        Binary::Cmp => sized!("cmp"),
        Binary::Test => sized!("test"),
    }
    let r = if op.writes() { r } else { a };
    (r & alu::mask(size), flags & alu::STATUS)
}

/// The host processor's CMPXCHG of `memory` (a register here) with `accumulator` and
/// `new` on `size` bytes: memory, accumulator and status flags after it.
fn hardware_cmpxchg(size: u8, memory: u64, accumulator: u64, new: u64) -> (u64, u64, u64) {
    let (mut m, mut a, mut flags) = (memory, accumulator, 0x2u64);
    macro_rules! run {
        ($insn:literal) => {
            // SAFETY: register-only CMPXCHG between a POPFQ and a PUSHFQ that balance
            // the stack; RFLAGS loaded holds only the reserved bit 1.
            unsafe {
                core::arch::asm!(
                    "push {f}", "popfq", $insn, "pushfq", "pop {f}",
                    m = inout(reg) m, n = in(reg) new, f = inout(reg) flags, inout("rax") a,
                )
            }
        };
    }
    match size {
        1 => run!("cmpxchg {m:l}, {n:l}"),
        2 => run!("cmpxchg {m:x}, {n:x}"),
        4 => run!("cmpxchg {m:e}, {n:e}"),
        _ => run!("cmpxchg {m}, {n}"),
    }
    (m & alu::mask(size), a & alu::mask(size), flags & alu::STATUS)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// CMPXCHG's outcome and flags are the host processor's.
    #[test]
    fn compare_exchange_matches_the_processor(
        size in prop::sample::select(vec![1u8, 2, 4, 8]),
        memory in prop_oneof![any::<u64>(), Just(u64::MAX), Just(0)],
        same in any::<bool>(),
        accumulator in any::<u64>(),
        new in any::<u64>(),
    ) {
        let accumulator = if same { memory } else { accumulator };
        let (want_memory, want_accumulator, want_flags) = hardware_cmpxchg(size, memory, accumulator, new);
        let (outcome, flags) = alu::compare_exchange(size, memory, accumulator, new, 0x2);
        let m = alu::mask(size);
        let (got_memory, got_accumulator) = match outcome {
            Exchanged::Stored(v) => (v, accumulator & m),
            Exchanged::Loaded(v) => (memory & m, v),
        };
        prop_assert_eq!((got_memory, got_accumulator, flags & alu::STATUS), (want_memory, want_accumulator, want_flags));
    }

    /// Random instruction bytes in every mode: an answer, never a panic, and a decoded
    /// access names a register the guest has and a length within the bytes.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20), bitness in prop::sample::select(vec![16u32, 32, 64])) {
        if let Ok(d) = decode(&bytes, bitness, 0) {
            prop_assert!(usize::from(d.len) <= bytes.len().min(MAX_LEN));
            prop_assert!(matches!(d.size, 1 | 2 | 4 | 8) || (d.size == 16 && d.op == Op::CompareExchangeDouble));
            let register = |r: usize| r < 16 && r != 4;
            match d.op {
                Op::Load { dest, dest_size, .. } => prop_assert!(register(dest) && matches!(dest_size, 1 | 2 | 4 | 8)),
                Op::Store(Source::Register(r)) | Op::Exchange(r) | Op::BinaryToRegister { dest: r, .. } => prop_assert!(register(r)),
                Op::LoadSwapped(r) | Op::StoreSwapped(r) | Op::CompareExchange(r) | Op::ExchangeAdd(r) => prop_assert!(register(r)),
                Op::BinaryToMemory { source: Source::Register(r), .. } | Op::BitTest { offset: Source::Register(r), .. } => prop_assert!(register(r)),
                Op::String { address_size, .. } => prop_assert!(matches!(address_size, 2 | 4 | 8)),
                Op::LoadVector(n) | Op::StoreVector(n) => prop_assert!(n < 16 && matches!(d.size, 4 | 8)),
                _ => {}
            }
        }
    }

    /// The arithmetic gives the host processor's result and status flags (AF of the
    /// logical operations is undefined and not compared).
    #[test]
    fn arithmetic_matches_the_processor(
        op in prop::sample::select(vec![Binary::Add, Binary::Or, Binary::Adc, Binary::Sbb, Binary::And, Binary::Sub, Binary::Xor, Binary::Cmp, Binary::Test]),
        size in prop::sample::select(vec![1u8, 2, 4, 8]),
        a in prop_oneof![any::<u64>(), Just(u64::MAX), Just(0), Just(0x80), Just(0x7fff_ffff)],
        b in prop_oneof![any::<u64>(), Just(u64::MAX), Just(1), Just(0x8000_0000_0000_0000)],
        carry in any::<bool>(),
    ) {
        let (want, mut want_flags) = hardware(op, size, a, b, carry);
        let (r, mut flags) = alu::binary(op, size, a, b, 0x2 | u64::from(carry));
        if matches!(op, Binary::And | Binary::Or | Binary::Xor | Binary::Test) {
            want_flags &= !alu::AF;
            flags &= !alu::AF;
        }
        let r = if op.writes() { r } else { a & alu::mask(size) };
        prop_assert_eq!((r, flags & alu::STATUS), (want, want_flags));
    }
}

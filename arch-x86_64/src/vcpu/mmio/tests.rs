use super::*;
use proptest::prelude::*;

fn load(size: u8, dest: usize, dest_size: u8, sign: bool) -> MmioOp {
    MmioOp::Load { size, dest, dest_size, sign }
}

#[test]
fn linux_apic_accesses_decode() {
    // native_apic_mem_read: mov eax, [rdi - 0xa03000]
    let d = decode(&[0x8b, 0x87, 0x00, 0xd0, 0x5f, 0xff, 0xe9], 64).unwrap();
    assert_eq!(d, Decoded { op: load(4, 0, 4, false), len: 6 });
    // native_apic_mem_write: mov [rdi - 0xa03000], esi
    let d = decode(&[0x89, 0xb7, 0x00, 0xd0, 0x5f, 0xff], 64).unwrap();
    assert_eq!(d, Decoded { op: MmioOp::Store { size: 4, source: Source::Register(6) }, len: 6 });
    // mov dword [rax], 0x12345678
    let d = decode(&[0xc7, 0x00, 0x78, 0x56, 0x34, 0x12], 64).unwrap();
    assert_eq!(d.op, MmioOp::Store { size: 4, source: Source::Immediate(0x1234_5678) });
    // mov r9d, [rbx]; movzx ecx, byte [rbx]; movsx rdx, word [rbx]; mov r10, [rbx]
    assert_eq!(decode(&[0x44, 0x8b, 0x0b], 64).unwrap().op, load(4, 9, 4, false));
    assert_eq!(decode(&[0x0f, 0xb6, 0x0b], 64).unwrap().op, load(1, 1, 4, false));
    assert_eq!(decode(&[0x48, 0x0f, 0xbf, 0x13], 64).unwrap().op, load(2, 2, 8, true));
    assert_eq!(decode(&[0x4c, 0x8b, 0x13], 64).unwrap().op, load(8, 10, 8, false));
    // 32-bit code: mov eax, [0xfee00020]
    let d = decode(&[0xa1, 0x20, 0x00, 0xe0, 0xfe], 32).unwrap();
    assert_eq!(d, Decoded { op: load(4, 0, 4, false), len: 5 });
}

#[test]
fn other_instructions_and_registers_are_refused() {
    assert!(matches!(decode(&[0x01, 0x07], 64), Err(Unsupported::Instruction(Mnemonic::Add))));
    assert!(matches!(decode(&[0x48, 0x8b, 0x27], 64), Err(Unsupported::Register(Register::RSP))));
    assert!(matches!(decode(&[0x8a, 0x27], 64), Err(Unsupported::Register(Register::AH))));
    assert!(matches!(decode(&[0x89, 0xc0], 64), Err(Unsupported::Instruction(Mnemonic::Mov))));
    assert_eq!(decode(&[0x8b], 64), Err(Unsupported::Invalid));
    assert_eq!(decode(&[], 64), Err(Unsupported::Invalid));
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Random instruction bytes in every mode: an answer, never a panic, and a decoded
    /// access names a register the guest has and a length within the bytes.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20), bitness in prop::sample::select(vec![16u32, 32, 64])) {
        if let Ok(d) = decode(&bytes, bitness) {
            prop_assert!(usize::from(d.len) <= bytes.len().min(MAX_LEN));
            match d.op {
                MmioOp::Load { size, dest, dest_size, .. } => {
                    prop_assert!(dest < 16 && dest != 4 && matches!(size, 1 | 2 | 4 | 8) && matches!(dest_size, 1 | 2 | 4 | 8));
                }
                MmioOp::Store { size, source } => {
                    prop_assert!(matches!(size, 1 | 2 | 4 | 8));
                    if let Source::Register(r) = source {
                        prop_assert!(r < 16 && r != 4);
                    }
                }
            }
        }
    }
}

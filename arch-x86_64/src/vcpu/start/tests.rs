use super::*;

const CR4_ALLOWED: u64 = 0x7ff;

/// A `vcpu_hvm_context` in 32-bit mode: flat segments, `eip`, EBX = 0x1234.
fn context32(eip: u32) -> [u8; HVM_CONTEXT_SIZE] {
    let mut b = [0u8; HVM_CONTEXT_SIZE];
    let r = &mut b[8..];
    r[12..16].copy_from_slice(&0x1234u32.to_le_bytes()); // ebx
    r[32..36].copy_from_slice(&eip.to_le_bytes());
    r[36..40].copy_from_slice(&0x202u32.to_le_bytes()); // eflags: IF
    r[40..44].copy_from_slice(&1u32.to_le_bytes()); // cr0: PE
    for n in 0..4 {
        r[84 + 4 * n..88 + 4 * n].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    r[100..104].copy_from_slice(&0x67u32.to_le_bytes()); // TR limit
    let attrs: [u16; 5] = [0xc9a, 0xc92, 0xc92, 0xc92, 0x089]; // CS, DS, SS, ES, TR (not yet accessed/busy)
    for (n, a) in attrs.iter().enumerate() {
        r[104 + 2 * n..106 + 2 * n].copy_from_slice(&a.to_le_bytes());
    }
    b
}

fn context64(rip: u64, cr0: u64, cr4: u64, efer: u64) -> [u8; HVM_CONTEXT_SIZE] {
    let mut b = [0u8; HVM_CONTEXT_SIZE];
    b[0..4].copy_from_slice(&VCPU_HVM_MODE_64B.to_le_bytes());
    let r = &mut b[8..];
    r[56..64].copy_from_slice(&0x5678u64.to_le_bytes()); // rdi
    r[64..72].copy_from_slice(&rip.to_le_bytes());
    r[80..88].copy_from_slice(&cr0.to_le_bytes());
    r[88..96].copy_from_slice(&0x9000u64.to_le_bytes());
    r[96..104].copy_from_slice(&cr4.to_le_bytes());
    r[104..112].copy_from_slice(&efer.to_le_bytes());
    b
}

#[test]
fn the_32_bit_context_gives_its_registers_and_accessed_segments() {
    let s = StartState::from_hvm_context(&context32(0x10_0000), CR4_ALLOWED).unwrap();
    assert_eq!((s.rip, s.gpr[gpr::RBX], s.rflags, s.cr0), (0x10_0000, 0x1234, 0x202, 1));
    assert_eq!(s.segments[CS].attr, 0xc9b);
    assert_eq!(s.tr.attr, 0x08b);
    assert_eq!(s.segments[CS].vmx_access_rights(), 0xc09b);
    assert!(!s.long_mode());
}

#[test]
fn bad_32_bit_contexts_are_refused() {
    let refuse = |b: [u8; HVM_CONTEXT_SIZE]| StartState::from_hvm_context(&b, CR4_ALLOWED) == Err(Errno::EINVAL);
    let mut b = context32(0);
    b[8 + 104] = 0; // CS not present
    assert!(refuse(b));
    let mut b = context32(0);
    b[8 + 108..8 + 110].copy_from_slice(&0xcf2u16.to_le_bytes()); // SS.DPL 3 != CS.DPL 0
    assert!(refuse(b));
    let mut b = context32(0x2000);
    b[8 + 84..8 + 88].copy_from_slice(&0xfffu32.to_le_bytes());
    b[8 + 105] = 0x4; // CS byte-granular, limit 0xfff < EIP
    assert!(refuse(b));
    let mut b = context32(0);
    b[8 + 84..8 + 88].copy_from_slice(&0x1000u32.to_le_bytes()); // G set, low bits not 0xfff
    assert!(refuse(b));
    let mut b = context32(0);
    b[8 + 105] = 0x4; // CS byte-granular with a 4 GiB limit
    assert!(refuse(b));
    let mut b = context32(0);
    b[8 + 52] = 1; // pad1
    assert!(refuse(b));
    let mut b = context32(0);
    b[0] = 2; // mode
    assert!(refuse(b));
    let mut b = context32(0);
    b[8 + 40..8 + 44].copy_from_slice(&0x8000_0000u32.to_le_bytes()); // PG without PE
    assert!(refuse(b));
    let mut b = context32(0);
    b[8 + 48..8 + 52].copy_from_slice(&0x1000u32.to_le_bytes()); // CR4 bit not allowed
    assert!(refuse(b));
    assert_eq!(StartState::from_hvm_context(&[0; 64], CR4_ALLOWED), Err(Errno::EINVAL));
}

#[test]
fn the_64_bit_context_starts_in_long_mode_with_flat_segments() {
    let (pg_pe, pae, lme) = (0x8000_0001, 0x20, efer::LME);
    let s = StartState::from_hvm_context(&context64(0xffff_8000_0000_1000, pg_pe, pae, lme), CR4_ALLOWED).unwrap();
    assert!(s.long_mode());
    assert_eq!(s.efer, efer::LME | efer::LMA);
    assert_eq!((s.rip, s.cr3, s.gpr[gpr::RDI]), (0xffff_8000_0000_1000, 0x9000, 0x5678));
    assert_eq!(s.segments[CS].vmx_access_rights(), 0xa09b);
    for bad in [
        context64(0x8000_0000_0000, pg_pe, pae, lme), // non-canonical
        context64(0x1000, 1, pae, lme),               // paging off
        context64(0x1000, pg_pe, 0, lme),             // no PAE
        context64(0x1000, pg_pe, pae, 0),             // no LME
        context64(0x1000, pg_pe, pae, lme | 1 << 12), // reserved EFER bit
    ] {
        assert_eq!(StartState::from_hvm_context(&bad, CR4_ALLOWED), Err(Errno::EINVAL));
    }
}

#[test]
fn sipi_starts_in_real_mode_at_the_vector_page() {
    let s = StartState::sipi(0x9a000, 0x806c1);
    let cs = s.segments[CS];
    assert_eq!((cs.selector, cs.base, cs.limit, s.rip), (0x9a00, 0x9a000, 0xffff, 0));
    assert_eq!(s.cr0 & CR0_PE, 0);
    assert_eq!(s.gpr[gpr::RDX], 0x806c1);
    assert_eq!(cs.vmx_access_rights(), 0x9b);
    assert_eq!(Segment::default().vmx_access_rights(), 1 << 16);
}

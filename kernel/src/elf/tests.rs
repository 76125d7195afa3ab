use super::writer::{image, note_bytes, Part};
use super::*;
use alloc::vec::Vec;
use proptest::prelude::*;

fn pvh_like(wide: bool) -> Vec<u8> {
    image(
        wide,
        if wide { EM_X86_64 } else { EM_386 },
        0x10_0000,
        &[
            Part::load(0x10_0000, &[0x90; 100], 0x2000),
            Part::note("Xen", 18, &0x10_0040u32.to_le_bytes()),
            Part::load(0x20_0000, b"data", 4),
        ],
    )
}

#[test]
fn reads_both_classes() {
    for wide in [false, true] {
        let bytes = pvh_like(wide);
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(elf.is_64bit(), wide);
        assert_eq!(elf.entry, 0x10_0000);
        let segs: Vec<Segment> = elf.segments().collect();
        assert_eq!(segs.len(), 3);
        assert_eq!((segs[0].kind, segs[0].paddr, segs[0].filesz, segs[0].memsz), (PT_LOAD, 0x10_0000, 100, 0x2000));
        assert_eq!(elf.file_bytes(&segs[0]), &[0x90; 100][..]);
        assert_eq!(elf.file_bytes(&segs[2]), b"data");
        let notes: Vec<Note<'_>> = elf.notes().collect();
        assert_eq!(notes.len(), 1);
        assert_eq!((notes[0].owner, notes[0].kind, notes[0].desc_number()), (&b"Xen"[..], 18, Some(0x10_0040)));
    }
}

#[test]
fn several_notes_in_one_segment() {
    let mut data = note_bytes("GNU", 3, &[1, 2, 3, 4, 5]);
    data.extend(note_bytes("Xen", 18, &0x1234u64.to_le_bytes()));
    let part = Part { kind: PT_NOTE, paddr: 0, vaddr: 0, memsz: data.len() as u64, data };
    let bytes = image(true, EM_X86_64, 0, &[part]);
    let elf = Elf::parse(&bytes).unwrap();
    let notes: Vec<Note<'_>> = elf.notes().collect();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].desc, &[1, 2, 3, 4, 5]);
    assert_eq!(notes[0].desc_number(), None);
    assert_eq!((notes[1].owner, notes[1].desc_number()), (&b"Xen"[..], Some(0x1234)));
}

#[test]
fn refuses_malformed_images() {
    assert_eq!(Elf::parse(b"").unwrap_err(), ElfError::Truncated);
    assert_eq!(Elf::parse(b"MZ\x90\x00 not an elf file").unwrap_err(), ElfError::NotElf);
    let good = pvh_like(true);
    let mut b = good.clone();
    b[4] = 3;
    assert_eq!(Elf::parse(&b).unwrap_err(), ElfError::BadClass(3));
    let mut b = good.clone();
    b[5] = 2;
    assert_eq!(Elf::parse(&b).unwrap_err(), ElfError::NotLittleEndian);
    let mut b = good.clone();
    b[16] = 1;
    assert_eq!(Elf::parse(&b).unwrap_err(), ElfError::NotExecutable(1));
    assert_eq!(Elf::parse(&good[..40]).unwrap_err(), ElfError::Truncated);
    assert_eq!(Elf::parse(&good[..100]).unwrap_err(), ElfError::BadProgramHeaders);
    // Segment 0's file size grows past the end of the file.
    let mut b = good.clone();
    b[64 + 32..64 + 40].copy_from_slice(&0x10_0000u64.to_le_bytes());
    assert_eq!(Elf::parse(&b).unwrap_err(), ElfError::BadSegment { index: 0 });
    // Segment 2 has more file than memory bytes.
    let mut b = good.clone();
    b[64 + 2 * 56 + 40..64 + 2 * 56 + 48].copy_from_slice(&1u64.to_le_bytes());
    assert_eq!(Elf::parse(&b).unwrap_err(), ElfError::BadSegment { index: 2 });
    // The note's descriptor size runs past its segment.
    let mut b = good.clone();
    let note_at = u64::from_le_bytes(b[64 + 56 + 8..64 + 56 + 16].try_into().unwrap()) as usize;
    b[note_at + 4..note_at + 8].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(Elf::parse(&b).unwrap_err(), ElfError::BadNote { index: 1 });
    // Too small a program-header entry size.
    let mut b = good;
    b[54] = 8;
    assert_eq!(Elf::parse(&b).unwrap_err(), ElfError::BadProgramHeaders);
}

fn check_accepted(bytes: &[u8]) {
    if let Ok(elf) = Elf::parse(bytes) {
        for s in elf.segments() {
            assert!(s.offset + s.filesz <= bytes.len() as u64 && s.filesz <= s.memsz);
            assert_eq!(elf.file_bytes(&s).len() as u64, s.filesz);
        }
        for n in elf.notes() {
            assert!(n.desc.len() <= bytes.len() && n.owner.len() <= bytes.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_accepted(&bytes);
        let mut with_magic = b"\x7fELF\x02\x01\x01".to_vec();
        with_magic.extend(&bytes);
        check_accepted(&with_magic);
    }

    #[test]
    fn mutated_images_never_panic(wide in any::<bool>(), edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8)) {
        let mut bytes = pvh_like(wide);
        let len = bytes.len();
        for (at, v) in edits {
            bytes[at as usize % len] = v;
        }
        check_accepted(&bytes);
    }
}

#[test]
fn a_head_is_checked_against_the_whole_file_length() {
    for wide in [false, true] {
        let bytes = pvh_like(wide);
        let header = if wide { 64 + 3 * 56 } else { 52 + 3 * 32 };
        let head = &bytes[..header];
        let elf = Elf::parse_head(head, bytes.len() as u64).unwrap();
        let segs: Vec<Segment> = elf.segments().collect();
        assert_eq!(segs.len(), 3);
        // The note segment, read from the whole image, parses on its own.
        let note = &segs[1];
        let at = note.offset as usize;
        let found: Vec<_> = notes(&bytes[at..at + note.filesz as usize]).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].unwrap().desc_number(), Some(0x10_0040));
        // A file shorter than its last segment, or a head without the table, is refused.
        assert_eq!(Elf::parse_head(head, bytes.len() as u64 - 1).err(), Some(ElfError::BadSegment { index: 2 }));
        assert_eq!(Elf::parse_head(&head[..header - 1], bytes.len() as u64).err(), Some(ElfError::BadProgramHeaders));
    }
}

use super::pvh::{prepare, scratch_window, Inputs, Kernel, Placed, Refusal, XEN_ELFNOTE_PHYS32_ENTRY};
use crate::layout::*;
use keel_abi::memory::{E820_RAM, E820_RESERVED};
use keel_abi::start_info::{HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo};
use keel_abi::Wire;
use keel_kernel::elf::writer::{image, Part};
use keel_kernel::elf::{EM_386, EM_X86_64};
use keel_kernel::mm::Region;

const MIB: u64 = 1 << 20;

fn kernel(wide: bool, entry: u32) -> Vec<u8> {
    image(
        wide,
        if wide { EM_X86_64 } else { EM_386 },
        0xffff_ffff_8100_0000,
        &[
            Part::load(0x10_0000, &[0xf4; 0x300], 0x4000),
            Part::note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, &entry.to_le_bytes()),
            Part::load(0x20_0000, &[1, 2, 3], 0x1000),
        ],
    )
}

fn inputs<'a>(k: &'a [u8], ram: &'a [Region]) -> Inputs<'a> {
    Inputs {
        kernel_node: "/chosen/d/kernel",
        kernel: Kernel::Bytes(k),
        ramdisk: None,
        cmdline: None,
        vcpus: 2,
        ram,
        initial: false,
        scratch: None,
    }
}

fn table<'a>(img: &'a super::pvh::BootImage<'_>, at: u64) -> &'a [u8] {
    &img.tables.iter().find(|(a, _)| *a == at).expect("table written").1
}

#[test]
fn ram_banks_and_e820() {
    assert_eq!(guest_ram(16 * MIB), [Region::new(0, 16 * MIB)]);
    assert_eq!(guest_ram(4 << 30), [Region::new(0, 3 << 30), Region::new(4 << 30, 1 << 30)]);
    let map: Vec<_> = memory_map(&guest_ram(4 << 30)).iter().map(entry).collect();
    assert_eq!(
        map,
        [
            (0, 0xa_0000, E820_RAM),
            (0xa_0000, 0x6_0000, E820_RESERVED),
            (MIB, (3 << 30) - MIB, E820_RAM),
            (4 << 30, 1 << 30, E820_RAM)
        ]
    );
}

#[test]
fn loads_a_pvh_kernel() {
    let k = kernel(true, 0x10_0040);
    let ram = guest_ram(32 * MIB);
    let initrd = [7u8; 5000];
    let mut i = inputs(&k, &ram);
    i.ramdisk = Some(&initrd);
    i.cmdline = Some("console=hvc0 scenario=hypercalls");
    let img = prepare(&i).unwrap();
    assert_eq!((img.entry, img.start_info), (0x10_0040, START_INFO));
    let bytes: Vec<&[u8]> = img.segments.iter().map(|s| &k[s.offset as usize..(s.offset + s.len) as usize]).collect();
    assert_eq!(img.segments.iter().map(|s| s.gpa).collect::<Vec<_>>(), [0x10_0000, 0x20_0000]);
    assert_eq!(bytes, [&[0xf4; 0x300][..], &[1, 2, 3][..]]);
    assert_eq!(img.ramdisk, Some((32 * MIB - 0x2000, &initrd[..])));

    let info = HvmStartInfo::from_bytes(table(&img, START_INFO)).unwrap();
    assert_eq!((info.magic, info.version, info.flags, info.nr_modules), (0x336e_c578, 1, 0, 1));
    assert_eq!((info.modlist_paddr, info.cmdline_paddr, info.rsdp_paddr), (MODLIST, CMDLINE, ACPI_BASE));
    assert_eq!((info.memmap_paddr, info.memmap_entries), (MEMMAP, 3));
    let m = HvmModlistEntry::from_bytes(table(&img, MODLIST)).unwrap();
    assert_eq!((m.paddr, m.size), (32 * MIB - 0x2000, 5000));
    assert_eq!(table(&img, CMDLINE), b"console=hvc0 scenario=hypercalls\0");
    let mm = table(&img, MEMMAP);
    let e = |n: usize| HvmMemmapTableEntry::from_bytes(&mm[24 * n..]).unwrap();
    assert_eq!((e(0).addr, e(0).size, e(0).kind), (0, 0xa_0000, 1));
    assert_eq!((e(1).addr, e(1).size, e(1).kind), (0xa_0000, 0x6_0000, 2));
    assert_eq!((e(2).addr, e(2).size, e(2).kind), (MIB, 31 * MIB, 1));
    // Every table lies in the reserved window, and none overlaps another.
    let mut spans: Vec<(u64, u64)> = img.tables.iter().map(|(a, b)| (*a, *a + b.len() as u64)).collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "{spans:x?}");
    }
    assert!(spans.iter().all(|&(s, e)| s >= RESERVED.start && e <= RESERVED.end));
}

#[test]
fn a_32bit_image_without_ramdisk_or_cmdline() {
    let k = kernel(false, 0x10_0000);
    let ram = guest_ram(4 * MIB);
    let img = prepare(&inputs(&k, &ram)).unwrap();
    let info = HvmStartInfo::from_bytes(table(&img, START_INFO)).unwrap();
    assert_eq!((info.nr_modules, info.modlist_paddr, info.cmdline_paddr), (0, 0, 0));
    assert!(img.ramdisk.is_none());
}

/// Only the initial domain is told it is one (`SIF_PRIVILEGED | SIF_INITDOMAIN`, as Xen's
/// PVH dom0 builder): Linux then uses the dom0 console and an unrestricted privcmd.
#[test]
fn only_the_initial_domain_gets_sif_initdomain() {
    let k = kernel(true, 0x10_0040);
    let ram = guest_ram(16 * MIB);
    for (initial, want) in [(false, 0), (true, 0b11)] {
        let img = prepare(&Inputs { initial, ..inputs(&k, &ram) }).unwrap();
        assert_eq!(HvmStartInfo::from_bytes(table(&img, START_INFO)).unwrap().flags, want);
    }
}

fn checksum_ok(b: &[u8]) -> bool {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x)) == 0
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn acpi_tables_describe_the_vcpus() {
    let t = super::acpi::build(ACPI_BASE, 3);
    let at = |pa: u64| &t.bytes[(pa - ACPI_BASE) as usize..];
    let rsdp = at(t.rsdp);
    assert_eq!(&rsdp[..8], b"RSD PTR ");
    assert!(checksum_ok(&rsdp[..20]) && checksum_ok(&rsdp[..36]));
    assert_eq!(rsdp[15], 2);
    let table = |pa: u64| {
        let b = at(pa);
        let len = u32_at(b, 4) as usize;
        assert!(checksum_ok(&b[..len]), "checksum of {:?}", core::str::from_utf8(&b[..4]));
        &b[..len]
    };
    let xsdt = table(u64_at(rsdp, 24));
    let rsdt = table(u32_at(rsdp, 16) as u64);
    assert_eq!((&xsdt[..4], &rsdt[..4]), (&b"XSDT"[..], &b"RSDT"[..]));
    let entries: Vec<u64> = xsdt[36..].chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    let rsdt_entries: Vec<u64> = rsdt[36..].chunks(4).map(|c| u32_at(c, 0) as u64).collect();
    assert_eq!(entries, rsdt_entries);
    let fadt = table(entries[0]);
    assert_eq!((&fadt[..4], fadt.len(), fadt[8]), (&b"FACP"[..], 268, 5));
    assert_eq!(u16::from_le_bytes([fadt[109], fadt[110]]), 0x24, "IAPC_BOOT_ARCH: no VGA, no CMOS RTC");
    assert_eq!(u32_at(fadt, 112), 1 << 20, "hardware-reduced ACPI");
    let dsdt = table(u64_at(fadt, 140));
    assert_eq!((&dsdt[..4], dsdt.len()), (&b"DSDT"[..], 36));
    assert_eq!(u32_at(fadt, 40) as u64, u64_at(fadt, 140));
    let madt = table(entries[1]);
    assert_eq!(&madt[..4], b"APIC");
    assert_eq!((u32_at(madt, 36), u32_at(madt, 40)), (0xfee0_0000, 0));
    let lapics: Vec<&[u8]> = madt[44..].chunks(8).collect();
    assert_eq!(lapics.len(), 3);
    for (id, e) in lapics.iter().enumerate() {
        assert_eq!(&e[..4], &[0, 8, id as u8, id as u8], "processor UID = APIC id = vCPU id");
        assert_eq!(u32_at(e, 4), 1, "enabled");
    }
}

fn refusal(i: &Inputs<'_>) -> Refusal {
    match prepare(i) {
        Err(r) => r,
        Ok(_) => panic!("accepted"),
    }
}

fn bad_image(i: &Inputs<'_>) -> String {
    match refusal(i) {
        Refusal::BadImage(s) => s,
        r => panic!("{r:?}"),
    }
}

#[test]
fn refuses_what_cannot_boot() {
    let ram = guest_ram(8 * MIB);
    let garbage = [0x4du8; 300];
    assert!(bad_image(&inputs(&garbage, &ram)).contains("/chosen/d/kernel is not a usable ELF image: no ELF magic"));
    let no_note = image(true, EM_X86_64, 0, &[Part::load(0x10_0000, &[0; 16], 16)]);
    let why = bad_image(&inputs(&no_note, &ram));
    assert!(why.ends_with("no XEN_ELFNOTE_PHYS32_ENTRY note (type 18, owner \"Xen\"): not a PVH kernel"), "{why}");
    let i386 = image(false, EM_386, 0, &[Part::load(0x100_0000, &[0xf4; 16], 16)]);
    assert!(bad_image(&inputs(&i386, &ram))
        .ends_with("not a PVH kernel (a 32-bit ELF: an i386 kernel built without Xen PVH support)"));
    let arm = image(true, 183, 0, &[Part::note("Xen", 18, &[0; 4])]);
    assert!(bad_image(&inputs(&arm, &ram)).contains("ELF machine 183 is not x86"));
    let odd_note = image(true, EM_X86_64, 0, &[Part::load(0x10_0000, &[0; 16], 16), Part::note("Xen", 18, &[0; 6])]);
    assert!(bad_image(&inputs(&odd_note, &ram)).contains("holds 6 bytes"));
    let outside = kernel(true, 0x30_0000);
    assert!(bad_image(&inputs(&outside, &ram)).contains("entry point 0x300000 is not in a loaded segment"));
    let overlapping = image(
        true,
        EM_X86_64,
        0,
        &[
            Part::load(0x10_0000, &[0; 16], 0x2000),
            Part::load(0x10_1000, &[0; 16], 16),
            Part::note("Xen", 18, &0x10_0000u32.to_le_bytes()),
        ],
    );
    assert!(bad_image(&inputs(&overlapping, &ram)).contains("overlap"));

    let low = image(
        true,
        EM_X86_64,
        0,
        &[Part::load(0xf_0000, &[0; 16], 16), Part::note("Xen", 18, &0xf_0000u32.to_le_bytes())],
    );
    assert!(matches!(refusal(&inputs(&low, &ram)), Refusal::TooLarge(s) if s.contains("above 1 MiB")));
    let k = kernel(true, 0x10_0000);
    let small = [Region::new(0, MIB)];
    assert!(matches!(refusal(&inputs(&k, &small)), Refusal::TooLarge(s) if s.contains("at least 2 MiB")));
    let big = vec![0u8; 7 * MIB as usize];
    let mut i = inputs(&k, &ram);
    i.ramdisk = Some(&big);
    assert!(matches!(refusal(&i), Refusal::TooLarge(s) if s.contains("ramdisk of 7168 KiB does not fit")));
    let mut i = inputs(&k, &ram);
    i.vcpus = 300;
    assert!(matches!(refusal(&i), Refusal::TooLarge(s) if s.contains("300 vCPUs")));
    let long = "x".repeat(MAX_CMDLINE + 1);
    let mut i = inputs(&k, &ram);
    i.cmdline = Some(&long);
    assert!(matches!(refusal(&i), Refusal::TooLarge(s) if s.contains("command line")));
}

#[test]
fn the_scratch_window_is_the_top_of_the_highest_bank_that_holds_it() {
    let ram = guest_ram(4 << 30);
    assert_eq!(scratch_window(&ram, 56 * MIB + 1), Some(Region::new((5 << 30) - 56 * MIB - 4096, 56 * MIB + 4096)));
    // Larger than the high bank: the top of low RAM.
    assert_eq!(scratch_window(&ram, 2 << 30), Some(Region::new(1 << 30, 2 << 30)));
    // Never below 1 MiB, never larger than a bank.
    assert_eq!(scratch_window(&guest_ram(32 * MIB), 31 * MIB), Some(Region::new(MIB, 31 * MIB)));
    assert_eq!(scratch_window(&guest_ram(32 * MIB), 31 * MIB + 1), None);
    assert_eq!(scratch_window(&ram, u64::MAX), None);
}

#[test]
fn segments_in_the_scratch_window_are_refused_and_the_rest_may_use_it() {
    let k = kernel(true, 0x10_0000);
    let ram = guest_ram(8 * MIB);
    let initrd = [7u8; 5000];
    // The window over the kernel's second segment: refused, saying why.
    let mut i = inputs(&k, &ram);
    i.scratch = Some(Region::new(0x20_0000, 0x1000));
    assert!(matches!(refusal(&i), Refusal::TooLarge(s) if s.contains("where the decompressed kernel lies")));
    // At the top of RAM, where the ramdisk goes too: accepted (the ramdisk is copied after).
    i.scratch = scratch_window(&ram, k.len() as u64);
    i.ramdisk = Some(&initrd);
    let img = prepare(&i).unwrap();
    assert_eq!(img.segments[1], Placed { gpa: 0x20_0000, offset: img.segments[1].offset, len: 3 });
    assert_eq!(img.ramdisk.map(|(a, _)| a), Some(8 * MIB - 0x2000));
}

/// A kernel image that is somewhere else than in a slice: its bytes read one call at a
/// time, the way the loader reads a window of guest RAM.
struct Elsewhere(Vec<u8>);

impl super::pvh::KernelImage for Elsewhere {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        self.0.as_slice().read(offset, buf)
    }
}

#[test]
fn an_image_read_in_pieces_loads_as_a_slice_does() {
    use super::pvh::KernelImage;
    let k = kernel(false, 0x10_0100);
    let ram = guest_ram(8 * MIB);
    let from_slice = prepare(&inputs(&k, &ram)).unwrap();
    let elsewhere = Elsewhere(k.clone());
    let from_pieces = prepare(&Inputs { kernel: Kernel::Elsewhere(&elsewhere), ..inputs(&k, &ram) }).unwrap();
    assert_eq!((from_slice.entry, &from_slice.segments), (from_pieces.entry, &from_pieces.segments));
    // A read past the end is refused, never a panic.
    let mut buf = [0u8; 8];
    assert!(k.as_slice().read(k.len() as u64 - 4, &mut buf).is_err());
    assert!(k.as_slice().read(u64::MAX, &mut buf).is_err());
    // An image shorter than its segments say is refused by name.
    let cut = Elsewhere(k[..k.len() - 2].to_vec());
    assert!(
        bad_image(&Inputs { kernel: Kernel::Elsewhere(&cut), ..inputs(&k, &ram) }).contains("not a usable ELF image")
    );
}

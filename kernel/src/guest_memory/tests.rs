use super::*;
use crate::mm::{GuestPhysAddr, PhysAddr};
use crate::mock::{MockArch, MockMemory};
use crate::test_support::*;
use keel_abi::event::EvtchnBindVirq;
use keel_abi::layout::X86_64;

#[test]
fn copies_cross_pages_and_faults_cleanly() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 16);
    let data: alloc::vec::Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
    // Straddles two page boundaries.
    d.write_phys(RAM + 0xff0, &data).unwrap();
    let mut back = alloc::vec![0u8; 6000];
    d.read_phys(RAM + 0xff0, &mut back).unwrap();
    assert_eq!(back, data);

    let mm = d.mm.lock();
    let g = GuestPhys::new(&mm);
    let end = RAM + 16 * 1024;
    assert_eq!(g.read(end - 4, &mut [0u8; 8]), Err(Errno::EFAULT), "runs off the end of RAM");
    assert_eq!(g.write(end - 4, &[1u8; 8]), Err(Errno::EFAULT));
    let mut four = [0u8; 4];
    g.read(end - 4, &mut four).unwrap();
    assert_eq!(four, [0; 4], "a faulting write changes nothing");
    assert_eq!(g.read(u64::MAX - 2, &mut [0u8; 8]), Err(Errno::EFAULT), "overflow");
    assert_eq!(g.read(0, &mut [0u8; 1]), Err(Errno::EFAULT), "unmapped");
    assert_eq!(g.word_address(RAM + 2, 4), Err(Errno::EFAULT), "misaligned word");
    assert!(g.word_address(RAM + 4, 4).is_ok());
    g.write_struct(RAM, &EvtchnBindVirq { virq: 1, vcpu: 2, port: 3 }).unwrap();
    assert_eq!(g.read_struct::<EvtchnBindVirq>(RAM).unwrap().port, 3);
    assert_eq!(g.read_struct::<EvtchnBindVirq>(end - 8), Err(Errno::EFAULT));
}

#[test]
fn only_ram_and_hypervisor_pages_are_reachable() {
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 16);
    {
        let mut mm = d.mm.lock();
        // A foreign grant mapping and device memory are not hypercall memory.
        mm.map_foreign(hv.pool(), 0x100, PhysAddr(0x10_0000_0000), true, 7).unwrap();
        mm.place_special(hv.pool(), 0x101, d.shared_info_frame(), crate::p2m::PageKind::SharedInfo).unwrap();
    }
    let mm = d.mm.lock();
    let g = GuestPhys::new(&mm);
    assert_eq!(g.read(0x100_000, &mut [0u8; 4]), Err(Errno::EFAULT));
    assert!(g.write(0x101_000, &[1, 2, 3]).is_ok(), "shared_info is the guest's");
    let mut b = [0u8; 3];
    MockMemory::read(d.shared_info_frame(), &mut b);
    assert_eq!(b, [1, 2, 3]);
}

#[test]
fn virtual_access_splits_at_virtual_pages() {
    // A translation that maps virtual page n to physical page (RAM + 3 - n): reversed.
    struct Reversed;
    impl GuestTranslate for Reversed {
        fn gva_to_gpa(&self, gva: u64, _w: bool) -> Option<GuestPhysAddr> {
            let page = gva / 4096;
            (page < 4).then(|| GuestPhysAddr(RAM + (3 - page) * 4096 + gva % 4096))
        }
    }
    let (hv, _) = hypervisor();
    let d = guest(&hv, &X86_64, 1, 16);
    let v = GuestVirt::<MockArch>::new(&d.mm, &Reversed);
    v.write(4096 - 2, &[1, 2, 3, 4]).unwrap();
    assert_eq!(get_u32(&d, RAM + 4 * 4096 - 4) >> 16, 0x0201);
    assert_eq!(get_u32(&d, RAM + 2 * 4096) & 0xffff, 0x0403);
    let mut b = [0u8; 4];
    v.read(4096 - 2, &mut b).unwrap();
    assert_eq!(b, [1, 2, 3, 4]);
    assert_eq!(v.read(4 * 4096 - 2, &mut b), Err(Errno::EFAULT));
    let none = GuestVirt::<MockArch>::new(&d.mm, &NoTranslation);
    assert_eq!(none.read(0, &mut b), Err(Errno::EFAULT));
}

#[test]
fn atomic_words_give_up_on_a_racing_guest() {
    let w = GuestWord32::<MockArch>::at(PhysAddr(0x10_0000_0000));
    w.store(0b1010);
    assert_eq!(w.test_and_set(0), Ok(false));
    assert_eq!(w.test_and_set(0), Ok(true));
    assert_eq!(w.test_and_clear(3), Ok(true));
    assert_eq!(w.load(), 0b0011);
    // A guest that changes the word on every look: the update gives up.
    let mut n = 0;
    let r = w.update(|x| {
        n += 1;
        MockMemory::write(PhysAddr(0x10_0000_0000), &(x + 1).to_le_bytes());
        Some(x | 0x100)
    });
    assert_eq!(r, Err(Unstable));
    assert_eq!(n, atomic::MAX_RETRIES);
}

/// A copy across RAM with hypervisor pages placed inside it: few host-contiguous runs
/// (copied run by run) or many (copied page by page); either way every byte lands in
/// the frame its own page translates to.
#[test]
fn copies_follow_each_pages_frame_in_few_runs_or_many() {
    use crate::p2m::PageKind;
    for specials in [&[2u64][..], &[1, 3, 5]] {
        let (hv, _) = hypervisor();
        let d = guest(&hv, &X86_64, 1, 64);
        let first = RAM / PAGE_SIZE;
        {
            let mut mm = d.mm.lock();
            for (n, &i) in specials.iter().enumerate() {
                let frame = hv.pool().alloc(1).unwrap();
                mm.place_special(hv.pool(), first + i, frame, PageKind::GrantFrame(n as u32)).unwrap();
            }
        }
        let data: alloc::vec::Vec<u8> = (0..7 * PAGE_SIZE as usize + 100).map(|i| (i * 7 % 251) as u8).collect();
        let at = RAM + 50;
        d.write_phys(at, &data).unwrap();
        for off in (0..data.len()).step_by(331) {
            let gpa = at + off as u64;
            let frame = d.lookup(gpa / PAGE_SIZE).unwrap().frame;
            let mut b = [0u8; 1];
            MockMemory::read(PhysAddr(frame.0 + gpa % PAGE_SIZE), &mut b);
            assert_eq!(b[0], data[off], "byte {off} with hypervisor pages at {specials:?}");
        }
        let mut back = alloc::vec![0u8; data.len()];
        d.read_phys(at, &mut back).unwrap();
        assert_eq!(back, data);
    }
}

//! Keel's own page tables: an identity map of all RAM (write-back) plus the device pages
//! Keel touches (uncached), built with the `x86_64` crate's mapper while the early 4 GiB
//! map from the entry code is still active. Table frames come from free RAM below 4 GiB
//! (the AP trampoline loads CR3 in 32-bit mode).

use crate::regs;
use keel_kernel::mm::{MemoryMap, Region};
use x86_64::structures::paging::mapper::{MapToError, MappedFrame, TranslateResult};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageSize, PageTable, PageTableFlags as F, PhysFrame, Size1GiB,
    Size2MiB, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

const PAGE: u64 = 4096;
const FOUR_GIB: u64 = 1 << 32;

/// How a range is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Write-back RAM.
    Ram,
    /// Uncached device registers (PCD|PWT: PAT entry 3, UC).
    Device,
}

/// Hands out zeroed page-table frames from free RAM below 4 GiB.
struct TableFrames<'a> {
    free: &'a mut MemoryMap,
    used: usize,
}

// SAFETY: every frame returned is removed from the free map, so it is unused and never
// handed out twice; it lies below 4 GiB, inside the early identity map, and is zeroed.
unsafe impl FrameAllocator<Size4KiB> for TableFrames<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let pa = take_low_page(self.free)?;
        // SAFETY: the frame is free RAM inside the early identity map (see above).
        unsafe { core::ptr::write_bytes(pa as usize as *mut u8, 0, PAGE as usize) };
        self.used += 1;
        Some(PhysFrame::containing_address(PhysAddr::new(pa)))
    }
}

/// Removes and returns one free page below 4 GiB.
pub fn take_low_page(free: &mut MemoryMap) -> Option<u64> {
    let page = free.regions().iter().find_map(|r| {
        let start = r.start.next_multiple_of(PAGE);
        (start + PAGE <= r.end.min(FOUR_GIB)).then_some(start)
    })?;
    free.remove(Region::new(page, PAGE));
    Some(page)
}

/// Builds the tables for `ranges`, loads them into CR3 and returns the CR3 value for the
/// other CPUs. `huge_1g`: the CPU has 1 GiB pages; `nx`: EFER.NXE is set.
pub fn build_and_load(free: &mut MemoryMap, ranges: &[(Region, Kind)], huge_1g: bool, nx: bool) -> u64 {
    let mut frames = TableFrames { free, used: 0 };
    let pml4 = frames.allocate_frame().expect("no free page below 4 GiB for the page-table root");
    let root = pml4.start_address().as_u64();
    // SAFETY: `root` is a zeroed, unused frame inside the early identity map, so it is a
    // valid empty PML4; the offset 0 is right because the early map is an identity map.
    let mut mapper = unsafe { OffsetPageTable::new(&mut *(root as usize as *mut PageTable), VirtAddr::new(0)) };
    for &(region, kind) in ranges {
        let flags = match kind {
            Kind::Ram => F::PRESENT | F::WRITABLE,
            Kind::Device if nx => F::PRESENT | F::WRITABLE | F::NO_CACHE | F::WRITE_THROUGH | F::NO_EXECUTE,
            Kind::Device => F::PRESENT | F::WRITABLE | F::NO_CACHE | F::WRITE_THROUGH,
        };
        map_identity(&mut mapper, &mut frames, region, flags, huge_1g && kind == Kind::Ram);
    }
    log::debug!("page tables: root {root:#x}, {} table frames", frames.used);
    // SAFETY: the new tables identity-map all RAM (Keel's image, stacks and data among it)
    // exactly like the early map did, so execution continues unchanged.
    unsafe {
        regs::wrmsr(regs::msr::IA32_PAT, regs::PAT_DEFAULT);
        let frame = PhysFrame::containing_address(PhysAddr::new(root));
        x86_64::registers::control::Cr3::write(frame, x86_64::registers::control::Cr3Flags::empty());
    }
    root
}

/// Identity-maps `region` with the largest pages that fit, skipping what is mapped.
fn map_identity(m: &mut OffsetPageTable<'_>, frames: &mut TableFrames<'_>, region: Region, flags: F, allow_1g: bool) {
    let mut a = region.start & !(PAGE - 1);
    let end = region.end.next_multiple_of(PAGE);
    while a < end {
        if let TranslateResult::Mapped { frame, .. } = m.translate(VirtAddr::new(a)) {
            a = match frame {
                MappedFrame::Size4KiB(f) => f.start_address().as_u64() + f.size(),
                MappedFrame::Size2MiB(f) => f.start_address().as_u64() + f.size(),
                MappedFrame::Size1GiB(f) => f.start_address().as_u64() + f.size(),
            };
            continue;
        }
        if allow_1g && try_map::<Size1GiB>(m, frames, a, end, flags) {
            a += Size1GiB::SIZE;
        } else if try_map::<Size2MiB>(m, frames, a, end, flags) {
            a += Size2MiB::SIZE;
        } else {
            try_map::<Size4KiB>(m, frames, a, end, flags);
            a += PAGE;
        }
    }
}

fn try_map<S: PageSize>(m: &mut OffsetPageTable<'_>, frames: &mut TableFrames<'_>, a: u64, end: u64, flags: F) -> bool
where
    for<'a> OffsetPageTable<'a>: Mapper<S>,
{
    if !a.is_multiple_of(S::SIZE) || end - a < S::SIZE {
        return false;
    }
    let page = Page::<S>::containing_address(VirtAddr::new(a));
    let frame = PhysFrame::<S>::containing_address(PhysAddr::new(a));
    // SAFETY: an identity mapping of RAM or device registers: the same address means the
    // same memory, so no existing reference changes meaning.
    match unsafe { m.map_to(page, frame, flags, frames) } {
        Ok(flush) => {
            flush.ignore(); // CR3 is loaded afterwards
            true
        }
        Err(MapToError::FrameAllocationFailed) => panic!("out of page-table frames below 4 GiB"),
        Err(MapToError::PageAlreadyMapped(_) | MapToError::ParentEntryHugePage) => false,
    }
}

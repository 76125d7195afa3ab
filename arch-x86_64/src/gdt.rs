//! Segment descriptors: each CPU's GDT (64-bit code, data, its TSS) and the TSS with the
//! interrupt stacks for exceptions that must not use the interrupted stack. VM entry
//! needs a usable host TR, so every CPU loads a TSS even though Keel never switches
//! privilege level.

use core::cell::UnsafeCell;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, GS, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PrivilegeLevel, VirtAddr};

/// Selectors, identical on every CPU.
pub const CODE_SELECTOR: u16 = 0x08;
pub const DATA_SELECTOR: u16 = 0x10;
pub const TSS_SELECTOR: u16 = 0x18;

/// Interrupt-stack-table slots (IST index 1..=3 in the IDT; 0 means "no IST" there).
pub const IST_DOUBLE_FAULT: u16 = 0;
pub const IST_NMI: u16 = 1;
pub const IST_MACHINE_CHECK: u16 = 2;
const IST_COUNT: usize = 3;
const IST_STACK_SIZE: usize = 16 * 1024;

/// One CPU's interrupt stacks.
#[repr(C, align(16))]
pub struct IstStacks(UnsafeCell<[[u8; IST_STACK_SIZE]; IST_COUNT]>);

// SAFETY: the stacks are only ever used by the CPU that owns them, through the TSS.
unsafe impl Sync for IstStacks {}

impl IstStacks {
    pub const fn new() -> IstStacks {
        IstStacks(UnsafeCell::new([[0; IST_STACK_SIZE]; IST_COUNT]))
    }

    fn top(&self, slot: usize) -> VirtAddr {
        let base = self.0.get() as u64 + (slot * IST_STACK_SIZE) as u64;
        VirtAddr::new(base + IST_STACK_SIZE as u64)
    }
}

impl Default for IstStacks {
    fn default() -> Self {
        Self::new()
    }
}

/// A CPU's descriptor tables. They must live forever (the CPU keeps pointers to them).
pub struct Tables {
    pub gdt: GlobalDescriptorTable,
    pub tss: &'static TaskStateSegment,
}

/// Builds a TSS whose IST slots point into `stacks`.
pub fn new_tss(stacks: &'static IstStacks) -> TaskStateSegment {
    let mut tss = TaskStateSegment::new();
    for slot in 0..IST_COUNT {
        tss.interrupt_stack_table[slot] = stacks.top(slot);
    }
    tss
}

/// Builds a GDT with Keel's fixed layout around `tss`.
pub fn new_tables(tss: &'static TaskStateSegment) -> Tables {
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    debug_assert_eq!((code.0, data.0, tss_sel.0), (CODE_SELECTOR, DATA_SELECTOR, TSS_SELECTOR));
    Tables { gdt, tss }
}

/// Loads `tables` on the calling CPU: GDT, segment registers and TR. FS and GS get the
/// null selector (their bases are set through MSRs afterwards).
pub fn load(tables: &'static Tables) {
    tables.gdt.load();
    let sel = |s| SegmentSelector::new(s >> 3, PrivilegeLevel::Ring0);
    // SAFETY: the selectors name the 64-bit code and flat data descriptors of the GDT just
    // loaded; null FS/GS are valid in 64-bit mode.
    unsafe {
        CS::set_reg(sel(CODE_SELECTOR));
        SS::set_reg(sel(DATA_SELECTOR));
        DS::set_reg(sel(DATA_SELECTOR));
        ES::set_reg(sel(DATA_SELECTOR));
        FS::set_reg(SegmentSelector(0));
        GS::set_reg(SegmentSelector(0));
        load_tss(sel(TSS_SELECTOR));
    }
}

//! The guest's stage-1 translation: 39-bit virtual addresses, 4 KiB granule, starting
//! at level 1, built before the device tree is read (so it covers Xen's guest memory map
//! rather than the actual RAM):
//!
//! | virtual | physical | memory |
//! |---|---|---|
//! | `[0, 0x3800_0000)` | identity, 2 MiB blocks | device (GIC, UART) |
//! | `[0x3800_0000, 0x4000_0000)` | identity | normal: grant window, magic pages, holes |
//! | `[0x4000_0000, 0x1_0000_0000)` | identity, 1 GiB blocks | normal: RAM bank 0 |
//! | `[0x40_0000_0000, +1 GiB)` | `0x4000_0000` | normal: an alias of RAM |
//!
//! Everything else is unmapped (e.g. [`UNMAPPED`]).

use core::cell::UnsafeCell;

/// Where the alias of RAM starts.
pub const ALIAS_BASE: u64 = 0x40_0000_0000;
/// What the alias maps.
pub const ALIAS_TARGET: u64 = 0x4000_0000;
pub const ALIAS_SIZE: u64 = 1 << 30;
/// A virtual address no table maps.
pub const UNMAPPED: u64 = 0x7f_0000_0000;
/// Normal memory below RAM: grant window, magic pages and holes.
const LOW_NORMAL: u64 = 0x3800_0000;

const VALID: u64 = 1;
const TABLE: u64 = 1 << 1;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const PXN_UXN: u64 = 3 << 53;
const NORMAL_BLOCK: u64 = VALID | ATTR_NORMAL | SH_INNER | AF;
const DEVICE_BLOCK: u64 = VALID | ATTR_DEVICE | AF | PXN_UXN;

/// MAIR_EL1: attribute 0 Device-nGnRE, 1 Normal write-back.
const MAIR: u64 = 0x04 | 0xff << 8;
/// TCR_EL1: T0SZ = 25, inner/outer write-back walks, inner shareable, 4 KiB, no TTBR1
/// walks (EPD1), 40-bit physical addresses.
const TCR: u64 = 25 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 23 | 2 << 32;
/// CPACR_EL1.FPEN: FP/SIMD usable at EL1 and EL0 (the scenarios check that Keel keeps
/// each vCPU's registers).
const CPACR_FP: u64 = 3 << 20;
/// SCTLR_EL1: RES1 bits, MMU, data and instruction caches, stack alignment check.
const SCTLR: u64 = 0x30d0_0800 | 1 | 1 << 2 | 1 << 3 | 1 << 12;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);

// SAFETY: written only by the boot CPU before any other CPU starts; read by the MMU.
unsafe impl Sync for Table {}

static LEVEL1: Table = Table(UnsafeCell::new([0; 512]));
static LOW: Table = Table(UnsafeCell::new([0; 512]));

fn set(table: &Table, index: usize, value: u64) {
    // SAFETY: `index` < 512; the boot CPU writes the tables before the MMU uses them.
    unsafe { core::ptr::write_volatile((table.0.get() as *mut u64).add(index), value) };
}

fn addr(table: &Table) -> u64 {
    table.0.get() as u64
}

/// Fills the tables (boot CPU, MMU off: plain aligned stores).
pub fn build_tables() {
    for i in 0..512 {
        let pa = (i as u64) << 21;
        set(&LOW, i, pa | if pa >= LOW_NORMAL { NORMAL_BLOCK } else { DEVICE_BLOCK });
    }
    set(&LEVEL1, 0, addr(&LOW) | TABLE | VALID);
    for i in 1..4 {
        set(&LEVEL1, i, (i as u64) << 30 | NORMAL_BLOCK);
    }
    set(&LEVEL1, (ALIAS_BASE >> 30) as usize, ALIAS_TARGET | NORMAL_BLOCK);
    // Drop any stale cache lines over the tables, which were written with caches off.
    for t in [&LEVEL1, &LOW] {
        let mut line = addr(t);
        while line < addr(t) + 4096 {
            // SAFETY: cleaning and invalidating a line of our own table loses nothing.
            unsafe { core::arch::asm!("dc civac, {}", in(reg) line, options(nostack)) };
            line += 64;
        }
    }
}

/// Turns this CPU's MMU on with the tables, and FP/SIMD on (every CPU).
pub fn enable() {
    let ttbr = addr(&LEVEL1);
    // SAFETY: the tables identity-map the code and stack this CPU runs on, so execution
    // continues unchanged once translation is on.
    unsafe {
        core::arch::asm!(
            "dsb sy",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {ttbr}",
            "isb",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            "msr sctlr_el1, {sctlr}",
            "msr cpacr_el1, {cpacr}",
            "isb",
            mair = in(reg) MAIR,
            tcr = in(reg) TCR,
            ttbr = in(reg) ttbr,
            sctlr = in(reg) SCTLR,
            cpacr = in(reg) CPACR_FP,
            options(nostack)
        )
    };
}

/// The guest-physical address behind `va`.
pub fn gpa(va: u64) -> u64 {
    if (ALIAS_BASE..ALIAS_BASE + ALIAS_SIZE).contains(&va) {
        va - ALIAS_BASE + ALIAS_TARGET
    } else {
        va
    }
}

/// The alias of `va`, if it lies in the aliased RAM.
pub fn alias(va: u64) -> Option<u64> {
    (ALIAS_TARGET..ALIAS_TARGET + ALIAS_SIZE).contains(&va).then(|| va - ALIAS_TARGET + ALIAS_BASE)
}

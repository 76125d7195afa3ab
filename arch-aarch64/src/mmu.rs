//! Keel's own EL2 stage-1 translation: an identity map (virtual = physical), 4 KiB
//! granule, 48-bit virtual addresses, four levels.
//!
//! The boot CPU builds it in two steps: first the image and the device tree (with the
//! MMU still off), then, with the MMU on, the console, all RAM and the interrupt
//! controller. Entries are only ever added to empty slots, so no break-before-make is
//! needed. Secondary CPUs use the same tables ([`config`]).
//!
//! Descriptor permissions differ between the EL2 regime (nVHE) and the EL2&0 regime
//! (VHE); see `docs/el2-modes.md`.

use crate::cpu;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, SCTLR_EL2, TCR_EL1, TCR_EL2};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use spin::Once;
use tock_registers::interfaces::Readable;

/// Translation tables available to Keel's own map (128 KiB).
const POOL_TABLES: usize = 32;
const ENTRIES: usize = 512;
const PAGE: u64 = 4096;
/// Virtual (= physical) addresses Keel can map: 48 bits.
const VA_BITS: u32 = 48;

const VALID: u64 = 1 << 0;
/// Table (levels 0-2) or page (level 3) descriptor.
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
/// nVHE: XN. VHE: UXN.
const XN_OR_UXN: u64 = 1 << 54;
/// VHE only: PXN.
const PXN: u64 = 1 << 53;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// MAIR_EL2: attribute 0 = Device-nGnRE, attribute 1 = Normal write-back RA/WA.
const MAIR: u64 = 0x04 | (0xff << 8);

/// How a range is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Keel's code.
    Text,
    /// Read-only data.
    ReadOnly,
    /// Read-write data and RAM.
    ReadWrite,
    /// Device registers.
    Device,
}

/// Why a range could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmuError {
    /// The pool of translation tables is exhausted.
    NoTables,
    /// The range lies beyond 48-bit addresses.
    OutOfRange,
    /// Part of the range is already mapped.
    Overlap(u64),
}

/// The MMU registers every CPU loads (read by `keel_enable_mmu`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MmuConfig {
    pub mair: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub sctlr: u64,
}

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

struct Pool(UnsafeCell<[Table; POOL_TABLES]>);

// SAFETY: only the boot CPU writes the tables (before secondaries start and with the
// MMU's own ordering rules); afterwards they are read by the hardware walker only.
unsafe impl Sync for Pool {}

/// All zero, so it lands in .bss rather than in the image file.
static POOL: Pool = Pool(UnsafeCell::new([const { Table([0; ENTRIES]) }; POOL_TABLES]));
/// Tables handed out; table 0 is the root.
static USED: AtomicUsize = AtomicUsize::new(1);
static CONFIG: Once<MmuConfig> = Once::new();

fn table(index: usize) -> *mut u64 {
    // SAFETY: `index` < POOL_TABLES (checked by callers); the pointer stays inside POOL.
    unsafe { (*POOL.0.get()).as_mut_ptr().add(index).cast() }
}

fn root() -> *mut u64 {
    table(0)
}

/// Takes a zeroed table from the pool. Plain load/store: usable with the MMU off.
fn alloc_table() -> Result<*mut u64, MmuError> {
    let n = USED.load(Relaxed);
    if n >= POOL_TABLES {
        return Err(MmuError::NoTables);
    }
    USED.store(n + 1, Relaxed);
    Ok(table(n))
}

fn leaf_attrs(m: Mapping) -> u64 {
    let vhe = cpu::vhe();
    // AP[2:1] (bits 7:6): nVHE RW = 0b01, RO = 0b11 (AP[1] is RES1); VHE RW = 0b00, RO = 0b10.
    let (rw, ro) = if vhe { (0u64, 2u64 << 6) } else { (1u64 << 6, 3u64 << 6) };
    let no_exec = if vhe { XN_OR_UXN | PXN } else { XN_OR_UXN };
    let exec_el0_off = if vhe { XN_OR_UXN } else { 0 };
    AF | match m {
        Mapping::Text => ATTR_NORMAL | SH_INNER | ro | exec_el0_off,
        Mapping::ReadOnly => ATTR_NORMAL | SH_INNER | ro | no_exec,
        Mapping::ReadWrite => ATTR_NORMAL | SH_INNER | rw | no_exec,
        Mapping::Device => ATTR_DEVICE | rw | no_exec,
    }
}

fn shift(level: usize) -> u32 {
    12 + 9 * (3 - level as u32)
}

/// Identity-maps `[start, end)` (rounded out to pages) as `m`.
pub fn map(start: u64, end: u64, m: Mapping) -> Result<(), MmuError> {
    let (mut addr, end) = (start & !(PAGE - 1), end.div_ceil(PAGE) * PAGE);
    if end > 1 << VA_BITS {
        return Err(MmuError::OutOfRange);
    }
    let attrs = leaf_attrs(m);
    while addr < end {
        // Descend from the root; place the coarsest leaf (1 GiB, 2 MiB, 4 KiB) that is
        // aligned, fits, and lands in an empty slot.
        let mut t = root();
        let mut level = 0;
        loop {
            let size = 1u64 << shift(level);
            let slot = ((addr >> shift(level)) & (ENTRIES as u64 - 1)) as usize;
            // SAFETY: `t` is a pool table and `slot` < 512.
            let entry = unsafe { t.add(slot) };
            // SAFETY: as above; the walker reads these entries, so accesses are volatile.
            let raw = unsafe { entry.read_volatile() };
            let fits = level >= 1 && addr % size == 0 && end - addr >= size;
            if raw & VALID == 0 && (fits || level == 3) {
                let kind = if level == 3 { TABLE_OR_PAGE } else { 0 };
                // SAFETY: as above.
                unsafe { entry.write_volatile(addr | attrs | kind | VALID) };
                addr += size;
                break;
            }
            t = if raw & VALID == 0 {
                let next = alloc_table()?;
                // SAFETY: as above.
                unsafe { entry.write_volatile(next as u64 | TABLE_OR_PAGE | VALID) };
                next
            } else if raw & TABLE_OR_PAGE != 0 && level < 3 {
                (raw & ADDR_MASK) as *mut u64
            } else {
                return Err(MmuError::Overlap(addr));
            };
            level += 1;
        }
    }
    // Make new entries visible to the walker before they are used.
    barrier::dsb(barrier::ISHST);
    barrier::isb(barrier::SY);
    Ok(())
}

/// The physical address size for TCR_EL2.PS / TCR_EL1.IPS, capped at 48 bits.
pub fn pa_size_field() -> u64 {
    ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101)
}

/// The MMU configuration for the current EL2 mode; fixed once computed.
pub fn config() -> &'static MmuConfig {
    CONFIG.call_once(|| compute_config(cpu::vhe()))
}

/// Like [`config`] but without touching a lock (for the boot CPU with the MMU off).
pub fn compute_config(vhe: bool) -> MmuConfig {
    let t0sz = (64 - VA_BITS) as u64;
    let tcr = if vhe {
        // E2H = 1: TCR_EL2 has the TCR_EL1 layout; TTBR1 walks are disabled.
        (TCR_EL1::T0SZ.val(t0sz)
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::SH0::Inner
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::EPD1::DisableTTBR1Walks
            + TCR_EL1::TG1::KiB_4
            + TCR_EL1::T1SZ.val(t0sz)
            + TCR_EL1::IPS.val(pa_size_field()))
        .value
    } else {
        const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);
        TCR_EL2_RES1
            | (TCR_EL2::T0SZ.val(t0sz)
                + TCR_EL2::TG0::KiB_4
                + TCR_EL2::SH0::Inner
                + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
                + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
                + TCR_EL2::PS.val(pa_size_field()))
            .value
    };
    let sctlr = cpu::SCTLR_EL2_RES1
        | (SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable + SCTLR_EL2::SA::Enable).value;
    MmuConfig { mair: MAIR, tcr, ttbr0: root() as u64, sctlr }
}

extern "C" {
    fn keel_enable_mmu(config: *const MmuConfig);
}

/// Switches this CPU's MMU on with `config`.
pub fn enable(config: &MmuConfig) {
    // SAFETY: the tables identity-map Keel's image (code, data, this stack), so execution
    // continues unchanged once translation is on.
    unsafe { keel_enable_mmu(config) };
}

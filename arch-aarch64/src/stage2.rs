//! The stage-2 translation format (guest-physical to host-physical) and its TLB upkeep.
//! The walker is portable (`keel_kernel::mm::PageTable`).
//!
//! IPA size from ID_AA64MMFR0_EL1.PARange: 48 bits (four levels from level 0) when the
//! CPU has 48-bit physical addresses or more, else 39 bits (three levels from level 1).
//! The VMID is the `SpaceId`.

use crate::cpu;
use crate::mmu::pa_size_field;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{HCR_EL2, ID_AA64MMFR0_EL1, ID_AA64MMFR1_EL1, VTCR_EL2, VTTBR_EL2};
use keel_kernel::arch::{Entry, MemType, Perms, SpaceId, Stage2};
use keel_kernel::mm::PhysAddr;
use tock_registers::interfaces::{Readable, Writeable};

const VALID: u64 = 1 << 0;
/// Table (above the last level) or page (last level).
const TABLE_OR_PAGE: u64 = 1 << 1;
const MEMATTR_SHIFT: u64 = 2;
/// Stage-2 MemAttr (HCR_EL2.FWB = 0): Normal, outer and inner write-back (combined with
/// the guest's stage-1 attributes: non-cacheable while its MMU is off).
const MEMATTR_NORMAL_WB: u64 = 0b1111;
/// Stage-2 MemAttr (HCR_EL2.FWB = 1): Normal write-back, forced whatever stage 1 says.
const MEMATTR_FWB_NORMAL_WB: u64 = 0b0110;
/// Stage-2 MemAttr: Device-nGnRE.
const MEMATTR_DEVICE: u64 = 0b0001;
const S2AP_READ: u64 = 1 << 6;
const S2AP_WRITE: u64 = 1 << 7;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
/// XN[1]: not executable at EL1 or EL0.
const XN: u64 = 1 << 54;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// Translation levels for guest-physical space: 4 (48-bit IPA) or 3 (39-bit IPA).
pub fn ipa_levels() -> usize {
    if ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange) >= 0b101 {
        4
    } else {
        3
    }
}

/// The largest VMID the CPU supports (8 or 16 bits).
pub fn max_vmid() -> u64 {
    if ID_AA64MMFR1_EL1.read(ID_AA64MMFR1_EL1::VMIDBits) == 0b0010 {
        0xffff
    } else {
        0xff
    }
}

/// VTCR_EL2 for the IPA size above (the same on every CPU).
pub fn vtcr() -> u64 {
    let levels = ipa_levels();
    let t0sz = 64 - (12 + 9 * levels as u64);
    let start = if levels == 4 { VTCR_EL2::SL0::Granule4KBLevel0 } else { VTCR_EL2::SL0::Granule4KBLevel1 };
    let vs = if max_vmid() == 0xffff { VTCR_EL2::VS::Bits16 } else { VTCR_EL2::VS::Bits8 };
    (VTCR_EL2::RES1::SET
        + vs
        + VTCR_EL2::PS.val(pa_size_field())
        + VTCR_EL2::TG0::Granule4KB
        + VTCR_EL2::SH0::Inner
        + VTCR_EL2::ORGN0::NormalWBRAWA
        + VTCR_EL2::IRGN0::NormalWBRAWA
        + start
        + VTCR_EL2::T0SZ.val(t0sz))
    .value
}

/// VTTBR_EL2 for the tables at `root` tagged `space`.
pub fn vttbr(root: PhysAddr, space: SpaceId) -> u64 {
    assert!(u64::from(space.0) <= max_vmid(), "VMID {} exceeds this CPU's VMID width", space.0);
    (VTTBR_EL2::BADDR.val(root.0 >> 1) + VTTBR_EL2::VMID.val(space.0 as u64)).value
}

/// MemAttr of guest RAM: forced write-back where guests run with `HCR_EL2.FWB`.
fn normal_memattr() -> u64 {
    if cpu::fwb() {
        MEMATTR_FWB_NORMAL_WB
    } else {
        MEMATTR_NORMAL_WB
    }
}

/// The stage-2 descriptor format.
pub struct Stage2Tables;

fn hardware_level(level: usize) -> usize {
    level + 4 - ipa_levels()
}

/// ARM stage-2 translation (VMSAv8-64, 4 KiB granule), tagged by VMID; the IPA width
/// follows the CPU's physical address range.
impl Stage2 for Stage2Tables {
    fn levels() -> usize {
        ipa_levels()
    }

    fn block_allowed(level: usize) -> bool {
        // 4 KiB granule: 1 GiB blocks at level 1, 2 MiB at level 2.
        matches!(hardware_level(level), 1 | 2)
    }

    fn table_entry(next: PhysAddr) -> u64 {
        (next.0 & ADDR_MASK) | TABLE_OR_PAGE | VALID
    }

    fn leaf_entry(level: usize, pa: PhysAddr, perms: Perms, mem: MemType) -> u64 {
        let kind = if level + 1 == Self::levels() { TABLE_OR_PAGE } else { 0 };
        let attrs = match mem {
            MemType::Normal => normal_memattr() << MEMATTR_SHIFT | SH_INNER,
            MemType::Device => MEMATTR_DEVICE << MEMATTR_SHIFT,
        };
        let read = if perms.read { S2AP_READ } else { 0 };
        let write = if perms.write { S2AP_WRITE } else { 0 };
        let xn = if perms.execute { 0 } else { XN };
        (pa.0 & ADDR_MASK) | attrs | read | write | xn | AF | kind | VALID
    }

    fn decode(raw: u64, level: usize) -> Entry {
        let last = level + 1 == Self::levels();
        match (raw & VALID != 0, raw & TABLE_OR_PAGE != 0, last) {
            (false, _, _) => Entry::Invalid,
            (true, true, false) => Entry::Table(PhysAddr(raw & ADDR_MASK)),
            (true, false, true) => Entry::Invalid,
            (true, false, false) if !Self::block_allowed(level) => Entry::Invalid,
            _ => Entry::Leaf {
                pa: PhysAddr(raw & ADDR_MASK),
                perms: Perms { read: raw & S2AP_READ != 0, write: raw & S2AP_WRITE != 0, execute: raw & XN == 0 },
                mem: match (raw >> MEMATTR_SHIFT) & 0xf {
                    MEMATTR_NORMAL_WB | MEMATTR_FWB_NORMAL_WB => MemType::Normal,
                    _ => MemType::Device,
                },
            },
        }
    }

    fn flush(space: SpaceId) {
        // TLBI VMALLS12E1IS acts on the VMID in VTTBR_EL2, and with E2H and TGE both set
        // it would act on the host's EL2&0 regime instead, so TGE is dropped meanwhile.
        // Interrupts are masked at EL2, so nothing runs in between.
        let (hcr, vttbr) = (HCR_EL2.get(), VTTBR_EL2.get());
        if cpu::vhe() {
            HCR_EL2.write(
                HCR_EL2::TGE::DisableTrapGeneralExceptionsToEl2
                    + HCR_EL2::E2H::EnableOsAtEl2
                    + HCR_EL2::RW::EL1IsAarch64,
            );
        }
        VTTBR_EL2.write(VTTBR_EL2::VMID.val(space.0 as u64));
        barrier::isb(barrier::SY);
        barrier::dsb(barrier::ISHST);
        // SAFETY: TLB invalidation has no memory-safety effect.
        unsafe { core::arch::asm!("tlbi vmalls12e1is", options(nostack)) };
        barrier::dsb(barrier::ISH);
        VTTBR_EL2.set(vttbr);
        HCR_EL2.set(hcr);
        barrier::isb(barrier::SY);
    }
}

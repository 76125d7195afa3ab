//! Guest-physical translation: the hardware's second-stage page-table format.
//!
//! The walker is portable ([`crate::mm::PageTable`]); a backend supplies only the entry
//! format and the TLB maintenance.

use crate::addr::PhysAddr;

/// Access rights of a guest mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Perms {
    pub const NONE: Perms = Perms { read: false, write: false, execute: false };
    pub const R: Perms = Perms { read: true, write: false, execute: false };
    pub const RW: Perms = Perms { read: true, write: true, execute: false };
    pub const RX: Perms = Perms { read: true, write: false, execute: true };
    pub const RWX: Perms = Perms { read: true, write: true, execute: true };
}

/// The memory type of a guest mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Write-back cacheable RAM.
    Normal,
    /// Uncached device memory.
    Device,
}

/// Identifies one guest address space to the TLB (VMID, VPID/ASID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceId(pub u16);

/// A decoded translation-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Nothing mapped: accesses fault to the hypervisor.
    Invalid,
    /// Points at the next-level table.
    Table(PhysAddr),
    /// Maps a page or block.
    Leaf { pa: PhysAddr, perms: Perms, mem: MemType },
}

/// The guest-physical translation format of one architecture.
///
/// Tables are 4 KiB with 512 eight-byte entries; level 0 is the root, the last level
/// (`levels() - 1`) maps 4 KiB pages. The root covers `ipa_bits()` of guest-physical
/// address space in one page: `ipa_bits() == 12 + 9 * levels()`.
pub trait Stage2 {
    /// Number of translation levels (3 or 4).
    fn levels() -> usize;
    /// Width of the guest-physical address space.
    fn ipa_bits() -> u32 {
        12 + 9 * u32::try_from(Self::levels()).unwrap_or(0)
    }
    /// Whether a leaf (block) may be placed at `level` (the last level always may).
    fn block_allowed(level: usize) -> bool;
    /// Encodes an entry pointing at the next-level table at `next`.
    fn table_entry(next: PhysAddr) -> u64;
    /// Encodes a leaf at `level` mapping `pa` with the given rights and memory type.
    fn leaf_entry(level: usize, pa: PhysAddr, perms: Perms, mem: MemType) -> u64;
    /// Decodes an entry found at `level`.
    fn decode(raw: u64, level: usize) -> Entry;
    /// Makes every CPU forget translations of address space `space` after entries were
    /// changed or removed.
    fn flush(space: SpaceId);
}

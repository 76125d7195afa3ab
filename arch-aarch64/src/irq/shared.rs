//! What both GIC drivers share: Keel's priorities, its wake-up SGI, the calling CPU's
//! index. A leaf below the drivers and the module that chooses between them.

use crate::cpu;

/// The SGI Keel uses to wake another CPU.
pub const WAKEUP_SGI: u32 = 0;
/// Priority of every interrupt Keel configures (four byte lanes).
pub const ALL_PRIORITIES: u32 = 0xa0a0_a0a0;
/// CPU-interface priority mask: let everything numerically below 0xf0 through.
pub const PRIORITY_MASK: u64 = 0xf0;

/// The calling CPU's index into the per-CPU tables.
pub fn current_index() -> usize {
    cpu::current().0 as usize
}

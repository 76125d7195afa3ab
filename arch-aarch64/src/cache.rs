//! Data- and instruction-cache maintenance by address, for memory shared with agents
//! that do not snoop Keel's caches: CPUs with their MMU off (secondaries starting up,
//! guests booting with stage 1 off) and Keel itself before its MMU is on.

use crate::regs::{CtrEl0, CTR_EL0};
use aarch64_cpu::asm::barrier;
use tock_registers::interfaces::Readable;

fn line_size() -> usize {
    4 << CtrEl0.read(CTR_EL0::DminLine)
}

fn for_each_line(start: usize, len: usize, op: impl Fn(usize)) {
    if len == 0 {
        return;
    }
    let line = line_size();
    let mut addr = start & !(line - 1);
    let end = start.saturating_add(len);
    while addr < end {
        op(addr);
        addr += line;
    }
    barrier::dsb(barrier::SY);
}

/// Writes dirty lines of `[start, start + len)` back to the point of coherency.
pub fn clean_to_poc(start: usize, len: usize) {
    // SAFETY: `dc cvac` only writes back cache lines; memory contents do not change.
    for_each_line(start, len, |a| unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack)) });
}

/// Writes dirty lines of `[start, start + len)` back to the point of unification, where
/// instruction fetches see them.
pub fn clean_to_pou(start: usize, len: usize) {
    // SAFETY: `dc cvau` only writes back cache lines; memory contents do not change.
    for_each_line(start, len, |a| unsafe { core::arch::asm!("dc cvau, {}", in(reg) a, options(nostack)) });
}

/// Whether instruction fetches see data writes without cleaning to the point of
/// unification (`CTR_EL0.IDC`).
pub fn idc() -> bool {
    CtrEl0.read(CTR_EL0::IDC) != 0
}

/// Discards cached copies of `[start, start + len)`, so reads see memory. Only for memory
/// that was written with caches off and holds no dirty lines (the boot protocol's
/// guarantee for Keel's image).
pub fn invalidate_to_poc(start: usize, len: usize) {
    // SAFETY: the caller guarantees no dirty line in the range holds newer data than
    // memory, so discarding lines loses nothing.
    for_each_line(start, len, |a| unsafe { core::arch::asm!("dc ivac, {}", in(reg) a, options(nostack)) });
}

/// Invalidates every instruction cache in the inner-shareable domain.
pub fn invalidate_icache_all() {
    // SAFETY: instruction-cache invalidation has no effect on data.
    unsafe { core::arch::asm!("ic ialluis", options(nostack)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
}

/// The block `DC ZVA` zeroes (`DCZID_EL0.BS`), or `None` if it is prohibited.
fn zva_block() -> Option<usize> {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    (dczid & (1 << 4) == 0).then(|| 4usize << (dczid & 0xf))
}

/// Zeroes the whole `DC ZVA` blocks inside `[start, start + len)` of Normal memory and
/// returns the part it zeroed, `(first, end)`; the caller zeroes the rest.
pub fn zero_blocks(start: usize, len: usize) -> (usize, usize) {
    let Some(block) = zva_block() else { return (start, start) };
    let first = start.next_multiple_of(block);
    let end = (start + len) & !(block - 1);
    if first >= end {
        return (start, start);
    }
    // Eight blocks per turn while eight remain (a domain's RAM is megabytes of whole
    // blocks), then one at a time.
    let mut a = first;
    let turns = (end - first) / (8 * block);
    if turns > 0 {
        // SAFETY: the 8 * `turns` blocks from `a` lie inside the caller's range of Normal
        // memory, which the caller owns; `dc zva` writes zeroes there and nothing else.
        unsafe {
            core::arch::asm!(
                "2:",
                "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                a = inout(reg) a,
                b = in(reg) block,
                n = inout(reg) turns => _,
                options(nostack),
            )
        };
    }
    while a < end {
        // SAFETY: as above, one block.
        unsafe { core::arch::asm!("dc zva, {}", in(reg) a, options(nostack)) };
        a += block;
    }
    (first, end)
}


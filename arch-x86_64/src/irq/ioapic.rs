//! I/O APICs: every redirection entry masked until a driver wants a line ([`route`]).
//! (82093AA I/O APIC datasheet: IOREGSEL at +0x00, IOWIN at +0x10.)

const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;
const RTE_ACTIVE_LOW: u32 = 1 << 13;
const RTE_LEVEL: u32 = 1 << 15;
const RTE_MASKED: u32 = 1 << 16;

fn read(base: u64, reg: u32) -> u32 {
    // SAFETY: `base` is an I/O APIC register window the MADT named, mapped uncached.
    unsafe {
        core::ptr::write_volatile((base + IOREGSEL) as *mut u32, reg);
        core::ptr::read_volatile((base + IOWIN) as *const u32)
    }
}

fn write(base: u64, reg: u32, value: u32) {
    // SAFETY: as in `read`.
    unsafe {
        core::ptr::write_volatile((base + IOREGSEL) as *mut u32, reg);
        core::ptr::write_volatile((base + IOWIN) as *mut u32, value);
    }
}

/// Masks every redirection entry of the I/O APIC at `base`; returns how many it has.
pub fn mask_all(base: u64) -> u32 {
    let entries = ((read(base, REG_VERSION) >> 16) & 0xff) + 1;
    for n in 0..entries {
        let low = REG_REDIRECTION + 2 * n;
        write(base, low, read(base, low) | RTE_MASKED);
    }
    entries
}

/// Sends line `line` of the I/O APIC at `base` to `vector` on the CPU with APIC id
/// `apic_id` (fixed delivery, physical destination), unmasked. False if the line or the
/// id does not exist in this form.
pub fn route(base: u64, line: u32, vector: u8, apic_id: u32, active_low: bool, level: bool) -> bool {
    let entries = ((read(base, REG_VERSION) >> 16) & 0xff) + 1;
    if line >= entries || apic_id > 0xff {
        return false;
    }
    let low = REG_REDIRECTION + 2 * line;
    let mut rte = u32::from(vector);
    if active_low {
        rte |= RTE_ACTIVE_LOW;
    }
    if level {
        rte |= RTE_LEVEL;
    }
    // Destination first, while the entry is still masked.
    write(base, low, read(base, low) | RTE_MASKED);
    write(base, low + 1, apic_id << 24);
    write(base, low, rte);
    true
}

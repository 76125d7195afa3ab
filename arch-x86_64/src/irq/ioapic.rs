//! I/O APICs: every redirection entry masked until a driver wants a line.
//! (82093AA I/O APIC datasheet: IOREGSEL at +0x00, IOWIN at +0x10.)

const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;
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

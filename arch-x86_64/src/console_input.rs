//! Console input on x86: COM1's receive interrupt (ISA IRQ 4, or the MADT's interrupt
//! source override of it) through the I/O APIC that has its GSI, to the CPU whose loop
//! takes console input. Kept apart from `console`, which everything may use, because it
//! needs ACPI's tables and the interrupt controllers.

use crate::{acpi, console, irq};

/// Routes COM1's receive interrupt to the calling CPU and turns it on; returns its
/// vector, or `None` without ACPI's I/O APIC (no input then).
pub fn start() -> Option<u8> {
    let tables = acpi::info()?;
    let (gsi, active_low, level) = tables.isa_irq(acpi::COM1_IRQ);
    let (base, line) = tables.ioapic_for(gsi)?;
    let vector = irq::VECTOR_CONSOLE;
    if !irq::ioapic::route(base, line, vector, irq::lapic::id(), active_low, level) {
        log::warn!("console input: I/O APIC line {line} (GSI {gsi}) cannot reach this CPU; no input");
        return None;
    }
    console::enable_rx_interrupt();
    log::debug!("console input: COM1 on GSI {gsi} (I/O APIC {base:#x} line {line}), vector {vector:#x}");
    Some(vector)
}

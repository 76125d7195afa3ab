//! Entered at EL1 or EL3 instead of EL2: say why on the console and power off.
//!
//! Runs with the MMU off at that level, on minimal vectors that skip instructions nothing
//! answers (`asm/head.S`), so only plain loads and stores and no EL2 registers.

use crate::{console, cpu, dt, firmware_psci, semihosting};
use keel_kernel::arch::PowerOffPath;
use keel_kernel::boot::Options;

#[no_mangle]
extern "C" fn keel_wrong_el(dtb: usize, el: u64) -> ! {
    // Until the command line says otherwise, try the test exit too.
    let mut test_exit = true;
    let tree = dt::total_size(dtb).and_then(|size| dt::prepare(dtb, size)).ok();
    if let Some(fdt) = tree.and_then(dt::open) {
        if let Ok(uart) = dt::console(&fdt) {
            console::install(uart);
        }
        firmware_psci::set_conduit(dt::psci_conduit(&fdt));
        test_exit = Options::parse(dt::cmdline(&fdt)).0.power_off == PowerOffPath::TestDevice;
    }
    let hint = match el {
        1 => "enable virtualization (QEMU: -M virt,virtualization=on)",
        _ => "start Keel from firmware that drops to EL2 (TF-A, U-Boot), not straight from reset",
    };
    console::emergency(format_args!(
        "[ERROR 0] Keel must be entered at EL2 (hypervisor mode); entered at EL{el}: {hint}"
    ));
    console::flush();
    if test_exit {
        semihosting::exit(1);
    }
    // At EL3 Keel would only be calling itself.
    if el == 1 {
        firmware_psci::system_off();
    }
    cpu::park()
}

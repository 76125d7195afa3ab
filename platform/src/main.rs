//! The Keel image: the portable core composed with one architecture backend.
//!
//! This is the only place that picks an architecture. The backend's entry code sets up
//! the CPU and calls [`keel_main`]; from there on the portable core runs the machine.
#![no_std]
#![no_main]

mod heap;

use keel_kernel::boot::BootInfo;

/// The architecture this image is built for: the single `cfg(target_arch)` choice.
#[cfg(target_arch = "aarch64")]
type Backend = keel_arch_aarch64::Aarch64;
#[cfg(target_arch = "x86_64")]
type Backend = keel_arch_x86_64::X86_64;

/// Called once by the backend on the boot CPU, with a console, the MMU, exception
/// vectors and the boot information in place.
#[no_mangle]
pub fn keel_main(mut info: BootInfo) -> ! {
    heap::init(&mut info.free_memory);
    keel_kernel::start::primary::<Backend>(info)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    keel_kernel::start::panic_power_off::<Backend>(info)
}

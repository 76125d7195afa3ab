//! Keel's x86_64 test guest: a PVH kernel (ELF with Xen's PHYS32_ENTRY note) that Keel
//! enters in 32-bit protected mode. It makes a hypercall from 32-bit code, enters long
//! mode with an identity map plus an alias of the low 4 GiB, checks what is specific to
//! x86 (Xen's CPUID leaves, the hypercall page, both hypercall instructions, MSRs and
//! ports that real hardware would refuse or ignore), then runs the portable scenario its
//! command line names (`keel-test-guest`), or, with `keel.program=xenstored`, Keel's
//! xenstore domain (`keel-xenstored`).
#![no_std]
#![no_main]
// A failure carries its message inline (the scenarios have no allocator), as in
// `keel-test-guest`.
#![allow(clippy::result_large_err)]

mod checks;
mod compat;
mod compat_shared;
mod control;
mod cpu;
mod faults;
mod heap;
mod hole_faults;
mod legacy32;
mod legacy32_call;
mod legacy32_paged;
mod legacy32_upcall;
mod owned;
mod params;
mod platform;
mod smp;
mod start_info;
mod tasks;
mod time;
mod traps;
mod unbacked;
mod unbacked_compare;
mod unbacked_vector;

use keel_test_guest::hcall::Hv;
use keel_test_guest::Platform;
use platform::X86;

/// Stack of each CPU.
const STACK_SIZE: usize = 32 * 1024;
/// Most CPUs this guest runs on.
pub const MAX_CPUS: usize = keel_test_guest::irq::MAX_CPUS;

core::arch::global_asm!(
    include_str!("entry.s"),
    STACK_SIZE = const STACK_SIZE,
    MAX_CPUS = const MAX_CPUS,
    options(att_syntax)
);

extern "C" {
    static guest_hypercall32_result: u32;
}

/// A CPU in long mode, on its stack: the boot CPU (0) or a secondary one.
#[no_mangle]
extern "C" fn guest_main(cpu: u32, start_info: u32) -> ! {
    if cpu != 0 {
        smp::secondary_main(cpu);
    }
    traps::init_cpu(cpu);
    platform::init(start_info as u64);
    if keel_test_guest::cmdline::get(X86.cmdline(), "keel.program") == Some("xenstored") {
        heap::init();
        keel_xenstored::serve(&X86)
    }
    // SAFETY: written once by the 32-bit entry code before long mode.
    let result32 = unsafe { core::ptr::read_volatile(&raw const guest_hypercall32_result) };
    let mut outcome = checks::run(&X86, result32);
    if outcome.is_ok() && keel_test_guest::cmdline::get(X86.cmdline(), "keel.test") == Some("timer") {
        outcome = time::run(&X86);
    }
    if outcome.is_err() {
        keel_test_guest::finish(&X86, "x86", outcome);
    }
    keel_test_guest::run(&X86)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    keel_test_guest::say!(&X86, "FAIL panic: {info}");
    let _ = Hv(&X86).shutdown(keel_abi::sched::SHUTDOWN_CRASH);
    loop {
        cpu::halt();
    }
}

//! The entry point every program here shares: `_start` hands the initial stack to
//! `main(args)` and exits with its status; a panic prints a line and exits 101.

use crate::{out, sys};
use core::ffi::CStr;

/// Where `_start` (in the architecture's `sys` module) calls with the initial stack.
pub extern "C" fn entry(sp: *const usize) -> ! {
    // SAFETY: Linux's initial stack holds argc, then argc pointers to NUL-terminated
    // strings that live as long as the program.
    let args = unsafe { args_from_stack(sp) };
    sys::exit(crate::main(&args))
}

/// The first three command-line arguments (absent ones empty).
///
/// # Safety
/// `sp` must be the stack pointer the kernel started the program with.
unsafe fn args_from_stack(sp: *const usize) -> [&'static [u8]; 3] {
    let mut args: [&[u8]; 3] = [b""; 3];
    // SAFETY: the caller vouches for the layout; only the first argc entries are read.
    unsafe {
        let argc = *sp;
        for (i, slot) in args.iter_mut().enumerate().take(argc) {
            let p = *sp.add(1 + i) as *const core::ffi::c_char;
            *slot = CStr::from_ptr(p).to_bytes();
        }
    }
    args
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    out::line(format_args!("error: panic"));
    sys::exit(101)
}

//! Small programs: spinners, a counter, a wild load, console output, a reboot.

use super::*;

/// Spins forever without an exit.
pub fn spinner() -> Vec<u8> {
    let mut a = Asm::new();
    let top = a.here();
    a.i(Insn::AddI(8, 8, 1)).jmp(top);
    a.assemble()
}

/// Counts to `n` (three instructions per step), prints the count and powers off.
pub fn worker(n: u64) -> Vec<u8> {
    let mut img = Image::new();
    let a = &mut img.a;
    a.set(8, 0).set(14, n);
    let top = a.here();
    a.i(Insn::AddI(8, 8, 1)).br(Cond::Ne, 8, 14, top);
    img.print_hex("worked=", 8);
    img.finish()
}

/// Reads guest-physical `gpa`, which it does not own.
pub fn wild_load(gpa: u64) -> Vec<u8> {
    let mut a = Asm::new();
    a.set(1, gpa).load(8, 2, 1, 0).i(Insn::Halt);
    a.assemble()
}

/// Writes `text` to its emulated console UART byte by byte, then powers off.
pub fn uart_writer(text: &str) -> Vec<u8> {
    let mut img = Image::new();
    for b in text.bytes() {
        img.a.set(1, b as u64).i(Insn::Platform(PlatformCall::UartPut));
    }
    img.finish()
}

/// Prints the time it started (`up=`) and asks to reboot.
pub fn rebooter() -> Vec<u8> {
    let mut img = Image::new();
    img.put(REBOOT, &SchedShutdown { reason: SHUTDOWN_REBOOT });
    img.a.i(Insn::Time(14));
    img.print_hex("up=", 14);
    img.a.hypercall(SCHED_OP, &[SCHEDOP_SHUTDOWN, DATA + REBOOT]);
    img.finish()
}

/// Says `ready=` once shared_info is mapped, then makes null hypercalls (`xen_version`,
/// each an exit the run loop's short path follows) until the event upcall is asserted,
/// and prints `seen=1`. Nothing in it blocks: only the run loop's flags can make the
/// level it sees change.
pub fn upcall_spinner() -> Vec<u8> {
    let mut img = Image::new();
    img.a.set(8, 1);
    img.print_hex("ready=", 8);
    let a = &mut img.a;
    let top = a.here();
    a.hypercall(XEN_VERSION, &[0, 0]).i(Insn::Upcall(8)).br(Cond::Eq, 8, 6, top);
    img.print_hex("seen=", 8);
    img.finish()
}
